"""``deepfake-audio predict``: verdicts, thresholds, per-window JSON for long files."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from deepfake_audio.audio import write_audio
from deepfake_audio.checkpoints import load_checkpoint
from deepfake_audio.cli import main
from deepfake_audio.data.listing import scoring_inputs
from deepfake_audio.reports.predict import predictions
from deepfake_audio.scoring.engine import score_table
from deepfake_audio.scoring.options import ScoringOptions
from tests.detectors import (
    fake_signal,
    real_signal,
    shared_trained_checkpoint,
    untrained_checkpoint,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("predict_models")
    trained = folder / "trained.safetensors"
    shutil.copy(shared_trained_checkpoint(), trained)
    # The stored threshold is the default: give one a distinctive value.
    other = untrained_checkpoint(folder / "other.safetensors", seed=3, threshold=0.4123)
    return {"trained": trained, "other": other}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict_audio")
    return {
        "call": write_audio(root / "call_60s.flac", real_signal(60.0, seed=5), 16000),
        "fake": write_audio(root / "folder" / "noise.mp3", fake_signal(1.5, seed=6), 16000),
        "real": write_audio(root / "folder" / "tone.ogg", real_signal(1.5, 44100, seed=7), 44100),
        "broken": _broken(root / "folder" / "broken.wav"),
    }


def _broken(path: Path) -> Path:
    path.write_bytes(b"RIFF\xff\x00\x00\x00WAVEfmt ")
    return path


def test_json_on_a_60_s_file_reports_every_window(models, clips, capsys) -> None:
    code = main(["predict", str(clips["call"]), "--model", str(models["trained"]), "--json"])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    (entry,) = document["files"]
    assert entry["verdict"] == "REAL"
    assert entry["duration"] == pytest.approx(60.0)
    windows = entry["models"]["trained"]["windows"]
    assert len(windows) == 240  # 60 s / 0.25 s windows
    assert windows[0]["start"] == 0.0 and windows[-1]["end"] == pytest.approx(60.0)
    starts = [w["start"] for w in windows]
    assert starts == sorted(starts)
    assert all(w["end"] - w["start"] == pytest.approx(0.25) for w in windows)
    mean = float(np.mean([w["p_fake"] for w in windows]))
    assert entry["p_fake"] == pytest.approx(mean, abs=1e-6)
    assert entry["threshold"] == 0.5 and entry["model"] == "trained"


def test_lines_use_the_stored_threshold_and_override(models, clips, capsys) -> None:
    folder = clips["fake"].parent
    code = main(["predict", str(folder), "-m", str(models["other"]), "--no-progress"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0  # completed: the broken file is listed, the others judged
    assert len(out) == 3
    assert sum("(eer threshold 0.4123, prior 0.5)" in line for line in out) == 2
    broken = next(line for line in out if "broken.wav" in line)
    assert broken.startswith("ERROR")
    main(["predict", str(clips["fake"]), "-m", str(models["other"]), "--threshold", "0.0"])
    line = capsys.readouterr().out.strip()
    assert line.startswith("FAKE") and "(threshold threshold 0.0000, prior 0.5)" in line


def predict_files(detectors, paths):
    inputs = scoring_inputs(paths)
    good = [i.record for i in inputs if i.problem is None]
    return predictions(score_table(detectors, good, ScoringOptions()), inputs)


def test_trained_model_verdicts(models, clips) -> None:
    detector = load_checkpoint(models["trained"])
    fake, real = predict_files([detector], [clips["fake"], clips["real"]])
    assert (fake.verdict, real.verdict) == ("FAKE", "REAL")


def test_several_models_fuse_to_the_mean(models, clips, capsys) -> None:
    args = ["predict", str(clips["real"]), "-m", str(models["trained"]), "-m", str(models["other"])]
    assert main([*args, "--json", "--aggregate", "max"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["files"]
    members = entry["models"]
    assert set(members) == {"trained", "other"}
    assert entry["model"] == "ensemble"
    assert entry["p_fake"] == pytest.approx(np.mean([m["p_fake"] for m in members.values()]))
    assert entry["threshold"] == pytest.approx((0.5 + 0.4123) / 2)
    for member in members.values():  # --aggregate max: the file score is its worst window
        assert member["p_fake"] == pytest.approx(max(w["p_fake"] for w in member["windows"]))


def test_missing_paths_are_reported_not_fatal(models, clips, tmp_path) -> None:
    entries = scoring_inputs([tmp_path / "nope.wav", clips["fake"].parent])
    assert entries[0].record.path == str(tmp_path / "nope.wav")
    assert entries[0].problem == "no such file or folder"
    assert len(entries) == 4 and all(e.problem is None for e in entries[1:])
    detector = load_checkpoint(models["other"])
    results = predict_files([detector], [clips["real"], tmp_path / "nope.wav", clips["fake"]])
    assert [r.path for r in results] == [
        str(clips["real"]),
        str(tmp_path / "nope.wav"),
        str(clips["fake"]),
    ]
    results = results[1:]
    assert results[0].verdict == "ERROR"
    assert results[1].verdict in ("FAKE", "REAL") and not math.isnan(results[1].p_fake)
    assert results[0].to_dict() == {
        "path": str(tmp_path / "nope.wav"),
        "verdict": "ERROR",
        "error": "no such file or folder",
    }
