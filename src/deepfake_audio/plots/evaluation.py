"""Evaluation figures: ROC and DET curves (one line per model) and score histograms.

Fake is the positive class everywhere (as in :mod:`deepfake_audio.metrics`): the ROC plots
fakes caught against real clips called fake; the DET plots misses against false alarms on
normal-deviate axes, where detectors' curves are close to straight lines and easy to compare.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import det_curve, roc_curve

from deepfake_audio import metrics
from deepfake_audio.data.records import FAKE, REAL
from deepfake_audio.fileio import atomic_output

#: model name -> (labels (n,), probability of fake (n,))
Curves = Mapping[str, tuple[np.ndarray, np.ndarray]]


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return Path(path)


def _two_classes(labels: np.ndarray) -> bool:
    return bool(np.any(labels == FAKE) and np.any(labels == REAL))


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def plot_roc(curves: Curves, path: str | os.PathLike[str]) -> Path:
    """ROC curve of each model (fake = positive), with its AUC and EER in the legend."""
    figure = Figure(figsize=(6, 5.5))
    ax = figure.add_subplot()
    drawn = False
    for name, (labels, scores) in curves.items():
        labels = np.asarray(labels)
        if not _two_classes(labels):
            continue
        fpr, tpr, _ = roc_curve(labels == FAKE, scores)
        auc = metrics.roc_auc(labels, scores)
        eer, _ = metrics.equal_error_rate(labels, scores)
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f}, EER {100 * eer:.1f}%)")
        drawn = True
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false alarm rate (real called fake)")
    ax.set_ylabel("detection rate (fake called fake)")
    ax.set_title("ROC")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    if drawn:
        ax.legend(loc="lower right", fontsize="small")
    else:
        _no_data(ax, "needs both fake and real clips")
    return _save(figure, path)


def plot_det(curves: Curves, path: str | os.PathLike[str]) -> Path:
    """DET curve of each model: miss rate against false-alarm rate on normal-deviate axes."""
    from scipy.stats import norm  # scipy comes with scikit-learn

    ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99])
    figure = Figure(figsize=(6, 5.5))
    ax = figure.add_subplot()
    drawn = False
    clip = 1e-4  # rates of exactly 0 or 1 are infinitely far on this scale
    for name, (labels, scores) in curves.items():
        labels = np.asarray(labels)
        if not _two_classes(labels):
            continue
        fpr, fnr, _ = det_curve(labels == FAKE, scores)
        eer, _ = metrics.equal_error_rate(labels, scores)
        ax.plot(
            norm.ppf(np.clip(fpr, clip, 1 - clip)),
            norm.ppf(np.clip(fnr, clip, 1 - clip)),
            label=f"{name} (EER {100 * eer:.1f}%)",
        )
        drawn = True
    labels_text = [f"{100 * t:g}%" for t in ticks]
    ax.set_xticks(norm.ppf(ticks), labels_text)
    ax.set_yticks(norm.ppf(ticks), labels_text)
    limit = norm.ppf([clip, 1 - clip])
    ax.set_xlim(*limit)
    ax.set_ylim(*limit)
    ax.plot(limit, limit, color="grey", linestyle=":", linewidth=1)  # EER line
    ax.set_xlabel("false alarm rate (real called fake)")
    ax.set_ylabel("miss rate (fake called real)")
    ax.set_title("DET")
    if drawn:
        ax.legend(loc="upper right", fontsize="small")
    else:
        _no_data(ax, "needs both fake and real clips")
    return _save(figure, path)


def plot_histograms(
    curves: Curves, thresholds: Mapping[str, float], path: str | os.PathLike[str]
) -> Path:
    """Histogram of the probability of fake for fake and real clips, one panel per model.

    The dashed line is the threshold in use: fakes left of it are misses, reals right of it
    false alarms.
    """
    count = max(1, len(curves))
    columns = min(3, count)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(4.5 * columns, 3.2 * rows))
    bins = np.linspace(0.0, 1.0, 41)
    for index, (name, (labels, scores)) in enumerate(curves.items()):
        ax = figure.add_subplot(rows, columns, index + 1)
        labels, scores = np.asarray(labels), np.asarray(scores)
        for value, text, color in ((REAL, "real", "tab:blue"), (FAKE, "fake", "tab:red")):
            chosen = scores[labels == value]
            if chosen.size:
                ax.hist(chosen, bins=bins, alpha=0.6, color=color, label=f"{text} ({chosen.size})")
        if name in thresholds:
            ax.axvline(thresholds[name], color="black", linestyle="--", linewidth=1)
        ax.set_title(name, fontsize="small")
        ax.set_xlabel("probability of fake")
        ax.set_ylabel("clips")
        ax.legend(fontsize="x-small")
    figure.tight_layout()
    return _save(figure, path)
