"""Scores from models: the one inference path behind validation, compare, evaluate and predict.

A score is the probability that a window (or a file) is fake. Files are cut into the model's
own windows (:func:`deepfake_audio.preprocess.sliding_windows`), windows are scored in
batches, and the file score aggregates its windows (mean by default, max as an option).

:func:`score_files` is the path for many files and many models: each file is decoded once
(in worker processes, :mod:`deepfake_audio.scoring.windows`), resampled once per distinct model
rate and windowed once per distinct preprocessing; windows of many files are then batched
together through each model in this process (torch uses every core for one batch, or the GPU).
Several models fuse into an *ensemble*: the mean of their probabilities of fake, judged at the
mean of their thresholds (so models that agree on a threshold keep it). A *fusion* fitted on
validation scores (:mod:`deepfake_audio.scoring.fusion`) weighs them instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import nn

from deepfake_audio.data.records import FAKE
from deepfake_audio.preprocess import PreprocessConfig, sliding_windows
from deepfake_audio.scoring.windows import PreparedFile, prepare_files

if TYPE_CHECKING:
    from deepfake_audio.checkpoints import Detector
    from deepfake_audio.scoring.fusion import Fusion

Aggregation = Literal["mean", "max"]
AGGREGATIONS = ("mean", "max")

#: Name of the fused model (mean probability of fake of all models) in every report.
ENSEMBLE = "ensemble"
#: Name of the logistic-regression fusion (:mod:`deepfake_audio.scoring.fusion`) in every report.
FUSION = "fusion"


def fake_probability(logits: torch.Tensor) -> torch.Tensor:
    """``(batch, 2)`` logits -> ``(batch,)`` probability of fake (softmax, index 0)."""
    return torch.softmax(logits.float(), dim=-1)[:, FAKE]


@torch.inference_mode()
def score_windows(model: nn.Module, windows: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Fake-probability of each row of ``windows`` ``(n, samples)``, in batches."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(windows), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(windows[start : start + batch_size]))
        out.append(fake_probability(model(batch.to(device))).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def aggregate(window_scores: np.ndarray, method: Aggregation = "mean") -> float:
    """One file score from its window scores."""
    if method == "mean":
        return float(np.mean(window_scores))
    if method == "max":
        return float(np.max(window_scores))
    raise ValueError(f"unknown aggregation {method!r}; use mean or max")


@dataclass
class ClipScore:
    score: float  # probability of fake for the whole clip
    window_scores: np.ndarray  # (num_windows,)
    window_starts: np.ndarray  # (num_windows,) seconds


def score_clip(
    model: nn.Module,
    samples: np.ndarray,
    preprocess: PreprocessConfig,
    *,
    hop_seconds: float | None = None,
    method: Aggregation = "mean",
    batch_size: int = 64,
) -> ClipScore:
    """Score all of a clip (mono float32 at ``preprocess.sample_rate``) over sliding windows."""
    windows, starts = sliding_windows(samples, preprocess, hop_seconds)
    scores = score_windows(model, windows, batch_size)
    return ClipScore(aggregate(scores, method), scores, starts)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> the GPU when torch sees one, else the CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no GPU")
    return torch.device(device)


def model_names(detectors: Sequence[Detector]) -> list[str]:
    """A distinct, readable name per model (its file stem; the folder too when stems clash).

    Names head CSV columns, so two ``fake_or_real_classifier`` files from two runs must not
    collide.
    """
    stems = [d.name for d in detectors]
    names = []
    for detector, stem in zip(detectors, stems, strict=True):
        name = stem
        if stems.count(stem) > 1 and detector.path is not None:
            name = f"{detector.path.parent.name}/{stem}"
        names.append(name)
    seen: dict[str, int] = {}
    unique = []
    for name in names:  # still equal (same folder name twice): number them
        seen[name] = seen.get(name, 0) + 1
        unique.append(
            name if seen[name] == 1 and names.count(name) == 1 else f"{name}#{seen[name]}"
        )
    for reserved in (ENSEMBLE, FUSION):  # those names head the fused models' columns
        if reserved in unique:
            unique[unique.index(reserved)] = f"{reserved}_model"
    return unique


def fuse(scores: Iterable[float]) -> float:
    """The ensemble's probability of fake: the mean of its members'."""
    values = list(scores)
    return float(np.mean(values)) if values else float("nan")


def ensemble_threshold(thresholds: Iterable[float]) -> float:
    """The ensemble's threshold: the mean of its members' (their common one when they agree)."""
    return fuse(thresholds)


@dataclass
class Lineup:
    """The models a command reports and the threshold of each.

    Each detector appears under its report name, then the ``ensemble`` (mean probability of
    fake, when there are several detectors) and the ``fusion`` (when a fitted fusion is
    given). compare, evaluate and predict all take their model list, thresholds and fused
    scores from here, so the three agree.
    """

    names: list[str]  # the detectors' report names, in the detectors' order
    models: list[str]  # names, then ENSEMBLE and FUSION where they apply
    thresholds: dict[str, float]  # model -> threshold (P(fake) >= threshold means fake)
    sources: dict[str, str]  # model -> the checkpoint or fusion file it came from
    fusion: Fusion | None = None
    members: list[int] = field(default_factory=list)  # fusion input order, as name indices

    def with_fused(self, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Add the ensemble's and the fusion's scores to the detectors' (arrays over files)."""
        out = dict(scores)
        stacked = np.column_stack([np.asarray(scores[n], dtype=np.float64) for n in self.names])
        if stacked.shape[0] == 0:  # no readable file: every fused model has no score either
            return {**out, **{m: np.zeros(0) for m in self.models[len(self.names) :]}}
        if ENSEMBLE in self.models:
            out[ENSEMBLE] = stacked.mean(axis=1)
        if self.fusion is not None:
            out[FUSION] = self.fusion.predict(stacked[:, self.members])
        return out


def make_lineup(
    detectors: Sequence[Detector],
    *,
    threshold: float | None = None,
    fusion: Fusion | None = None,
) -> Lineup:
    """The lineup of ``detectors``; ``threshold`` overrides every stored threshold.

    The ensemble is judged at the mean of its members' thresholds (their common one when they
    agree), the fusion at its own. ``fusion`` must have been fitted on exactly these detectors.
    """
    if not detectors:
        raise ValueError("no model given")
    names = model_names(detectors)
    thresholds = {n: d.threshold for n, d in zip(names, detectors, strict=True)}
    sources = {n: str(d.path or "") for n, d in zip(names, detectors, strict=True)}
    models = list(names)
    if len(names) > 1:
        models.append(ENSEMBLE)
        thresholds[ENSEMBLE] = ensemble_threshold(thresholds[n] for n in names)
    members: list[int] = []
    if fusion is not None:
        members = fusion.member_order(detectors)
        models.append(FUSION)
        thresholds[FUSION] = fusion.threshold
        sources[FUSION] = str(fusion.path or "")
    if threshold is not None:
        thresholds = dict.fromkeys(thresholds, threshold)
    return Lineup(names, models, thresholds, sources, fusion, members)


@dataclass
class FileScores:
    """Every model's score for one file, or why the file could not be scored."""

    path: str
    error: str | None = None
    duration: float | None = None  # seconds
    sample_rate: int | None = None  # the file's own rate
    clips: dict[str, ClipScore] = field(default_factory=dict)  # model name -> scores

    @property
    def ok(self) -> bool:
        return self.error is None

    def fused(self) -> float:
        """Ensemble probability of fake (mean over models)."""
        return fuse(c.score for c in self.clips.values())


def score_files(
    detectors: Sequence[Detector],
    paths: Sequence[str | Path],
    *,
    names: Sequence[str] | None = None,
    hop_seconds: float | None = None,
    method: Aggregation = "mean",
    batch_size: int = 64,
    workers: int = 1,
    progress: bool = False,
    description: str = "scoring",
) -> Iterator[FileScores]:
    """Score every file with every model, yielding results in the order of ``paths``.

    Each file is decoded once whatever the number of models (``workers`` > 1 decodes in that
    many processes while this one runs the models; 1 decodes here). Windows from consecutive
    files are pooled into batches of ``batch_size`` per model. Unreadable files are yielded
    with ``error`` set.
    """
    if method not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {method!r}; use mean or max")
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    names = list(names) if names is not None else model_names(detectors)
    configs: list[PreprocessConfig] = []
    config_of: list[int] = []  # detector index -> config index
    for detector in detectors:
        if detector.preprocess not in configs:
            configs.append(detector.preprocess)
        config_of.append(configs.index(detector.preprocess))
    for detector in detectors:
        detector.model.eval()

    def flush(buffer: list[PreparedFile]) -> list[FileScores]:
        good = [f for f in buffer if f.error is None]
        per_file: list[dict[str, ClipScore]] = [{} for _ in good]
        for detector, name, ci in zip(detectors, names, config_of, strict=True):
            if not good:
                break
            counts = [len(f.windows[ci][0]) for f in good]
            scores = score_windows(
                detector.model, np.concatenate([f.windows[ci][0] for f in good]), batch_size
            )
            offsets = np.cumsum([0, *counts])
            for k, f in enumerate(good):
                own = scores[offsets[k] : offsets[k + 1]]
                per_file[k][name] = ClipScore(aggregate(own, method), own, f.windows[ci][1])
        scored = iter(per_file)
        return [
            FileScores(f.path, f.error)
            if f.error
            else FileScores(f.path, None, f.duration, f.sample_rate, next(scored))
            for f in buffer
        ]

    prepared = prepare_files(paths, configs, hop_seconds=hop_seconds, workers=workers)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(paths), desc=description, unit="file")
    buffer: list[PreparedFile] = []
    pooled = 0
    try:
        for item in prepared:
            buffer.append(item)
            if item.error is None:
                pooled += len(item.windows[0][0]) if configs else 0
            if pooled >= batch_size or len(buffer) >= 4 * batch_size:
                yield from flush(buffer)
                if bar is not None:
                    bar.update(len(buffer))
                buffer, pooled = [], 0
        if buffer:
            yield from flush(buffer)
            if bar is not None:
                bar.update(len(buffer))
    finally:
        if bar is not None:
            bar.close()
