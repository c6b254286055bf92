"""The built-in pretrained models: by name everywhere, listed, with their provenance, and
giving the published model's probabilities on its reference inputs through `predict`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deepfake_audio.audio import write_audio
from deepfake_audio.checkpoints import final_model_path, load_checkpoint, read_metadata
from deepfake_audio.cli import main
from deepfake_audio.pretrained import FOLDER, LICENCE_FILE, PRETRAINED
from deepfake_audio.pretrained.convert import import_clovaai_aasist
from tests.test_clovaai_aasist import FIXTURES, to_source

REFERENCE = FIXTURES / "reference_outputs.npz"


def test_names_resolve_to_packaged_checkpoints_with_their_provenance() -> None:
    assert (FOLDER / LICENCE_FILE).read_text().startswith("Copyright (c) 2021-present NAVER")
    for name, spec in PRETRAINED.items():
        assert final_model_path(name) == spec.path and spec.path.is_file()
        metadata = read_metadata(spec.path)
        imported = metadata["extra"]["imported"]
        assert imported["source_sha1"] == spec.source_sha1 and "MIT" in imported["licence"]
        assert imported["training_data"] == "ASVspoof 2019 LA train"
        assert metadata["preprocess"] == {
            "sample_rate": 16000, "window_seconds": 4.0375, "normalization": "none",
        }  # fmt: skip
        detector = load_checkpoint(final_model_path(name))
        assert sum(p.numel() for p in detector.model.parameters()) == spec.parameters
        assert detector.calibration.is_identity  # not calibrated for anyone's data


def test_predict_by_name_gives_the_published_probabilities(tmp_path: Path, capsys) -> None:
    """The reference inputs, written as float WAV files and judged by name, get the softmax
    of the original implementation's logits."""
    with np.load(REFERENCE) as data:
        inputs, names = data["inputs"], [str(n) for n in data["names"]]
        logits = data["AASIST-L_logits"]
    for name, samples in zip(names, inputs, strict=True):
        write_audio(tmp_path / f"{name}.wav", samples, 16000, subtype="FLOAT")
    args = ["predict", str(tmp_path), "--model", "aasist_l-asvspoof2019", "--json"]
    assert main([*args, "--no-progress", "--workers", "1"]) == 0
    files = {Path(f["path"]).stem: f for f in json.loads(capsys.readouterr().out)["files"]}
    expected = torch.softmax(torch.from_numpy(logits).double(), dim=-1)[:, 0].numpy()
    got = np.array([files[name]["p_fake"] for name in names])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert all(f["decision"]["calibrated"] is False for f in files.values())


def test_models_lists_architectures_and_pretrained(capsys) -> None:
    assert main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert {a["name"] for a in listing["architectures"]} >= {"seed_cnn", "aasist", "aasist_l"}
    by_name = {p["name"]: p for p in listing["pretrained"]}
    assert by_name["aasist_l-asvspoof2019"]["parameters"] == 85_306
    assert "EER 0.99 %" in by_name["aasist_l-asvspoof2019"]["reported"]
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "aasist-asvspoof2019" in text and "MIT" in text


def test_import_weights_writes_the_same_checkpoint(tmp_path: Path) -> None:
    """A published-format state dict (rebuilt from the built-in weights) and its config, through
    the command, give back the built-in tensors; its SHA-1 names its provenance or not."""
    spec = PRETRAINED["aasist_l-asvspoof2019"]
    source = to_source(load_checkpoint(spec.path).model.state_dict())
    pth = tmp_path / "AASIST-L.pth"
    torch.save(source, pth)
    configs = json.loads((FIXTURES / "configs.json").read_text())
    config = tmp_path / "AASIST-L.model_config.json"
    config.write_text(json.dumps(configs["AASIST-L"]["source_config"]))
    out = tmp_path / "converted.safetensors"
    args = ["import-weights", "--format", "clovaai-aasist", str(pth), "--config", str(config)]
    assert main([*args, "--output", str(out)]) == 0
    converted = load_checkpoint(out).model.state_dict()
    for key, tensor in load_checkpoint(spec.path).model.state_dict().items():
        assert torch.equal(converted[key], tensor), key
    imported = read_metadata(out)["extra"]["imported"]
    assert imported["source_sha1"] == hashlib.sha1(pth.read_bytes()).hexdigest()
    assert "licence" not in imported  # not the published file's bytes: no facts claimed
    with pytest.raises(ValueError, match="unused"):
        del source["out_layer.bias"], source["pos_S"]
        source["junk"] = torch.zeros(1)
        torch.save(source, pth)
        import_clovaai_aasist(pth, config, tmp_path / "bad.safetensors")
