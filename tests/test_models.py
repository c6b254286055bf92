"""The model registry and seed_cnn: shapes, sizes, configs, one training step per model."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from deepfake_audio.models.registry import (
    MODELS,
    build_model,
    config_dict,
    make_config,
    model_names,
)


def _small(name: str) -> dict:
    """A config small enough for a quick CPU step (a short input where the model has one)."""
    fields = {f.name for f in dataclasses.fields(MODELS[name].config_class)}
    return {"input_samples": 4000} if "input_samples" in fields else {}


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(ValueError, match="seed_cnn"):
        build_model("no_such_model")


def test_unknown_config_key_is_an_error():
    with pytest.raises(ValueError, match="unknown option"):
        make_config("seed_cnn", {"kernal_size": 3})


def test_lists_become_tuples_and_config_round_trips():
    model = build_model("seed_cnn", {"channels": [8, 16, 32], "input_samples": 4000})
    assert model.config.channels == (8, 16, 32)
    assert make_config("seed_cnn", config_dict(model)) == model.config


def test_seed_cnn_is_the_original_design_under_10m_parameters():
    model = build_model("seed_cnn")  # 2 s at 16 kHz
    assert model.config.input_samples == 32000
    assert model.config.channels == (32, 64, 128)
    assert model.config.dense == (128, 64)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    pools = [m for m in model.modules() if isinstance(m, torch.nn.MaxPool1d)]
    assert [c.out_channels for c in convs] == [32, 64, 128] and len(pools) == 3
    params = sum(p.numel() for p in model.parameters())
    assert 8_000_000 < params < 10_000_000  # 128 x 500 frames into Dense 128 dominates
    with torch.no_grad():
        assert model.eval()(torch.zeros(2, 32000)).shape == (2, 2)


def test_too_short_input_is_a_clear_error():
    with pytest.raises(ValueError, match="too short"):
        build_model("seed_cnn", {"input_samples": 32})


@pytest.mark.parametrize("name", model_names())
def test_one_training_step(name):
    torch.manual_seed(0)
    config = _small(name)
    model = build_model(name, config)
    samples = config.get("input_samples", 16000)
    audio = torch.randn(4, samples)  # (batch, samples)
    labels = torch.tensor([0, 1, 0, 1])
    logits = model(audio)
    assert logits.shape == (4, 2)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


# --- AASIST's training path: the optimised operations give the plain formulation's numbers --


def _plain_bn(bn: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Batch norm over every axis but the channels (axis 1): batch statistics in training
    mode (running statistics left alone), else the running statistics."""
    if bn.training:
        return torch.nn.functional.batch_norm(x, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
    return torch.nn.functional.batch_norm(
        x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps
    )


def _plain_aasist(model, audio: torch.Tensor) -> torch.Tensor:
    """AASIST's logits written plainly (conv2d, max_pool2d, max(dim), one matmul per pair
    type), with the model's parameters, no dropout: the reference for the optimised code."""
    F = torch.nn.functional

    def linear(layer, x):
        return F.linear(x, layer.weight, layer.bias)

    def graph_bn(bn, x):  # (batch, nodes, dim): statistics over batch and nodes
        return _plain_bn(bn, x.reshape(-1, x.shape[-1])).view_as(x)

    def gat(layer, x):
        hidden = torch.tanh(linear(layer.att_proj, x[:, :, None, :] * x[:, None, :, :]))
        att = F.softmax((hidden @ layer.att_weight).squeeze(-1) / layer.temperature, dim=-1)
        out = linear(layer.with_att, att @ x) + linear(layer.without_att, x)
        return F.selu(graph_bn(layer.bn, out))

    def hs_gal(layer, t, s, stack):
        n_t = t.shape[1]
        x = torch.cat([linear(layer.proj_t, t), linear(layer.proj_s, s)], dim=1)
        hidden = torch.tanh(linear(layer.att_proj, x[:, :, None, :] * x[:, None, :, :]))
        w_tt, w_ss, w_mixed = layer.att_weights
        rows_t = torch.cat([hidden[:, :n_t, :n_t] @ w_tt, hidden[:, :n_t, n_t:] @ w_mixed], 2)
        rows_s = torch.cat([hidden[:, n_t:, :n_t] @ w_mixed, hidden[:, n_t:, n_t:] @ w_ss], 2)
        att = F.softmax(torch.cat([rows_t, rows_s], 1) / layer.temperature, dim=-1)
        stack_hidden = torch.tanh(linear(layer.att_proj_stack, x * stack))
        stack_att = F.softmax(stack_hidden @ layer.att_weight_stack / layer.temperature, dim=1)
        new_stack = linear(layer.with_att_stack, stack_att.transpose(1, 2) @ x)
        new_stack = new_stack + linear(layer.without_att_stack, stack)
        out = F.selu(
            graph_bn(layer.bn, linear(layer.with_att, att @ x) + linear(layer.without_att, x))
        )
        return out[:, :n_t], out[:, n_t:], new_stack

    def graph_pool(pool, x):
        scores = torch.sigmoid(linear(pool.score, x))
        top = torch.topk(scores, max(int(x.shape[1] * pool.ratio), 1), dim=1).indices
        return torch.gather(x * scores, 1, top.expand(-1, -1, x.shape[-1]))

    x = F.conv1d(audio.unsqueeze(1), model.sinc.filters)  # (batch, filters, frames)
    x = F.selu(_plain_bn(model.front_bn, F.max_pool2d(x.abs().unsqueeze(1), (3, 3))))
    for block in model.encoder:
        out = F.conv2d(x, block.conv1.weight, block.conv1.bias, padding=(1, 1))
        out = F.conv2d(F.selu(_plain_bn(block.bn, out)), block.conv2.weight, block.conv2.bias,
                       padding=(0, 1))  # fmt: skip
        if isinstance(block.skip, torch.nn.Conv2d):
            x = F.conv2d(x, block.skip.weight, block.skip.bias, padding=(0, 1))
        x = F.max_pool2d(out + x, (1, 3))
    x = x.abs()
    spectral = graph_pool(
        model.pool_s, gat(model.gat_s, x.max(3).values.transpose(1, 2) + model.position)
    )
    temporal = graph_pool(model.pool_t, gat(model.gat_t, x.max(2).values.transpose(1, 2)))
    outputs = []
    for branch in model.branches:
        stack = branch.stack.expand(audio.shape[0], -1, -1)
        t, s, m = hs_gal(branch.layer1, temporal, spectral, stack)
        t, s = graph_pool(branch.pool_t, t), graph_pool(branch.pool_s, s)
        t2, s2, m2 = hs_gal(branch.layer2, t, s, m)
        outputs.append((t + t2, s + s2, m + m2))
    t, s, m = (torch.max(a, b) for a, b in zip(*outputs, strict=True))
    hidden = [t.abs().max(1).values, t.mean(1), s.abs().max(1).values, s.mean(1), m.squeeze(1)]
    return linear(model.out, torch.cat(hidden, dim=1))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_aasist_training_step_matches_the_plain_formulation(mode):
    """Loss and every parameter gradient of a training step (no dropout) equal the plain
    formulation's, with a stretch of digital silence in one clip (as padding gives). Ties
    in the pools leave parameter gradients alone there (equal inputs): the pool's own test
    checks where its gradient goes. In eval mode (running statistics, which the model folds
    into its convolutions) too."""
    from deepfake_audio.models.aasist import AASIST, AASISTLConfig

    torch.manual_seed(0)
    config = AASISTLConfig(input_samples=12000, dropout=0.0, graph_dropout=0.0, pool_dropout=0.0)
    # float64: the pools route gradients to their maxima, so a rounding difference upstream
    # of a near-tie moves gradient; in float64 there is none to speak of
    model = AASIST(config).double().train()
    audio = torch.randn(4, 12000, dtype=torch.float64)
    audio[1, 3000:9000] = 0.0
    if mode == "eval":
        with torch.no_grad():
            model(audio)  # running statistics that are not the initial ones
        model.eval()
    labels = torch.tensor([0, 1, 1, 0])
    losses, grads = [], []
    for forward in (model, lambda a: _plain_aasist(model, a)):
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(forward(audio), labels)
        loss.backward()
        losses.append(loss.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-10, atol=1e-12)
    assert grads[0].keys() == grads[1].keys()
    # Biases right before a training-mode batch norm have a true gradient of zero: theirs
    # is rounding noise, hence an absolute tolerance on the scale of all gradients.
    scale = max(g.abs().max().item() for g in grads[1].values())
    for name, grad in grads[0].items():
        torch.testing.assert_close(grad, grads[1][name], rtol=1e-8, atol=1e-10 * scale, msg=name)


@pytest.mark.parametrize("window", [2, 3, 4])
def test_aasist_time_pool_gradient_is_max_pool2d_s(window):
    """The encoder's pool: max_pool2d's values and gradient (to the first of tied maxima),
    with a remainder of frames dropped."""
    from deepfake_audio.models.aasist import max_pool

    torch.manual_seed(0)
    x = torch.randint(0, 4, (2, 3, 5, 7 * window + 1)).float()  # many ties
    grad = torch.randn(2, 3, 5, 7)
    ours, ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, expected = max_pool(ours, 1, window), torch.nn.functional.max_pool2d(ref, (1, window))
    assert torch.equal(out, expected)
    out.backward(grad)
    expected.backward(grad)
    assert torch.equal(ours.grad, ref.grad)


@pytest.mark.parametrize(("kernel", "padding"), [((2, 3), (1, 1)), ((1, 3), (0, 1))])
def test_aasist_single_channel_convolution_gradients(kernel, padding):
    from deepfake_audio.models.aasist import _conv

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 5, kernel, padding=padding)
    x = torch.randn(3, 1, 6, 40, requires_grad=True)
    grad = torch.randn_like(conv(x))
    results = []
    for forward in (lambda: _conv(conv, x), lambda: conv(x)):
        conv.zero_grad()
        x.grad = None
        forward().backward(grad)
        results.append([x.grad.clone(), conv.weight.grad.clone(), conv.bias.grad.clone()])
    for ours, ref in zip(*results, strict=True):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_aasist_front_end_is_the_plain_sinc_pooling():
    """Only the kept filters and frames are computed; the values are those of all of them."""
    from deepfake_audio.models.aasist import AASIST, AASISTLConfig

    model = AASIST(AASISTLConfig(input_samples=5000)).eval()
    audio = torch.randn(2, 5003)  # 4875 frames: 1625 pooled, no remainder; and one with
    for samples in (5003, 5000):  # a remainder of 2 frames
        with torch.no_grad():
            full = torch.nn.functional.conv1d(audio[:, :samples].unsqueeze(1), model.sinc.filters)
            expected = torch.nn.functional.max_pool2d(full.abs().unsqueeze(1), (3, 3))
            assert torch.equal(model._front(audio[:, :samples]), expected)
        # and with gradients to the audio (max_pool2d's own path)
        wanting = audio[:, :samples].clone().requires_grad_()
        assert torch.equal(model._front(wanting).detach(), expected)
