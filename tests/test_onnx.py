"""ONNX: ``deepfake-audio export``, the export's agreement and metadata, and ``--backend``.

One small seed_cnn (0.25 s windows at 8 kHz) is exported once, through the command line, for
the whole module (torch's exporter takes seconds); its file is also put in a cache folder
where ``--backend onnx``/``auto`` find it, so no other test exports.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from deepfake_audio.audio import write_audio
from deepfake_audio.checkpoints import copy_with_metadata, load_checkpoint
from deepfake_audio.cli import main
from deepfake_audio.commands import scoring_args
from deepfake_audio.preprocess import sliding_windows
from deepfake_audio.scoring import backends, onnx_export
from deepfake_audio.scoring.engine import score_windows
from deepfake_audio.scoring.fusion import fingerprint
from deepfake_audio.scoring.onnx_export import (
    OnnxError,
    OnnxRunner,
    export_onnx,
    probe_windows,
    read_onnx_metadata,
)
from deepfake_audio.scoring.options import ScoringOptions
from tests.detectors import fake_signal, real_signal, shared_trained_checkpoint

CALIBRATION = {"scale": 1.5, "offset": -0.25, "fitted": {"on": "test"}}
RULE = {"aggregation": "mean", "hop_seconds": 0.125}


@dataclass(frozen=True)
class Exported:
    checkpoint: Path
    onnx: Path
    cache: Path  # a DEEPFAKE_AUDIO_CACHE whose onnx/ holds the export under its cache name
    code: int
    stdout: str


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """The trained test model with a threshold, calibration and rule, exported by the CLI."""
    root = tmp_path_factory.mktemp("onnx")
    checkpoint = copy_with_metadata(
        shared_trained_checkpoint(),
        root / "trained.safetensors",
        {"threshold": 0.37, "calibration": CALIBRATION, "scoring_rule": RULE},
    )
    out = root / "export" / "trained.onnx"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["export", "--model", str(checkpoint), "--format", "onnx", str(out)])
    cache = root / "cache"
    if code == 0:
        cached = backends.export_path(cache / "onnx", fingerprint(checkpoint))
        cached.parent.mkdir(parents=True)
        shutil.copy(out, cached)
    return Exported(checkpoint, out, cache, code, stdout.getvalue())


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Labelled clips: noise (fake) and tones (real), one shorter than a window."""
    root = tmp_path_factory.mktemp("onnx_clips")
    for i, seconds in enumerate((1.0, 0.7, 0.1)):
        write_audio(root / "fake" / f"f{i}.wav", fake_signal(seconds, seed=i), 16000)
        write_audio(root / "real" / f"r{i}.wav", real_signal(seconds, seed=i), 16000)
    return root


def test_the_cli_exports_a_file_that_describes_itself(exported: Exported) -> None:
    assert exported.code == 0
    assert exported.stdout.startswith(f"wrote {exported.onnx}: seed_cnn (2000 samples")
    assert not [p for p in exported.onnx.parent.iterdir() if p.name.endswith(".tmp")]
    meta = read_onnx_metadata(exported.onnx)
    assert meta["format"] == onnx_export.FORMAT and meta["model"] == "seed_cnn"
    assert (meta["sample_rate"], meta["window_samples"], meta["window_seconds"]) == (
        8000,
        2000,
        0.25,
    )
    assert meta["hop_samples"] == 1000  # the stored rule's 0.125 s hop
    assert meta["normalization"] == "peak" and meta["trim_silence"] is False
    assert meta["threshold"] == 0.37
    assert meta["calibration"] == CALIBRATION and meta["scoring_rule"] == RULE
    assert meta["source_sha1"] == fingerprint(exported.checkpoint)
    assert meta["source_file"] == "trained.safetensors"
    assert meta["package_version"]


def test_onnxruntime_scores_windows_as_torch_does(exported: Exported) -> None:
    detector = load_checkpoint(exported.checkpoint)
    windows = np.concatenate(
        [
            probe_windows(detector.preprocess, count=5, seed=3),
            sliding_windows(fake_signal(1.0, 8000, seed=9), detector.preprocess)[0],
            sliding_windows(real_signal(1.0, 8000, seed=9), detector.preprocess)[0],
        ]
    )
    runner = OnnxRunner(exported.onnx)
    expected = score_windows(detector.model, windows)
    for batch in (1, 3, len(windows)):
        np.testing.assert_allclose(runner(windows, batch), expected, atol=1e-4)
    assert np.ptp(expected) > 0.1  # a model that tells windows apart, not a constant


def _predict(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["predict", *args, "--json", "--workers", "1"]) == 0
    return json.loads(capsys.readouterr().out)


def test_backend_onnx_predicts_what_torch_does(
    exported: Exported, clips: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("DEEPFAKE_AUDIO_CACHE", str(exported.cache))
    args = [str(clips), "--model", str(exported.checkpoint)]
    torch_doc = _predict([*args, "--backend", "torch"], capsys)
    onnx_doc = _predict([*args, "--backend", "onnx"], capsys)
    assert len(onnx_doc["files"]) == 6
    for ours, theirs in zip(torch_doc["files"], onnx_doc["files"], strict=True):
        assert ours["path"] == theirs["path"] and ours["verdict"] == theirs["verdict"]
        assert theirs["p_fake"] == pytest.approx(ours["p_fake"], abs=1e-4)
        windows = ours["models"]["trained"]["windows"]
        other = theirs["models"]["trained"]["windows"]
        assert [w["start"] for w in windows] == [w["start"] for w in other]
        assert [w["p_fake"] for w in other] == pytest.approx(
            [w["p_fake"] for w in windows], abs=1e-4
        )
    assert len(list((exported.cache / "onnx").glob("*.onnx"))) == 1  # found, not exported again


def test_backend_onnx_compares_as_torch_does(
    exported: Exported, clips: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("DEEPFAKE_AUDIO_CACHE", str(exported.cache))
    rows = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / backend
        args = ["compare", "--audio-dir", str(clips), "--model", str(exported.checkpoint)]
        args += ["--output-dir", str(out), "--no-progress", "--workers", "1"]
        assert main([*args, "--backend", backend]) == 0
        (table,) = out.glob("model_comparison_*.csv")
        with open(table, newline="", encoding="utf-8") as handle:
            rows[backend] = list(csv.DictReader(handle))
    assert len(rows["onnx"]) == 6
    for ours, theirs in zip(rows["torch"], rows["onnx"], strict=True):
        assert float(theirs["trained_p_fake"]) == pytest.approx(
            float(ours["trained_p_fake"]), abs=1e-4
        )


@pytest.fixture
def cache(exported: Exported, tmp_path: Path) -> Path:
    """A private copy of the onnx cache folder (the export, no decisions yet)."""
    folder = tmp_path / "onnx"
    shutil.copytree(exported.cache / "onnx", folder)
    return folder


def test_auto_measures_once_then_remembers(
    exported: Exported, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured = []
    original = backends.measure

    def counting(*args, **kwargs):
        measured.append(args[2].shape)
        return original(*args, budget=0.2)

    monkeypatch.setattr(backends, "measure", counting)
    detector = load_checkpoint(exported.checkpoint)
    options = ScoringOptions(backend="auto", batch_size=8)
    first = backends.choose_backend(detector, options, cache)
    assert first.measured and measured == [(8, 2000)]
    assert first.backend in ("torch", "onnx") and "windows/s" in first.reason
    (decision,) = json.loads((cache / backends.DECISIONS_FILE).read_text()).values()
    assert decision["backend"] == first.backend and decision["max_delta"] <= 1e-4
    second = backends.choose_backend(detector, options, cache)
    assert not second.measured and len(measured) == 1  # remembered, not measured again
    assert second.backend == first.backend
    assert (second.runner is not None) == (second.backend == "onnx")
    # another batch size is another question
    assert backends.choose_backend(detector, ScoringOptions(backend="auto", batch_size=2), cache)
    assert len(measured) == 2


def test_auto_leaves_a_small_job_on_torch_unless_a_decision_is_remembered(
    exported: Exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One clip does not repay an export: a small job neither exports nor measures, but
    takes what an earlier large job measured."""
    original = backends.measure
    monkeypatch.setattr(backends, "export_onnx", None)  # would fail if called
    detector = load_checkpoint(exported.checkpoint)
    options = ScoringOptions(backend="auto", batch_size=8)
    small = backends.AUTO_MEASURE_MIN_FILES - 1
    choice = backends.choose_backend(detector, options, tmp_path / "empty", files=small)
    assert (choice.backend, choice.measured) == ("torch", False)
    assert "too few" in choice.reason and not (tmp_path / "empty").exists()

    folder = tmp_path / "onnx"
    shutil.copytree(exported.cache / "onnx", folder)
    monkeypatch.setattr(backends, "measure", lambda *a, **k: original(*a, budget=0.2))
    big = backends.choose_backend(detector, options, folder, files=backends.AUTO_MEASURE_MIN_FILES)
    assert big.measured
    later = backends.choose_backend(detector, options, folder, files=1)
    assert (later.backend, later.measured) == (big.backend, False)


def test_auto_remembers_torch_for_a_model_that_does_not_export(
    exported: Exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(detector, path, **kwargs):
        raise OnnxError(f"{detector.path}: model seed_cnn cannot be exported to ONNX (test)")

    monkeypatch.setattr(backends, "export_onnx", fails)
    detector = load_checkpoint(exported.checkpoint)
    options = ScoringOptions(backend="auto", batch_size=4)
    choice = backends.choose_backend(detector, options, tmp_path)
    assert (choice.backend, choice.measured) == ("torch", True)
    assert "cannot be exported" in choice.reason
    monkeypatch.setattr(backends, "export_onnx", None)  # would fail if called again
    again = backends.choose_backend(detector, options, tmp_path)
    assert (again.backend, again.measured) == ("torch", False)
    monkeypatch.setattr(backends, "export_onnx", fails)
    with pytest.raises(OnnxError, match="cannot be exported"):  # asked for: an error
        backends.choose_backend(detector, ScoringOptions(backend="onnx"), tmp_path)


def test_without_onnxruntime_auto_is_torch_and_onnx_a_usage_error(
    exported: Exported, clips: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(backends, "onnx_missing", lambda: ["onnxruntime"])
    detector = load_checkpoint(exported.checkpoint)
    choice = backends.choose_backend(detector, ScoringOptions(backend="auto"), tmp_path)
    assert choice.backend == "torch" and not list(tmp_path.iterdir())
    monkeypatch.setattr(scoring_args, "onnx_missing", lambda: ["onnxruntime"])
    args = ["predict", str(clips), "--model", str(exported.checkpoint), "--backend", "onnx"]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    assert "pip install 'deepfake-audio[onnx]'" in capsys.readouterr().err


def test_an_unknown_backend_in_the_environment_is_a_usage_error(
    exported: Exported, clips: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv(scoring_args.BACKEND_ENV, "tensorrt")
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(clips), "--model", str(exported.checkpoint)])
    assert exit_.value.code == 2
    assert "DEEPFAKE_AUDIO_BACKEND is 'tensorrt'" in capsys.readouterr().err


def test_the_service_settles_its_backends_once(
    exported: Exported, clips: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepfake_audio.serve.service import Service

    monkeypatch.setenv("DEEPFAKE_AUDIO_CACHE", str(exported.cache))
    service = Service([exported.checkpoint], options=ScoringOptions(backend="onnx"))
    try:
        assert [m.get("backend") for m in service.describe()] == ["onnx"]
        clip = clips / "fake" / "f0.wav"
        document = service.analyze(str(clip), "f0.wav", service.options)
        torch_service = Service([exported.checkpoint], options=ScoringOptions())
        expected = torch_service.analyze(str(clip), "f0.wav", torch_service.options)
        torch_service.shutdown()
        assert document["files"][0]["p_fake"] == pytest.approx(
            expected["files"][0]["p_fake"], abs=1e-4
        )
    finally:
        service.shutdown()


def test_export_of_a_panel_says_to_export_its_members(tmp_path: Path, capsys) -> None:
    panel = tmp_path / "panel_run"
    panel.mkdir()
    (panel / "panel.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--model", str(panel), str(tmp_path / "out.onnx")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "is a panel" in err and "export its members one by one" in err
    assert not (tmp_path / "out.onnx").exists()


def test_export_of_a_corrupt_checkpoint_names_the_file(tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a checkpoint at all")
    assert main(["export", "--model", str(broken), str(tmp_path / "out.onnx")]) == 1
    err = capsys.readouterr().err
    assert str(broken) in err and "not a safetensors file" in err
    assert not (tmp_path / "out.onnx").exists()


def test_an_exporter_failure_is_a_clear_error(
    exported: Exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    def unsupported(*args, **kwargs):
        raise RuntimeError("Unsupported operator aten::stft with complex output\n(long trace)")

    monkeypatch.setattr(torch.onnx, "export", unsupported)
    out = tmp_path / "out.onnx"
    with pytest.raises(OnnxError, match=r"trained.safetensors: model seed_cnn cannot be exported"):
        export_onnx(load_checkpoint(exported.checkpoint), out)
    assert not out.exists()


def test_an_export_that_disagrees_with_torch_is_not_written(
    exported: Exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exporter is replaced by the module's export (so this takes no seconds), and torch's
    side of the check is off by 0.05: the check refuses, and no file appears."""
    import onnx
    import torch

    exported_proto = onnx.load(str(exported.onnx))
    del exported_proto.metadata_props[:]

    def program(*args, **kwargs) -> SimpleNamespace:
        proto = onnx.ModelProto()
        proto.CopyFrom(exported_proto)
        return SimpleNamespace(model_proto=proto)

    monkeypatch.setattr(torch.onnx, "export", program)
    shifted = onnx_export.torch_probabilities
    monkeypatch.setattr(
        onnx_export, "torch_probabilities", lambda model, windows: shifted(model, windows) + 0.05
    )
    out = tmp_path / "out.onnx"
    with pytest.raises(OnnxError, match=r"disagrees with torch: max \|delta P\(fake\)\| 0\.05"):
        export_onnx(load_checkpoint(exported.checkpoint), out)
    assert not out.exists() and not list(tmp_path.iterdir())
    # within the tolerance, the same export is written, its metadata once
    monkeypatch.setattr(onnx_export, "torch_probabilities", shifted)
    report = export_onnx(load_checkpoint(exported.checkpoint), out)
    assert report.max_delta <= 1e-4 and read_onnx_metadata(out)["threshold"] == 0.37


def test_a_file_that_is_not_an_export_is_named(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01 not protobuf")
    with pytest.raises(OnnxError, match=r"junk\.onnx: not an ONNX model"):
        read_onnx_metadata(junk)
