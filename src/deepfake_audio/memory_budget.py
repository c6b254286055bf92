"""How much memory this process may still use, and how much it uses now.

Shared by training's batch planning (:mod:`deepfake_audio.training.memory`) and the
allocator setting (:mod:`deepfake_audio.allocator`), which keeps freed memory only within a
budget. ``DEEPFAKE_AUDIO_MEMORY_LIMIT`` caps the figure, for users who share a machine and
for tests; otherwise it is the cgroup's room or ``MemAvailable``, whichever is smaller.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
from collections.abc import Callable
from pathlib import Path

#: Set to a size (``8G``, ``512M``, bytes) to cap what training may use: for users who share
#: a machine, and for tests.
LIMIT_ENV = "DEEPFAKE_AUDIO_MEMORY_LIMIT"

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str) -> int:
    """``8G``, ``512M``, ``1.5G`` or a number of bytes -> bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"{LIMIT_ENV}={text!r}: give bytes or a size such as 8G or 512M")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def _cgroup_room() -> int | None:
    """Bytes this cgroup (v2) may still use, when it has a limit."""
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((base / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_memory() -> tuple[int | None, str]:
    """Bytes training may still use, and where that figure came from."""
    if os.environ.get(LIMIT_ENV):
        return parse_size(os.environ[LIMIT_ENV]), LIMIT_ENV
    room = [
        (v, name)
        for v, name in ((_cgroup_room(), "cgroup"), (_mem_available(), "MemAvailable"))
        if v
    ]
    return min(room) if room else (None, "unknown")


def resident_memory() -> int | None:
    """This process's resident memory in bytes (``/proc/self/statm``), None off Linux."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def gib(size: float) -> str:
    return f"{size / 2**30:.1f} GB"


def _status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _release_freed_memory() -> None:
    """Hand memory the C library keeps after ``free`` back to the kernel (glibc), so that
    what a measured piece of work needs shows as growth instead of reuse."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: no malloc_trim
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def peak_growth(work: Callable[[], object]) -> int | None:
    """Bytes the resident memory peaked above its level before ``work()``, or None where the
    kernel cannot reset the peak (``/proc/self/clear_refs``, Linux 4.0+). Freed memory the
    process still holds is released first, or the work would reuse it unseen."""
    _release_freed_memory()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := the current resident size
    except OSError:
        return None
    before = _status_bytes("VmHWM")
    work()
    after = _status_bytes("VmHWM")
    return None if before is None or after is None else max(0, after - before)
