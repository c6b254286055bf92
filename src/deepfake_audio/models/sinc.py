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

import math

import torch
import torch.nn.functional as F
from torch import nn


def _hz_to_mel(hz: float) -> float:
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def sinc_filters(num_filters: int, kernel_size: int, sample_rate: int) -> torch.Tensor:
    """Mel-spaced band-pass filters ``(num_filters, kernel_size)`` (kernel_size made odd).

    Band ``i`` spans mel-spaced edges ``[edge_i, edge_{i+1}]`` between 0 Hz and Nyquist; the
    impulse response is ``2 f2 sinc(2 f2 n) - 2 f1 sinc(2 f1 n)`` (frequencies in cycles per
    sample) times a Hamming window, so the filters are symmetric (linear phase).

    Evaluated with the precision of the reference implementations (RawNet2's and AASIST's
    ``SincConv``), not more: edges in float64, but the sinc's argument ``2 f n / rate`` and
    its sine in float32, and the window applied in float32. The published models were
    trained on those filters; computing the sinc in float64 instead moves the taps by up to
    2e-7, which moved the published AASIST's logits by 4e-5 (1.9e-6 as done here).
    """
    if kernel_size % 2 == 0:
        kernel_size += 1  # an odd length centres the filter on a sample
    # Python floats for the two ends: also right while the model is laid out on torch's
    # "meta" device (checkpoint validation builds it there, allocating nothing).
    mel = torch.linspace(
        _hz_to_mel(0.0), _hz_to_mel(sample_rate / 2.0), num_filters + 1, dtype=torch.float64
    )
    edges = _mel_to_hz(mel)  # (num_filters + 1,) Hz
    half = (kernel_size - 1) // 2
    n = torch.arange(-half, half + 1, dtype=torch.float32)[None, :]  # (1, kernel_size)

    def low_pass(hz: torch.Tensor) -> torch.Tensor:
        """``2 f sinc(2 f n)`` for cut-offs ``hz`` (bands, 1) in Hz, f = hz / rate."""
        x = (2 * hz).to(torch.float32) * n / sample_rate  # float32, as the references
        y = torch.pi * torch.where(x == 0, 1e-20, x)  # numpy's sinc: sin(pi x) / (pi x)
        return (2 * hz / sample_rate) * (torch.sin(y) / y).to(torch.float64)

    band = low_pass(edges[1:, None]) - low_pass(edges[:-1, None])  # (num_filters, kernel)
    window = torch.hamming_window(kernel_size, periodic=False, dtype=torch.float64)
    return band.to(torch.float32) * window.to(torch.float32)  # (num_filters, kernel_size)


class SincFrontEnd(nn.Module):
    """``(batch, samples)`` -> ``(batch, num_filters, samples - kernel_size + 1)``.

    Plain ``conv1d`` ("valid"): on CPU it beat an FFT convolution for these filter lengths,
    and an unfold + matrix product (the copy of the unfolded input costs more than it saves).
    """

    def __init__(self, num_filters: int, kernel_size: int, sample_rate: int) -> None:
        super().__init__()
        filters = sinc_filters(num_filters, kernel_size, sample_rate)
        # (num_filters, 1, kernel_size); not persistent: rebuilt from the config on load.
        self.register_buffer("filters", filters.unsqueeze(1), persistent=False)
        self.kernel_size = int(filters.shape[-1])

    def forward(
        self, audio: torch.Tensor, bands: int | None = None, frames: int | None = None
    ) -> torch.Tensor:
        """Filter ``audio``; ``bands``/``frames``: only the first so many filters / outputs.

        A caller that pools away the last filter or the last frames (AASIST's 3 x 3 pooling
        of 70 filters keeps 69) asks for only what it keeps: the same values, less work.
        """
        if audio.shape[-1] < self.kernel_size:
            raise ValueError(
                f"input of {audio.shape[-1]} samples is shorter than the "
                f"{self.kernel_size}-tap sinc filters"
            )
        if frames is not None:  # the first `frames` outputs need `frames + taps - 1` samples
            audio = audio[..., : frames + self.kernel_size - 1]
        # (batch, samples) -> (batch, 1, samples) -> (batch, bands, frames)
        return F.conv1d(audio.unsqueeze(1), self.filters[:bands])
