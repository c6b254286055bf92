"""A fixed sinc band-pass filter bank: the raw-waveform front end of RawNet2 and AASIST.

SincNet (Ravanelli and Bengio, "Speaker Recognition from Raw Waveform with SincNet", SLT
2018) parameterises each first-layer filter as the difference of two ideal low-pass (sinc)
filters, i.e. a band-pass between cut-offs ``f1 < f2``, tapered by a Hamming window. The
anti-spoofing models that use it (Tak et al., ICASSP 2021; Jung et al., ICASSP 2022) keep the
cut-offs *fixed* on a mel scale: spoofing artefacts can sit anywhere in the band, and learning
the cut-offs made the models overfit. The filters are therefore a non-persistent buffer,
rebuilt from the config, never trained and never stored in checkpoints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def sinc_filters(num_filters: int, kernel_size: int, sample_rate: int) -> torch.Tensor:
    """Mel-spaced band-pass filters ``(num_filters, kernel_size)`` (kernel_size made odd).

    Band ``i`` spans mel-spaced edges ``[edge_i, edge_{i+1}]`` between 0 Hz and Nyquist; the
    impulse response is ``2 f2 sinc(2 pi f2 n) - 2 f1 sinc(2 pi f1 n)`` (frequencies in
    cycles per sample) times a Hamming window, so the filters are symmetric (linear phase).
    """
    if kernel_size % 2 == 0:
        kernel_size += 1  # an odd length centres the filter on a sample
    # The two end points are numbers, computed on the CPU even while the model is laid out
    # on torch's "meta" device (checkpoint validation builds it there, allocating nothing).
    mel = torch.linspace(
        float(_hz_to_mel(torch.tensor(0.0, device="cpu"))),
        float(_hz_to_mel(torch.tensor(sample_rate / 2.0, device="cpu"))),
        num_filters + 1,
        dtype=torch.float64,
    )
    edges = _mel_to_hz(mel) / sample_rate  # (num_filters + 1,) cycles per sample
    low, high = edges[:-1, None], edges[1:, None]  # (num_filters, 1)
    half = (kernel_size - 1) // 2
    n = torch.arange(-half, half + 1, dtype=torch.float64)[None, :]  # (1, kernel_size)
    # torch.sinc(x) = sin(pi x) / (pi x), so 2 f sinc(2 f n) is an ideal low-pass at f.
    band = 2 * high * torch.sinc(2 * high * n) - 2 * low * torch.sinc(2 * low * n)
    window = torch.hamming_window(kernel_size, periodic=False, dtype=torch.float64)
    return (band * window).to(torch.float32)  # (num_filters, kernel_size)


class SincFrontEnd(nn.Module):
    """``(batch, samples)`` -> ``(batch, num_filters, samples - kernel_size + 1)``.

    Plain ``conv1d`` ("valid"): on CPU it beat an FFT convolution for these filter lengths.
    """

    def __init__(self, num_filters: int, kernel_size: int, sample_rate: int) -> None:
        super().__init__()
        filters = sinc_filters(num_filters, kernel_size, sample_rate)
        # (num_filters, 1, kernel_size); not persistent: rebuilt from the config on load.
        self.register_buffer("filters", filters.unsqueeze(1), persistent=False)
        self.kernel_size = int(filters.shape[-1])

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.shape[-1] < self.kernel_size:
            raise ValueError(
                f"input of {audio.shape[-1]} samples is shorter than the "
                f"{self.kernel_size}-tap sinc filters"
            )
        # (batch, samples) -> (batch, 1, samples) -> (batch, num_filters, frames)
        return F.conv1d(audio.unsqueeze(1), self.filters)
