"""Detection metrics, computed one way for the whole project.

Conventions: the *positive class is fake* (what a detector is looking for); ``scores`` are
the probability of fake, and a clip is called fake when ``score >= threshold``. Labels use
the project's encoding (fake = 0, real = 1).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from deepfake_audio.data.records import FAKE, REAL


def _is_fake(labels: np.ndarray) -> np.ndarray:
    return (np.asarray(labels) == FAKE).astype(np.int64)


def predict(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Labels (fake = 0, real = 1) from fake-probabilities at ``threshold``."""
    return np.where(np.asarray(scores) >= threshold, FAKE, REAL)


def accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    labels = np.asarray(labels)
    return float(np.mean(labels == np.asarray(predictions))) if labels.size else math.nan


def balanced_accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Mean of the per-class recalls (fake and real weigh the same whatever their counts)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    recalls = [np.mean(predictions[labels == c] == c) for c in (FAKE, REAL) if np.any(labels == c)]
    return float(np.mean(recalls)) if recalls else math.nan


def confusion(labels: np.ndarray, predictions: np.ndarray) -> dict[str, int]:
    """Counts with fake as positive: true/false positives and negatives."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    return {
        "true_fake": int(np.sum((labels == FAKE) & (predictions == FAKE))),
        "fake_called_real": int(np.sum((labels == FAKE) & (predictions == REAL))),
        "real_called_fake": int(np.sum((labels == REAL) & (predictions == FAKE))),
        "true_real": int(np.sum((labels == REAL) & (predictions == REAL))),
    }


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """``(eer, threshold)``: the rate where false alarms equal misses, and the score there.

    False alarm: real called fake; miss: fake called real. Computed on the ROC curve; between
    two ROC points the EER is the mean of the two rates at the closest point (the usual
    convention of ASVspoof tooling). ``(nan, 0.5)`` when only one class is present.
    """
    positives = _is_fake(labels)
    if positives.min(initial=1) == positives.max(initial=0):
        return math.nan, 0.5
    # Every threshold, not sklearn's default reduced curve: dropping "intermediate" points
    # can drop the one where misses and false alarms meet, and store a threshold a step or
    # two away from the equal-error point.
    fpr, tpr, thresholds = roc_curve(
        positives, np.asarray(scores, dtype=np.float64), drop_intermediate=False
    )
    fnr = 1.0 - tpr
    index = int(np.nanargmin(np.abs(fnr - fpr)))
    eer = float((fpr[index] + fnr[index]) / 2.0)
    threshold = float(min(thresholds[index], 1.0))  # sklearn puts +inf in front
    return eer, threshold


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve with fake as positive; nan with one class."""
    positives = _is_fake(labels)
    if positives.min(initial=1) == positives.max(initial=0):
        return math.nan
    return float(roc_auc_score(positives, np.asarray(scores, dtype=np.float64)))


def summarize(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict:
    """Every metric at once, for reports: accuracy at ``threshold``, EER and its threshold, AUC."""
    predictions = predict(scores, threshold)
    eer, eer_threshold = equal_error_rate(labels, scores)
    return {
        "count": int(np.asarray(labels).size),
        "accuracy": accuracy(labels, predictions),
        "balanced_accuracy": balanced_accuracy(labels, predictions),
        "eer": eer,
        "eer_threshold": eer_threshold,
        "roc_auc": roc_auc(labels, scores),
        "threshold": threshold,
        "confusion": confusion(labels, predictions),
    }
