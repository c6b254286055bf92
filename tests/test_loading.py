"""Datasets and samplers: reproducible windows and orders, disjoint shards, bad clips skipped,
augmentation on training windows only."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from deepfake_audio.augment import AugmentConfig, GainConfig, NoiseConfig, build_augmenter
from deepfake_audio.data.loading import ClipDataModule, ClipDataset, ShardSampler, TrainSampler
from deepfake_audio.data.records import FAKE, REAL, ClipRecord
from deepfake_audio.preprocess import PreprocessConfig, make_window

PRE = PreprocessConfig(sample_rate=1000, window_seconds=0.1, normalization="none")  # 100 samples


class MemorySource:
    """An audio source backed by a dict (picklable, for worker processes)."""

    def __init__(self, clips: dict[str, np.ndarray]) -> None:
        self.clips = clips

    def __call__(self, path: str) -> np.ndarray:
        if path not in self.clips:
            raise KeyError(f"{path} has no cached audio")
        return self.clips[path]


def _records(n: int, labels=(FAKE, REAL)) -> list[ClipRecord]:
    return [ClipRecord(path=f"/clip_{i}.wav", label=labels[i % len(labels)]) for i in range(n)]


def _source(records, length=1000) -> MemorySource:
    return MemorySource(
        {r.path: np.arange(length, dtype=np.float32) + 1000 * i for i, r in enumerate(records)}
    )


def test_evaluation_takes_the_first_window_and_training_a_seeded_random_one():
    records = _records(4)
    dataset = ClipDataset(records, _source(records), PRE, seed=7)
    first = dataset[1]
    assert first["audio"].shape == (100,) and first["error"] == ""
    assert first["label"] == REAL and first["index"] == 1
    assert torch.equal(first["audio"], torch.arange(1000, 1100, dtype=torch.float32))
    a, b = dataset[(1, 3)], dataset[(1, 3)]
    assert torch.equal(a["audio"], b["audio"])  # same (seed, epoch, index): same window
    windows = {float(dataset[(1, epoch)]["audio"][0]) for epoch in range(10)}
    assert len(windows) > 5  # a new position each epoch
    other_seed = ClipDataset(records, _source(records), PRE, seed=8)
    assert not torch.equal(other_seed[(1, 3)]["audio"], a["audio"])


def test_short_clip_is_repeat_padded():
    records = _records(1)
    dataset = ClipDataset(records, MemorySource({records[0].path: np.ones(30, "float32")}), PRE)
    assert dataset[0]["audio"].shape == (100,) and dataset[0]["error"] == ""


def test_bad_clips_come_back_flagged_not_raised():
    records = _records(3)
    clips = _source(records).clips
    clips[records[1].path] = np.zeros(0, dtype=np.float32)  # empty audio cannot be padded
    del clips[records[2].path]  # missing from the cache
    dataset = ClipDataset(records, MemorySource(clips), PRE)
    assert dataset[0]["error"] == ""
    for key in (1, (2, 0)):
        item = dataset[key]
        assert item["error"] and torch.count_nonzero(item["audio"]) == 0
    assert "cannot pad" in dataset[1]["error"] and "KeyError" in dataset[2]["error"]


def test_train_sampler_is_seeded_by_absolute_epoch():
    def order(**kwargs):
        return [i for i, _ in TrainSampler(10, seed=1, **kwargs)]

    a = TrainSampler(10, seed=1)
    a.set_epoch(2)
    resumed = TrainSampler(10, seed=1, epoch_offset=2)  # a resumed run restarts at epoch 0
    assert list(a) == list(resumed)
    assert all(epoch == 2 for _, epoch in a)
    assert sorted(order()) == list(range(10))
    assert order() == order()
    assert order() != order(epoch_offset=1)


def test_train_shards_are_equal_sized_and_cover_everything():
    shards = [list(TrainSampler(11, seed=0, rank=r, world_size=3)) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]  # padded by wrapping: 12 = 11 + 1
    seen = Counter(i for shard in shards for i, _ in shard)
    assert set(seen) == set(range(11)) and sum(seen.values()) == 12


def test_weighted_sampler_balances_classes():
    labels = [FAKE] * 90 + [REAL] * 10
    records = [ClipRecord(path=f"/c{i}", label=label) for i, label in enumerate(labels)]
    from deepfake_audio.data.balance import class_weights

    drawn = [labels[i] for i, _ in TrainSampler(100, seed=0, weights=class_weights(records))]
    assert 30 <= drawn.count(REAL) <= 70


def test_shard_sampler_is_disjoint_and_unpadded():
    shards = [list(ShardSampler(7, r, 2)) for r in range(2)]
    assert shards == [[0, 2, 4, 6], [1, 3, 5]]
    assert len(ShardSampler(7, 1, 2)) == 3


@pytest.mark.parametrize("workers", [0, 2])
def test_datamodule_batches_do_not_depend_on_workers(workers):
    records = _records(10)
    source = _source(records)

    def batches(num_workers):
        data = ClipDataModule(
            records[:6], records[6:], source, PRE, batch_size=4, num_workers=num_workers, seed=3
        )
        train = [b["audio"] for b in data.train_dataloader()]
        val = [b["audio"] for b in data.val_dataloader()]
        return torch.cat(train), torch.cat(val)

    reference, other = batches(0), batches(workers)
    assert torch.equal(reference[0], other[0]) and torch.equal(reference[1], other[1])
    assert reference[0].shape == (6, 100) and reference[1].shape == (4, 100)


# -- augmentation ----------------------------------------------------------------------------

NOISE = AugmentConfig(sample_rate=1000, noise=NoiseConfig(enabled=True, min_snr_db=10))


def _noisy_records(n: int = 6) -> tuple[list[ClipRecord], MemorySource]:
    records = _records(n)
    rng = np.random.default_rng(0)
    clips = {r.path: rng.standard_normal(1000).astype(np.float32) for r in records}
    return records, MemorySource(clips)


def test_augmentation_off_gives_the_windows_of_before():
    """No augmenter, or one with nothing enabled: exactly ``make_window`` as it always was."""
    records, source = _noisy_records()
    pre = PreprocessConfig(sample_rate=1000, window_seconds=0.1, normalization="peak")
    plain = ClipDataset(records, source, pre, seed=5)
    disabled = ClipDataset(records, source, pre, seed=5, augment=build_augmenter(AugmentConfig()))
    for index in range(len(records)):
        for key in (index, (index, 0), (index, 3)):
            rng = None if isinstance(key, int) else np.random.default_rng([5, key[1], index])
            before, _ = make_window(source(records[index].path), pre, rng)
            assert np.array_equal(plain[key]["audio"].numpy(), before)
            assert np.array_equal(disabled[key]["audio"].numpy(), before)


def test_augmentation_changes_training_windows_only_and_is_seeded():
    records, source = _noisy_records()
    clean = ClipDataset(records, source, PRE, seed=5)
    noisy = ClipDataset(records, source, PRE, seed=5, augment=build_augmenter(NOISE))
    for index in range(len(records)):
        assert torch.equal(noisy[index]["audio"], clean[index]["audio"])  # evaluation: clean
        key = (index, 2)
        assert not torch.equal(noisy[key]["audio"], clean[key]["audio"])
        assert torch.equal(noisy[key]["audio"], noisy[key]["audio"])  # same (seed, epoch, index)
        assert not torch.equal(noisy[key]["audio"], noisy[(index, 3)]["audio"])
    other_seed = ClipDataset(records, source, PRE, seed=6, augment=build_augmenter(NOISE))
    assert not torch.equal(other_seed[(0, 2)]["audio"], noisy[(0, 2)]["audio"])


def test_augmentation_does_not_move_the_window():
    """A separate random stream: with gain only (and no normalization) the augmented window is
    the clean one, same position, times one factor."""
    records, source = _records(3), _source(_records(3))
    gain = AugmentConfig(sample_rate=1000, gain=GainConfig(enabled=True, min_db=3, max_db=6))
    clean = ClipDataset(records, source, PRE, seed=1)
    louder = ClipDataset(records, source, PRE, seed=1, augment=build_augmenter(gain))
    for index in range(3):
        a, b = louder[(index, 4)]["audio"], clean[(index, 4)]["audio"]
        factor = float(a.abs().max() / b.abs().max())
        assert torch.allclose(a, b * factor) and 10 ** (3 / 20) <= factor <= 10 ** (6 / 20)


def test_a_failing_augmentation_skips_the_item_and_says_so():
    def broken(window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise OSError("no encoder")

    records, source = _noisy_records(2)
    dataset = ClipDataset(records, source, PRE, augment=broken)
    assert dataset[0]["error"] == ""  # evaluation never calls it
    assert "augmentation failed (OSError: no encoder)" in dataset[(0, 0)]["error"]


def test_augmented_batches_do_not_depend_on_workers_and_validation_stays_clean():
    records, source = _noisy_records(10)

    def batches(num_workers, augment):
        data = ClipDataModule(
            records[:6],
            records[6:],
            source,
            PRE,
            batch_size=4,
            num_workers=num_workers,
            seed=3,
            augment=augment,
        )
        assert data.val_set.augment is None
        train = torch.cat([b["audio"] for b in data.train_dataloader()])
        val = torch.cat([b["audio"] for b in data.val_dataloader()])
        return train, val

    augment = build_augmenter(NOISE)
    serial, parallel = batches(0, augment), batches(2, augment)
    clean = batches(0, None)
    assert torch.equal(serial[0], parallel[0]) and torch.equal(serial[1], parallel[1])
    assert not torch.equal(serial[0], clean[0])
    assert torch.equal(serial[1], clean[1])
