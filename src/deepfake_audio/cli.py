"""The ``deepfake-audio`` command: argument parsing and exit codes, nothing else.

Exit codes: 0 the command completed; 1 it could not (bad data, a leak under ``--strict``,
a failed run); 2 a usage error (bad option, missing path); 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from collections.abc import Sequence

from deepfake_audio.version_info import VersionAction

#: Subcommand modules under deepfake_audio.commands, in the order --help lists them.
COMMANDS = (
    "audit", "train", "make-demo-corpus", "compare", "predict", "evaluate", "calibrate", "fuse",
    "models", "import-weights", "export", "demo", "serve",
)  # fmt: skip

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """The user asked for something impossible (missing path, bad option combination)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepfake-audio",
        description="Train, compare and run detectors of synthetic (deepfake) speech.",
    )
    # the package, torch and the device: imports torch, only when asked (never for --help)
    parser.add_argument("--version", action=VersionAction)
    parser.set_defaults(command_line="")  # main() sets it: the provenance of every output
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"deepfake_audio.commands.{name.replace('-', '_')}").register(
            subparsers
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)  # --help and usage errors exit here, before any import
    args.command_line = shlex.join(["deepfake-audio", *argv])  # for every output's provenance
    from deepfake_audio.allocator import keep_freed_memory
    from deepfake_audio.audio import AudioDecodeError
    from deepfake_audio.data.layouts import DiscoveryError
    from deepfake_audio.data.separation import LeakError
    from deepfake_audio.read_limits import set_read_limits

    keep_freed_memory()  # large tensors reuse their pages: 1.3-3x faster on CPU
    set_read_limits(getattr(args, "max_file_mb", None), getattr(args, "max_duration", None))
    try:
        return int(args.func(args) or EXIT_OK)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Output piped into e.g. `head`, which closed early: not an error of ours. Point
        # stdout at /dev/null so the flush at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except UsageError as exc:
        parser.error(str(exc))  # exits with 2 and the usage line
    except LeakError as exc:
        print(f"error: --strict: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (DiscoveryError, AudioDecodeError, ValueError, FileNotFoundError, MemoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
