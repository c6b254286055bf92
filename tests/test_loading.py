"""Datasets and samplers: reproducible windows and orders, disjoint shards, unusable clips
skipped (and bugs raised), validation windowed as scoring windows, augmentation on training
windows only."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from deepfake_audio.audio import AudioDecodeError
from deepfake_audio.augment import AugmentConfig, GainConfig, NoiseConfig, build_augmenter
from deepfake_audio.data.loading import ClipDataModule, ClipDataset, ShardSampler, TrainSampler
from deepfake_audio.data.records import FAKE, REAL, ClipRecord
from deepfake_audio.preprocess import PreprocessConfig, make_window, sliding_windows
from deepfake_audio.training.validation import ValidationClips, collate_items

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


def test_training_takes_a_seeded_random_window():
    records = _records(4)
    dataset = ClipDataset(records, _source(records), PRE, seed=7)
    a, b = dataset[(1, 3)], dataset[(1, 3)]
    assert a["audio"].shape == (100,) and a["error"] == ""
    assert a["label"] == REAL and a["index"] == 1
    assert torch.equal(a["audio"], b["audio"])  # same (seed, epoch, index): same window
    start = float(a["audio"][0]) - 1000  # clip 1 holds 1000 + sample index
    assert torch.equal(a["audio"], torch.arange(1000 + start, 1100 + start, dtype=torch.float32))
    windows = {float(dataset[(1, epoch)]["audio"][0]) for epoch in range(10)}
    assert len(windows) > 5  # a new position each epoch
    other_seed = ClipDataset(records, _source(records), PRE, seed=8)
    assert not torch.equal(other_seed[(1, 3)]["audio"], a["audio"])


def test_short_clip_is_repeat_padded():
    records = _records(1)
    dataset = ClipDataset(records, MemorySource({records[0].path: np.ones(30, "float32")}), PRE)
    item = dataset[(0, 0)]
    assert item["audio"].shape == (100,) and item["error"] == ""
    assert torch.equal(item["audio"], torch.ones(100))


class UnusableSource(MemorySource):
    """Raises the decoder's error for the paths listed in ``bad``."""

    def __init__(self, clips: dict[str, np.ndarray], bad: set[str]) -> None:
        super().__init__(clips)
        self.bad = bad

    def __call__(self, path: str) -> np.ndarray:
        if path in self.bad:
            raise AudioDecodeError(path, "truncated file")
        return super().__call__(path)


def test_unusable_audio_is_flagged_and_bugs_raise():
    """Only unusable audio becomes a skipped clip; anything else is a bug and stops the run."""
    records = _records(3)
    clips = _source(records).clips
    del clips[records[2].path]  # missing from the cache: our bug, not the file's
    dataset = ClipDataset(records, UnusableSource(clips, {records[1].path}), PRE)
    assert dataset[(0, 0)]["error"] == ""
    item = dataset[(1, 0)]
    assert "truncated file" in item["error"] and torch.count_nonzero(item["audio"]) == 0
    with pytest.raises(KeyError):
        dataset[(2, 0)]


def test_validation_clips_are_windowed_as_scoring_windows_them():
    pre = PreprocessConfig(sample_rate=1000, window_seconds=0.1, normalization="peak")
    records = _records(3)
    clips = _source(records, length=250).clips  # 2.5 windows: three windows, the last aligned
    dataset = ValidationClips(records, UnusableSource(clips, {records[2].path}), pre)
    index, item = dataset[1]
    assert index == 1 and item.error is None and item.duration == pytest.approx(0.25)
    expected, starts = sliding_windows(clips[records[1].path], pre)
    windows, item_starts = item.windows[0]
    assert windows.shape == (3, 100)
    np.testing.assert_array_equal(windows, expected)
    np.testing.assert_array_equal(item_starts, starts)
    overlapping = ValidationClips(records, MemorySource(clips), pre, hop_seconds=0.05)
    assert overlapping[0][1].windows[0][0].shape == (4, 100)
    assert dataset[2][1].error == "truncated file"


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


def _batches(records, source, num_workers: int, augment=None):
    """Training windows ``(6, samples)`` and ``[(index, windows)]`` of the validation clips,
    of a DataModule over 6 training and 4 validation records."""
    data = ClipDataModule(
        records[:6],
        ValidationClips(records[6:], source, PRE),
        source,
        PRE,
        val_collate=collate_items,
        batch_size=4,
        num_workers=num_workers,
        seed=3,
        augment=augment,
    )
    train = torch.cat([b["audio"] for b in data.train_dataloader()])
    val = [(i, item.windows[0][0]) for batch in data.val_dataloader() for i, item in batch]
    return train, val


def test_datamodule_batches_do_not_depend_on_workers():
    records = _records(10)
    source = _source(records)
    serial, pooled = _batches(records, source, 0), _batches(records, source, 2)
    assert serial[0].shape == (6, 100) and torch.equal(serial[0], pooled[0])
    assert [i for i, _ in serial[1]] == [0, 1, 2, 3] == [i for i, _ in pooled[1]]
    for (_, a), (_, b) in zip(serial[1], pooled[1], strict=True):
        np.testing.assert_array_equal(a, b)


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
        for epoch in (0, 3):
            rng = np.random.default_rng([5, epoch, index])
            before, _ = make_window(source(records[index].path), pre, rng)
            assert np.array_equal(plain[(index, epoch)]["audio"].numpy(), before)
            assert np.array_equal(disabled[(index, epoch)]["audio"].numpy(), before)


def test_augmentation_changes_training_windows_and_is_seeded():
    records, source = _noisy_records()
    clean = ClipDataset(records, source, PRE, seed=5)
    noisy = ClipDataset(records, source, PRE, seed=5, augment=build_augmenter(NOISE))
    for index in range(len(records)):
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


def test_a_failing_augmentation_stops_and_says_which_stage():
    def broken(window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise OSError("no encoder")

    records, source = _noisy_records(2)
    dataset = ClipDataset(records, source, PRE, augment=broken)
    with pytest.raises(RuntimeError, match=r"augmentation failed \(OSError: no encoder\)"):
        dataset[(0, 0)]


def test_augmented_batches_do_not_depend_on_workers_and_validation_stays_clean():
    records, source = _noisy_records(10)
    augment = build_augmenter(NOISE)
    serial, parallel = _batches(records, source, 0, augment), _batches(records, source, 2, augment)
    clean = _batches(records, source, 0)
    assert torch.equal(serial[0], parallel[0])
    assert not torch.equal(serial[0], clean[0])
    for windows in (parallel[1], clean[1]):  # validation windows are never augmented
        for (i, a), (j, b) in zip(serial[1], windows, strict=True):
            assert i == j
            np.testing.assert_array_equal(a, b)
