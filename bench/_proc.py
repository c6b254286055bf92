"""CPU time and memory of a process tree, read from ``/proc`` (Linux only).

The pipeline's workers are children of a forkserver, not of the process that asked for them,
so ``resource.getrusage(RUSAGE_CHILDREN)`` never sees them: these helpers walk the tree.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    return text[text.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds used so far by each live process of ``pids``."""
    out = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            out[pid] = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return out


def memory_mb(pid: int) -> dict[str, float]:
    """``VmRSS``, ``RssAnon`` and ``RssFile`` of one process in MB (empty once it is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[key] = int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return out


class TreeMemorySampler(threading.Thread):
    """Polls a process tree and keeps the peak of its summed RSS (and anonymous RSS)."""

    def __init__(self, root: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.peak_rss = 0.0
        self.peak_anon = 0.0
        self.peak_processes = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            pids = descendants(self.root)
            stats = [memory_mb(pid) for pid in pids]
            self.peak_rss = max(self.peak_rss, sum(s.get("VmRSS", 0.0) for s in stats))
            self.peak_anon = max(
                self.peak_anon, sum(s.get("RssAnon", 0.0) + s.get("RssShmem", 0.0) for s in stats)
            )
            self.peak_processes = max(self.peak_processes, len([s for s in stats if s]))
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def load_average() -> str:
    """The 1/5/15-minute load averages, for a benchmark's header (the machine may be shared)."""
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def spread(values: Sequence[float], form: str) -> str:
    """A table cell for repeated measurements: ``median (low-high)``, or the one value when
    there is one (or all print alike), so that one slow round on a shared machine shows as a
    range without moving the figure."""
    low, high = form.format(min(values)), form.format(max(values))
    if low == high:
        return low
    return f"{form.format(statistics.median(values))} ({low}-{high})"


def time_process(command: list[str], **kwargs: object) -> tuple[float, str]:
    """Wall seconds of ``command`` in a fresh process, from spawn to exit, and its stdout.

    Start-up and imports are included, as a user running the command pays them. Raises
    ``RuntimeError`` with the process's stderr when it fails.
    """
    import subprocess

    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds, done.stdout


def command(*args: str) -> float:
    """Run ``deepfake-audio ARGS`` in a fresh process, as a user would; its wall time.
    Fails loudly, with the end of its stderr."""
    cli = str(Path(sys.executable).with_name("deepfake-audio"))
    start = time.perf_counter()
    done = subprocess.run([cli, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"deepfake-audio {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start
