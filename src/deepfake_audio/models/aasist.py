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

    Same result as ``F.max_pool2d(x, (freq, time))``. Without gradients a reshape and a
    reduction is faster on CPU (no index bookkeeping; 1.26x for AASIST-L inference); with
    gradients ``max_pool2d`` wins (1.12x per training step), because the reduction's
    backward pass compares every element with the maximum again.
    """
    if x.requires_grad:
        return F.max_pool2d(x, (freq, time))
    b, c, f, t = x.shape
    f, t = f // freq, t // time
    x = x[:, :, : f * freq, : t * time].reshape(b, c, f, freq, t, time)
    return x.amax(dim=(3, 5))


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
        out = self.conv2(F.selu(self.bn(self.conv1(x))))
        return max_pool(out + self.skip(x), 1, 3)


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
        return F.selu(self.bn(out.transpose(1, 2)).transpose(1, 2))


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
        out = F.selu(self.bn(out.transpose(1, 2)).transpose(1, 2))
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

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        """Raw audio ``(batch, samples)`` -> the read-out ``(batch, 5 * gat_dims[1])``.

        The last hidden layer, before dropout and the output layer: max of ``|.|`` and mean
        of the temporal nodes, the same of the spectral nodes, and the stack node, in that
        order (the released code's ``last_hidden``).
        """
        x = self.sinc(audio).abs().unsqueeze(1)  # (batch, 1, filters, frames)
        x = F.selu(self.front_bn(max_pool(x, 3, 3)))  # (batch, 1, filters/3, frames/3)
        x = self.encoder(x)  # (batch, C, sub-bands, frames / 3^7)
        x = x.abs()
        spectral = x.amax(dim=3).transpose(1, 2) + self.position  # (batch, sub-bands, C)
        temporal = x.amax(dim=2).transpose(1, 2)  # (batch, frames, C)
        spectral = self.pool_s(self.gat_s(spectral))  # (batch, n_s, d_in)
        temporal = self.pool_t(self.gat_t(temporal))  # (batch, n_t, d_in)

        outputs = [branch(temporal, spectral) for branch in self.branches]
        t = torch.maximum(outputs[0][0], outputs[1][0])  # (batch, n_t', d_out)
        s = torch.maximum(outputs[0][1], outputs[1][1])  # (batch, n_s', d_out)
        m = torch.maximum(outputs[0][2], outputs[1][2]).squeeze(1)  # (batch, d_out)
        return torch.cat(
            [t.abs().amax(1), t.mean(1), s.abs().amax(1), s.mean(1), m], dim=1
        )  # (batch, 5 * d_out)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.embed(audio)))
