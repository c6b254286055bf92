"""Calibration figures: reliability diagram and applied-probability-of-error (APE) plot.

Discrimination (EER, min DCF) says whether fakes score above reals; calibration says whether
the numbers mean what they claim. The reliability diagram checks probabilities of fake
against observed shares of fakes; the APE plot (Brümmer & du Preez) checks llrs at every
operating point at once: the gap between a model's actual and minimum Bayes error is what
its miscalibration costs there. Fake is the positive class, as in :mod:`deepfake_audio.metrics`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from deepfake_audio import metrics
from deepfake_audio.data.records import FAKE, REAL
from deepfake_audio.fileio import atomic_output

#: model name -> (labels (n,), probability of fake or llr (n,))
Curves = Mapping[str, tuple[np.ndarray, np.ndarray]]

NEEDS_BOTH = "needs both fake and real clips"


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return Path(path)


def _usable(labels: np.ndarray, values: np.ndarray) -> bool:
    """Both classes present and as many values as labels: otherwise there is nothing to judge."""
    return (
        labels.shape == values.shape
        and bool(np.any(labels == FAKE))
        and bool(np.any(labels == REAL))
    )


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def _reliability_points(
    labels: np.ndarray, p_fake: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean predicted P(fake) and observed share of fakes in each non-empty equal-width bin."""
    p_fake = np.clip(p_fake, 0.0, 1.0)
    index = np.minimum((p_fake * bins).astype(np.int64), bins - 1)  # 1.0 goes in the last bin
    counts = np.bincount(index, minlength=bins)
    predicted = np.bincount(index, weights=p_fake, minlength=bins)
    observed = np.bincount(index, weights=(labels == FAKE).astype(np.float64), minlength=bins)
    filled = counts > 0
    return predicted[filled] / counts[filled], observed[filled] / counts[filled]


def plot_reliability(curves: Curves, path: str | os.PathLike[str], *, bins: int = 10) -> Path:
    """Reliability diagram: observed share of fakes against the predicted P(fake), per model.

    Points on the dashed diagonal are calibrated (of clips given P(fake) = 0.8, 80% are fake);
    below it the model is over-confident about fakes, above it under-confident. The lower
    panel counts the predictions per bin, since a point made of three clips says little.
    Models with one class or no clips are skipped.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, not {bins}")
    figure = Figure(figsize=(6, 6.5))
    grid = figure.add_gridspec(2, 1, height_ratios=(3, 1), hspace=0.08)
    ax = figure.add_subplot(grid[0])
    ax_hist = figure.add_subplot(grid[1], sharex=ax)
    edges = np.linspace(0.0, 1.0, bins + 1)
    drawn = False
    for name, (labels, p_fake) in curves.items():
        labels = np.asarray(labels)
        p_fake = np.asarray(p_fake, dtype=np.float64)
        if not _usable(labels, p_fake):
            continue
        predicted, observed = _reliability_points(labels, p_fake, bins)
        (line,) = ax.plot(predicted, observed, marker="o", markersize=4, label=name)
        ax_hist.hist(np.clip(p_fake, 0.0, 1.0), bins=edges, histtype="step", color=line.get_color())
        drawn = True
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_ylabel("observed share of fake clips in the bin")
    ax.set_title("Reliability (calibration)")
    ax.tick_params(labelbottom=False)
    ax_hist.set_xlabel("mean predicted probability of fake in the bin")
    ax_hist.set_ylabel("clips")
    if drawn:
        ax.legend(loc="upper left", fontsize="small")
    else:
        _no_data(ax, NEEDS_BOTH)
    return _save(figure, path)


def plot_ape(curves: Curves, path: str | os.PathLike[str]) -> Path:
    """Applied-probability-of-error plot of each model's llrs over prior log-odds -7 to 7.

    Solid: the normalized Bayes error of the model's own decisions (llr > -eta); dashed, same
    colour: the minimum any threshold could reach (PAV-calibrated llrs). Where the solid line
    leaves the dashed one, calibration is costing errors; above the line at 1 the model does
    worse than deciding by the prior alone. The dotted line marks the effective prior of the
    ASVspoof 5 operating point. Models with one class or no clips are skipped.
    """
    eta = np.linspace(-7.0, 7.0, 281)
    figure = Figure(figsize=(7, 5))
    ax = figure.add_subplot()
    drawn = False
    for name, (labels, llr) in curves.items():
        labels = np.asarray(labels)
        llr = np.asarray(llr, dtype=np.float64)
        if not _usable(labels, llr):
            continue
        actual, minimum = metrics.bayes_error_curve(labels, llr, eta)
        (line,) = ax.plot(eta, actual, label=f"{name} (actual)")
        ax.plot(eta, minimum, color=line.get_color(), linestyle="--", label=f"{name} (minimum)")
        drawn = True
    ax.axhline(1.0, color="grey", linewidth=1, label="default (decide by the prior)")
    operating_point = math.log(
        metrics.P_SPOOF * metrics.C_FA / ((1.0 - metrics.P_SPOOF) * metrics.C_MISS)
    )
    ax.axvline(
        operating_point,
        color="black",
        linestyle=":",
        linewidth=1,
        label="ASVspoof 5 (π=0.05, C_fa=10)",
    )
    ax.set_xlim(eta[0], eta[-1])
    ax.set_ylim(0, 1.2)
    ax.set_xlabel("prior log-odds of fake, log(π/(1-π))")
    ax.set_ylabel("normalized Bayes error")
    ax.set_title("Applied probability of error (APE)")
    # Outside the axes: the curves fill the whole plot, any corner would hide some.
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small")
    if not drawn:
        _no_data(ax, NEEDS_BOTH)
    return _save(figure, path)
