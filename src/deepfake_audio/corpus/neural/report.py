"""What a user looks at and listens to beside a trained vocoder: the loss curves, a few
held-out clips with their resyntheses, and the two spectrograms side by side."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from deepfake_audio.corpus.neural.model import Vocoder
from deepfake_audio.fileio import atomic_output

LOSS_PLOT = "losses.png"
SPECTROGRAMS = "spectrograms.png"
SAMPLES_DIR = "samples"


def write_report(
    folder: str | os.PathLike[str],
    vocoder: Vocoder,
    rows: Sequence[dict[str, float]],
    samples: Sequence[tuple[str, np.ndarray]],
) -> None:
    """``losses.png``; ``samples/<name>-real.wav`` and ``-neural.wav``; ``spectrograms.png``."""
    from deepfake_audio.plots.vocoder import plot_losses, plot_spectrograms

    folder = Path(folder)
    if rows:
        plot_losses(rows, folder / LOSS_PLOT)
    if not samples:
        return
    rate = vocoder.config.sample_rate
    mels = []
    for name, clip in samples:
        made = vocoder.resynthesize(clip)
        for kind, audio in (("real", clip), ("neural", made)):
            with atomic_output(folder / SAMPLES_DIR / f"{name}-{kind}.wav") as tmp:
                sf.write(tmp, np.clip(audio, -1, 1), rate, format="WAV", subtype="PCM_16")
        with torch.inference_mode():
            real_mel, made_mel = (
                vocoder.mel(torch.from_numpy(np.asarray(a, np.float32))[None])[0].numpy()
                for a in (clip, made)
            )
        mels.append((name, real_mel, made_mel))
    plot_spectrograms(mels, vocoder.config.hop / rate, folder / SPECTROGRAMS)
