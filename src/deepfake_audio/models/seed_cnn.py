"""``seed_cnn``: the original design's 1D CNN on the raw waveform.

Conv1D (32, 64, 128 filters) each followed by ReLU and MaxPool1D, then Flatten, Dense 128 +
Dropout, Dense 64 + Dropout, Dense 2 (softmax is applied by the loss and by scoring).
Kernel 9 with "same" padding and pool 4 make each block shrink time by 4: a 2 s window at
16 kHz (32,000 samples) becomes 128 channels x 500 frames, and the whole network has about
8.2 M parameters (most of them in the first Dense layer, which grows with the window).

The layers are the ``nn.Conv1d``/``nn.ReLU``/``nn.MaxPool1d`` modules above (their
state-dict keys are the checkpoints'), but on a CPU :meth:`SeedCNN.forward` runs each block
as a 2D convolution over ``(batch, channels, 1, frames)`` tensors stored channels-last, then
the max-pool, then the ReLU in place. Its outputs are those of the modules in sequence
(max-pooling and ReLU commute exactly, and the bias is added inside the convolution as
before; oneDNN's kernels sum in another order, about 1e-7 apart) at about 1.9x the speed
(2 cores, batch 8: 380-400x real time against 205-210x, 65-72 % of a float32 matrix
product's FLOP/s against 37 %): oneDNN's channels-last (``nwc``) convolutions run the two big
layers at the matrix product's speed where the channels-first ones reorder their data and
reach about two thirds of it, channels-last max-pooling is vectorised over channels, and the
ReLU touches a quarter of the values. In training, oneDNN's channels-last *weight* gradient
is two to three times slower than its channels-first one, so the convolutions with several
input channels take theirs from channels-first copies (:class:`_ChannelsLastConv`): training
steps are about 1.3x faster too. ``bench/bench_models.py`` measures the paths.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SeedCNNConfig:
    input_samples: int = 32000  # 2 s at 16 kHz
    channels: tuple[int, ...] = (32, 64, 128)
    kernel_size: int = 9
    pool_size: int = 4
    dense: tuple[int, ...] = (128, 64)
    dropout: float = 0.3


class _ChannelsLastConv(torch.autograd.Function):
    """``F.conv2d`` (stride 1, symmetric time padding) on a channels-last input whose weight
    and bias gradients are computed from channels-first copies of the input and the
    gradient: oneDNN's channels-last weight gradient is the slow one, and the copies cost
    less than the difference. The input gradient stays channels-last (fast either way)."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding: int):  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.has_bias = padding, bias is not None
        return F.conv2d(x, weight, bias, padding=(0, padding))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        # stride, padding, dilation, transposed, output padding, groups
        layout = ([1, 1], [0, ctx.padding], [1, 1], False, [0, 0], 1)
        bias_sizes = [weight.shape[0]] if ctx.has_bias else None
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight, None, *layout, [True, False, False]
            )[0]
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            _, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad.contiguous(), x.contiguous(), weight, bias_sizes, *layout,
                [False, ctx.needs_input_grad[1], ctx.needs_input_grad[2]],
            )  # fmt: skip
        return grad_x, grad_w, grad_b, None


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
        # (batch, samples) -> (batch, 128, frames) -> (batch, 2)
        if audio.device.type == "cpu" and self._plain_features():
            return self.classifier(self._fast_features(audio))
        # The modules themselves: on a GPU (cuDNN's channels-first kernels are its own
        # business; the layout above was measured on CPUs), or when a pass swapped a layer
        # (a dynamic-quantised convolution) and the modules must run what it put there.
        return self.classifier(self.features(audio.unsqueeze(1)))

    def _plain_features(self) -> bool:
        """Whether ``features`` still holds the (Conv1d, ReLU, MaxPool1d) blocks built above,
        so that :meth:`_fast_features` computes exactly what they would."""
        kinds = (nn.Conv1d, nn.ReLU, nn.MaxPool1d)
        return all(type(m) is kinds[i % 3] for i, m in enumerate(self.features))

    def _fast_features(self, audio: torch.Tensor) -> torch.Tensor:
        """``self.features(audio.unsqueeze(1))``, computed in channels-last 2D layout."""
        blocks = list(self.features)
        # (batch, samples) -> (batch, 1, 1, samples); with one channel, channels-last only
        # changes the strides, which make the first convolution write channels-last.
        x = audio[:, None, None, :].to(memory_format=torch.channels_last)
        training = self.training and torch.is_grad_enabled()
        for conv, pool in zip(blocks[0::3], blocks[2::3], strict=True):
            weight = conv.weight.unsqueeze(2)  # (c_out, c_in, 1, kernel)
            (kernel,) = conv.kernel_size
            # (batch, c_in, 1, frames) -> (batch, c_out, 1, frames), channels-last
            if training and conv.in_channels > 1 and kernel % 2 == 1:
                x = _ChannelsLastConv.apply(x, weight, conv.bias, (kernel - 1) // 2)
            else:  # inference; or one input channel, whose channels-last gradient is fast
                x = F.conv2d(x, weight, conv.bias, padding=conv.padding)
            # -> (batch, c_out, 1, frames // pool), pooled as MaxPool1d pools (same indices)
            x = F.max_pool2d(x, (1, pool.kernel_size), (1, pool.stride)).relu_()
        return x.squeeze(2)  # (batch, 128, frames), flattened by the classifier
