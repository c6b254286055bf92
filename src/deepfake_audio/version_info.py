"""``deepfake-audio --version``: the package, the torch build and the device it would use.

Why more than the package version: most "why is it slow / why is the GPU idle" questions are
answered by which torch is installed (a CPU-only wheel, or a CUDA build that sees no GPU)
and by the device scoring would pick. torch is imported only when ``--version`` is given, so
``--help`` and the torch-free commands (``audit``) still start without it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from deepfake_audio import __version__


def version_text() -> str:
    """Three lines: ``deepfake-audio X``, ``torch Y`` and ``device: ...``.

    The device is the one ``--device auto`` resolves to
    (:func:`deepfake_audio.scoring.engine.resolve_device`): the first CUDA GPU, named, when
    torch sees one, else ``cpu``, with the reason when that is the torch build.
    """
    lines = [f"deepfake-audio {__version__}"]
    try:
        import torch
    except ImportError as exc:  # a broken install: say so rather than fail
        return "\n".join([*lines, f"torch: not importable ({exc})", "device: none"])
    lines.append(f"torch {torch.__version__}")
    if torch.cuda.is_available():
        lines.append(f"device: cuda:0 ({torch.cuda.get_device_name(0)})")
    elif torch.version.cuda is None:
        lines.append("device: cpu (this torch is a CPU-only build)")
    else:
        lines.append(f"device: cpu (torch built for CUDA {torch.version.cuda} sees no GPU)")
    return "\n".join(lines)


class VersionAction(argparse.Action):
    """An argparse action that prints :func:`version_text` and exits, like ``version``."""

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str = argparse.SUPPRESS,
        default: Any = argparse.SUPPRESS,
        help: str | None = "print the package and torch versions and the device torch would "
        "use, then exit",
    ) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        sys.stdout.write(version_text() + "\n")  # stdout, as argparse's own version action
        parser.exit()
