"""Ordered, bounded parallel map over processes: the one worker pool of the project.

Results come back in input order while only a few batches are in flight, so memory stays
flat however many items there are (a plain ``Pool.imap`` queues every result it gets ahead).

Workers are forked straight from this process when that is safe, which costs a few
milliseconds; otherwise they come from a forkserver, which costs a fresh interpreter and its
imports (0.2-0.3 s here, a third of a whole audit of 5,000 short files).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Modules whose threads are not fork-safe once imported (torch's OpenMP and intra-op pools).
_FORK_UNSAFE_MODULES = ("torch",)


def default_workers() -> int:
    """Every core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def start_method() -> str:
    """``fork`` when forking this process now is safe, else ``forkserver``.

    Safe means: Linux (macOS's system libraries are not fork-safe), no other Python thread
    running (its locks would be copied held), and no torch imported (its thread pools hang a
    forked child that touches them). A forked worker starts with every import already done;
    a forkserver one starts a fresh interpreter and imports the job's module again.
    (numpy's OpenBLAS threads are fork-safe: OpenBLAS stops them around ``fork``.)
    """
    if sys.platform != "linux" or threading.active_count() > 1:
        return "forkserver"
    if any(name in sys.modules for name in _FORK_UNSAFE_MODULES):
        return "forkserver"
    return "fork"


def _exit_with_parent(parent: int) -> None:
    """Pool initializer of forked workers: exit when ``parent`` is gone.

    A forked worker holds copies of every file its parent had open, a cache's lock among
    them; blocked on its task queue it would outlive a killed parent and keep the lock.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _run_batch(func: Callable[[Item], Result], batch: list[Item]) -> list[Result]:
    return [func(item) for item in batch]


def ordered_map(
    func: Callable[[Item], Result],
    items: Sequence[Item],
    *,
    workers: int | None = None,
    batch_size: int = 16,
    method: str | None = None,
) -> Iterator[Result]:
    """``map(func, items)`` on ``workers`` processes, in order, a few batches in flight.

    ``func`` must be picklable (a module-level function or a ``functools.partial`` of one).
    With one worker, or a single batch, it runs in this process: no start-up cost.
    ``method`` forces a start method (``fork``/``forkserver``); by default
    :func:`start_method` chooses.
    """
    workers = default_workers() if workers is None else max(1, workers)
    batches = [list(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]
    if workers == 1 or len(batches) <= 1:
        for batch in batches:
            yield from _run_batch(func, batch)
        return
    method = method or start_method()
    context = multiprocessing.get_context(method)
    initializer: Callable[[int], None] | None = None
    if method == "forkserver":
        # Preloading func's module there lets every worker fork with its imports done.
        target = func.func if isinstance(func, partial) else func
        context.set_forkserver_preload([target.__module__])
    elif method == "fork":
        initializer = _exit_with_parent
    job = partial(_run_batch, func)
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=initializer,
        initargs=(os.getpid(),) if initializer else (),
    ) as pool:
        pending: deque[Future[list[Result]]] = deque()
        for batch in batches:
            pending.append(pool.submit(job, batch))
            if len(pending) >= 2 * workers:  # bounded: memory stays flat in the item count
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
