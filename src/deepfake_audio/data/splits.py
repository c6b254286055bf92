"""Assign splits where a dataset has none, keeping each speaker/source group on one side."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from deepfake_audio.data.records import SPLITS, TEST, TRAIN, VALIDATION, ClipRecord, parse_split


def group_key(record: ClipRecord) -> str:
    """The unit that must never straddle two splits: the group when known, else the file."""
    return f"group:{record.dataset_type}:{record.group}" if record.group else f"file:{record.path}"


def _carve(records: list[ClipRecord], fractions: dict[str, float], seed: int) -> list[ClipRecord]:
    """Give ``records`` splits in the given proportions, whole groups at a time, seeded."""
    by_group: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        by_group[group_key(record)].append(index)
    keys = sorted(by_group)
    np.random.default_rng(seed).shuffle(keys)
    # Fill the smaller splits first so they get their share even with few large groups;
    # everything left goes to the first split named (the largest, usually train).
    order = list(fractions)
    targets = {name: fractions[name] * len(records) for name in order}
    assigned: dict[int, str] = {}
    filled = dict.fromkeys(order, 0)
    for key in keys:
        members = by_group[key]
        name = next((n for n in order[1:] if filled[n] < targets[n]), order[0])
        filled[name] += len(members)
        for index in members:
            assigned[index] = name
    return [record.with_(split=assigned[i]) for i, record in enumerate(records)]


def assign_splits(
    records: Sequence[ClipRecord],
    *,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> list[ClipRecord]:
    """Fill in missing splits.

    * Records without a split at all (e.g. In-the-Wild) are carved into train / validation /
      test by group.
    * When there is a train split but no validation split, validation is carved from train by
      group (a group never ends up on both sides).
    """
    records = list(records)
    unsplit = [r for r in records if r.split is None]
    split = [r for r in records if r.split is not None]
    if unsplit:
        fractions = {
            TRAIN: 1.0 - validation_fraction - test_fraction,
            VALIDATION: validation_fraction,
            TEST: test_fraction,
        }
        split += _carve(unsplit, fractions, seed)
    present = {r.split for r in split}
    if TRAIN in present and VALIDATION not in present:
        train = [r for r in split if r.split == TRAIN]
        rest = [r for r in split if r.split != TRAIN]
        share = validation_fraction / max(1e-9, 1.0 - test_fraction)
        split = _carve(train, {TRAIN: 1.0 - share, VALIDATION: share}, seed) + rest
    order = {name: i for i, name in enumerate(SPLITS)}
    return sorted(split, key=lambda r: (order[r.split], r.path))


def select_splits(records: Sequence[ClipRecord], splits: Sequence[str] | None) -> list[ClipRecord]:
    """Keep only the named splits (any alias: ``training``, ``dev``, ``eval``...)."""
    if not splits:
        return list(records)
    wanted = {parse_split(s) for s in splits}
    return [r for r in records if r.split in wanted]
