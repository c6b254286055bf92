"""Synthetic audio for tests: distinct, seeded signals written in any format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepfake_audio.audio import write_audio


def tone(
    seconds: float = 1.0,
    rate: int = 16000,
    freq: float = 440.0,
    *,
    seed: int = 0,
    amplitude: float = 0.3,
) -> np.ndarray:
    """A tone with a little seeded noise, so every (freq, seed) pair is distinct audio."""
    t = np.arange(round(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal(t.size) * 0.01
    return (amplitude * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def write_clip(path: Path, seconds: float = 1.0, rate: int = 16000, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subtype = kwargs.pop("subtype", None)
    return write_audio(path, tone(seconds, rate, **kwargs), rate, subtype=subtype)
