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
  *silent*: it is flagged and left as it is, never divided by (almost) zero. Scoring leaves
  silent windows out (a file with nothing else gets no verdict); training keeps them.
* ``trim_silence`` (off by default; ``train --trim-silence``) removes leading and trailing
  silence before any window is cut, in training and scoring alike (:class:`SilenceTrimmer`).
  Why: datasets whose fakes and reals differ in their silent edges teach a model the edges
  (the shortcut audit flags it); trimmed, the edges are gone for the model to learn. Silence
  is judged as the audit judges it: 20 ms frames whose RMS is below -50 dBFS.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from deepfake_audio.audio import SILENCE_PEAK

Normalization = Literal["peak", "rms", "none"]

#: Silence as the shortcut audit and ``trim_silence`` judge it: a 20 ms frame whose RMS is
#: below -50 dBFS.
SILENCE_FRAME_SECONDS = 0.02
SILENCE_FRAME_DB = -50.0
#: ``trim_silence`` holds back at most this much of a silent run while it waits to see whether
#: sound follows: a longer run is interior (or a pathological tail) and passed on, so a
#: streamed file of any length is trimmed in bounded memory.
TRIM_HOLD_SECONDS = 30.0


@dataclass(frozen=True)
class PreprocessConfig:
    """How audio becomes model input. Stored in every checkpoint so scoring matches training."""

    sample_rate: int = 16000
    window_seconds: float = 2.0
    normalization: Normalization = "peak"
    trim_silence: bool = False

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
            trim_silence=bool(values.get("trim_silence", False)),  # absent before it existed
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


class SilenceTrimmer:
    """Drops a signal's leading and trailing silence, fed whole or in consecutive blocks.

    Frames of :data:`SILENCE_FRAME_SECONDS` whose RMS is below :data:`SILENCE_FRAME_DB` are
    silent. Sound is passed on as it comes; a run of silent frames is held back until it is
    known to be interior (sound follows: it is passed on) or an edge (dropped). A signal with
    no sound at all is passed on as it is: there is no edge to tell from content, and the
    scorer then judges it silent or not by its own rule. At most :data:`TRIM_HOLD_SECONDS` of
    a run is held; beyond that its oldest samples are dropped while no sound has been seen
    (leading silence) and passed on after (so at most that much trailing silence is left).
    """

    def __init__(self, sample_rate: int) -> None:
        self.frame = max(1, round(SILENCE_FRAME_SECONDS * sample_rate))
        self.hold = max(self.frame, round(TRIM_HOLD_SECONDS * sample_rate))
        self._threshold_squared = 10.0 ** (SILENCE_FRAME_DB / 10.0)
        self._held = np.zeros(0, dtype=np.float32)  # the current silent run
        self._carry = np.zeros(0, dtype=np.float32)  # an unfinished frame
        self._sound_seen = False
        #: Leading samples dropped: what to add to a position in the output to find it in
        #: the input (fixed once anything has been passed on).
        self.dropped = 0

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """The samples known to be kept once ``samples`` has arrived (maybe none)."""
        block = np.asarray(samples, dtype=np.float32)
        joined = np.concatenate([self._carry, block]) if self._carry.size else block
        whole = (joined.size // self.frame) * self.frame
        self._carry = joined[whole:].copy()
        frames = joined[:whole].reshape(-1, self.frame)
        if not len(frames):
            return np.zeros(0, dtype=np.float32)
        power = np.einsum("ij,ij->i", frames, frames) / self.frame
        loud = np.flatnonzero(power >= self._threshold_squared)
        if not loud.size:
            return self._hold(joined[:whole])
        last = (loud[-1] + 1) * self.frame
        if self._sound_seen:  # the held run was interior: it goes on with the sound
            out = np.concatenate([self._held, joined[:last]])
        else:  # the held run and this block's silent start were leading silence
            self.dropped += self._held.size + int(loud[0]) * self.frame
            out = joined[loud[0] * self.frame : last]
        self._sound_seen = True
        self._held = joined[last:whole].copy()
        return out.astype(np.float32, copy=False)

    def finish(self) -> np.ndarray:
        """What is left at the end: after sound, only an unfinished last frame that is not
        silent (with the run before it); with no sound at all, the held run and that frame."""
        rest = self._carry
        if not self._sound_seen:
            return np.concatenate([self._held, rest]).astype(np.float32, copy=False)
        if rest.size and float(np.dot(rest, rest)) / rest.size >= self._threshold_squared:
            return np.concatenate([self._held, rest]).astype(np.float32, copy=False)
        return np.zeros(0, dtype=np.float32)

    def _hold(self, silent: np.ndarray) -> np.ndarray:
        held = np.concatenate([self._held, silent]) if self._held.size else silent
        spill = max(0, held.size - self.hold)
        self._held = held[spill:].copy()
        if self._sound_seen:
            return held[:spill].astype(np.float32, copy=False)
        self.dropped += spill
        return np.zeros(0, dtype=np.float32)


def trim_silence(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """``samples`` without leading and trailing silence (see :class:`SilenceTrimmer`)."""
    trimmer = SilenceTrimmer(sample_rate)
    kept = trimmer.feed(samples)
    rest = trimmer.finish()
    return np.concatenate([kept, rest]) if rest.size else kept


class WindowCutter:
    """Cuts a signal that arrives in blocks into the windows :func:`sliding_windows` would cut
    from the whole: windows every hop, the last one aligned to the end, a clip shorter than a
    window repeat-padded. Only the samples a window still needs are kept (at most a window
    and a hop), so a long file is windowed in memory that does not grow with it.

    With ``drop_silent``, silent windows (peak below
    :data:`~deepfake_audio.audio.SILENCE_PEAK`) are left out: there is nothing in them for a
    detector to judge, and what a model says of silence is not evidence either way.
    """

    def __init__(
        self, config: PreprocessConfig, hop_seconds: float | None = None, drop_silent: bool = False
    ) -> None:
        self.config = config
        self.drop_silent = drop_silent
        self.length = config.window_samples
        self.hop = (
            self.length if hop_seconds is None else max(1, round(hop_seconds * config.sample_rate))
        )
        self._pending = np.zeros(0, dtype=np.float32)
        self._offset = 0  # position in the signal of _pending[0]
        self._next = 0  # position of the next window to cut
        self._last: int | None = None  # position of the last window cut

    def feed(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The windows ``samples`` completes: ``(windows, start_seconds)``, maybe none."""
        self._pending = np.concatenate([self._pending, samples]) if self._pending.size else samples
        end = self._offset + len(self._pending)
        starts = list(range(self._next, end - self.length + 1, self.hop))
        windows = self._cut(starts)
        if starts:
            self._next, self._last = starts[-1] + self.hop, starts[-1]
        keep = max(self._offset, min(self._next, end - self.length))  # the end window's start
        self._pending = self._pending[keep - self._offset :]
        self._offset = keep
        return windows

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """The windows left once the signal has ended: the end-aligned one, or the one
        repeat-padded window of a clip shorter than a window."""
        end = self._offset + len(self._pending)
        if self._last is None:
            if end == 0:
                raise ValueError("cannot window an empty clip")
            return self._cut([0])
        if self._last + self.length < end:
            return self._cut([end - self.length])
        return self._cut([])

    def _cut(self, starts: list[int]) -> tuple[np.ndarray, np.ndarray]:
        mode = self.config.normalization
        windows, kept = [], []
        for start in starts:
            window = crop_window(self._pending, self.length, start - self._offset)
            window, silent = normalize(window, mode)
            if not (silent and self.drop_silent):
                windows.append(window)
                kept.append(start)
        stacked = np.stack(windows) if windows else np.zeros((0, self.length), np.float32)
        return stacked, np.asarray(kept, dtype=np.float64) / self.config.sample_rate


def sliding_windows(
    samples: np.ndarray, config: PreprocessConfig, hop_seconds: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cover a whole clip with windows; returns ``(windows, start_seconds)``.

    ``windows`` is ``(num_windows, window_samples)`` float32, each normalized. The hop defaults
    to the window length; the last window is aligned to the clip's end so no audio is left out,
    and a clip shorter than one window gives one repeat-padded window. (Scoring cuts its
    windows with :class:`WindowCutter` directly, leaving silent ones out.)
    """
    cutter = WindowCutter(config, hop_seconds)
    parts = [cutter.feed(samples), cutter.finish()]
    return np.concatenate([w for w, _ in parts]), np.concatenate([s for _, s in parts])
