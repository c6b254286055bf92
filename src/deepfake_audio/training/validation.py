"""Validation as the scoring engine does it: every window of every clip, aggregated.

Validation is one more caller of :func:`deepfake_audio.scoring.engine.score_prepared`: each
validation clip (its cached audio, already at the model rate) is cut into the same sliding
windows that ``predict`` cuts, scored by the same batching loop and aggregated by the same
rule. So the EER threshold a checkpoint stores is the equal-error point of the scores users
get, for clips of any length, and the rule (aggregation and hop) is stored beside it.

The clip's loss is the cross-entropy of its aggregated probability, ``-log p(true class)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset

from deepfake_audio.audio import AudioDecodeError
from deepfake_audio.data.loading import AudioSource
from deepfake_audio.data.records import FAKE, ClipRecord
from deepfake_audio.preprocess import PreprocessConfig
from deepfake_audio.scoring.windows import PreparedFile, prepare_audio, prepared

#: Probabilities are clipped to [EPSILON, 1] before the log of the validation loss.
EPSILON = 1e-7

#: A validation item: the clip's index among the validation records, and its windows.
ValidationItem = tuple[int, PreparedFile]


class ValidationClips(Dataset):
    """Every validation clip, windowed as scoring windows it (in the loader's workers).

    A clip whose audio cannot be used comes back with ``error`` set and is left out of the
    metrics (and listed); any other exception is a bug and propagates.
    """

    def __init__(
        self,
        records: Sequence[ClipRecord],
        audio_source: AudioSource,
        preprocess: PreprocessConfig,
        hop_seconds: float | None = None,
    ) -> None:
        self.records = list(records)
        self.audio_source = audio_source
        self.preprocess = preprocess
        self.hop_seconds = hop_seconds

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> ValidationItem:
        path = self.records[index].path
        rate = self.preprocess.sample_rate
        try:
            samples = np.asarray(self.audio_source(path), dtype=np.float32)
        except AudioDecodeError as exc:
            return index, PreparedFile(path=path, error=exc.reason)
        windows = prepare_audio(samples, rate, [self.preprocess], self.hop_seconds)
        return index, prepared(path, windows, samples.shape[-1] / rate, rate)


def collate_items(items: list[ValidationItem]) -> list[ValidationItem]:
    """Keep a batch as a list: clips have different numbers of windows."""
    return items


def clip_loss(p_fake: float, label: int) -> float:
    """Cross-entropy of a clip's aggregated probability of fake against its label."""
    p_true = p_fake if label == FAKE else 1.0 - p_fake
    return -math.log(max(p_true, EPSILON))
