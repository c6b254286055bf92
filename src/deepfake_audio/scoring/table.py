"""The ScoreTable: every file × every model of one scoring run, per-window scores kept.

The scoring engine (:mod:`deepfake_audio.scoring.engine`) produces one table per command;
compare, evaluate, predict and fuse are report writers over it, so they cannot disagree on a
score. Torch-free, so reports can be read and written without loading a model library.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deepfake_audio.data.records import ClipRecord
from deepfake_audio.scoring.lineup import Lineup
from deepfake_audio.scoring.options import ScoringOptions


@dataclass
class ClipScore:
    """One model's judgement of one clip."""

    score: float  # probability of fake for the whole clip (its windows aggregated)
    window_scores: np.ndarray  # (num_windows,)
    window_starts: np.ndarray  # (num_windows,) seconds


@dataclass
class ScoredFile:
    """One input file: every detector's scores, or why it could not be scored."""

    record: ClipRecord
    error: str | None = None
    duration: float | None = None  # seconds
    sample_rate: int | None = None  # the file's own rate
    clips: dict[str, ClipScore] = field(default_factory=dict)  # detector name -> scores

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ScoreTable:
    """Scores of ``lineup``'s models for ``files`` (input order, unreadable ones included).

    Per model of the lineup (ensemble and fusion included), one value per *readable* file, in
    order: ``raw`` is the model's own probability of fake (what fusion fits on), ``llr`` its
    calibrated log-likelihood ratio, and ``p_fake`` the posterior at the stated prior, the
    probability every report shows and judges against ``thresholds``.
    """

    lineup: Lineup
    options: ScoringOptions
    files: list[ScoredFile]
    p_fake: dict[str, np.ndarray]
    window_seconds: dict[str, float] = field(default_factory=dict)  # detector -> window length
    raw: dict[str, np.ndarray] = field(default_factory=dict)
    llr: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def scored(self) -> list[ScoredFile]:
        return [f for f in self.files if f.ok]

    @property
    def records(self) -> list[ClipRecord]:
        """Records of the readable files, in the order of the ``p_fake`` arrays."""
        return [f.record for f in self.scored]

    @property
    def unreadable(self) -> list[tuple[str, str]]:
        return [(f.record.path, f.error) for f in self.files if f.error is not None]

    @property
    def models(self) -> list[str]:
        return self.lineup.models

    @property
    def thresholds(self) -> dict[str, float]:
        return self.lineup.thresholds

    def labels(self) -> np.ndarray:
        """Labels of the readable files (-1 where unknown), in ``p_fake`` order."""
        return np.asarray(
            [-1 if r.label is None else r.label for r in self.records], dtype=np.int64
        )

    def window_counts(self, name: str) -> list[int]:
        """Windows scored per readable file by detector ``name``."""
        return [len(f.clips[name].window_scores) for f in self.scored]
