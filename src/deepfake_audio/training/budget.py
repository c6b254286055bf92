"""A wall-clock budget for a training run: stop in time, and still end with a validated model.

``budget_minutes`` (``train --budget-minutes``) is the time the whole run may take, data
preparation included. Stopping is checked after every training batch, not only between
epochs, because one epoch of a large model on a CPU can be longer than the whole budget
(AASIST-L: about 40 minutes an epoch of a few thousand 4 s clips). When what is left is no
more than what validation and writing the epoch will take, the epoch under way ends after
its current batch, is validated and written like any other (Lightning validates an epoch
that ``should_stop`` cuts short), and the final model is chosen as usual. An epoch is not
begun when what is left would train only a sliver of it.

What validation takes is measured once it has run; before that it is estimated from the
training batches timed so far (their median, the run's first batch left out: it carries the
warm-up): the validation windows (all windows of every clip, as scoring cuts them) at half the
cost of a training clip (a forward pass, no backward). The estimate waits for a second batch
unless the deadline itself has passed, and a run always trains at least one batch, so a
budget spent before training starts overruns by a batch, a validation and the writing of
an epoch.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Callable, Sequence

import lightning as L

from deepfake_audio.data.records import ClipRecord
from deepfake_audio.preprocess import PreprocessConfig

log = logging.getLogger(__name__)

#: A validation window costs about this share of a training clip (forward only; generous).
VALIDATION_COST = 0.5
#: Safety factor on the validation time, and seconds kept for writing the epoch's files.
VALIDATION_MARGIN = 1.25
WRITE_SECONDS = 2.0
#: Another epoch is begun only when the time left, after validation, trains this share of one.
MIN_EPOCH_SHARE = 0.25


def validation_windows(
    records: Sequence[ClipRecord], preprocess: PreprocessConfig, hop_seconds: float | None
) -> int:
    """How many windows validation scores: each clip's sliding windows (one when shorter than
    a window), from the durations the data preparation measured."""
    window = preprocess.window_seconds
    hop = hop_seconds or window
    total = 0
    for record in records:
        duration = record.duration or window
        total += 1 if duration <= window else 1 + math.ceil((duration - window) / hop)
    return total


class TimeBudget(L.Callback):
    """Ends training by ``deadline`` (a :func:`time.monotonic` time); see the module docstring.

    ``stopped`` says why and where it stopped (None when the run trained all its epochs);
    ``validation_seconds`` is the longest validation measured.
    """

    def __init__(
        self,
        deadline: float,
        *,
        validation_windows: int,
        batch_size: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deadline = deadline
        self.validation_windows = validation_windows
        self.batch_size = batch_size
        self.clock = clock
        self.stopped: str | None = None
        self.validation_seconds: float | None = None
        self._batch_seconds: list[float] = []
        self._last = 0.0  # end of the last batch (or the epoch's start)
        self._epoch_started = 0.0
        self._validation_started: float | None = None
        self._epoch_train_seconds: float | None = None

    def reserve(self) -> float:
        """Seconds to keep after the last batch: validating and writing the epoch."""
        if self.validation_seconds is not None:
            validation = self.validation_seconds
        elif self._batch_seconds:
            timed = self._batch_seconds[1:] or self._batch_seconds  # the first warms up
            per_clip = statistics.median(timed) / self.batch_size
            validation = self.validation_windows * per_clip * VALIDATION_COST
        else:
            validation = 0.0
        return VALIDATION_MARGIN * validation + WRITE_SECONDS

    def _stop(self, trainer: L.Trainer, stop: bool, why: str) -> None:
        stop = trainer.strategy.reduce_boolean_decision(stop, all=False)  # every rank agrees
        if stop and not trainer.should_stop:
            trainer.should_stop = True
            self.stopped = why
            log.info("time budget: %s", why)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_started = self._last = self.clock()
        self._validation_started = None

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: object,
        batch: object,
        batch_idx: int,
    ) -> None:
        now = self.clock()
        self._batch_seconds.append(now - self._last)  # data loading included
        self._last = now
        done, total = batch_idx + 1, trainer.num_training_batches
        if done >= total:  # the epoch ends anyway: on_train_epoch_end decides what follows
            return
        epoch = trainer.current_epoch + 1
        estimated = len(self._batch_seconds) > 1  # one warm-up batch tells little
        self._stop(
            trainer,
            now >= self.deadline or (estimated and now + self.reserve() >= self.deadline),
            f"spent; epoch {epoch} ends after {done} of {total} batches and is validated",
        )

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validation_started = self.clock()
        self._epoch_train_seconds = self._validation_started - self._epoch_started

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._validation_started is not None:
            took = self.clock() - self._validation_started
            self.validation_seconds = max(self.validation_seconds or 0.0, took)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        last = trainer.current_epoch + 1 >= (trainer.max_epochs or math.inf)
        if trainer.should_stop or last or self._epoch_train_seconds is None:
            return
        left = self.deadline - self.clock() - self.reserve()
        epoch = trainer.current_epoch + 1
        self._stop(
            trainer,
            left < MIN_EPOCH_SHARE * self._epoch_train_seconds,
            f"{max(left, 0.0):.0f} s left after epoch {epoch} would train less than "
            f"{MIN_EPOCH_SHARE:.0%} of another: stopping",
        )
