"""Assign splits where a dataset has none, keeping each speaker/source group on one side."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

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


def group_by_folder(
    records: Sequence[ClipRecord], root: str | os.PathLike[str], level: int
) -> list[ClipRecord]:
    """Give records without a group the name of their ``level``-th folder under ``root``
    (1 = the first), e.g. ``ROOT/<speaker>/fake/x.wav`` with ``level`` 1.

    For trees that keep each speaker (or source recording) in a folder of its own: carving
    then moves whole speakers. A file with fewer folders above it keeps no group.
    """
    if level < 1:
        raise ValueError(f"--group-by-folder counts folders from 1, got {level}")
    base = Path(root).absolute()
    out = []
    for record in records:
        if record.group is None:
            try:
                folders = Path(record.path).absolute().relative_to(base).parts[:-1]
            except ValueError:  # not under root (a manifest naming files elsewhere)
                folders = ()
            if len(folders) >= level:
                record = record.with_(group=f"folder:{'/'.join(folders[:level])}")
        out.append(record)
    return out


def ungrouped_carving(records: Sequence[ClipRecord], validation_missing: bool) -> int:
    """How many records :func:`assign_splits` would carve one file at a time (no group): the
    unsplit ones, and the training ones when validation must be carved from training."""
    carved = [r for r in records if r.split is None or (validation_missing and r.split == TRAIN)]
    return sum(1 for r in carved if r.group is None)


def assign_splits(
    records: Sequence[ClipRecord],
    *,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> list[ClipRecord]:
    """Fill in missing splits.

    * Records without a split at all (e.g. In-the-Wild) are carved into train / validation /
      test by group; one whose group already has files in a split joins them there.
    * When there is a train split but no validation split, validation is carved from train by
      group (a group never ends up on both sides).
    """
    records = list(records)
    unsplit = [r for r in records if r.split is None]
    split = [r for r in records if r.split is not None]
    # An unsplit file of a group that already has files in a split joins them there.
    votes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in split:
        votes[group_key(record)][record.split] += 1  # type: ignore[index]
    joined = [r for r in unsplit if group_key(r) in votes]
    for record in joined:
        per_split = votes[group_key(record)]
        split.append(record.with_(split=max(per_split, key=lambda s: (per_split[s], s))))
    unsplit = [r for r in unsplit if group_key(r) not in votes]
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
