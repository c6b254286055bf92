"""Codec simulation: re-encode a window through MP3, AAC or Opus at a random bitrate.

Why: real-world fakes arrive as compressed files (social media, messengers, phone lines),
and lossy codecs remove exactly the high-frequency detail in which many vocoder artefacts
live. Training on re-encoded audio stops a detector from relying on detail that a codec
destroys, the augmentation used for the ASVspoof 2021 LA/DF conditions (Liu et al., "ASVspoof
2021: Towards Spoofed and Deepfake Speech Detection in the Wild", IEEE/ACM TASLP 2023).

Encoding and decoding go through FFmpeg (``av``) via :func:`deepfake_audio.audio.encode_ffmpeg`
and :func:`~deepfake_audio.audio.decode_bytes`. Codecs add delay (encoder priming, e.g.
1024 samples for AAC) and pad to whole frames, so the decoded signal is resampled back to the
window's rate, aligned to the input by cross-correlation, and cut or zero-padded to the
input's length: the output lines up with the input sample for sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepfake_audio import audio

SUFFIXES = {"mp3": ".mp3", "aac": ".m4a", "opus": ".opus"}


@dataclass(frozen=True)
class CodecConfig:
    enabled: bool = False
    p: float = 0.5  # probability of re-encoding a window
    codecs: tuple[str, ...] = ("mp3", "aac", "opus")
    mp3_bitrates: tuple[int, ...] = (24000, 32000, 48000, 64000, 96000, 128000)
    aac_bitrates: tuple[int, ...] = (24000, 32000, 48000, 64000, 96000)
    opus_bitrates: tuple[int, ...] = (12000, 16000, 24000, 32000, 48000, 64000)
    max_delay_ms: float = 150.0  # how far alignment searches for the codec's delay

    def __post_init__(self) -> None:
        unknown = set(self.codecs) - set(SUFFIXES)
        if unknown or not self.codecs:
            raise ValueError(f"codecs must be some of {sorted(SUFFIXES)}, got {self.codecs}")
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"codec p must be in [0, 1], got {self.p}")
        for codec in self.codecs:
            if not self.bitrates(codec):
                raise ValueError(f"no bitrates configured for {codec}")

    def bitrates(self, codec: str) -> tuple[int, ...]:
        return getattr(self, f"{codec}_bitrates")


def best_lag(reference: np.ndarray, delayed: np.ndarray, max_lag: int) -> int:
    """The shift ``d`` in ``[-max_lag, max_lag]`` maximising ``sum reference[n] delayed[n + d]``."""
    n = reference.size + delayed.size
    size = 1 << (n - 1).bit_length()
    spectrum = np.fft.rfft(delayed, size) * np.conj(np.fft.rfft(reference, size))
    corr = np.fft.irfft(spectrum, size)  # corr[d] for d >= 0; negative lags wrap around
    lags = np.arange(-max_lag, max_lag + 1)
    return int(lags[np.argmax(corr[lags % size])])


def align(reference: np.ndarray, decoded: np.ndarray, max_lag: int) -> np.ndarray:
    """``decoded`` shifted to line up with ``reference`` and cut or zero-padded to its length."""
    lag = best_lag(reference, decoded, max_lag)
    out = np.zeros(reference.size, dtype=np.float32)
    # out[n] = decoded[n + lag] where that index exists
    start = max(0, -lag)
    stop = min(reference.size, decoded.size - lag)
    if stop > start:
        out[start:stop] = decoded[start + lag : stop + lag]
    return out


def transcode(
    samples: np.ndarray, sample_rate: int, codec: str, bitrate: int, max_delay_ms: float = 150.0
) -> np.ndarray:
    """``samples`` after a round trip through ``codec`` at ``bitrate`` bit/s, aligned."""
    data = audio.encode_ffmpeg(samples.astype(np.float32), sample_rate, SUFFIXES[codec], bitrate)
    decoded = audio.decode_bytes(data, f"<{codec} {bitrate} bit/s>")
    mono = decoded.samples.mean(axis=0).astype(np.float32)
    mono = audio.resample(mono, decoded.sample_rate, sample_rate)
    max_lag = max(1, round(sample_rate * max_delay_ms / 1000))
    return align(samples.astype(np.float32), mono, max_lag)


def random_transcode(
    samples: np.ndarray, config: CodecConfig, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Re-encode through a codec and bitrate drawn from ``config``."""
    codec = config.codecs[int(rng.integers(len(config.codecs)))]
    choices = config.bitrates(codec)
    bitrate = int(choices[int(rng.integers(len(choices)))])
    return transcode(samples, sample_rate, codec, bitrate, config.max_delay_ms)
