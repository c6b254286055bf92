"""Exit codes as the README documents them, command by command.

0: the command completed (unusable files are listed, not fatal); 1: nothing could be done, or
``--strict`` found a problem; 2: a usage error; 130: interrupted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deepfake_audio.audio import write_audio
from deepfake_audio.cli import main
from tests.detectors import fake_signal, real_signal, shared_trained_checkpoint


def _broken(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF\xff\x00\x00\x00WAVEfmt ")
    return path


@pytest.fixture(scope="module")
def model() -> str:
    return str(shared_trained_checkpoint())


def test_predict_completes_when_some_files_are_judged(model, tmp_path: Path, capsys) -> None:
    good = write_audio(tmp_path / "good.wav", fake_signal(0.5), 16000)
    bad = _broken(tmp_path / "bad.wav")
    assert main(["predict", str(good), str(bad), "-m", model, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "ERROR" in out and "bad.wav" in out  # listed with its reason
    assert main(["predict", str(bad), str(tmp_path / "missing.wav"), "-m", model]) == 1


def test_compare_fails_only_when_nothing_was_scored(model, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "only_bad"
    _broken(folder / "fake" / "a.wav")
    args = ["compare", "--audio-dir", str(folder), "--model", model, "--no-progress"]
    assert main([*args, "--output-dir", str(tmp_path / "out")]) == 1
    assert "could be scored" in capsys.readouterr().err
    write_audio(folder / "real" / "b.wav", real_signal(0.5), 16000)
    assert main([*args, "--output-dir", str(tmp_path / "out2")]) == 0


def test_evaluate_fails_when_no_file_is_readable(model, tmp_path: Path, capsys) -> None:
    for split in ("training", "testing"):
        _broken(tmp_path / "data" / split / "fake" / "a.wav")
        _broken(tmp_path / "data" / split / "real" / "b.wav")
    args = ["evaluate", "--data", str(tmp_path / "data"), "-m", model, "--no-progress"]
    args += ["--cache-dir", str(tmp_path / "cache")]
    assert main([*args, "--output-dir", str(tmp_path / "eval")]) == 1
    assert "4 file(s) could not be read" in capsys.readouterr().err
    assert not (tmp_path / "eval" / "roc.png").exists()


def test_audit_completes_with_problems_and_fails_only_when_strict(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for split in ("training", "testing"):  # the same clip in two splits: a leak
        write_audio(root / split / "fake" / "same.wav", fake_signal(0.5), 16000)
        write_audio(root / split / "real" / "r.wav", real_signal(0.5, seed=len(split)), 16000)
    _broken(root / "training" / "fake" / "bad.wav")
    args = ["audit", str(root), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert main(args) == 0
    assert main([*args, "--strict"]) == 1
    assert main(["audit", str(tmp_path / "nowhere"), "--no-progress"]) == 1


def test_usage_errors_exit_2(model) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "x.wav"])  # no --model
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--audio-dir", ".", "--model", model, "--threshold", "2"])
    assert exit_info.value.code == 2


def test_interrupt_exits_130(monkeypatch, tmp_path: Path) -> None:
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("deepfake_audio.commands.audit.run", interrupted)
    assert main(["audit", str(tmp_path)]) == 130
