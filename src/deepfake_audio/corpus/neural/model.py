"""A small neural vocoder: log-mel spectrogram in, waveform out, in the style of Vocos.

Written from Siuzdak, "Vocos: Closing the gap between time-domain and Fourier-based neural
vocoders for high-quality audio synthesis" (2023). Why Vocos and not HiFi-GAN (Kong et al.,
2020): HiFi-GAN upsamples the mel frames to the sample rate through stacks of transposed
convolutions, so almost all of its work happens at 16,000 steps a second; Vocos keeps every
layer at the frame rate (62.5 frames a second here) and lets an inverse STFT make the
samples. On two CPU cores that is the difference between hours and minutes of training.

- Backbone: a 1-D convolution embeds the mel frames, then ConvNeXt blocks (depthwise
  convolution, layer norm, a pointwise MLP with GELU, a learnt per-channel scale, residual).
- Head: a linear layer predicts, per frame, the log-magnitude and the phase of every STFT
  bin; ``torch.istft`` (Hann window, overlap-add) turns them into samples.

Unlike the paper, the vocoder here is trained without discriminators (see
:mod:`deepfake_audio.corpus.neural.training`): its phase is learnt only through multi-resolution
spectral losses, so its output keeps artefacts of a young neural vocoder (smeared phase,
buzz in unvoiced sounds). That is what the demo corpus wants: modern, *neural* artefacts, not
studio-quality clones.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class VocoderConfig:
    """The vocoder's shape; stored in its checkpoint."""

    sample_rate: int = 16000
    n_fft: int = 1024  # 64 ms analysis and synthesis window
    hop: int = 256  # 16 ms: 62.5 frames a second
    n_mels: int = 80
    dim: int = 192
    intermediate: int = 576
    layers: int = 6
    kernel: int = 7

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> VocoderConfig:
        return cls(**{k: int(v) for k, v in values.items() if k in cls.__dataclass_fields__})


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """``(n_mels, n_fft // 2 + 1)`` triangular filters, equally spaced on the HTK mel scale
    (mel = 2595 log10(1 + f / 700)) from 0 Hz to Nyquist, each normalised to unit area
    (Slaney's normalisation), so a filter's output does not grow with its width."""
    bins = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    top = 2595.0 * math.log10(1.0 + sample_rate / 2 / 700.0)
    edges = 700.0 * (10.0 ** (np.linspace(0.0, top, n_mels + 2) / 2595.0) - 1.0)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None] - lower) / (centre - lower)
    falling = (upper - bins[None]) / (upper - centre)
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= 2.0 / (upper - lower)
    return filters.astype(np.float32)


class LogMel(nn.Module):
    """Log mel-magnitude spectrogram ``(batch, n_mels, frames)`` of ``(batch, samples)``:
    ``samples // hop + 1`` frames (centred, reflect-padded), log of magnitudes floored at 1e-5."""

    def __init__(self, config: VocoderConfig) -> None:
        super().__init__()
        self.n_fft, self.hop = config.n_fft, config.hop
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)
        fb = mel_filterbank(config.sample_rate, config.n_fft, config.n_mels)
        self.register_buffer("filters", torch.from_numpy(fb), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            audio, self.n_fft, self.hop, window=self.window, center=True, return_complex=True
        )
        return torch.log(torch.clamp(self.filters @ spec.abs(), min=1e-5))


class ConvNeXtBlock(nn.Module):
    """Depthwise conv -> LayerNorm -> Linear (x3 wide) -> GELU -> Linear -> scale, residual."""

    def __init__(self, dim: int, intermediate: int, kernel: int, scale: float) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.expand = nn.Linear(dim, intermediate)
        self.act = nn.GELU()
        self.project = nn.Linear(intermediate, dim)
        # As in Vocos, residual branches start scaled by 1 / layers: the stack starts close
        # to the identity and trains stably.
        self.scale = nn.Parameter(torch.full((dim,), scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, dim, frames)
        y = self.depthwise(x).transpose(1, 2)
        y = self.project(self.act(self.expand(self.norm(y))))
        return x + (self.scale * y).transpose(1, 2)


class Vocoder(nn.Module):
    """Log-mel ``(batch, n_mels, frames)`` -> waveform ``(batch, (frames - 1) * hop)``."""

    def __init__(self, config: VocoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or VocoderConfig()
        self.embed = nn.Conv1d(config.n_mels, config.dim, config.kernel, padding=config.kernel // 2)
        self.embed_norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(config.dim, config.intermediate, config.kernel, 1.0 / config.layers)
            for _ in range(config.layers)
        )
        self.final_norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.head = nn.Linear(config.dim, config.n_fft + 2)  # log-magnitude and phase per bin
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)
        self.mel = LogMel(config)

    def forward(self, mel: torch.Tensor, length: int | None = None) -> torch.Tensor:
        x = self.embed(mel)
        x = self.embed_norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        x = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2)
        log_magnitude, phase = x.chunk(2, dim=1)
        # exp overflows for a diverging step: cap the magnitude (about +40 dB over full scale)
        magnitude = torch.exp(log_magnitude).clamp(max=100.0)
        spec = torch.polar(magnitude, phase)
        hop = self.config.hop
        length = (mel.shape[-1] - 1) * hop if length is None else length
        return torch.istft(
            spec, self.config.n_fft, hop, window=self.window, center=True, length=length
        )

    @torch.inference_mode()
    def resynthesize(self, samples: np.ndarray) -> np.ndarray:
        """A clip (float, at the vocoder's rate) remade from its own mel spectrogram: the
        same length, the words and voice kept, the waveform the vocoder's."""
        self.eval()
        audio = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None]
        out = self(self.mel(audio), length=audio.shape[-1])
        return out[0].numpy().astype(np.float32)


def mel_distance(made: np.ndarray, source: np.ndarray, sample_rate: int = 16000) -> float:
    """Mean absolute difference of the log-mel spectrograms of two signals at one rate (over
    the frames both have): how far a resynthesis is from its source, in natural-log units.
    The same measure for every vocoder, so WORLD, Griffin-Lim and ours can be compared."""
    mel = LogMel(VocoderConfig(sample_rate=sample_rate))
    n = min(len(made), len(source))
    pair = np.stack([np.asarray(made[:n], np.float32), np.asarray(source[:n], np.float32)])
    with torch.inference_mode():
        a, b = mel(torch.from_numpy(pair))
    return float((a - b).abs().mean())
