"""Balanced sampling: equal numbers of fake and real items per split and dataset type."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from deepfake_audio.data.records import FAKE, LABEL_NAMES, REAL, ClipRecord

BalanceMode = Literal["undersample", "weighted", "none"]


def count_labels(records: Sequence[ClipRecord]) -> dict[str, dict[str, dict[str, int]]]:
    """``{split: {dataset_type: {"fake": n, "real": n}}}``."""
    counts: dict = defaultdict(lambda: defaultdict(lambda: dict.fromkeys(LABEL_NAMES.values(), 0)))
    for record in records:
        counts[record.split or "unassigned"][record.dataset_type][record.label_name] += 1
    return {split: dict(types) for split, types in sorted(counts.items())}


@dataclass
class BalanceResult:
    records: list[ClipRecord]
    mode: str
    before: dict
    after: dict


def balance(
    records: Sequence[ClipRecord], mode: BalanceMode = "undersample", seed: int = 0
) -> BalanceResult:
    """Balance fake and real within every (split, dataset type) cell.

    ``undersample`` (default) keeps a seeded random subset of the larger class in each cell;
    ``weighted`` and ``none`` keep everything (with ``weighted`` the trainer samples by
    :func:`class_weights` instead). A cell with only one class has nothing to balance it
    against and is dropped under ``undersample``; the before/after counts show it.
    """
    if mode not in ("undersample", "weighted", "none"):
        raise ValueError(f"unknown balance mode {mode!r}; use undersample, weighted or none")
    before = count_labels(records)
    if mode != "undersample":
        return BalanceResult(list(records), mode, before, before)
    cells: dict[tuple[str, str], dict[int, list[ClipRecord]]] = defaultdict(
        lambda: {FAKE: [], REAL: []}
    )
    for record in records:
        cells[(record.split or "", record.dataset_type)][record.label].append(record)
    rng = np.random.default_rng(seed)
    kept: list[ClipRecord] = []
    for key in sorted(cells):
        by_label = cells[key]
        n = min(len(by_label[FAKE]), len(by_label[REAL]))
        for label in (FAKE, REAL):
            group = sorted(by_label[label], key=lambda r: r.path)
            if len(group) == n:
                kept.extend(group)
            else:
                chosen = sorted(rng.choice(len(group), size=n, replace=False))
                kept.extend(group[i] for i in chosen)
    return BalanceResult(kept, mode, before, count_labels(kept))


def class_weights(records: Sequence[ClipRecord]) -> np.ndarray:
    """Per-record sampling weights that make both classes equally likely to be drawn."""
    counts = Counter(r.label for r in records)
    return np.array([1.0 / counts[r.label] for r in records], dtype=np.float64)
