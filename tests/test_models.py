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
