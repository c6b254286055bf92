"""Keep freed memory in the process, so that large tensors do not page-fault on every batch.

Why: glibc's ``malloc`` serves every request above 32 MB with a fresh ``mmap`` and hands it
back to the kernel with ``munmap`` on ``free``. The paper models' activations are hundreds
of megabytes (AASIST: 32 channels x 23 sub-bands x 21,490 frames per 4-s window), so on CPU
every batch mapped, zero-filled and unmapped gigabytes: more system time than computing.
Serving large blocks from the heap instead, and not trimming it, let the pages be reused.
Measured on 2 cores (``bench/bench_models.py --train``, 4-s windows, batch 8): inference of
AASIST-L 3.2-3.3x faster, AASIST 3.2x, RawNet2 1.9x, LFCC-LCNN 1.4-1.8x; AASIST-L training
3.4x. The price is memory: the process keeps what it once used (up to :data:`KEEP_LIMIT` of
it free at the top of the heap), and a fragmented heap can hold more than the true peak
(AASIST-L training: 7.6 GB against 4.7 GB).

It is a process-wide setting, so it is made by the command-line entry point (and the
benchmarks, to measure what users get), never on import. ``DEEPFAKE_AUDIO_KEEP_FREED_MEMORY=0``
turns it off, e.g. in a long-lived process that must give memory back between jobs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

ENV_SWITCH = "DEEPFAKE_AUDIO_KEEP_FREED_MEMORY"
KEEP_LIMIT = 2**31 - 1  # bytes of free memory kept before the heap is trimmed (mallopt's max)
_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Make glibc serve large blocks from the heap and keep up to 2 GiB of it when freed.

    Returns whether the setting was made: not on other C libraries (macOS, Windows, musl),
    which allocate differently, and not when the environment switch is ``0``.
    """
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    # mallopt returns 1 on success, 0 on error
    no_mmap = libc.mallopt(_M_MMAP_MAX, 0)
    no_trim = libc.mallopt(_M_TRIM_THRESHOLD, KEEP_LIMIT)
    return bool(no_mmap and no_trim)
