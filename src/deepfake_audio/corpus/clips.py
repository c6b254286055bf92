"""Cutting recordings into clips and giving every clip the same level and edges.

Real and fake clips go through the same :func:`finish`, so silence at the edges and loudness
are not cues a detector could learn instead of the speech itself.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

MIN_SECONDS = 1.0
MAX_SECONDS = 6.0
_FRAME_SECONDS = 0.02
_SILENCE_DB = -40.0  # frames this far below the loudest frame count as silence
_PAD_SECONDS = 0.1
_TARGET_RMS_DB = -20.0
_PEAK_LIMIT = 0.97


def _frame_rms(samples: np.ndarray, frame: int) -> np.ndarray:
    """RMS of consecutive ``frame``-sample frames: shape (frames,)."""
    count = max(1, len(samples) // frame)
    frames = samples[: count * frame].reshape(count, -1) if len(samples) >= frame else samples[None]
    return np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))


def trim_silence(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Drop leading/trailing silence, keeping 100 ms around the speech."""
    frame = max(1, int(_FRAME_SECONDS * sample_rate))
    rms = _frame_rms(samples, frame)
    if not len(rms) or rms.max() <= 0:
        return samples[:0]
    loud = np.flatnonzero(rms > rms.max() * 10 ** (_SILENCE_DB / 20))
    pad = int(_PAD_SECONDS * sample_rate)
    start = max(0, loud[0] * frame - pad)
    end = min(len(samples), (loud[-1] + 1) * frame + pad)
    return samples[start:end]


def normalize(samples: np.ndarray) -> np.ndarray:
    """Scale to -20 dBFS RMS, then down again if the peak would pass 0.97."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
    if rms <= 0:
        return samples.astype(np.float32)
    gain = 10 ** (_TARGET_RMS_DB / 20) / rms
    peak = float(np.abs(samples).max()) * gain
    if peak > _PEAK_LIMIT:
        gain *= _PEAK_LIMIT / peak
    return (samples * gain).astype(np.float32)


def finish(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """What every clip, real or fake, goes through before it is written."""
    return normalize(trim_silence(np.asarray(samples, dtype=np.float32), sample_rate))


def cut_points(samples: np.ndarray, sample_rate: int) -> list[tuple[int, int]]:
    """Sample ranges of 1-6 s clips: a longer recording is cut in equal parts at quiet frames.

    Each cut moves to the quietest 20 ms frame within 0.5 s of the equal-parts position, so
    words are cut as rarely as possible. Parts shorter than 1 s are dropped.
    """
    total = len(samples)
    parts = max(1, math.ceil(total / (MAX_SECONDS * sample_rate)))
    frame = max(1, int(_FRAME_SECONDS * sample_rate))
    rms = _frame_rms(samples, frame)
    bounds = [0]
    for k in range(1, parts):
        ideal = k * total // parts // frame
        reach = int(0.5 / _FRAME_SECONDS)
        lo, hi = max(1, ideal - reach), min(len(rms) - 1, ideal + reach)
        best = lo + int(np.argmin(rms[lo : hi + 1])) if hi >= lo else ideal
        bounds.append(best * frame)
    bounds.append(total)
    return [(a, b) for a, b in itertools.pairwise(bounds) if b - a >= MIN_SECONDS * sample_rate]
