"""``lcnn_lfcc``: LFCC features and a light CNN with a BLSTM back end.

The LFCC-LCNN baseline of ASVspoof 2021 (Yamagishi et al., "ASVspoof 2021: accelerating
progress in spoofed and deepfake speech detection", ASVspoof 2021 Workshop), as described by
Wang and Yamagishi, "A Comparative Study on Recent Neural Spoofing Countermeasures for
Synthetic Speech Detection", Interspeech 2021. LFCCs are from Sahidullah, Kinnunen and
Hanilçi, "A Comparison of Features for Synthetic Speech Detection", Interspeech 2015; the
light CNN with max-feature-map (MFM) activations from Wu et al., "A Light CNN for Deep Face
Representation with Noisy Labels", 2018, as used by Lavrentyeva et al. (ASVspoof 2019).

Why: linear (not mel) filters keep the high-frequency resolution where vocoders leave their
artefacts; MFM (the element-wise max of two halves of the channels) acts as a learnt feature
selector and keeps the network small.

1. LFCC, computed here in torch so the model takes raw audio: pre-emphasis 0.97; 20 ms
   Hamming frames every 10 ms, 512-point FFT; power spectrum; 20 linear triangular filters;
   log; DCT-II -> 20 coefficients (c0 replaced by log frame energy), plus deltas and
   delta-deltas: ``(batch, frames, 60)``.
2. LCNN: nine convolutions with MFM, four 2x2 max-pools, batch norms, dropout 0.7:
   ``(batch, 32, frames / 16, 60 / 16)``.
3. Two bidirectional LSTM layers (residual), mean over time, linear -> 2 logits.

Parameter count: neither paper gives one; measured here in ``docs/models.md``. The
baseline trains on variable-length utterances; we use the project's 4 s (64,600-sample)
windows by default, and any input of at least :data:`MIN_SAMPLES` works (mean over time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

N_FFT = 512
MIN_FRAMES = 16  # enough for four 2x2 max-pools
MIN_SAMPLES = N_FFT + (MIN_FRAMES - 1) * 160  # at the default 10 ms hop and 16 kHz


@dataclass(frozen=True)
class LCNNLFCCConfig:
    input_samples: int = 64600  # about 4 s at 16 kHz
    sample_rate: int = 16000
    frame_ms: float = 20.0
    hop_ms: float = 10.0
    n_filters: int = 20
    n_coefficients: int = 20
    preemphasis: float = 0.97
    lstm_dim: int = 96  # BLSTM output (both directions)
    dropout: float = 0.7


class LFCC(nn.Module):
    """``(batch, samples)`` -> ``(batch, frames, 3 * n_coefficients)`` (static, delta, delta2)."""

    def __init__(self, config: LCNNLFCCConfig) -> None:
        super().__init__()
        self.frame = round(config.sample_rate * config.frame_ms / 1000)
        self.hop = round(config.sample_rate * config.hop_ms / 1000)
        self.min_samples = N_FFT + (MIN_FRAMES - 1) * self.hop
        self.preemphasis = config.preemphasis
        # Buffers rebuilt from the config (not persistent): nothing here is learnt.
        self.register_buffer(
            "window", torch.hamming_window(self.frame, periodic=False), persistent=False
        )
        bins = N_FFT // 2 + 1
        freqs = torch.linspace(0, config.sample_rate / 2, bins)  # (bins,)
        edges = torch.linspace(0, config.sample_rate / 2, config.n_filters + 2)
        lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
        rising = (freqs - lower) / (centre - lower)
        falling = (upper - freqs) / (upper - centre)
        bank = torch.clamp(torch.minimum(rising, falling), min=0.0)  # (filters, bins)
        self.register_buffer("filterbank", bank.T.contiguous(), persistent=False)
        # orthonormal DCT-II matrix (filters, coefficients)
        n = torch.arange(config.n_filters, dtype=torch.float64)
        k = torch.arange(config.n_coefficients, dtype=torch.float64)
        dct = torch.cos(math.pi / config.n_filters * (n[:, None] + 0.5) * k[None, :])
        dct[:, 0] *= 1 / math.sqrt(2)
        dct *= math.sqrt(2 / config.n_filters)
        self.register_buffer("dct", dct.float(), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.shape[-1] < self.min_samples:
            raise ValueError(f"LCNN-LFCC needs at least {self.min_samples} samples")
        x = torch.cat([audio[:, :1], audio[:, 1:] - self.preemphasis * audio[:, :-1]], dim=1)
        spec = torch.stft(
            x,
            N_FFT,
            hop_length=self.hop,
            win_length=self.frame,
            window=self.window,
            center=False,
            return_complex=True,
        )  # (batch, bins, frames)
        power = spec.real.square() + spec.imag.square()
        power = power.transpose(1, 2)  # (batch, frames, bins)
        eps = torch.finfo(power.dtype).eps
        cepstra = torch.log10(power @ self.filterbank + eps) @ self.dct  # (batch, frames, n)
        # c0 -> log frame energy, which carries loudness more directly than the mean log band
        energy = torch.log10(power.sum(-1, keepdim=True) + eps)
        cepstra = torch.cat([energy, cepstra[..., 1:]], dim=-1)
        delta = _delta(cepstra)
        return torch.cat([cepstra, delta, _delta(delta)], dim=-1)  # (batch, frames, 3n)


def _delta(x: torch.Tensor) -> torch.Tensor:
    """``x[t+1] - x[t-1]`` along frames (dim 1), edges replicated."""
    padded = F.pad(x.transpose(1, 2), (1, 1), mode="replicate").transpose(1, 2)
    return padded[:, 2:] - padded[:, :-2]


class MFMConv(nn.Module):
    """Conv2d to ``2 * out`` channels, then max-feature-map down to ``out``."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.conv(x).chunk(2, dim=1)
        return torch.maximum(a, b)


class LCNNLFCC(nn.Module):
    """Raw audio ``(batch, samples)`` -> logits ``(batch, 2)`` (index 0 fake, 1 real)."""

    def __init__(self, config: LCNNLFCCConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or LCNNLFCCConfig()
        self.lfcc = LFCC(config)
        if config.input_samples < self.lfcc.min_samples:
            raise ValueError(f"LCNN-LFCC needs input_samples >= {self.lfcc.min_samples}")
        pool = nn.MaxPool2d(2)
        self.cnn = nn.Sequential(
            MFMConv(1, 32, 5),
            pool,
            MFMConv(32, 32, 1),
            nn.BatchNorm2d(32),
            MFMConv(32, 48, 3),
            pool,
            nn.BatchNorm2d(48),
            MFMConv(48, 48, 1),
            nn.BatchNorm2d(48),
            MFMConv(48, 64, 3),
            pool,
            MFMConv(64, 64, 1),
            nn.BatchNorm2d(64),
            MFMConv(64, 32, 3),
            nn.BatchNorm2d(32),
            MFMConv(32, 32, 1),
            nn.BatchNorm2d(32),
            MFMConv(32, 32, 3),
            pool,
            nn.Dropout(config.dropout),
        )
        features = 32 * ((3 * config.n_coefficients) // 16)
        self.project = (
            nn.Identity() if features == config.lstm_dim else nn.Linear(features, config.lstm_dim)
        )
        half = config.lstm_dim // 2
        self.lstm1 = nn.LSTM(config.lstm_dim, half, batch_first=True, bidirectional=True)
        self.lstm2 = nn.LSTM(config.lstm_dim, half, batch_first=True, bidirectional=True)
        self.out = nn.Linear(config.lstm_dim, 2)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        feats = self.lfcc(audio).unsqueeze(1)  # (batch, 1, frames, 60)
        x = self.cnn(feats)  # (batch, 32, frames / 16, 3)
        x = self.project(x.permute(0, 2, 1, 3).flatten(2))  # (batch, frames / 16, lstm_dim)
        x = x + self.lstm2(self.lstm1(x)[0])[0]  # residual BLSTM, as in the baseline
        return self.out(x.mean(dim=1))  # (batch, 2)
