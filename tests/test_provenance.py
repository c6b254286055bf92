"""Every output says where it came from: package version, command line, model files by SHA-256."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from deepfake_audio import __version__
from deepfake_audio.audio import write_audio
from deepfake_audio.cli import main
from tests.detectors import fake_signal, real_signal, shared_trained_checkpoint


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("provenance_data")
    for s, split in enumerate(("training", "validation", "testing")):
        for i in range(2):
            seed = 10 * s + i
            write_audio(root / split / "fake" / f"f{i}.wav", fake_signal(0.5, seed=seed), 16000)
            write_audio(root / split / "real" / f"r{i}.wav", real_signal(0.5, seed=seed), 16000)
    return root


def _check(document: dict, command: str, models: list[Path]) -> None:
    assert document["package_version"] == __version__
    assert document["command_line"].startswith(f"deepfake-audio {command} ")
    assert [m["name"] for m in document["models"]] == [m.name for m in models]
    for entry, model in zip(document["models"], models, strict=True):
        assert entry["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()


def test_every_output_carries_its_provenance(data: Path, tmp_path: Path, capsys) -> None:
    model = shared_trained_checkpoint()
    quiet = ["--no-progress", "--cache-dir", str(tmp_path / "cache")]
    assert main(["predict", str(data / "testing"), "-m", str(model), "--json"]) == 0
    _check(json.loads(capsys.readouterr().out)["provenance"], "predict", [model])

    out = tmp_path / "eval"
    assert (
        main(["evaluate", "--data", str(data), "-m", str(model), "--output-dir", str(out), *quiet])
        == 0
    )
    _check(json.loads((out / "metrics.json").read_text())["provenance"], "evaluate", [model])

    out = tmp_path / "cmp"
    args = ["compare", "--audio-dir", str(data / "testing"), "--model", str(model)]
    assert main([*args, "--output-dir", str(out), "--no-progress"]) == 0
    (sidecar,) = out.glob("comparison_*.json")
    document = json.loads(sidecar.read_text())
    _check(document, "compare", [model])
    assert {(out / name).is_file() for name in document["files"].values()} == {True}

    fusion = tmp_path / "fusion.json"
    args = ["fuse", "--data", str(data), "-m", str(model), "-m", str(model), "-o", str(fusion)]
    assert main([*args, *quiet]) == 0
    _check(json.loads(fusion.read_text())["fitted"]["provenance"], "fuse", [model, model])

    report = tmp_path / "audit.json"
    assert main(["audit", str(data), "--json", str(report), *quiet]) == 0
    _check(json.loads(report.read_text())["provenance"], "audit", [])
