"""``seed_cnn``: the original design's 1D CNN on the raw waveform.

Conv1D (32, 64, 128 filters) each followed by ReLU and MaxPool1D, then Flatten, Dense 128 +
Dropout, Dense 64 + Dropout, Dense 2 (softmax is applied by the loss and by scoring).
Kernel 9 with "same" padding and pool 4 make each block shrink time by 4: a 2 s window at
16 kHz (32,000 samples) becomes 128 channels x 500 frames, and the whole network has about
8.2 M parameters (most of them in the first Dense layer, which grows with the window).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SeedCNNConfig:
    input_samples: int = 32000  # 2 s at 16 kHz
    channels: tuple[int, ...] = (32, 64, 128)
    kernel_size: int = 9
    pool_size: int = 4
    dense: tuple[int, ...] = (128, 64)
    dropout: float = 0.3


class SeedCNN(nn.Module):
    """Raw audio ``(batch, samples)`` -> logits ``(batch, 2)`` (index 0 fake, 1 real)."""

    def __init__(self, config: SeedCNNConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SeedCNNConfig()
        blocks: list[nn.Module] = []
        in_channels, frames = 1, config.input_samples
        for out_channels in config.channels:
            blocks += [
                nn.Conv1d(in_channels, out_channels, config.kernel_size, padding="same"),
                nn.ReLU(),
                nn.MaxPool1d(config.pool_size),
            ]
            in_channels, frames = out_channels, frames // config.pool_size
        if frames < 1:
            raise ValueError(
                f"input_samples={config.input_samples} is too short for "
                f"{len(config.channels)} pooling blocks of {config.pool_size}"
            )
        self.features = nn.Sequential(*blocks)
        head: list[nn.Module] = [nn.Flatten()]
        width = in_channels * frames
        for units in config.dense:
            head += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(config.dropout)]
            width = units
        head.append(nn.Linear(width, 2))
        self.classifier = nn.Sequential(*head)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        # (batch, samples) -> (batch, 1, samples) -> (batch, 128, frames) -> (batch, 2)
        return self.classifier(self.features(audio.unsqueeze(1)))
