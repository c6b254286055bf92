"""Checkpoints: safetensors weights + JSON metadata; the file alone rebuilds the model."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

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


def _tampered(tmp_path: Path, network, name: str, **changes) -> Path:
    """A copy of a good checkpoint whose metadata fields are replaced by ``changes``."""
    good = save(
        tmp_path / "good.safetensors", network, model_name="seed_cnn", preprocess=PREPROCESS
    )
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in read_metadata(good).items()}
    for key, value in changes.items():
        if value is None:
            meta.pop(key)
        else:
            meta[key] = value if isinstance(value, str) else json.dumps(value)
    path = tmp_path / name
    save_file(load_file(str(good)), str(path), metadata=meta)
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"threshold": "NaN"}, "'threshold' must be a number in \\[0, 1\\], got nan"),
        ({"threshold": 2.0}, "'threshold' must be a number in \\[0, 1\\], got 2.0"),
        ({"preprocess": None}, "'preprocess' is not a preprocessing"),
        ({"model": None}, "'model' must name an architecture"),
        ({"model_config": [1, 2]}, "'model_config' must be an object, got list"),
        ({"model_config": {"input_samples": 10**12}}, "has a 2000-sample window"),
    ],
)
def test_tampered_metadata_is_a_one_line_error(tmp_path, model, changes, message) -> None:
    path = _tampered(tmp_path, model, "bad.safetensors", **changes)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_huge_dims_are_refused_without_allocating(tmp_path, model) -> None:
    """A config asking for a 12-billion-sample window is checked on the meta device."""
    window = {"sample_rate": 16000, "window_seconds": 750000.0, "normalization": "peak"}
    path = _tampered(
        tmp_path, model, "huge.safetensors",
        model_config={"input_samples": 12 * 10**9}, preprocess=window,
    )  # fmt: skip
    with pytest.raises(CheckpointError, match="weights do not fit model seed_cnn"):
        load_checkpoint(path)


def test_a_tampered_checkpoint_in_a_run_folder_is_skipped_with_its_reason(tmp_path, model):
    from deepfake_audio.reports.compare import find_checkpoints

    run = tmp_path / "run"
    run.mkdir()
    save(run / "model_epoch_01_valacc_0.5000.safetensors", model, model_name="seed_cnn",
         preprocess=PREPROCESS)  # fmt: skip
    bad = _tampered(run, model, "model_epoch_02_valacc_0.6000.safetensors", threshold=2.0)
    (run / "good.safetensors").unlink()  # _tampered's source, not part of the run
    found, skipped = find_checkpoints(run)
    assert [p.name for p in found] == ["model_epoch_01_valacc_0.5000.safetensors"]
    assert skipped == [(str(bad), f"{bad}: metadata field 'threshold' must be a number in "
                        "[0, 1], got 2.0")]  # fmt: skip
