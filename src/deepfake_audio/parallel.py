"""Ordered, bounded parallel map over processes: the one worker pool of the project.

Results come back in input order while only a few batches are in flight, so memory stays
flat however many items there are (a plain ``Pool.imap`` queues every result it gets ahead).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def default_workers() -> int:
    """Every core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _run_batch(func: Callable[[Item], Result], batch: list[Item]) -> list[Result]:
    return [func(item) for item in batch]


def ordered_map(
    func: Callable[[Item], Result],
    items: Sequence[Item],
    *,
    workers: int | None = None,
    batch_size: int = 16,
) -> Iterator[Result]:
    """``map(func, items)`` on ``workers`` processes, in order, a few batches in flight.

    ``func`` must be picklable (a module-level function or a ``functools.partial`` of one).
    With one worker, or a single batch, it runs in this process: no start-up cost.
    """
    workers = default_workers() if workers is None else max(1, workers)
    batches = [list(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]
    if workers == 1 or len(batches) <= 1:
        for batch in batches:
            yield from _run_batch(func, batch)
        return
    # forkserver: safe after torch (and its thread pools) has been imported by the caller.
    # Preloading func's module there lets every worker fork with its imports already done.
    context = multiprocessing.get_context("forkserver")
    target = func.func if isinstance(func, partial) else func
    context.set_forkserver_preload([target.__module__])
    job = partial(_run_batch, func)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[Future[list[Result]]] = deque()
        for batch in batches:
            pending.append(pool.submit(job, batch))
            if len(pending) >= 2 * workers:  # bounded: memory stays flat in the item count
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
