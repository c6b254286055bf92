"""Balanced sampling: equal classes per split and dataset type, seeded."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfake_audio.data.balance import balance, class_weights
from deepfake_audio.data.records import FAKE, REAL, ClipRecord


def _records(spec: dict[tuple[str, str], tuple[int, int]]) -> list[ClipRecord]:
    out = []
    for (split, dtype), (fakes, reals) in spec.items():
        for label, count in ((FAKE, fakes), (REAL, reals)):
            out += [
                ClipRecord(
                    path=f"/{split}/{dtype}/{label}/{i}.wav",
                    label=label,
                    split=split,
                    dataset_type=dtype,
                )
                for i in range(count)
            ]
    return out


def test_undersampling_per_split_and_type() -> None:
    records = _records({("train", "a"): (10, 4), ("train", "b"): (3, 7), ("test", "a"): (5, 5)})
    result = balance(records, "undersample", seed=0)
    counts = Counter((r.split, r.dataset_type, r.label) for r in result.records)
    assert counts == {
        ("train", "a", FAKE): 4, ("train", "a", REAL): 4,
        ("train", "b", FAKE): 3, ("train", "b", REAL): 3,
        ("test", "a", FAKE): 5, ("test", "a", REAL): 5,
    }  # fmt: skip
    assert result.before["train"]["a"] == {"fake": 10, "real": 4}
    assert result.after["train"]["a"] == {"fake": 4, "real": 4}


def test_undersampling_is_seeded() -> None:
    records = _records({("train", "a"): (50, 10)})
    pick = lambda seed: {r.path for r in balance(records, seed=seed).records}  # noqa: E731
    assert pick(1) == pick(1) and pick(1) != pick(2)


def test_weighted_mode_keeps_everything_and_weights_balance_classes() -> None:
    records = _records({("train", "a"): (30, 10)})
    result = balance(records, "weighted")
    assert len(result.records) == 40
    weights = class_weights(result.records)
    labels = np.array([r.label for r in result.records])
    assert weights[labels == FAKE].sum() == weights[labels == REAL].sum()


def test_one_class_cell_is_dropped_and_reported() -> None:
    result = balance(_records({("test", "rerec"): (6, 0), ("test", "a"): (2, 2)}))
    assert result.before["test"]["rerec"] == {"fake": 6, "real": 0}
    assert result.after["test"].get("rerec") is None
    assert len(result.records) == 4


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(
    st.tuples(st.sampled_from(["train", "validation", "test"]), st.sampled_from(["x", "y"])),
    st.tuples(st.integers(0, 20), st.integers(0, 20)),
))  # fmt: skip
def test_classes_are_always_equal(spec: dict) -> None:
    result = balance(_records(spec), seed=7)
    for split in ("train", "validation", "test"):
        labels = Counter(r.label for r in result.records if r.split == split)
        assert labels[FAKE] == labels[REAL]
