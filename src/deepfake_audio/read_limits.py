"""The caps on what is read of one file: its bytes and its decoded duration.

A scanned folder may hold anything: a file of gigabytes, or a tiny one that decodes to hours
(a FLAC of silence). Files over a cap are skipped with their reason. The caps live in the
environment so that the worker processes that decode inherit them; the command line sets
them from ``--max-file-mb`` and ``--max-duration``. Dependency-free, so ``--help`` can show
the defaults without importing numpy.
"""

from __future__ import annotations

import os

#: Environment variable capping the decoded duration of one file, in hours (default 4).
MAX_HOURS_ENV = "DEEPFAKE_AUDIO_MAX_HOURS"
DEFAULT_MAX_HOURS = 4.0


def max_seconds() -> float:
    """The longest audio decoded from one file: a tiny file can decode to hours (a FLAC of
    silence), and memory grows with the duration, so longer files are refused."""
    text = os.environ.get(MAX_HOURS_ENV, "")
    try:
        return 3600.0 * (float(text) if text else DEFAULT_MAX_HOURS)
    except ValueError:
        return 3600.0 * DEFAULT_MAX_HOURS


#: Environment variable capping the bytes read from one file, in MB (default 2048).
MAX_FILE_MB_ENV = "DEEPFAKE_AUDIO_MAX_FILE_MB"
DEFAULT_MAX_FILE_MB = 2048


def max_file_bytes() -> int:
    """The most bytes read from one file (``DEEPFAKE_AUDIO_MAX_FILE_MB``, default 2 GB):
    a scanned folder may hold anything, and one file must not exhaust memory."""
    text = os.environ.get(MAX_FILE_MB_ENV, "")
    try:
        megabytes = float(text) if text else DEFAULT_MAX_FILE_MB
    except ValueError:
        megabytes = DEFAULT_MAX_FILE_MB
    return int(megabytes * 2**20)


def set_read_limits(max_file_mb: float | None = None, max_hours: float | None = None) -> None:
    """Set the caps on one file's bytes and decoded duration for this process and every
    worker it starts later (they are kept in the environment, which workers inherit)."""
    if max_file_mb is not None:
        os.environ[MAX_FILE_MB_ENV] = repr(float(max_file_mb))
    if max_hours is not None:
        os.environ[MAX_HOURS_ENV] = repr(float(max_hours))
