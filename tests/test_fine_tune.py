"""`train --init-from`: a run that starts from a checkpoint's weights, architecture and
preprocessing, says so, and can keep its front end frozen for a while."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from deepfake_audio.checkpoints import load_checkpoint, read_metadata
from deepfake_audio.cli import main
from deepfake_audio.models.registry import build_model
from deepfake_audio.training.config import FINE_TUNE_LR, init_from_values
from deepfake_audio.training.module import DetectorModule, front_end_parameters
from tests.test_train import SMALL_ARGS, make_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    counts = {"training": {"fake": 8, "real": 8}, "validation": {"fake": 4, "real": 4}}
    return make_corpus(tmp_path_factory.mktemp("fine_tune") / "data", counts)


@pytest.fixture(scope="module")
def base(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch seed_cnn run with RMS normalisation, to start from."""
    run = tmp_path_factory.mktemp("base") / "run"
    args = ["train", "--data-root", str(corpus), "--output-dir", str(run), "--epochs", "1"]
    args += ["--normalization", "rms", "--cache-dir", str(run.parent / "c")]
    assert main([*args, *SMALL_ARGS]) == 0
    return run


def test_init_from_takes_the_architecture_preprocessing_and_a_lower_lr(base: Path) -> None:
    values = init_from_values({"init_from": str(base)})
    assert values["model"] == "seed_cnn" and values["normalization"] == "rms"
    assert values["sample_rate"] == 8000 and values["window_seconds"] == 0.25
    assert values["lr"] == FINE_TUNE_LR
    assert init_from_values({"init_from": str(base), "lr": 0.01})["lr"] == 0.01
    with pytest.raises(ValueError, match="is a seed_cnn model; it cannot start a aasist run"):
        init_from_values({"init_from": str(base), "model": "aasist"})


def test_a_fine_tuned_run_starts_from_the_weights_and_records_it(
    base: Path, corpus: Path, tmp_path: Path
) -> None:
    run = tmp_path / "tuned"
    args = ["train", "--data-root", str(corpus), "--output-dir", str(run), "--epochs", "1"]
    args += ["--init-from", str(base), "--lr", "1e-9", "--cache-dir", str(tmp_path / "c")]
    assert main([*args, *SMALL_ARGS]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["init_from"] == str(base) and config["model"] == "seed_cnn"
    assert config["normalization"] == "rms"  # from the checkpoint, not the default peak
    start = load_checkpoint(base / "fake_or_real_classifier.safetensors").model.state_dict()
    tuned = load_checkpoint(run / "fake_or_real_classifier.safetensors").model.state_dict()
    for key, value in start.items():  # a learning rate of 1e-9 barely moves the weights
        if value.dtype.is_floating_point:
            torch.testing.assert_close(tuned[key], value, atol=1e-5, rtol=0)
    extra = read_metadata(run / "fake_or_real_classifier.safetensors")["extra"]
    assert extra["train_config"]["init_from"] == str(base)


def test_the_front_end_is_frozen_for_the_first_epochs() -> None:
    model = build_model("aasist_l", {"input_samples": 8000})
    front = front_end_parameters(model)
    back = [p for p in model.parameters() if all(p is not f for f in front)]
    assert front and back
    module = DetectorModule(model, lr=1e-3, freeze_front_end=2)  # no trainer: epoch 0
    module.on_train_epoch_start()
    assert not any(p.requires_grad for p in front) and all(p.requires_grad for p in back)
    module.start_epoch = 2  # a resumed run past the frozen epochs
    module.on_train_epoch_start()
    assert all(p.requires_grad for p in front)
    with pytest.raises(ValueError, match="no front end or encoder"):
        front_end_parameters(torch.nn.Linear(2, 2))


def test_freezing_needs_init_from(corpus: Path, tmp_path: Path, capsys) -> None:
    args = ["train", "--data-root", str(corpus), "--output-dir", str(tmp_path / "r")]
    assert main([*args, "--freeze-front-end", "1", *SMALL_ARGS]) == 1
    assert "freeze_front_end needs init_from" in capsys.readouterr().err
