"""The neural vocoder's pictures: its loss curves, and real against resynthesised spectrograms."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from deepfake_audio.fileio import atomic_output


def plot_losses(rows: Sequence[dict[str, float]], path: Path) -> Path:
    """Log-mel L1 and multi-resolution STFT loss against the training step (log scale)."""
    steps = [row["step"] for row in rows]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(steps, [row["mel_l1"] for row in rows], label="log-mel L1")
    ax.plot(steps, [row["stft"] for row in rows], label="multi-resolution STFT")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (training batches)")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend()
    ax.set_title("neural vocoder training")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def plot_spectrograms(
    rows: Sequence[tuple[str, np.ndarray, np.ndarray]], seconds_per_frame: float, path: Path
) -> Path:
    """One row per clip: ``(name, real log-mel, resynthesis log-mel)``, each ``(mels, frames)``,
    side by side on one colour scale."""
    fig, axes = plt.subplots(len(rows), 2, figsize=(10, 2.4 * len(rows)), dpi=100, squeeze=False)
    for row, (name, real, made) in enumerate(rows):
        low = float(np.percentile(real, 5))
        high = float(real.max())
        for column, (title, mel) in enumerate((("real", real), ("neural vocoder", made))):
            ax = axes[row, column]
            extent = (0.0, mel.shape[-1] * seconds_per_frame, 0, mel.shape[0])
            ax.imshow(mel, origin="lower", aspect="auto", extent=extent, vmin=low, vmax=high)
            ax.set_title(f"{name}: {title}", fontsize=9)
            ax.set_xlabel("seconds")
            ax.set_ylabel("mel bin")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
