"""Verdicts on files: FAKE or REAL, the probability of fake, and the threshold that decided.

With several models the verdict is the ensemble's (mean probability of fake at the mean of
their thresholds, see :mod:`deepfake_audio.scoring.engine`); with a fitted fusion
(:mod:`deepfake_audio.scoring.fusion`) it is the fusion's, since the user asked for it by name. Each
model's own score stays in the JSON, and the fused ones under ``fused``. The default
threshold is the one stored in each model (its validation EER threshold) and in the fusion;
``threshold`` overrides it for every model, the ensemble and the fusion.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepfake_audio.checkpoints import Detector
from deepfake_audio.data.layouts import iter_audio_files
from deepfake_audio.scoring.engine import (
    ENSEMBLE,
    FUSION,
    Aggregation,
    make_lineup,
    score_files,
)

if TYPE_CHECKING:
    from deepfake_audio.scoring.fusion import Fusion


@dataclass
class ModelVerdict:
    """One model's judgement of a file, with the windows behind it."""

    p_fake: float
    threshold: float
    windows: list[dict[str, float]]  # [{"start": s, "end": s, "p_fake": p}]

    @property
    def verdict(self) -> str:
        return "FAKE" if self.p_fake >= self.threshold else "REAL"


@dataclass
class Prediction:
    """The verdict on one file (``error`` set, and no verdict, when it could not be read)."""

    path: str
    error: str | None = None
    duration: float | None = None
    p_fake: float | None = None
    threshold: float | None = None
    model: str | None = None  # the model (or "ensemble", or "fusion") whose verdict this is
    models: dict[str, ModelVerdict] = field(default_factory=dict)
    fused: dict[str, ModelVerdict] = field(default_factory=dict)  # ensemble / fusion, no windows

    @property
    def verdict(self) -> str:
        if self.p_fake is None or self.threshold is None:
            return "ERROR"
        return "FAKE" if self.p_fake >= self.threshold else "REAL"

    def to_dict(self, windows: bool = True) -> dict:
        """JSON-ready; per-window scores (with times in seconds) when ``windows``."""
        out: dict = {"path": self.path, "verdict": self.verdict}
        if self.error is not None:
            out["error"] = self.error
            return out
        out |= {
            "p_fake": self.p_fake,
            "threshold": self.threshold,
            "model": self.model,
            "duration": self.duration,
            "models": {
                name: {
                    "verdict": v.verdict,
                    "p_fake": v.p_fake,
                    "threshold": v.threshold,
                    **({"windows": v.windows} if windows else {}),
                }
                for name, v in self.models.items()
            },
        }
        if self.fused:
            out["fused"] = {
                name: {"verdict": v.verdict, "p_fake": v.p_fake, "threshold": v.threshold}
                for name, v in self.fused.items()
            }
        return out


def expand_paths(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[str, str | None]]:
    """``(path, None)`` for each file given and each audio file under a folder, in order;
    ``(path, reason)`` for a path that does not exist (reported, not fatal).

    A file named explicitly is tried whatever its extension.
    """
    entries: list[tuple[str, str | None]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            entries += [(str(p), None) for p in iter_audio_files(path)]
        elif path.is_file():
            entries.append((str(path), None))
        else:
            entries.append((str(path), "no such file or folder"))
    return entries


def predict_files(
    detectors: Sequence[Detector],
    paths: Sequence[str | os.PathLike[str]],
    *,
    threshold: float | None = None,
    hop_seconds: float | None = None,
    method: Aggregation = "mean",
    batch_size: int = 64,
    workers: int = 1,
    progress: bool = False,
    fusion: Fusion | None = None,
) -> list[Prediction]:
    """A :class:`Prediction` per file (folders expanded), in order; bad files carry ``error``.

    ``fusion`` (fitted on exactly these detectors) gives the verdict instead of the ensemble.
    """
    lineup = make_lineup(detectors, threshold=threshold, fusion=fusion)
    names, thresholds = lineup.names, lineup.thresholds
    entries = expand_paths(paths)
    files = [path for path, problem in entries if problem is None]
    windows_seconds = {
        n: d.preprocess.window_seconds for n, d in zip(names, detectors, strict=True)
    }
    scored: list[Prediction] = []
    for result in score_files(
        detectors,
        files,
        names=names,
        hop_seconds=hop_seconds,
        method=method,
        batch_size=batch_size,
        workers=workers,
        progress=progress,
        description="predicting",
    ):
        if result.error is not None:
            scored.append(Prediction(path=result.path, error=result.error))
            continue
        duration = float(result.duration or 0.0)
        verdicts = {}
        for name, clip in result.clips.items():
            windows = [
                {
                    "start": round(float(start), 4),
                    "end": round(min(float(start) + windows_seconds[name], duration), 4),
                    "p_fake": float(score),
                }
                for start, score in zip(clip.window_starts, clip.window_scores, strict=True)
            ]
            verdicts[name] = ModelVerdict(clip.score, thresholds[name], windows)
        scores = lineup.with_fused({n: np.array([v.p_fake]) for n, v in verdicts.items()})
        fused = {
            model: ModelVerdict(float(scores[model][0]), thresholds[model], [])
            for model in lineup.models[len(names) :]
        }
        # The verdict: the fusion's when given, else the ensemble's, else the only model's.
        model = FUSION if FUSION in fused else ENSEMBLE if ENSEMBLE in fused else names[0]
        deciding = fused.get(model) or verdicts[model]
        scored.append(
            Prediction(
                path=result.path,
                duration=duration,
                p_fake=deciding.p_fake,
                threshold=deciding.threshold,
                model=model,
                models=verdicts,
                fused=fused,
            )
        )
    in_order = iter(scored)  # the input order, missing paths where they were named
    return [
        next(in_order) if problem is None else Prediction(path=path, error=problem)
        for path, problem in entries
    ]


def format_line(prediction: Prediction) -> str:
    """``FAKE  0.9731  (threshold 0.4120)  path`` (the reason instead for a bad file)."""
    if prediction.error is not None:
        return f"ERROR  {prediction.path}: {prediction.error}"
    return (
        f"{prediction.verdict}  {prediction.p_fake:.4f}  "
        f"(threshold {prediction.threshold:.4f})  {prediction.path}"
    )
