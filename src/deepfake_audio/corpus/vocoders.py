"""Vocoder resyntheses of real speech: WORLD analysis/synthesis and Griffin-Lim.

A resynthesis keeps the speaker, the words and the prosody of a real clip and changes only
how the waveform is made, so a detector cannot separate it from the real clip by voice or
content; it has to hear the vocoder. Both functions are deterministic for a given input
(Griffin-Lim takes its random starting phase from ``seed``).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.signal import istft, stft

with warnings.catch_warnings():
    # pyworld 0.3.5 reads its version through the deprecated pkg_resources.
    warnings.simplefilter("ignore", UserWarning)
    import pyworld as pw

#: STFT of Griffin-Lim: 32 ms windows, 8 ms hop at 16 kHz (scaled with the rate).
_GL_WINDOW_SECONDS = 0.032
_GL_HOP_FRACTION = 4


def world_resynthesis(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Analyse with WORLD (DIO + StoneMask F0, CheapTrick envelope, D4C aperiodicity), resynthesize.

    DIO is used instead of Harvest because it is ~20x faster and the demo corpus only needs
    the vocoder's sound, not the best F0 track. Returns float32 of about the input length.
    """
    x = np.ascontiguousarray(samples, dtype=np.float64)
    f0, times = pw.dio(x, sample_rate, frame_period=5.0)
    f0 = pw.stonemask(x, f0, times, sample_rate)
    envelope = pw.cheaptrick(x, f0, times, sample_rate)
    aperiodicity = pw.d4c(x, f0, times, sample_rate)
    y = pw.synthesize(f0, envelope, aperiodicity, sample_rate, frame_period=5.0)
    return np.asarray(y[: len(samples)], dtype=np.float32)


def griffin_lim(
    samples: np.ndarray, sample_rate: int, *, iterations: int = 32, seed: int = 0
) -> np.ndarray:
    """Keep only the STFT magnitude of ``samples`` and rebuild a phase by Griffin-Lim.

    Uses the "fast" (momentum 0.99) variant of Perraudin et al., which converges in far fewer
    iterations; the leftover phase incoherence is the artifact a detector should learn.
    """
    nperseg = round(_GL_WINDOW_SECONDS * sample_rate)
    noverlap = nperseg - nperseg // _GL_HOP_FRACTION
    kwargs = {"fs": sample_rate, "nperseg": nperseg, "noverlap": noverlap, "window": "hann"}
    x = np.asarray(samples, dtype=np.float64)
    _, _, spec = stft(x, **kwargs)  # (freqs, frames)
    magnitude = np.abs(spec)
    rng = np.random.default_rng(seed)
    angles = np.exp(2j * np.pi * rng.random(magnitude.shape))
    previous = np.zeros_like(spec)
    y = x
    for _ in range(iterations):
        _, y = istft(magnitude * angles, **kwargs)
        _, _, rebuilt = stft(y, **kwargs)
        rebuilt = rebuilt[:, : magnitude.shape[1]]
        accelerated = rebuilt - 0.99 * previous
        previous = rebuilt
        angles = accelerated / np.maximum(np.abs(accelerated), 1e-12)
    _, y = istft(magnitude * angles, **kwargs)
    out = np.zeros(len(samples), dtype=np.float32)
    n = min(len(out), len(y))
    out[:n] = y[:n]
    return out
