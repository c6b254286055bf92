"""Scores from models: the one inference path behind validation, compare, evaluate and predict.

A score is the probability that a window (or a file) is fake. Files are cut into the model's
own windows (:func:`deepfake_audio.preprocess.sliding_windows`), windows are scored in
batches, and the file score aggregates its windows (mean by default, max as an option).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from deepfake_audio.data.records import FAKE
from deepfake_audio.preprocess import PreprocessConfig, sliding_windows

Aggregation = Literal["mean", "max"]


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
