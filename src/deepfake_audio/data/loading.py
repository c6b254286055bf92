"""Batches for training: a torch Dataset over ClipRecords, samplers, and the DataModule.

Validation clips are scored as the scoring engine scores any file (every window,
aggregated): their dataset is :class:`deepfake_audio.training.validation.ValidationClips`,
handed to :class:`ClipDataModule` by the training loop.

Why the samplers are our own rather than Lightning's injected ``DistributedSampler``:

* The *absolute* epoch seeds both the training order and each clip's random window position
  (``(seed, epoch, index)``), so a resumed run (which Lightning counts from epoch 0 again)
  draws exactly what an uninterrupted run would, and a DataLoader worker never repeats
  another's windows: the epoch travels with every index the sampler yields, instead of living
  in a Dataset attribute that worker processes copy once.
* Validation shards are disjoint (rank ``r`` takes items ``r, r + world, ...``) with no padding
  duplicates, and every rank's scores are gathered before metrics are computed.
* ``--balance weighted`` draws by class weight the same way on every rank.

Augmentation (:mod:`deepfake_audio.augment`, off by default) runs here, in the loader workers,
on training items only: validation always sees clean windows. Its generator is a
separate stream of the same ``(seed, epoch, index)`` (a child ``SeedSequence``), so switching
augmentation on or off never moves the window positions, and a run stays reproducible with any
number of workers and across resume. Order: cut the window, augment it, *then* normalize it,
so a training window is normalized exactly as scoring normalizes windows (noise or RawBoost
can push a window past full scale; normalization brings it back into the range the model sees
at inference). The price: peak or RMS normalization undoes a pure gain change, so gain
augmentation only acts with ``normalization = "none"`` (training warns otherwise).

A clip whose audio cannot be used at training time (:class:`~deepfake_audio.audio.AudioDecodeError`)
does not stop the run: its item comes back with an ``error`` string and an all-zero window that
the training step leaves out, and the run lists it. Any other exception (a bug, a failing
augmentation) stops the run: training on silently dropped clips hides the fault.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from deepfake_audio.audio import AudioDecodeError
from deepfake_audio.data.balance import class_weights
from deepfake_audio.data.records import ClipRecord
from deepfake_audio.preprocess import (
    PreprocessConfig,
    crop_window,
    normalize,
    random_offset,
    trim_silence,
)

#: Reads one file as mono float32 at the preprocessing rate, e.g. ``ClipCache.audio``.
AudioSource = Callable[[str], np.ndarray]

#: ``augment(window, rng) -> window``, e.g. :func:`deepfake_audio.augment.build_augmenter`.
Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]

#: ``spawn_key`` of the augmentation stream, a child of ``SeedSequence([seed, epoch, index])``
#: whose root draws the window position.
AUGMENT_STREAM = 1


def augment_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The augmentation generator of training item ``index`` in ``epoch``.

    Independent of the window-position stream ``default_rng([seed, epoch, index])``, so turning
    augmentation on changes what is done to a window, never which window is taken.
    """
    return np.random.default_rng(
        np.random.SeedSequence([seed, epoch, index], spawn_key=(AUGMENT_STREAM,))
    )


class ClipDataset(Dataset):
    """Training windows of ``records``; one item per record and epoch.

    ``dataset[(index, epoch)]`` is a window at a random position drawn from
    ``(seed, epoch, index)``, passed through ``augment`` (when given) before normalization.
    """

    def __init__(
        self,
        records: Sequence[ClipRecord],
        audio_source: AudioSource,
        preprocess: PreprocessConfig,
        seed: int = 0,
        augment: Augment | None = None,
    ) -> None:
        self.records = list(records)
        self.audio_source = audio_source
        self.preprocess = preprocess
        self.seed = seed
        self.augment = augment

    def window(self, samples: np.ndarray, index: int, epoch: int) -> np.ndarray:
        """Trim silent edges (when the config says so), cut (at a seeded random position),
        augment, normalize: ``(samples,)``."""
        if self.preprocess.trim_silence:
            samples = trim_silence(samples, self.preprocess.sample_rate)
        length = self.preprocess.window_samples
        offset = random_offset(
            samples.shape[-1], length, np.random.default_rng([self.seed, epoch, index])
        )
        window = crop_window(samples, length, offset)
        if self.augment is not None:
            try:
                window = self.augment(window, augment_rng(self.seed, epoch, index))
            except Exception as exc:  # say which stage failed: the file itself may be fine
                raise RuntimeError(f"augmentation failed ({type(exc).__name__}: {exc})") from exc
        return normalize(window, self.preprocess.normalization)[0]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, epoch = key
        record = self.records[index]
        error = ""
        try:
            samples = np.asarray(self.audio_source(record.path))
        except AudioDecodeError as exc:  # unusable audio is skipped and listed; bugs raise
            error = exc.reason
            window = np.zeros(self.preprocess.window_samples, dtype=np.float32)
        else:
            window = self.window(samples, index, epoch)
        return {
            "audio": torch.from_numpy(np.array(window, dtype=np.float32)),  # (samples,)
            "label": record.label,
            "index": index,
            "error": error,
        }


class TrainSampler(Sampler[tuple[int, int]]):
    """This rank's share of a seeded shuffle (or class-weighted draw) of the training set.

    The order depends only on ``(seed, epoch_offset + epoch)``; the shuffled list is padded by
    wrapping around to a multiple of ``world_size`` so every rank takes the same number of
    steps (DDP needs that), then rank ``r`` takes every ``world_size``-th item from ``r``.
    """

    def __init__(
        self,
        num_items: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        weights: np.ndarray | None = None,
        epoch_offset: int = 0,
    ) -> None:
        if num_items <= 0:
            raise ValueError("cannot sample from an empty training set")
        self.num_items = num_items
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.epoch_offset = epoch_offset
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning with the epoch counted from the start of this ``fit``."""
        self.epoch = epoch

    @property
    def absolute_epoch(self) -> int:
        return self.epoch_offset + self.epoch

    def __len__(self) -> int:
        return math.ceil(self.num_items / self.world_size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.absolute_epoch
        rng = np.random.default_rng([self.seed, epoch])
        if self.weights is None:
            order = rng.permutation(self.num_items)
        else:
            p = self.weights / self.weights.sum()
            order = rng.choice(self.num_items, size=self.num_items, replace=True, p=p)
        total = len(self) * self.world_size
        order = np.resize(order, total)  # wraps around: pads with the first items
        for index in order[self.rank : total : self.world_size]:
            yield int(index), epoch


class ShardSampler(Sampler[int]):
    """Rank ``r`` of ``world_size`` takes items ``r, r + world_size, ...``: disjoint, unpadded."""

    def __init__(self, num_items: int, rank: int = 0, world_size: int = 1) -> None:
        self.num_items = num_items
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        return len(range(self.rank, self.num_items, self.world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.num_items, self.world_size))


def default_num_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ClipDataModule(L.LightningDataModule):
    """Training and validation DataLoaders over records, sharded by the trainer's rank.

    Use it with ``Trainer(use_distributed_sampler=False)``: the samplers here already split the
    data between ranks (see the module docstring). ``augment`` applies to the training set only;
    ``val_set`` (with ``val_collate`` for its batches) is sharded by rank, unpadded.
    """

    def __init__(
        self,
        train_records: Sequence[ClipRecord],
        val_set: Dataset,
        audio_source: AudioSource,
        preprocess: PreprocessConfig,
        *,
        val_collate: Callable[[list], object] | None = None,
        batch_size: int = 32,
        num_workers: int | None = None,
        seed: int = 0,
        weighted: bool = False,
        epoch_offset: int = 0,
        augment: Augment | None = None,
    ) -> None:
        super().__init__()
        self.train_set = ClipDataset(train_records, audio_source, preprocess, seed, augment)
        self.val_set = val_set  # one item per validation clip, e.g. ValidationClips
        self.val_collate = val_collate
        self.batch_size = batch_size
        self.num_workers = default_num_workers() if num_workers is None else num_workers
        self.seed = seed
        self.weights = class_weights(self.train_set.records) if weighted else None
        self.epoch_offset = epoch_offset

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _loader(
        self, dataset: Dataset, sampler: Sampler, collate: Callable[[list], object] | None = None
    ) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        sampler = TrainSampler(
            len(self.train_set),
            seed=self.seed,
            rank=rank,
            world_size=world,
            weights=self.weights,
            epoch_offset=self.epoch_offset,
        )
        return self._loader(self.train_set, sampler)

    def val_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        sampler = ShardSampler(len(self.val_set), rank, world)  # type: ignore[arg-type]
        return self._loader(self.val_set, sampler, self.val_collate)
