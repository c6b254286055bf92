"""Random gain and additive noise at a chosen signal-to-noise ratio.

Both are exact: the gain changes the RMS level by exactly the drawn number of dB, and the
noise is scaled with its own realised power so the window's SNR is exactly the drawn value
(not only in expectation), which is what a test, or a sweep over SNRs, needs.
"""

from __future__ import annotations

import numpy as np


def apply_gain(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """``samples`` scaled by ``gain_db`` decibels (no clipping: later normalisation decides)."""
    return (samples * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)


def coloured_noise(num_samples: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a flat (``white``), 1/f (``pink``) or 1/f^2 (``brown``) spectrum."""
    white = rng.standard_normal(num_samples)
    if colour == "white":
        return white
    exponent = {"pink": 0.5, "brown": 1.0}.get(colour)
    if exponent is None:
        raise ValueError(f"noise colour must be white, pink or brown, got {colour!r}")
    spectrum = np.fft.rfft(white)
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0  # leave DC at the level of the lowest bin instead of dividing by zero
    return np.fft.irfft(spectrum / freqs**exponent, num_samples)


def mix_at_snr(samples: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``samples + k * noise`` with ``k`` chosen so that the SNR is exactly ``snr_db``.

    A silent window (zero power) has no defined SNR and is returned unchanged.
    """
    signal_power = float(np.mean(np.square(samples, dtype=np.float64)))
    noise_power = float(np.mean(np.square(noise, dtype=np.float64)))
    if signal_power == 0.0 or noise_power == 0.0:
        return samples.astype(np.float32, copy=True)
    scale = np.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (samples + scale * noise).astype(np.float32)


def add_noise(
    samples: np.ndarray, snr_db: float, rng: np.random.Generator, colour: str = "white"
) -> np.ndarray:
    """Add ``colour`` noise to ``samples`` at exactly ``snr_db``."""
    return mix_at_snr(samples, coloured_noise(samples.size, colour, rng), snr_db)
