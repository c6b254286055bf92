"""Training curves from ``history.csv`` rows: ``accuracy.png`` and ``loss.png``."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt

from deepfake_audio.fileio import atomic_output


def _series(rows: Sequence[dict], key: str) -> list[float]:
    values = []
    for row in rows:
        value = row.get(key)
        values.append(math.nan if value in (None, "") else float(value))
    return values


def _plot(rows: Sequence[dict], keys: dict[str, str], ylabel: str, path: Path) -> Path:
    epochs = [int(row["epoch"]) for row in rows]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for key, label in keys.items():
        ax.plot(epochs, _series(rows, key), marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if epochs:
        ax.set_xticks(epochs if len(epochs) <= 20 else epochs[:: math.ceil(len(epochs) / 20)])
    ax.legend()
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")  # the temporary name has no .png suffix to infer from
    plt.close(fig)
    return path


def plot_history(rows: Sequence[dict], out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``accuracy.png`` (train and validation accuracy) and ``loss.png`` into ``out_dir``.

    ``rows`` are history rows (dicts with ``epoch``, ``train_accuracy``, ``val_accuracy``,
    ``train_loss``, ``val_loss``); both files are replaced atomically.
    """
    out = Path(out_dir)
    accuracy = _plot(
        rows,
        {"train_accuracy": "train", "val_accuracy": "validation"},
        "accuracy",
        out / "accuracy.png",
    )
    loss = _plot(
        rows,
        {"train_loss": "train", "val_loss": "validation"},
        "cross-entropy loss",
        out / "loss.png",
    )
    return accuracy, loss
