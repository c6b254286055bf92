"""Checkpoints: safetensors weights + JSON metadata; the file alone rebuilds the model."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from deepfake_audio import __version__
from deepfake_audio.checkpoints import CheckpointError, load_checkpoint, read_metadata
from deepfake_audio.checkpoints import save_checkpoint as save
from deepfake_audio.models.registry import build_model
from deepfake_audio.preprocess import PreprocessConfig

PREPROCESS = PreprocessConfig(sample_rate=8000, window_seconds=0.25, normalization="rms")


@pytest.fixture
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("seed_cnn", {"input_samples": 2000, "channels": [4, 8, 16]})


def test_round_trip_without_naming_the_architecture(tmp_path: Path, model) -> None:
    path = save(
        tmp_path / "m.safetensors",
        model,
        model_name="seed_cnn",
        preprocess=PREPROCESS,
        metrics={"val_accuracy": 0.75, "val_eer": 0.2},
        threshold=0.37,
        extra={"epoch": 3, "manifest_fingerprint": "abc"},
    )
    detector = load_checkpoint(path)
    assert detector.model_name == "seed_cnn"
    assert detector.model.config == model.config
    assert detector.preprocess == PREPROCESS
    assert detector.threshold == pytest.approx(0.37)
    assert not detector.model.training
    for key, value in model.state_dict().items():
        assert torch.equal(detector.model.state_dict()[key], value)
    audio = torch.randn(3, 2000)
    with torch.no_grad():
        assert torch.allclose(detector.model(audio), model.eval()(audio))
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary left


def test_metadata_is_complete_and_readable_without_weights(tmp_path: Path, model) -> None:
    path = save(
        tmp_path / "m.safetensors",
        model,
        model_name="seed_cnn",
        preprocess=PREPROCESS,
        metrics={"val_eer": 0.1},
        threshold=0.4,
        extra={"epoch": 1},
    )
    meta = read_metadata(path)
    assert meta["model"] == "seed_cnn"
    assert meta["model_config"]["channels"] == [4, 8, 16]
    assert meta["preprocess"] == PREPROCESS.to_dict()
    assert meta["labels"] == {"0": "fake", "1": "real"}
    assert meta["metrics"] == {"val_eer": 0.1}
    assert meta["threshold"] == 0.4
    assert meta["package_version"] == __version__
    assert meta["extra"] == {"epoch": 1}


def test_file_is_safetensors_not_pickle(tmp_path: Path, model) -> None:
    path = save(tmp_path / "m.safetensors", model, model_name="seed_cnn", preprocess=PREPROCESS)
    data = path.read_bytes()
    (header_size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_size])
    assert "__metadata__" in header  # the safetensors layout: u64 size, JSON header, tensors
    assert set(header) - {"__metadata__"} == set(model.state_dict())


def test_not_a_checkpoint(tmp_path: Path) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_checkpoint(junk)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a deepfake-audio checkpoint"):
        load_checkpoint(foreign)


def test_weights_that_do_not_fit(tmp_path: Path, model) -> None:
    path = save(tmp_path / "m.safetensors", model, model_name="seed_cnn", preprocess=PREPROCESS)
    meta = {
        k: json.dumps(v) if not isinstance(v, str) else v for k, v in read_metadata(path).items()
    }
    bad = tmp_path / "bad.safetensors"
    save_file({"w": torch.zeros(2)}, str(bad), metadata=meta)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(bad)
