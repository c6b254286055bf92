"""Turn a decoded clip into fixed-length model windows, as the original design does.

Choices (also in the README):

* Window: ``window_seconds`` at ``sample_rate`` (2 s at 16 kHz by default, 32,000 samples).
* Clips shorter than a window are padded by *repeating* the audio, never with zeros: with
  zero padding a model can learn "short clip" (and the length of its silent tail) instead of
  "fake".
* Training takes the window at a random position each epoch; evaluation always takes the
  first window (``offset 0``, like the original ``librosa.load(duration=2)``). Long files are
  scored over all of their windows by :func:`sliding_windows`.
* Normalization is per window: ``peak`` scales the largest magnitude to 1 (the original's
  choice), ``rms`` scales to unit RMS (then clips to [-1, 1] are not enforced), ``none``
  leaves it. A window whose peak is below :data:`~deepfake_audio.audio.SILENCE_PEAK` is
  *silent*: it is flagged and left as it is, never divided by (almost) zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from deepfake_audio.audio import SILENCE_PEAK

Normalization = Literal["peak", "rms", "none"]


@dataclass(frozen=True)
class PreprocessConfig:
    """How audio becomes model input. Stored in every checkpoint so scoring matches training."""

    sample_rate: int = 16000
    window_seconds: float = 2.0
    normalization: Normalization = "peak"

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if self.window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, got {self.window_seconds}")
        if self.normalization not in ("peak", "rms", "none"):
            raise ValueError(
                f"normalization must be 'peak', 'rms' or 'none', got {self.normalization!r}"
            )

    @property
    def window_samples(self) -> int:
        return round(self.sample_rate * self.window_seconds)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> PreprocessConfig:
        return cls(
            sample_rate=int(values["sample_rate"]),
            window_seconds=float(values["window_seconds"]),
            normalization=values["normalization"],
        )


def repeat_pad(samples: np.ndarray, length: int) -> np.ndarray:
    """Tile a non-empty clip until it is ``length`` long (a longer clip is returned as is)."""
    if samples.shape[-1] >= length:
        return samples
    if samples.shape[-1] == 0:
        raise ValueError("cannot pad an empty clip")
    reps = -(-length // samples.shape[-1])  # ceil division
    return np.tile(samples, reps)[:length]


def crop_window(samples: np.ndarray, length: int, offset: int = 0) -> np.ndarray:
    """Take ``length`` samples from ``offset``; shorter clips are repeat-padded first."""
    padded = repeat_pad(samples, length)
    offset = max(0, min(offset, padded.shape[-1] - length))
    return padded[offset : offset + length]


def random_offset(num_samples: int, length: int, rng: np.random.Generator) -> int:
    """A uniformly random window start inside a clip (0 when the clip fits one window)."""
    spare = num_samples - length
    return int(rng.integers(0, spare + 1)) if spare > 0 else 0


def normalize(window: np.ndarray, mode: Normalization) -> tuple[np.ndarray, bool]:
    """Normalize one window; returns ``(window, is_silent)``. Silent windows stay unscaled."""
    peak = float(np.max(np.abs(window))) if window.size else 0.0
    silent = peak < SILENCE_PEAK
    if silent or mode == "none":
        return window.astype(np.float32, copy=False), silent
    if mode == "peak":
        return (window / peak).astype(np.float32), False
    rms = float(np.sqrt(np.mean(np.square(window, dtype=np.float64))))
    return (window / max(rms, SILENCE_PEAK)).astype(np.float32), False


def make_window(
    samples: np.ndarray,
    config: PreprocessConfig,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, bool]:
    """One model window from a clip: random position with ``rng`` (training), else the first."""
    length = config.window_samples
    offset = 0 if rng is None else random_offset(samples.shape[-1], length, rng)
    return normalize(crop_window(samples, length, offset), config.normalization)


def sliding_windows(
    samples: np.ndarray, config: PreprocessConfig, hop_seconds: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cover a whole clip with windows; returns ``(windows, start_seconds)``.

    ``windows`` is ``(num_windows, window_samples)`` float32, each normalized. The hop defaults
    to the window length; the last window is aligned to the clip's end so no audio is left out,
    and a clip shorter than one window gives one repeat-padded window.
    """
    length = config.window_samples
    hop = length if hop_seconds is None else max(1, round(hop_seconds * config.sample_rate))
    total = samples.shape[-1]
    if total <= length:
        starts = [0]
    else:
        starts = list(range(0, total - length + 1, hop))
        if starts[-1] + length < total:
            starts.append(total - length)
    windows = np.stack(
        [normalize(crop_window(samples, length, s), config.normalization)[0] for s in starts]
    )
    return windows, np.asarray(starts, dtype=np.float64) / config.sample_rate
