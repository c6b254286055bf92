"""RawBoost: data boosting on the raw waveform with random channel and noise effects.

Tak, Kamble, Patino, Todisco and Evans, "RawBoost: A Raw Data Boosting and Augmentation
Method applied to Automatic Speaker Verification Anti-Spoofing", ICASSP 2022
(arXiv:2111.04433).

Why: a detector trained on clean studio audio learns the studio. RawBoost perturbs the
waveform with the kinds of nuisance a telephone or a compressed stream adds, without any
external noise or impulse-response data, so the model has to find artefacts that survive
them. Its three algorithms:

1. **LnL** (linear and non-linear convolutive noise): ``y = sum_j g_j (b_j * x^j)`` for
   ``j = 1..N_f``: the signal and its powers (a polynomial non-linearity, as from an
   amplifier) each filtered by a random multi-band FIR filter ``b_j`` (a cascade of
   ``N_b`` notch filters with random centres, bandwidths and lengths, normalised to unit
   peak gain) and weighted by a random gain; higher orders are attenuated by a further
   5-20 dB. The result is rescaled to the input's peak (the paper normalises to peak 1;
   keeping the level lets the pipeline's own normalisation decide).
2. **ISD** (impulsive signal-dependent noise): up to ``P`` % of the samples, at random
   positions, are multiplied by ``1 + g_sd u`` with ``u ~ U(-1, 1)``: clicks and
   quantisation bursts whose size follows the signal.
3. **SSI** (stationary signal-independent noise): white noise coloured by a random
   multi-band filter, added at a random SNR in ``[snr_min, snr_max]`` dB.

Combinations, as evaluated in the paper: ``+`` applies in series (``lnl+isd``,
``lnl+isd+ssi``, ...), ``|`` in parallel (``lnl|isd``: each applied to the input, summed,
and rescaled to the input's peak). Defaults are the paper's: N_f = 5, N_b = 5, centres
20-8000 Hz, bandwidths 100-1000 Hz, 10-100 coefficients, gains 0 dB, non-linear bias
5-20 dB, P = 10 %, g_sd = 2, SNR 10-40 dB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

ALGORITHMS = ("lnl", "isd", "ssi")


@dataclass(frozen=True)
class RawBoostConfig:
    enabled: bool = False
    p: float = 1.0  # probability of applying RawBoost to a window
    algorithm: str = "lnl+isd"  # "+" in series, "|" in parallel, of lnl / isd / ssi
    # multi-band filter design (LnL and SSI)
    n_bands: int = 5
    min_freq: float = 20.0
    max_freq: float = 8000.0
    min_bandwidth: float = 100.0
    max_bandwidth: float = 1000.0
    min_coeffs: int = 10
    max_coeffs: int = 100
    min_gain_db: float = 0.0
    max_gain_db: float = 0.0
    # LnL: polynomial order N_f and the extra attenuation of the non-linear terms
    n_orders: int = 5
    min_bias_db: float = 5.0
    max_bias_db: float = 20.0
    # ISD
    isd_max_percent: float = 10.0
    isd_gain: float = 2.0
    # SSI
    ssi_min_snr_db: float = 10.0
    ssi_max_snr_db: float = 40.0

    def __post_init__(self) -> None:
        parse_algorithm(self.algorithm)
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"rawboost p must be in [0, 1], got {self.p}")
        if self.min_coeffs < 1 or self.max_coeffs < self.min_coeffs:
            raise ValueError("rawboost needs 1 <= min_coeffs <= max_coeffs")


def parse_algorithm(spec: str) -> list[list[str]]:
    """``"lnl+isd|ssi"`` -> ``[["lnl", "isd"], ["ssi"]]``: parallel branches of series chains."""
    branches = [[step.strip() for step in branch.split("+")] for branch in spec.split("|")]
    for chain in branches:
        for step in chain:
            if step not in ALGORITHMS:
                raise ValueError(
                    f"unknown RawBoost algorithm {step!r} in {spec!r}; use {', '.join(ALGORITHMS)}"
                    " joined by + (series) or | (parallel)"
                )
    return branches


def multiband_filter(
    config: RawBoostConfig,
    sample_rate: int,
    gain_range: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """A random multi-band FIR filter and its stop bands ``[(low, high), ...]`` in Hz.

    A cascade (convolution) of ``n_bands`` linear-phase notch filters of a random odd length
    in ``[min_coeffs, max_coeffs]``, normalised to unit peak magnitude response, then scaled
    by a gain drawn from ``gain_range`` dB.
    """
    nyquist = sample_rate / 2
    taps = int(rng.integers(config.min_coeffs, config.max_coeffs + 1)) | 1  # odd: band-stop
    coeffs = np.ones(1)
    bands = []
    for _ in range(config.n_bands):
        centre = rng.uniform(config.min_freq, min(config.max_freq, nyquist))
        width = rng.uniform(config.min_bandwidth, config.max_bandwidth)
        low = float(np.clip(centre - width / 2, 1.0, nyquist - 2.0))
        high = float(np.clip(centre + width / 2, low + 1.0, nyquist - 1.0))
        notch = signal.firwin(taps, [low, high], window="hamming", pass_zero=True, fs=sample_rate)
        coeffs = np.convolve(coeffs, notch)
        bands.append((low, high))
    _, response = signal.freqz(coeffs, 1, worN=1024)
    gain = 10.0 ** (rng.uniform(*gain_range) / 20.0)
    return gain * coeffs / np.max(np.abs(response)), bands


def _fir(coeffs: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Causal FIR filtering, ``lfilter(coeffs, 1, x)``, by overlap-add FFT convolution: the
    cascaded filters reach hundreds of taps, where this is several times faster."""
    return signal.oaconvolve(x, coeffs)[: x.size]


def _rescale_to(samples: np.ndarray, reference: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(samples))
    target = np.max(np.abs(reference))
    if peak == 0.0:
        return np.zeros_like(reference)
    return samples * (target / peak)


def lnl(
    samples: np.ndarray, config: RawBoostConfig, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Algorithm 1: linear and non-linear convolutive noise (rescaled to the input's peak)."""
    x = samples.astype(np.float64)
    out = np.zeros_like(x)
    gains = (config.min_gain_db, config.max_gain_db)
    for order in range(1, config.n_orders + 1):
        if order == 2:  # non-linear terms are weaker than the linear one by the bias
            gains = (
                config.min_gain_db - config.max_bias_db,
                config.max_gain_db - config.min_bias_db,
            )
        coeffs, _ = multiband_filter(config, sample_rate, gains, rng)
        out += _fir(coeffs, x**order)
    return _rescale_to(out, x)


def isd(samples: np.ndarray, config: RawBoostConfig, rng: np.random.Generator) -> np.ndarray:
    """Algorithm 2: impulsive signal-dependent noise on up to ``isd_max_percent`` % of samples."""
    y = samples.astype(np.float64, copy=True)
    count = int(y.size * rng.uniform(0.0, config.isd_max_percent) / 100.0)
    positions = rng.choice(y.size, size=count, replace=False)
    y[positions] *= 1.0 + config.isd_gain * rng.uniform(-1.0, 1.0, size=count)
    return y


def ssi(
    samples: np.ndarray, config: RawBoostConfig, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Algorithm 3: coloured stationary noise at an SNR drawn from the configured range."""
    x = samples.astype(np.float64)
    coeffs, _ = multiband_filter(config, sample_rate, (config.min_gain_db, config.max_gain_db), rng)
    noise = _fir(coeffs, rng.standard_normal(x.size))
    snr_db = rng.uniform(config.ssi_min_snr_db, config.ssi_max_snr_db)
    signal_power, noise_power = np.mean(x**2), np.mean(noise**2)
    if signal_power == 0.0 or noise_power == 0.0:
        return x
    return x + noise * np.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))


def rawboost(
    samples: np.ndarray, config: RawBoostConfig, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Apply ``config.algorithm`` to a mono window; returns float32 of the same shape."""
    steps = {
        "lnl": lambda x: lnl(x, config, sample_rate, rng),
        "isd": lambda x: isd(x, config, rng),
        "ssi": lambda x: ssi(x, config, sample_rate, rng),
    }
    branches = parse_algorithm(config.algorithm)
    outputs = []
    for chain in branches:
        y = samples.astype(np.float64)
        for step in chain:
            y = steps[step](y)
        outputs.append(y)
    if len(outputs) == 1:
        return outputs[0].astype(np.float32)
    return _rescale_to(np.sum(outputs, axis=0), samples).astype(np.float32)
