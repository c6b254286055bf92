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
turns it off, e.g. in a long-lived process that must give memory back between jobs. It keeps
to a budget, half the memory available at start: with less than 2 GB of budget it is not made,
and a process that grows past it falls back to glibc's default (:func:`enforce_budget`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from dataclasses import dataclass

from deepfake_audio.memory_budget import available_memory, gib, resident_memory

ENV_SWITCH = "DEEPFAKE_AUDIO_KEEP_FREED_MEMORY"
KEEP_LIMIT = 2**31 - 1  # bytes of free memory kept before the heap is trimmed (mallopt's max)
#: Share of the available memory within which the process may keep what it freed.
BUDGET_SHARE = 0.5
#: Below this budget the setting is not worth its memory: glibc's default is kept.
MIN_BUDGET = 2 * 2**30
_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_MAX = -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024  # glibc's defaults, restored on falling back
_DEFAULT_MMAP_MAX = 65536


@dataclass(frozen=True)
class KeepDecision:
    """Whether freed memory is kept, within which budget, and why (for the run's log)."""

    enabled: bool
    budget: int | None  # bytes the process may grow to while keeping freed memory
    reason: str


_decision = KeepDecision(False, None, "glibc's default (the setting was not asked for)")


def decision() -> KeepDecision:
    """The allocator setting in force in this process."""
    return _decision


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def keep_freed_memory() -> bool:
    """Make glibc serve large blocks from the heap and keep freed memory, within a budget.

    The budget is half the memory available (:func:`deepfake_audio.memory_budget.available_memory`);
    with less than :data:`MIN_BUDGET` to spare the setting is not made. Returns whether it
    was made: not on other C libraries (macOS, Windows, musl), which allocate differently,
    and not when the environment switch is ``0``. :func:`decision` says why.
    """
    global _decision
    if os.environ.get(ENV_SWITCH, "1") == "0":
        _decision = KeepDecision(False, None, f"glibc's default ({ENV_SWITCH}=0)")
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        _decision = KeepDecision(False, None, "the C library's default (not glibc)")
        return False
    room, source = available_memory()
    budget = None if room is None else int(room * BUDGET_SHARE)
    if budget is not None and budget < MIN_BUDGET:
        if _decision.enabled:  # an earlier call made the setting: undo it
            _restore_defaults()
        _decision = KeepDecision(
            False, budget, f"glibc's default: half the available memory ({gib(budget)}, "
            f"{source}) is under {gib(MIN_BUDGET)}",
        )  # fmt: skip
        return False
    libc = _libc()
    # mallopt returns 1 on success, 0 on error
    no_mmap = libc.mallopt(_M_MMAP_MAX, 0)
    no_trim = libc.mallopt(_M_TRIM_THRESHOLD, min(KEEP_LIMIT, budget or KEEP_LIMIT))
    within = "no known limit" if budget is None else f"{gib(budget)}, half of {source}"
    _decision = KeepDecision(
        bool(no_mmap and no_trim), budget, f"freed memory kept within {within}"
    )
    return _decision.enabled


def _restore_defaults() -> None:
    """glibc's defaults again, and the freed memory handed back to the kernel now."""
    libc = _libc()
    libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
    libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
    libc.malloc_trim(0)


def enforce_budget() -> bool:
    """Fall back to glibc's default once the process has grown past the budget.

    Called between batches by training and scoring (cheap: one read of ``/proc/self/statm``).
    Returns True when it has just fallen back (the caller logs :func:`decision`): freed memory
    is then handed back to the kernel, and large blocks are mapped afresh again.
    """
    global _decision
    if not _decision.enabled or _decision.budget is None:
        return False
    resident = resident_memory()
    if resident is None or resident <= _decision.budget:
        return False
    _restore_defaults()
    _decision = KeepDecision(
        False, _decision.budget, f"fell back to glibc's default: the process reached "
        f"{gib(resident)}, over its budget of {gib(_decision.budget)} for kept freed memory",
    )  # fmt: skip
    return True
