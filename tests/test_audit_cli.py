"""``deepfake-audio audit`` end to end: the done-when case of the foundation issue."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from deepfake_audio.cli import COMMANDS, main
from tests.synth import write_clip


@pytest.fixture
def planted(for_tree: Path) -> dict:
    """The FoR tree with cross-split duplicates and broken files planted."""
    train_fake = for_tree / "for-2sec" / "training" / "fake" / "clip_0.wav"
    train_real = for_tree / "for-norm" / "training" / "real" / "clip_0.wav"
    byte_copy = for_tree / "for-2sec" / "testing" / "fake" / "copied.wav"
    shutil.copy(train_fake, byte_copy)
    reencoded = for_tree / "for-norm" / "validation" / "real" / "re-encoded.flac"
    samples, rate = sf.read(train_real, dtype="int16")
    sf.write(reencoded, samples, rate)
    broken = {
        for_tree / "for-2sec" / "testing" / "real" / "empty.wav": "empty",
        for_tree / "for-norm" / "testing" / "fake" / "text.mp3": "not decodable",
        for_tree / "for-2sec" / "validation" / "fake" / "cut.WAV": "truncated",
    }
    for path, reason in broken.items():
        if reason == "empty":
            path.touch()
        elif reason == "truncated":
            path.write_bytes(train_fake.read_bytes()[:3000])
        else:
            path.write_text("definitely not audio\n" * 50)
    return {"root": for_tree, "leaks": {byte_copy, reencoded}, "broken": broken}


def test_audit_reports_every_leak_and_broken_file(planted: dict, tmp_path: Path, capsys) -> None:
    report_path = tmp_path / "out" / "report.json"
    code = main(
        ["audit", str(planted["root"]), "--json", str(report_path), "--no-progress",
         "--cache-dir", str(tmp_path / "cache"), "--workers", "2"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(report_path.read_text())
    dropped = {
        p for f in report["separation"]["findings"] if f["kind"] == "leak" for p in f["dropped"]
    }
    assert dropped == {str(p) for p in planted["leaks"]}
    detectors = {f["detector"] for f in report["separation"]["findings"]}
    assert {"file_bytes", "decoded_audio"} <= detectors
    unreadable = {u["path"]: u["reason"] for u in report["unreadable"]}
    assert set(unreadable) == {str(p) for p in planted["broken"]}
    for path, reason in planted["broken"].items():
        assert reason in unreadable[str(path)]
        assert str(path) in out  # named in the printed summary too
    # Balanced counts: 5 fake / 3 real per cell -> 3 / 3 after undersampling.
    for split in ("train", "validation", "test"):
        for dataset_type in ("for-2sec", "for-norm"):
            assert report["balance"]["after"][split][dataset_type] == {"fake": 3, "real": 3}
    assert report["balance"]["before"]["validation"]["for-norm"] == {"fake": 5, "real": 3}
    assert report["final_count"] == 36
    assert "leak" in out and "Unreadable files: 3" in out


def test_strict_turns_a_leak_into_exit_1(planted: dict, tmp_path: Path, capsys) -> None:
    code = main(
        [
            "audit",
            str(planted["root"]),
            "--strict",
            "--no-progress",
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    assert code == 1
    assert "--strict" in capsys.readouterr().err


def test_clean_tree_passes_strict(for_tree: Path, tmp_path: Path) -> None:
    args = ["audit", str(for_tree), "--strict", "--no-progress", "--cache-dir", str(tmp_path / "c")]
    assert main(args) == 0


def test_missing_root_is_an_error_not_a_traceback(tmp_path: Path, capsys) -> None:
    assert main(["audit", str(tmp_path / "nowhere"), "--no-progress"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_split_selection(for_tree: Path, tmp_path: Path, capsys) -> None:
    report_path = tmp_path / "r.json"
    main(["audit", str(for_tree), "--splits", "testing", "--json", str(report_path),
          "--no-progress", "--cache-dir", str(tmp_path / "c")])  # fmt: skip
    assert set(json.loads(report_path.read_text())["balance"]["after"]) == {"test"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deepfake_audio", command, "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "usage: deepfake-audio" in result.stdout


def _write_tree(root: Path, count: int) -> None:
    for i in range(count):
        split = ("training", "validation", "testing")[i % 3]
        write_clip(root / "for-norm" / split / ("fake", "real")[i % 2] / f"c{i}.wav",
                   seconds=0.1, freq=100 + 7 * i, seed=i)  # fmt: skip
    shutil.copy(root / "for-norm" / "training" / "fake" / "c0.wav",
                root / "for-norm" / "testing" / "fake" / "copy.wav")  # fmt: skip


def test_fresh_process_on_two_workers_reports_as_one_worker(tmp_path: Path) -> None:
    """The command as users run it (a fresh process: workers forked, several batches) gives
    the report of a single in-process worker."""
    root = tmp_path / "data"
    _write_tree(root, 150)
    reports = {}
    for workers in ("1", "2"):
        target = tmp_path / f"w{workers}.json"
        done = subprocess.run(
            [sys.executable, "-m", "deepfake_audio", "audit", str(root), "--no-progress",
             "--workers", workers, "--cache-dir", str(tmp_path / f"c{workers}"),
             "--json", str(target)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        reports[workers] = json.loads(target.read_text())
        reports[workers]["options"].pop("workers")
        reports[workers]["options"].pop("cache_dir")
        reports[workers].pop("provenance")  # its command line names the options
    assert reports["1"] == reports["2"]
    assert reports["2"]["discovered"] == 151
    assert reports["2"]["separation"]["leaks"] >= 1  # the planted copy


def test_progress_bar_does_not_change_the_report(for_tree: Path, tmp_path: Path, capsys) -> None:
    reports = []
    for flags in ([], ["--no-progress"]):
        target = tmp_path / f"{len(flags)}.json"
        args = ["audit", str(for_tree), "--json", str(target), *flags]
        assert main([*args, "--cache-dir", str(tmp_path / f"c{len(flags)}")]) == 0
        reports.append(json.loads(target.read_text()))
        reports[-1]["options"].pop("cache_dir")
        reports[-1].pop("provenance")  # its command line names the options
    assert reports[0] == reports[1]
    assert "scan+hash+decode" in capsys.readouterr().err  # the bar was shown the first time


def test_an_audit_at_the_training_rate_leaves_training_nothing_to_decode(
    tmp_path: Path, monkeypatch
) -> None:
    """``audit --sample-rate 16000`` caches the audio training reads: preparing the same data
    for training then decodes no file (plain ``audit`` caches hashes only)."""
    from deepfake_audio.data import probe
    from deepfake_audio.data.pipeline import DataOptions, prepare

    root = tmp_path / "data"
    for i in range(3):
        write_clip(root / "training" / "fake" / f"f{i}.wav", 0.5, 22050, freq=300 + 50 * i)
        write_clip(root / "training" / "real" / f"r{i}.wav", 0.5, 22050, freq=900 + 50 * i)
    calls: list[str] = []
    real_decode = probe.decode_bytes

    def counting(data, path="<bytes>", **kwargs):
        calls.append(str(path))
        return real_decode(data, path, **kwargs)

    monkeypatch.setattr(probe, "decode_bytes", counting)
    args = ["audit", str(root), "--workers", "1", "--no-progress"]
    plain, at_rate = str(tmp_path / "plain"), str(tmp_path / "at_rate")
    assert main([*args, "--cache-dir", plain]) == 0
    assert len(calls) == 6
    prepare(root, DataOptions(cache_dir=plain, workers=1), sample_rate=16000, progress=False)
    assert len(calls) == 12  # hashes only: training had to decode every file again
    assert main([*args, "--cache-dir", at_rate, "--sample-rate", "16000"]) == 0
    assert len(calls) == 18
    options = DataOptions(cache_dir=at_rate, workers=1)
    prepared = prepare(root, options, sample_rate=16000, progress=False)
    assert len(calls) == 18  # nothing decoded again
    assert all(prepared.cache.audio(r.path).size == 8000 for r in prepared.records)
