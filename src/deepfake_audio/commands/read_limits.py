"""``--max-file-mb`` and ``--max-duration``: how much of one file any command will read.

A scanned folder may hold anything: a file of gigabytes, or a tiny one that decodes to hours.
Files over a cap are skipped with their reason, like any unreadable file. The caps are kept
in the environment (:func:`deepfake_audio.read_limits.set_read_limits`), so the worker processes
that decode inherit them.
"""

from __future__ import annotations

import argparse
import math

from deepfake_audio.read_limits import DEFAULT_MAX_FILE_MB, DEFAULT_MAX_HOURS

_UNITS = {"h": 3600.0, "m": 60.0, "min": 60.0, "s": 1.0}


def duration_hours(text: str) -> float:
    """``4h``, ``90m``, ``30min``, ``45s`` or plain seconds -> hours (positive and finite)."""
    value = text.strip().lower()
    scale = 1.0
    for unit in sorted(_UNITS, key=len, reverse=True):
        if value.endswith(unit):
            value, scale = value[: -len(unit)], _UNITS[unit]
            break
    try:
        seconds = float(value) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 4h, 90m, 45s)") from None
    if not 0 < seconds < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive duration, got {text!r}")
    return seconds / 3600.0


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of MB: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number of MB, got {text!r}")
    return value


def add_read_limit_options(parser: argparse.ArgumentParser) -> None:
    """The two caps, in their own ``--help`` group."""
    group = parser.add_argument_group("input limits (files over a cap are skipped, named)")
    group.add_argument(
        "--max-file-mb",
        type=_megabytes,
        metavar="MB",
        help=f"read at most this many MB of one file (default {DEFAULT_MAX_FILE_MB})",
    )
    group.add_argument(
        "--max-duration",
        type=duration_hours,
        metavar="DURATION",
        help=f"skip files that decode to more than this, e.g. 4h, 90m, 45s (default "
        f"{DEFAULT_MAX_HOURS:g}h); long files within it are read in blocks, so memory does not "
        "grow with their duration",
    )
