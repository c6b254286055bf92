"""``aasist`` and ``aasist_l``: integrated spectro-temporal graph attention on raw audio.

Jung, Heo, Tak, Shim, Chung, Lee, Yu and Evans, "AASIST: Audio Anti-Spoofing using
Integrated Spectro-Temporal Graph Attention Networks", ICASSP 2022 (arXiv:2110.01200).

Why this shape: spoofing artefacts live both in particular sub-bands and in particular
stretches of time, and a model that looks only at one of the two misses the other. AASIST
encodes the waveform into a (channels, sub-bands, frames) map, turns the strongest
activation of each sub-band into a *spectral* graph and of each frame into a *temporal*
graph, and lets a heterogeneous graph attention layer (HS-GAL) relate the two kinds of node
to each other, with a "stack" (master) node that sums up the whole graph.

1. Front end: fixed mel-spaced sinc band-pass filters (70 filters, 129 taps) -> ``|.|``
   -> 3x3 max-pool over (sub-band, time) -> BN -> SELU: ``(batch, 1, 23, frames)``.
2. Encoder: six 2-D residual blocks (RawNet2 style, kernels 2x3, each ending in a 1x3
   max-pool over time): ``(batch, C, 23, frames / 729)``.
3. Graphs: spectral nodes = max over time of ``|x|`` (plus a learnt position embedding per
   sub-band), temporal nodes = max over sub-bands; each goes through a graph attention layer
   (GAT) and a graph pooling layer (Gao and Ji's top-k by a learnt score).
4. Two parallel branches of two HS-GALs each (with graph pooling in between), each branch
   with its own learnt stack node; the branches are combined by element-wise maximum.
5. Read-out: max of ``|.|`` and mean of the temporal nodes, the same of the spectral nodes,
   and the stack node, concatenated (:meth:`AASIST.embed`, 160 features) -> dropout ->
   linear -> 2 logits (index 1 = bona fide = real).

Faithful to the released code, not only to the paper: the authors' published weights
(github.com/clovaai/aasist, converted by :mod:`deepfake_audio.models.clovaai`) give the
reference logits within 1e-4 here only because this module computes what their
``models/AASIST.py`` computes, including where that differs from the paper's description:

* the residual blocks after the first carry a pre-activation batch norm whose output the
  released code computes and throws away, so the published models were trained without it;
  ours keeps its (frozen) parameters, ``unused_bn``, since the checkpoints and the published
  parameter counts include them, and does not apply it (an earlier version of ours did);
* all four HS-GALs use the third temperature and all four HS-GAL graph pools the third
  pool ratio; the fourth entries of ``temperatures`` and ``pool_ratios`` are read by
  nothing (kept so the published configs map one to one);
* the max read-outs are of the absolute node values, the means of the signed ones;
* each branch's outputs (nodes and stack node) pass a dropout of ``graph_dropout`` before
  the branches' maximum.

Parameter counts (paper, Table 3): AASIST 297 k, AASIST-L 85 k (AASIST-L narrows the
encoder to 32 -> 24 channels and the graph to 24 dimensions). Measured here: see
``docs/models.md`` (tests check them within 10 %).

The paper trains on 64,600-sample (about 4 s) windows at 16 kHz; every stage ends in a
pooling over nodes, so any input of at least :data:`MIN_SAMPLES` works.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepfake_audio.models.sinc import SincFrontEnd

MIN_SAMPLES = 129 + 3**7  # sinc taps + one frame left after the 3 x 3^6 time pooling


@dataclass(frozen=True)
class AASISTConfig:
    input_samples: int = 64600  # about 4 s at 16 kHz, as in the paper
    sample_rate: int = 16000
    sinc_filters: int = 70
    sinc_kernel: int = 128  # made odd (129 taps)
    encoder_channels: tuple[int, ...] = (32, 32, 64, 64, 64, 64)  # output of each block
    gat_dims: tuple[int, int] = (64, 32)
    # keep ratios of the pools: spectral GAT, temporal GAT, every HS-GAL pool, (unused: the
    # released code reads only the first three; the fourth is kept so configs map 1:1)
    pool_ratios: tuple[float, float, float, float] = (0.5, 0.7, 0.5, 0.5)
    # softmax temperatures: spectral GAT, temporal GAT, every HS-GAL, (unused, as above)
    temperatures: tuple[float, float, float, float] = (2.0, 2.0, 100.0, 100.0)
    dropout: float = 0.5  # on the 160 read-out features
    graph_dropout: float = 0.2  # on graph attention inputs and on each branch's outputs
    pool_dropout: float = 0.3  # on graph pooling score inputs


@dataclass(frozen=True)
class AASISTLConfig(AASISTConfig):
    """AASIST-L: the paper's light variant (about 85 k parameters)."""

    encoder_channels: tuple[int, ...] = (32, 32, 24, 24, 24, 24)
    gat_dims: tuple[int, int] = (24, 32)
    pool_ratios: tuple[float, float, float, float] = (0.4, 0.5, 0.7, 0.5)


def max_pool(x: torch.Tensor, freq: int, time: int) -> torch.Tensor:
    """Non-overlapping max-pool of ``(batch, C, F, T)`` by ``(freq, time)``, remainders dropped.

    Same values as ``F.max_pool2d(x, (freq, time))`` and, with gradients, the same gradient
    (all of it to the first maximum of each window). ``max_pool2d`` keeps an index per
    output, in a scalar loop; without gradients a 1-D max-pool over time (a kernel without
    indices) or a reshape and a reduction is faster. With gradients, for pools along time
    only (the encoder's), :class:`_TimeMaxPool` pools without indices and finds the maxima
    again in the backward pass (AASIST-L block 1, batch 8, forward and backward: 0.34 s
    against 0.54 s on 2 idle cores).
    """
    if freq == 1:
        return _TimeMaxPool.apply(x, time) if x.requires_grad else _time_max(x, time)
    if x.requires_grad:
        return F.max_pool2d(x, (freq, time))
    b, c, f, t = x.shape
    f, t = f // freq, t // time
    x = x[:, :, : f * freq, : t * time].reshape(b, c, f, freq, t, time)
    return x.amax(dim=(3, 5))


def _time_max(x: torch.Tensor, window: int) -> torch.Tensor:
    """Max over windows of ``window`` frames of ``(batch, C, F, T)``, without gradients.

    ``max_pool1d`` of a tensor that needs no gradient keeps no indices: 1.4x faster than a
    reshape and a reduction (2.5x on block 2's shapes)."""
    b, c, f, _ = x.shape
    return F.max_pool1d(x.detach().reshape(b, c * f, -1), window).view(b, c, f, -1)


class _TimeMaxPool(torch.autograd.Function):
    """Max over non-overlapping windows along the last axis of ``(batch, C, F, T)``
    (remainder dropped), with ``max_pool2d``'s gradient: to the first maximum of each window.

    The backward pass finds each window's first maximum again from the saved input and
    output, as a byte per output, and hands ``max_pool2d``'s own backward kernel the
    indices it would have stored (that kernel is fast; only the forward one is slow).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, window: int) -> torch.Tensor:
        out = _time_max(x, window)
        ctx.save_for_backward(x, out)
        ctx.window = window
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        x, out = ctx.saved_tensors
        window, (f, t), frames = ctx.window, out.shape[-2:], x.shape[-1]
        cells = x[..., : t * window].unflatten(-1, (t, window))
        # offset of the first maximum in each window: the count of leading non-maxima
        searching = (cells[..., 0] != out).view(torch.uint8)  # (batch, C, F, t)
        offset = searching
        for i in range(1, window - 1):
            searching = searching & (cells[..., i] != out).view(torch.uint8)
            offset = offset + searching
        # max_pool2d's indices: flat positions in each (F, T) plane
        start = torch.arange(f, device=x.device)[:, None] * frames + torch.arange(
            0, t * window, window, device=x.device
        )  # (F, t)
        pool = [1, window]
        return torch.ops.aten.max_pool2d_with_indices_backward(
            grad, x, pool, pool, [0, 0], [1, 1], False, start + offset
        ), None


class _SingleChannelConv(torch.autograd.Function):
    """``F.conv2d`` of a one-channel input (stride 1), with a matrix-product backward.

    oneDNN's backward pass for a one-channel input reorders the (large) output gradient
    to its blocked layout, once per gradient, and runs at a fraction of the machine's speed.
    With one input channel the unfolded input is small (taps x positions), so both
    gradients are plain matrix products over the output gradient (AASIST-L block 1, batch
    8, its two such convolutions: backward 0.4 s against 0.8 s on 2 idle cores). The
    forward pass is oneDNN's. Two large products, not a loop over cache-sized chunks: that
    was 1.3x faster on an idle machine, but each of its hundreds of small products waits at
    a thread barrier, and on a machine shared with other jobs those waits cost seconds.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, padding: tuple[int, int]) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return F.conv2d(x, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        batch, out_channels = grad.shape[:2]
        kernel, taps = tuple(weight.shape[-2:]), weight[0].numel()
        grad = grad.reshape(batch, out_channels, -1)  # (batch, out, positions)
        positions = grad.shape[-1]
        grad_x = grad_w = grad_b = None
        if need_w or need_b:  # the taps of each position, and a 1 for the bias
            cols = F.unfold(x, kernel, padding=ctx.padding)  # (batch, taps, positions)
            cols = torch.cat([cols, cols.new_ones(batch, 1, positions)], 1)
            # (taps + 1) x out per clip: 2x faster than grad @ cols^T, whose few output
            # columns the matrix kernel handles badly (AASIST-L block 1: 0.37 s against 0.76 s)
            sums = torch.bmm(cols, grad.transpose(1, 2)).sum(0).t()  # (out, taps + 1)
            grad_w = sums[:, :taps].reshape_as(weight) if need_w else None
            grad_b = sums[:, taps] if need_b else None
        if need_x:  # bmm, not matmul, which would copy the gradient transposed
            weights = weight.view(out_channels, taps).t().expand(batch, -1, -1)
            cols = torch.bmm(weights, grad)  # (batch, taps, positions)
            grad_x = F.fold(cols, tuple(x.shape[-2:]), kernel, padding=ctx.padding)
        return grad_x, grad_w, grad_b, None


def _conv(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)``; for a one-channel :class:`nn.Conv2d` through :class:`_SingleChannelConv`."""
    if (
        isinstance(conv, nn.Conv2d)
        and conv.in_channels == 1
        and torch.is_grad_enabled()
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.padding_mode == "zeros"
        and isinstance(conv.padding, tuple)
    ):
        return _SingleChannelConv.apply(x, conv.weight, conv.bias, conv.padding)
    return conv(x)


class ResidualBlock2d(nn.Module):
    """Residual block on ``(batch, C, sub-bands, frames)``: conv -> BN -> SELU -> conv, plus
    the (projected) input, then a 1x3 max-pool; sub-bands stay, time is divided by 3.

    The block is designed RawNet2-style with a pre-activation (BN -> SELU) before the first
    convolution, but the released code computes it and discards the result (its
    ``out = self.conv1(x)``), and the published weights were trained that way. So the
    blocks after the first hold that batch norm (``unused_bn``, for the published parameters
    and checkpoints) but do not apply it, frozen (``requires_grad`` off) at the identity
    its published copies still hold (weight 1, bias 0: they never received a gradient).
    """

    def __init__(self, in_channels: int, out_channels: int, first: bool) -> None:
        super().__init__()
        # The first block follows the front end's own BN + SELU and never had one.
        self.unused_bn = None if first else nn.BatchNorm2d(in_channels).requires_grad_(False)
        # (2, 3) kernel padded (1, 1) then unpadded (0, 1) in frequency: sub-bands stay equal.
        self.conv1 = nn.Conv2d(in_channels, out_channels, (2, 3), padding=(1, 1))
        self.bn = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, (2, 3), padding=(0, 1))
        self.skip = (
            nn.Conv2d(in_channels, out_channels, (1, 3), padding=(0, 1))
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # SELU and the residual sum in place, on tensors no backward pass reads.
        out = self.conv2(F.selu(self._conv_bn(x), inplace=True))
        out += _conv(self.skip, x)
        return max_pool(out, 1, 3)

    def _conv_bn(self, x: torch.Tensor) -> torch.Tensor:
        """``bn(conv1(x))``; with fixed statistics (eval mode) the batch norm folded into the
        convolution's weights and bias, which saves a pass over the block's largest tensor
        (AASIST-L inference, batch 8: 4 %). With batch statistics the batch norm runs as is:
        folding it too (possible for block 1's one-channel input, from the taps' 6 x 6
        covariance) made training steps slower, its backward pass costing more than the
        batch norm's.
        """
        conv, bn = self.conv1, self.bn
        if bn.training or bn.running_mean is None:
            return bn(_conv(conv, x))
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)  # (out,)
        weight = conv.weight * scale.view(-1, 1, 1, 1)
        bias = bn.bias + (conv.bias - bn.running_mean) * scale
        if conv.in_channels == 1 and torch.is_grad_enabled():
            return _SingleChannelConv.apply(x, weight, bias, conv.padding)
        return F.conv2d(x, weight, bias, padding=conv.padding)


class GraphAttention(nn.Module):
    """Graph attention over fully connected nodes ``(batch, nodes, in_dim)`` -> ``out_dim``.

    Attention between nodes i and j: ``w . tanh(W (h_i * h_j))``, divided by a temperature,
    softmax over j; the output is ``BN(W1 sum_j a_ij h_j + W2 h_i)`` then SELU.
    """

    def __init__(self, in_dim: int, out_dim: int, temperature: float, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = nn.Parameter(torch.empty(out_dim, 1))
        nn.init.xavier_normal_(self.att_weight)
        self.with_att = nn.Linear(in_dim, out_dim)
        self.without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(x)
        pairs = x.unsqueeze(2) * x.unsqueeze(1)  # (batch, nodes, nodes, in_dim)
        scores = torch.tanh(self.att_proj(pairs)) @ self.att_weight  # (batch, n, n, 1)
        att = F.softmax(scores.squeeze(-1) / self.temperature, dim=-1)  # (batch, n, n)
        out = self.with_att(att @ x) + self.without_att(x)  # (batch, nodes, out_dim)
        return F.selu(self.bn(out.flatten(0, 1)), inplace=True).view_as(out)


class HeteroGraphAttention(nn.Module):
    """HS-GAL: attention over the union of temporal and spectral nodes plus a stack node.

    The two node types are first projected by type-specific linear maps; the attention score
    of a pair uses one of three weight vectors depending on the pair's types (T-T, S-S,
    T-S). The stack node attends to all nodes with its own projection and weight vector.
    """

    def __init__(self, in_dim: int, out_dim: int, temperature: float, dropout: float) -> None:
        super().__init__()
        self.proj_t = nn.Linear(in_dim, in_dim)
        self.proj_s = nn.Linear(in_dim, in_dim)
        self.drop = nn.Dropout(dropout)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_proj_stack = nn.Linear(in_dim, out_dim)
        # weight vectors for pairs T-T, S-S, T-S (and S-T), and for the stack node
        self.att_weights = nn.Parameter(torch.empty(3, out_dim))
        self.att_weight_stack = nn.Parameter(torch.empty(out_dim, 1))
        nn.init.xavier_normal_(self.att_weights)
        nn.init.xavier_normal_(self.att_weight_stack)
        self.with_att = nn.Linear(in_dim, out_dim)
        self.without_att = nn.Linear(in_dim, out_dim)
        self.with_att_stack = nn.Linear(in_dim, out_dim)
        self.without_att_stack = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.temperature = temperature

    def forward(
        self, temporal: torch.Tensor, spectral: torch.Tensor, stack: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n_t = temporal.shape[1]
        # (batch, n_t + n_s, in_dim)
        x = self.drop(torch.cat([self.proj_t(temporal), self.proj_s(spectral)], dim=1))
        n = x.shape[1]
        is_spectral = torch.arange(n, device=x.device) >= n_t  # (nodes,)
        # pair type: 0 = T-T, 1 = S-S, 2 = mixed
        pair_type = torch.where(
            is_spectral[:, None] == is_spectral[None, :], is_spectral[:, None].long(), 2
        ).expand(n, n)
        hidden = torch.tanh(self.att_proj(x.unsqueeze(2) * x.unsqueeze(1)))  # (b, n, n, out)
        scores = (hidden * self.att_weights[pair_type]).sum(-1)  # (batch, n, n)
        att = F.softmax(scores / self.temperature, dim=-1)

        # stack node: attends to every node
        stack_hidden = torch.tanh(self.att_proj_stack(x * stack))  # (batch, n, out)
        stack_att = F.softmax(stack_hidden @ self.att_weight_stack / self.temperature, dim=1)
        pooled = (stack_att * x).sum(1, keepdim=True)  # (batch, 1, in_dim)
        new_stack = self.with_att_stack(pooled) + self.without_att_stack(stack)  # (b, 1, out)

        out = self.with_att(att @ x) + self.without_att(x)  # (batch, n, out_dim)
        out = F.selu(self.bn(out.flatten(0, 1)), inplace=True).view_as(out)
        return out[:, :n_t], out[:, n_t:], new_stack


class GraphPool(nn.Module):
    """Keep the top ``ratio`` of nodes by a learnt sigmoid score, scaled by that score."""

    def __init__(self, dim: int, ratio: float, dropout: float) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)
        self.drop = nn.Dropout(dropout)
        self.ratio = ratio

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.score(self.drop(x)))  # (batch, nodes, 1)
        keep = max(int(x.shape[1] * self.ratio), 1)
        top = torch.topk(weights, keep, dim=1).indices  # (batch, keep, 1)
        return torch.gather(x * weights, 1, top.expand(-1, -1, x.shape[-1]))


class HSGALBranch(nn.Module):
    """Two stacked HS-GALs with graph pooling in between and residual second layer.

    As in the released code, both layers use the third temperature and both pools the third
    ratio (see the module docstring), and the outputs pass a dropout before the two
    branches are merged.
    """

    def __init__(self, config: AASISTConfig) -> None:
        super().__init__()
        d_in, d_out = config.gat_dims
        temp, drop = config.temperatures[2], config.graph_dropout
        ratio = config.pool_ratios[2]
        self.stack = nn.Parameter(torch.randn(1, 1, d_in))
        self.layer1 = HeteroGraphAttention(d_in, d_out, temp, drop)
        self.layer2 = HeteroGraphAttention(d_out, d_out, temp, drop)
        self.pool_s = GraphPool(d_out, ratio, config.pool_dropout)
        self.pool_t = GraphPool(d_out, ratio, config.pool_dropout)
        self.drop = nn.Dropout(drop)

    def forward(
        self, temporal: torch.Tensor, spectral: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        stack = self.stack.expand(temporal.shape[0], -1, -1)
        t, s, m = self.layer1(temporal, spectral, stack)
        t, s = self.pool_t(t), self.pool_s(s)
        t2, s2, m2 = self.layer2(t, s, m)
        return self.drop(t + t2), self.drop(s + s2), self.drop(m + m2)


class AASIST(nn.Module):
    """Raw audio ``(batch, samples)`` -> logits ``(batch, 2)`` (index 0 fake, 1 real)."""

    def __init__(self, config: AASISTConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or AASISTConfig()
        if config.input_samples < MIN_SAMPLES:
            raise ValueError(f"AASIST needs input_samples >= {MIN_SAMPLES}")
        self.sinc = SincFrontEnd(config.sinc_filters, config.sinc_kernel, config.sample_rate)
        self.front_bn = nn.BatchNorm2d(1)
        widths = (1, *config.encoder_channels)
        self.encoder = nn.Sequential(
            *(
                ResidualBlock2d(widths[k], widths[k + 1], first=k == 0)
                for k in range(len(config.encoder_channels))
            )
        )
        channels = widths[-1]
        sub_bands = config.sinc_filters // 3
        self.position = nn.Parameter(torch.randn(1, sub_bands, channels))
        d_in, d_out = config.gat_dims
        drop = config.graph_dropout
        self.gat_s = GraphAttention(channels, d_in, config.temperatures[0], drop)
        self.gat_t = GraphAttention(channels, d_in, config.temperatures[1], drop)
        self.pool_s = GraphPool(d_in, config.pool_ratios[0], config.pool_dropout)
        self.pool_t = GraphPool(d_in, config.pool_ratios[1], config.pool_dropout)
        self.branches = nn.ModuleList([HSGALBranch(config), HSGALBranch(config)])
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Linear(5 * d_out, 2)

    def _front(self, audio: torch.Tensor) -> torch.Tensor:
        """``|sinc(audio)|`` max-pooled by 3 x 3: ``(batch, 1, filters // 3, frames // 3)``.

        Only the filters and frames that the pooling keeps are computed (69 of 70 filters).
        Without gradients (the filters are fixed, so also in training) the pooling is a 1-D
        max-pool over time, which has a fast kernel, then a maximum over filter triples: the
        same values, and the whole front end takes 0.35 s instead of 0.69 s (batch 8 of 4 s,
        2 cores).
        """
        frames = (audio.shape[-1] - self.sinc.kernel_size + 1) // 3 * 3
        bands = self.config.sinc_filters // 3 * 3
        x = self.sinc(audio, bands=bands, frames=frames or None)  # (batch, bands, frames)
        if x.requires_grad:  # e.g. gradients with respect to the audio
            return max_pool(x.abs().unsqueeze(1), 3, 3)
        x = F.max_pool1d(x.abs_(), 3)  # (batch, bands, frames / 3)
        return x.unflatten(1, (bands // 3, 3)).amax(2).unsqueeze(1)

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        """Raw audio ``(batch, samples)`` -> the read-out ``(batch, 5 * gat_dims[1])``.

        The last hidden layer, before dropout and the output layer: max of ``|.|`` and mean
        of the temporal nodes, the same of the spectral nodes, and the stack node, in that
        order (the released code's ``last_hidden``).
        """
        x = F.selu(self.front_bn(self._front(audio)), inplace=True)  # (b, 1, F/3, T/3)
        x = self.encoder(x).abs()  # (batch, C, sub-bands, frames / 3^7)
        # max(dim), not amax: on a tie the gradient goes to one element, as in the released
        # code (amax would share it out)
        spectral = x.max(dim=3).values.transpose(1, 2) + self.position  # (batch, sub-bands, C)
        temporal = x.max(dim=2).values.transpose(1, 2)  # (batch, frames, C)
        spectral = self.pool_s(self.gat_s(spectral))  # (batch, n_s, d_in)
        temporal = self.pool_t(self.gat_t(temporal))  # (batch, n_t, d_in)

        outputs = [branch(temporal, spectral) for branch in self.branches]
        t = torch.maximum(outputs[0][0], outputs[1][0])  # (batch, n_t', d_out)
        s = torch.maximum(outputs[0][1], outputs[1][1])  # (batch, n_s', d_out)
        m = torch.maximum(outputs[0][2], outputs[1][2]).squeeze(1)  # (batch, d_out)
        return torch.cat(
            [t.abs().max(1).values, t.mean(1), s.abs().max(1).values, s.mean(1), m], dim=1
        )  # (batch, 5 * d_out)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.embed(audio)))
