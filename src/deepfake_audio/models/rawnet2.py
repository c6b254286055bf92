"""``rawnet2``: sinc filters, a residual 1-D CNN with filter-wise scaling, and a GRU.

Tak, Patino, Todisco, Nautsch, Evans and Larcher, "End-to-end anti-spoofing with RawNet2",
ICASSP 2021 (arXiv:2011.01108); the ASVspoof 2021 raw-waveform baseline. The architecture
follows the paper's Table 1, which adapts RawNet2 (Jung et al., Interspeech 2020):

1. Fixed sinc band-pass filters (128 filters, 129 taps, mel-spaced) -> ``|.|`` -> max-pool
   3 -> BN -> LeakyReLU: a learnt-free filter bank, so the network cannot overfit its
   first layer to the training attacks.
2. Six residual blocks (2 with 128 channels, 4 with 512), each BN -> LeakyReLU -> conv 3 ->
   BN -> LeakyReLU -> conv 3 (+ skip, a 1x1 conv when the width changes) -> max-pool 3 ->
   filter-wise feature-map scaling (FMS: ``x * s + s`` with ``s = sigmoid(FC(mean_t x))``),
   which lets each filter's output be emphasised or suppressed per utterance.
3. BN -> LeakyReLU -> a 3-layer GRU of 1024 units summarises the frames (last step), then
   FC 1024 -> FC 2 (index 1 = bona fide = real).

Parameter count: the RawNet2 paper gives none; the AASIST paper (Jung et al., ICASSP 2022,
Table 3) lists RawNet2 at 25.43 M, which this configuration reproduces (tests check 10 %).
Inputs of 64,600 samples (about 4 s at 16 kHz) as in the paper; any input of at least
:data:`MIN_SAMPLES` works because the GRU reads however many frames remain.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepfake_audio.models.sinc import SincFrontEnd

MIN_SAMPLES = 129 + 3**7  # sinc taps + one frame left after seven poolings by 3


@dataclass(frozen=True)
class RawNet2Config:
    input_samples: int = 64600  # about 4 s at 16 kHz, as in the paper
    sample_rate: int = 16000
    sinc_filters: int = 128
    sinc_kernel: int = 129
    block_channels: tuple[int, ...] = (128, 128, 512, 512, 512, 512)
    gru_units: int = 1024
    gru_layers: int = 3
    fc_units: int = 1024
    negative_slope: float = 0.3  # LeakyReLU, as in RawNet2


class FMS(nn.Module):
    """Filter-wise feature map scaling: ``x * s + s``, ``s = sigmoid(W mean_t(x) + b)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sigmoid(self.fc(x.mean(dim=-1))).unsqueeze(-1)  # (batch, C, 1)
        return x * scale + scale


class ResidualBlock1d(nn.Module):
    """``(batch, in, frames)`` -> ``(batch, out, frames // 3)``."""

    def __init__(self, in_channels: int, out_channels: int, first: bool, slope: float) -> None:
        super().__init__()
        # the first block follows the front end's BN + LeakyReLU, so it skips its own
        self.pre = (
            nn.Identity()
            if first
            else nn.Sequential(nn.BatchNorm1d(in_channels), nn.LeakyReLU(slope))
        )
        self.conv1 = nn.Conv1d(in_channels, out_channels, 3, padding=1)
        self.mid = nn.Sequential(nn.BatchNorm1d(out_channels), nn.LeakyReLU(slope))
        self.conv2 = nn.Conv1d(out_channels, out_channels, 3, padding=1)
        self.skip = (
            nn.Conv1d(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )
        self.fms = FMS(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.mid(self.conv1(self.pre(x)))) + self.skip(x)
        return self.fms(F.max_pool1d(out, 3))


class RawNet2(nn.Module):
    """Raw audio ``(batch, samples)`` -> logits ``(batch, 2)`` (index 0 fake, 1 real)."""

    def __init__(self, config: RawNet2Config | None = None) -> None:
        super().__init__()
        self.config = config = config or RawNet2Config()
        if config.input_samples < MIN_SAMPLES:
            raise ValueError(f"RawNet2 needs input_samples >= {MIN_SAMPLES}")
        slope = config.negative_slope
        self.sinc = SincFrontEnd(config.sinc_filters, config.sinc_kernel, config.sample_rate)
        self.front = nn.Sequential(nn.BatchNorm1d(config.sinc_filters), nn.LeakyReLU(slope))
        widths = (config.sinc_filters, *config.block_channels)
        self.blocks = nn.Sequential(
            *(
                ResidualBlock1d(widths[k], widths[k + 1], first=k == 0, slope=slope)
                for k in range(len(config.block_channels))
            )
        )
        self.pre_gru = nn.Sequential(nn.BatchNorm1d(widths[-1]), nn.LeakyReLU(slope))
        self.gru = nn.GRU(widths[-1], config.gru_units, config.gru_layers, batch_first=True)
        self.fc = nn.Linear(config.gru_units, config.fc_units)
        self.out = nn.Linear(config.fc_units, 2)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        # rectify the band-passed signals, then pool: (batch, filters, frames / 3)
        x = self.front(F.max_pool1d(self.sinc(audio).abs(), 3))
        x = self.pre_gru(self.blocks(x))  # (batch, 512, frames / 3^7)
        hidden, _ = self.gru(x.transpose(1, 2))  # (batch, frames, gru_units)
        return self.out(self.fc(hidden[:, -1]))  # (batch, 2)
