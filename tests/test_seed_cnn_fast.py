"""seed_cnn's channels-last forward computes what the plain Conv1d/ReLU/MaxPool1d stack does.

The reference is written here as the original model was: ``nn.Sequential`` blocks run on
``(batch, 1, samples)``; it loads the fast model's state dict, so the keys are the ones
existing checkpoints hold.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deepfake_audio.models.seed_cnn import SeedCNN, SeedCNNConfig, _ChannelsLastConv

CONFIGS = {
    "default": SeedCNNConfig(dropout=0.0),  # 2 s windows, the shipped model
    "short": SeedCNNConfig(input_samples=4000, channels=(8, 16, 32), dropout=0.0),
    # a length no pool divides, an even kernel ("same" pads it unevenly), pool 3
    "odd": SeedCNNConfig(
        input_samples=4003, channels=(4, 6, 8), kernel_size=8, pool_size=3, dropout=0.0
    ),
}


class Reference(nn.Module):
    """The original formulation: ``classifier(features(audio.unsqueeze(1)))``."""

    def __init__(self, config: SeedCNNConfig) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        in_channels, frames = 1, config.input_samples
        for out_channels in config.channels:
            blocks += [
                nn.Conv1d(in_channels, out_channels, config.kernel_size, padding="same"),
                nn.ReLU(),
                nn.MaxPool1d(config.pool_size),
            ]
            in_channels, frames = out_channels, frames // config.pool_size
        self.features = nn.Sequential(*blocks)
        head: list[nn.Module] = [nn.Flatten()]
        width = in_channels * frames
        for units in config.dense:
            head += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(config.dropout)]
            width = units
        head.append(nn.Linear(width, 2))
        self.classifier = nn.Sequential(*head)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(audio.unsqueeze(1)))


def _pair(config: SeedCNNConfig, seed: int = 0) -> tuple[SeedCNN, Reference]:
    torch.manual_seed(seed)
    model = SeedCNN(config)
    with torch.no_grad():  # larger logits than the default init: softmax far from 0.5
        for p in model.parameters():
            p.mul_(3.0)
    reference = Reference(config)
    reference.load_state_dict(model.state_dict())  # strict: the same keys and shapes
    return model, reference


def _audio(batch: int, samples: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    audio = torch.randn(batch, samples, generator=generator) * 0.3
    audio[0, : samples // 3] = 0.0  # a silent stretch: ties in every max-pool window
    return audio


def test_state_dict_keys_are_the_checkpoints():
    keys = list(SeedCNN().state_dict())
    assert keys == [
        *(f"features.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")),
        *(f"classifier.{i}.{p}" for i in (1, 4, 7) for p in ("weight", "bias")),
    ]


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_outputs_match_the_reference(name, batch, mode):
    config = CONFIGS[name]
    model, reference = _pair(config)
    model.train(mode == "train")
    reference.train(mode == "train")
    audio = _audio(batch, config.input_samples)
    with torch.no_grad():
        got, want = model(audio), reference(audio)
    assert got.shape == want.shape == (batch, 2)
    p_got, p_want = torch.softmax(got, -1)[:, 0], torch.softmax(want, -1)[:, 0]
    assert (p_got - p_want).abs().max() <= 1e-4
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    with torch.inference_mode():  # the scoring engine's mode
        torch.testing.assert_close(model(audio), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_gradients_match_the_reference(name, mode):
    config = CONFIGS[name]
    model, reference = _pair(config)
    model.train(mode == "train")
    reference.train(mode == "train")
    audio = _audio(3, config.input_samples)
    labels = torch.tensor([0, 1, 0])
    inputs = []
    for net in (model, reference):
        x = audio.clone().requires_grad_()
        nn.functional.cross_entropy(net(x), labels).backward()
        inputs.append(x.grad)
    for (key, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        scale = q.grad.abs().max().clamp_min(1e-12)
        assert (p.grad - q.grad).abs().max() / scale < 1e-4, key
    torch.testing.assert_close(inputs[0], inputs[1], rtol=1e-4, atol=1e-6)


def test_a_training_step_moves_both_alike():
    config = CONFIGS["short"]
    model, reference = _pair(config)
    audio, labels = _audio(4, config.input_samples), torch.tensor([0, 1, 1, 0])
    for net in (model, reference):
        net.train()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
        for _ in range(3):
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(audio), labels).backward()
            optimizer.step()
    for (key, p), q in zip(
        model.state_dict().items(), reference.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=key)


def test_channels_last_conv_gradients_are_exact():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 1, 17, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(4, 3, 1, 5, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64)
    inputs = (x.requires_grad_(), weight.requires_grad_(), bias.requires_grad_(), 2)
    assert torch.autograd.gradcheck(_ChannelsLastConv.apply, inputs)


def test_swapped_layers_fall_back_to_the_modules():
    """A module pass that replaces a layer (quantisation, a hook-carrying subclass) gets the
    plain module stack, which runs whatever it put there."""

    class CountingReLU(nn.ReLU):
        calls = 0

        def forward(self, x):
            CountingReLU.calls += 1
            return super().forward(x)

    config = CONFIGS["short"]
    model, reference = _pair(config)
    model.features[1] = CountingReLU()
    model.eval()
    audio = _audio(2, config.input_samples)
    with torch.no_grad():
        torch.testing.assert_close(model(audio), reference.eval()(audio))
    assert CountingReLU.calls == 1
