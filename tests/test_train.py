"""Training end to end on a tiny generated corpus: run folder, resume, DDP, errors, config.

Clips are 0.4 s at 8 kHz and windows 0.25 s, so one epoch takes a second or two on a CPU.
Fake clips are a clipped harmonic buzz, real ones a noise-modulated tone in noise: easy
enough that three epochs are well above chance.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch

from deepfake_audio import __version__
from deepfake_audio.checkpoints import load_checkpoint, read_metadata
from deepfake_audio.cli import main
from deepfake_audio.data.listing import scoring_inputs
from deepfake_audio.data.records import (
    FAKE,
    REAL,
    VALIDATION,
    ClipRecord,
    manifest_fingerprint,
    read_manifest,
)
from deepfake_audio.metrics import accuracy, equal_error_rate, predict
from deepfake_audio.scoring.engine import score_table
from deepfake_audio.scoring.options import ScoringOptions
from deepfake_audio.training.config import TrainConfig, load_config_file, resume_config
from deepfake_audio.training.resume import load_resume_state, save_resume_state
from deepfake_audio.training.run_folder import FINAL_NAME, HISTORY_COLUMNS
from deepfake_audio.training.train import check_trainable, train

REPO = Path(__file__).resolve().parent.parent
RATE, SECONDS = 8000, 0.4
SMALL = {
    "sample_rate": RATE,
    "window_seconds": 0.25,
    "batch_size": 8,
    "num_workers": 0,
    "accelerator": "cpu",
    "devices": 1,
    "progress": False,
}
SMALL_ARGS = [
    "--sample-rate", str(RATE), "--window-seconds", "0.25", "--batch-size", "8",
    "--num-workers", "0", "--accelerator", "cpu", "--no-progress",
]  # fmt: skip
CHECKPOINT = re.compile(r"model_epoch_(\d\d)_valacc_(\d\.\d{4})\.safetensors")


def _clip(rng: np.random.Generator, label: str) -> np.ndarray:
    t = np.arange(round(RATE * SECONDS)) / RATE
    f0 = rng.uniform(100, 250)
    if label == "fake":  # harmonic buzz, clipped: a vocoder-like, almost square wave
        phases = rng.uniform(0, 6, size=5)
        buzz = sum(np.sin(2 * np.pi * f0 * k * t + phases[k - 1]) / k for k in range(1, 6))
        x = np.clip(3 * buzz, -1, 1)
    else:  # a tone whose loudness wanders with noise, in broadband noise
        envelope = np.convolve(rng.standard_normal(t.size), np.ones(200) / 200, "same")
        x = np.sin(2 * np.pi * f0 * t) * envelope + rng.standard_normal(t.size)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def make_corpus(root: Path, counts: dict[str, dict[str, int]], seed: int = 0) -> Path:
    """``root/tiny/<split>/<label>/*.wav`` with ``counts[split][label]`` clips."""
    rng = np.random.default_rng(seed)
    for split, per_label in counts.items():
        for label, n in per_label.items():
            folder = root / "tiny" / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                sf.write(folder / f"{label}_{i:02d}.wav", _clip(rng, label), RATE, "PCM_16")
    return root


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("train")


@pytest.fixture(scope="module")
def corpus(workdir: Path) -> Path:
    root = make_corpus(
        workdir / "dataset_root",
        {
            "training": {"fake": 16, "real": 16},
            "validation": {"fake": 6, "real": 6},
            "testing": {"fake": 2, "real": 2},
        },
    )
    (root / "tiny" / "training" / "fake" / "broken.wav").write_bytes(b"RIFF\x00\x01junk")
    return root


@pytest.fixture(scope="module")
def cache(workdir: Path) -> str:
    return str(workdir / "cache")


def _config(corpus: Path, cache: str, output_dir: Path, **changes) -> TrainConfig:
    values = {"data_root": str(corpus), "cache_dir": cache, "output_dir": str(output_dir)}
    return TrainConfig(**{**SMALL, **values, "epochs": 3, **changes})


@pytest.fixture(scope="module")
def reference(corpus: Path, cache: str, workdir: Path):
    """One uninterrupted 3-epoch run that the other tests compare against."""
    return train(_config(corpus, cache, workdir / "reference"))


def _files(run_dir: Path) -> set[str]:
    """Run files, with the validation accuracy in checkpoint names masked."""
    return {
        re.sub(r"valacc_\d\.\d{4}", "valacc_X", str(p.relative_to(run_dir)))
        for p in run_dir.rglob("*")
        if p.is_file()
    }


def _history(run_dir: Path) -> list[dict]:
    lines = (run_dir / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]


def _metric_rows(history: list[dict]) -> list[tuple]:
    keys = [k for k in HISTORY_COLUMNS if k != "seconds"]
    return [tuple(float(row[k]) for k in keys) for row in history]


def _rescore(run_dir: Path, checkpoint: Path) -> dict:
    """Validation metrics recomputed from a checkpoint file alone, in this process, with the
    scores ``predict`` gives: every window of each validation clip, aggregated by the mean."""
    records = [r for r in read_manifest(run_dir / "manifest.jsonl") if r.split == VALIDATION]
    inputs = scoring_inputs([r.path for r in records])
    table = score_table([load_checkpoint(checkpoint)], [i.record for i in inputs], ScoringOptions())
    assert all(len(f.clips[f"{checkpoint.stem}"].window_scores) == 2 for f in table.files)
    scores = table.raw[checkpoint.stem]  # the model's own scores, as validation
    labels = np.array([r.label for r in records])
    eer, threshold = equal_error_rate(labels, scores)
    called_fake = scores >= read_metadata(checkpoint)["threshold"]
    return {
        "val_accuracy": accuracy(labels, predict(scores, 0.5)),
        "val_eer": eer,
        "val_eer_threshold": threshold,
        "val_count": len(records),
        "miss_rate": float(np.mean(~called_fake[labels == FAKE])),  # fakes called real
        "false_alarm_rate": float(np.mean(called_fake[labels == REAL])),  # reals called fake
        "granularity": 1 / min(np.sum(labels == FAKE), np.sum(labels == REAL)),
    }


def _assert_threshold_is_predicts_eer_point(run: Path, checkpoint: Path) -> None:
    """The stored threshold is the equal-error point of the scores predict gives."""
    meta = read_metadata(checkpoint)
    rescored = _rescore(run, checkpoint)
    assert meta["metrics"]["val_count"] == rescored["val_count"]
    assert rescored["val_accuracy"] == pytest.approx(meta["metrics"]["val_accuracy"])
    assert rescored["val_eer"] == pytest.approx(meta["metrics"]["val_eer"], abs=1e-9)
    assert rescored["val_eer_threshold"] == pytest.approx(meta["threshold"], abs=1e-5)
    gap = abs(rescored["miss_rate"] - rescored["false_alarm_rate"])
    assert gap <= rescored["granularity"] + 1e-9
    assert meta["scoring_rule"] == {"aggregation": "mean", "hop_seconds": None}


EXPECTED_FILES = {
    "config.json",
    "train.log",
    "history.csv",
    "accuracy.png",
    "loss.png",
    "data_report.json",
    "manifest.jsonl",
    "unreadable.csv",
    "model_epoch_01_valacc_X.safetensors",
    "model_epoch_02_valacc_X.safetensors",
    "model_epoch_03_valacc_X.safetensors",
    FINAL_NAME,
    "resume/state.safetensors",
}


def test_run_folder(reference, corpus: Path) -> None:
    run = reference.run_dir
    assert _files(run) == EXPECTED_FILES  # and no temporary file left anywhere
    modes = {p.name: p.stat().st_mode & 0o777 for p in run.glob("*.safetensors")}
    assert set(modes.values()) == {0o644}, modes  # the final model too: others may read it
    history = _history(run)
    assert list(history[0]) == list(HISTORY_COLUMNS)
    assert [int(row["epoch"]) for row in history] == [1, 2, 3]
    assert max(float(row["val_accuracy"]) for row in history) >= 0.8  # chance is 0.5
    # the bad file is listed, with a reason, and training went on without it
    unreadable = (run / "unreadable.csv").read_text()
    assert "broken.wav" in unreadable and unreadable.startswith("path,reason")
    assert load_config_file(run / "config.json")["epochs"] == 3  # provenance is set aside
    provenance = json.loads((run / "config.json").read_text())["provenance"]
    assert provenance["package_version"] == __version__
    assert json.loads((run / "data_report.json").read_text())["provenance"] == provenance
    report = json.loads((run / "data_report.json").read_text())
    assert report["unreadable"] and report["final_count"] == 32 + 12 + 4
    assert "epoch 03/3" in (run / "train.log").read_text()


def test_checkpoints_carry_their_metadata(reference) -> None:
    run = reference.run_dir
    manifest = read_manifest(run / "manifest.jsonl")
    for row in _history(run):
        epoch, val_accuracy = int(row["epoch"]), float(row["val_accuracy"])
        path = run / f"model_epoch_{epoch:02d}_valacc_{val_accuracy:.4f}.safetensors"
        meta = read_metadata(path)
        assert meta["model"] == "seed_cnn" and meta["model_config"]["input_samples"] == 2000
        assert meta["preprocess"] == {
            "sample_rate": RATE,
            "window_seconds": 0.25,
            "normalization": "peak",
            "trim_silence": False,
        }
        assert meta["labels"] == {"0": "fake", "1": "real"}
        assert meta["metrics"]["val_count"] == 12  # every validation clip, never the test split
        assert meta["metrics"]["val_accuracy"] == pytest.approx(val_accuracy, abs=1e-6)
        assert meta["threshold"] == meta["metrics"]["val_eer_threshold"]
        assert meta["extra"]["epoch"] == epoch
        assert meta["extra"]["manifest_fingerprint"] == manifest_fingerprint(manifest)
        assert meta["package_version"]
    final = read_metadata(run / FINAL_NAME)
    best = min(_history(run), key=lambda r: (float(r["val_eer"]), -float(r["val_accuracy"])))
    assert final["extra"]["selected_epoch"] == int(best["epoch"]) == reference.best_epoch
    assert "EER" in final["extra"]["selection"]
    for row in _history(run):  # every epoch's threshold, not only the chosen one
        epoch, val_accuracy = int(row["epoch"]), float(row["val_accuracy"])
        path = run / f"model_epoch_{epoch:02d}_valacc_{val_accuracy:.4f}.safetensors"
        _assert_threshold_is_predicts_eer_point(run, path)
    _assert_threshold_is_predicts_eer_point(run, run / FINAL_NAME)


class _CtrlC(L.Callback):
    """Presses Ctrl-C in the middle of the second epoch."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == 1 and batch_idx == 1:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_to_the_same_result(reference, corpus, cache, workdir) -> None:
    run = workdir / "interrupted"
    sigint = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt, match="--resume"):
            train(_config(corpus, cache, run), callbacks=[_CtrlC()])
    finally:
        signal.signal(signal.SIGINT, sigint)  # Lightning ignores Ctrl-C after catching one
    assert load_resume_state(run / "resume" / "state.safetensors").epoch == 1
    assert not (run / "resume" / "running.json").exists()  # Ctrl-C is a clean stop
    assert not (run / FINAL_NAME).exists() and len(_history(run)) == 1
    result = train(resume_config(run, {}), resume=True)
    assert _files(run) == EXPECTED_FILES
    assert [int(r["epoch"]) for r in _history(run)] == [1, 2, 3]
    # same seed, same data: the resumed run reproduces the uninterrupted one
    np.testing.assert_allclose(
        _metric_rows(_history(run)), _metric_rows(_history(reference.run_dir)), atol=1e-6
    )
    assert result.best_epoch == reference.best_epoch


@pytest.mark.slow
def test_killed_run_resumes(corpus: Path, cache: str, workdir: Path) -> None:
    run = workdir / "killed"
    command = [sys.executable, "-m", "deepfake_audio", "train", *SMALL_ARGS]
    command += ["--data-root", str(corpus), "--cache-dir", cache, "--output-dir", str(run)]
    process = subprocess.Popen(
        [*command, "--epochs", "50"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state = run / "resume" / "state.safetensors"
    deadline = time.monotonic() + 240
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # no chance to clean up
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    done = load_resume_state(state).epoch
    assert done >= 1
    assert (run / "resume" / "running.json").is_file()  # no clean stop removed it
    code = main(["train", "--resume", str(run), "--epochs", str(done + 1), "--no-progress"])
    assert code == 0
    log = (run / "train.log").read_text()
    assert "ended without a clean stop: it was killed" in log
    assert f"resuming from epoch {done}" in log
    assert not (run / "resume" / "running.json").exists()  # this run stopped cleanly
    epochs = [int(r["epoch"]) for r in _history(run)]
    assert epochs == list(range(1, done + 2))
    names = sorted(p.name for p in run.glob("model_epoch_*"))
    assert [int(CHECKPOINT.fullmatch(n).group(1)) for n in names] == epochs
    assert (run / FINAL_NAME).exists()
    assert not list(run.rglob("*.tmp"))


@pytest.mark.slow
def test_two_ddp_processes_write_the_same_run(reference, corpus, cache, workdir) -> None:
    run = workdir / "ddp"
    command = [sys.executable, "-m", "deepfake_audio", "train", *SMALL_ARGS, "--epochs", "3"]
    command += ["--data-root", str(corpus), "--cache-dir", cache, "--output-dir", str(run)]
    command += ["--devices", "2", "--strategy", "ddp"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=400, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 processes" in (run / "train.log").read_text()
    assert _files(run) == _files(reference.run_dir) == EXPECTED_FILES
    assert [int(r["epoch"]) for r in _history(run)] == [1, 2, 3]
    # validation metrics cover all 12 clips, gathered from both ranks, and match a rescoring
    final = read_metadata(run / FINAL_NAME)
    assert final["metrics"]["val_count"] == 12
    _assert_threshold_is_predicts_eer_point(run, run / FINAL_NAME)


@pytest.mark.slow
def test_ddp_with_an_odd_number_of_validation_clips(workdir, cache) -> None:
    """7 + 6 validation clips over 2 ranks: shards of 7 and 6, every clip counted once."""
    corpus = make_corpus(
        workdir / "odd_root",
        {"training": {"fake": 8, "real": 8}, "validation": {"fake": 7, "real": 6}},
        seed=5,
    )
    run = workdir / "ddp_odd"
    command = [sys.executable, "-m", "deepfake_audio", "train", *SMALL_ARGS, "--epochs", "1"]
    command += ["--data-root", str(corpus), "--cache-dir", cache, "--output-dir", str(run)]
    command += ["--devices", "2", "--strategy", "ddp", "--balance", "none"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=400, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Tip" not in done.stderr  # Lightning's advert for its cloud logger is hidden
    final = read_metadata(run / FINAL_NAME)
    assert final["metrics"]["val_count"] == 13
    _assert_threshold_is_predicts_eer_point(run, run / FINAL_NAME)


def test_resume_refuses_changed_data(workdir, cache, capsys) -> None:
    corpus = make_corpus(
        workdir / "changing_root",
        {"training": {"fake": 4, "real": 4}, "validation": {"fake": 2, "real": 2}},
        seed=6,
    )
    run = workdir / "changing"
    args = ["train", *SMALL_ARGS, "--data-root", str(corpus), "--cache-dir", cache]
    assert main([*args, "--output-dir", str(run), "--epochs", "1"]) == 0
    make_corpus(corpus, {"training": {"fake": 5, "real": 5}}, seed=7)  # one more clip each
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 1
    error = capsys.readouterr().err
    assert "the data differ from those the run started with" in error
    assert "start a new run" in error
    assert len(_history(run)) == 1  # nothing was trained on the changed data


def test_mostly_unusable_data_stops_before_training(workdir, cache, capsys) -> None:
    corpus = make_corpus(
        workdir / "broken_root",
        {"training": {"fake": 4, "real": 4}, "validation": {"fake": 2, "real": 2}},
        seed=8,
    )
    for i in range(12):  # 12 of the 20 training files are not audio
        label = "fake" if i % 2 else "real"
        (corpus / "tiny" / "training" / label / f"junk_{i:02d}.wav").write_bytes(b"not audio")
    run = workdir / "broken_run"
    args = ["train", *SMALL_ARGS, "--data-root", str(corpus), "--cache-dir", cache]
    assert main([*args, "--output-dir", str(run), "--epochs", "1"]) == 1
    error = capsys.readouterr().err
    assert "12 of 20 files of the train split (60.0 %) cannot be used" in error
    assert "--max-bad-fraction 0.05" in error and "junk_01.wav: " in error  # the first reason
    assert not (run / FINAL_NAME).exists()
    # the user may accept it: then the run trains on what is usable
    assert (
        main([*args, "--output-dir", str(run), "--epochs", "1", "--max-bad-fraction", "0.7"]) == 0
    )
    assert (run / FINAL_NAME).exists()


def test_train_new_dataset_defaults(corpus, cache, workdir, monkeypatch) -> None:
    """``python3 train_new_dataset.py`` reads ./dataset_root and writes ./runs/<timestamp>."""
    monkeypatch.chdir(workdir)  # holds ./dataset_root
    argv = ["train_new_dataset.py", *SMALL_ARGS, "--epochs", "1", "--cache-dir", cache]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO / "train_new_dataset.py"), run_name="__main__")
    assert exit_info.value.code == 0
    (run,) = (workdir / "runs").iterdir()
    assert re.fullmatch(r"\d{8}_\d{6}", run.name)
    assert (run / FINAL_NAME).exists() and len(list(run.glob("model_epoch_01_*"))) == 1


def test_one_class_or_empty_training_set_is_an_error_before_training(workdir, cache, capsys):
    root = make_corpus(
        workdir / "one_class",
        {"training": {"fake": 3}, "validation": {"fake": 2, "real": 2}},
        seed=5,
    )
    run = workdir / "one_class_run"
    with pytest.raises(ValueError, match=r"train split has one class only \(fake 3, real 0\)"):
        train(_config(root, cache, run, balance="none"))
    assert not run.exists()
    args = ["train", "--data-root", str(root), "--cache-dir", cache, "--output-dir", str(run)]
    assert main([*args, *SMALL_ARGS]) == 1  # undersampling drops the one-class training set
    message = capsys.readouterr().err
    assert "train split is empty (fake 0, real 0; before balancing: fake 3, real 0)" in message
    assert not run.exists()
    with pytest.raises(ValueError, match="validation split is empty"):
        check_trainable([ClipRecord("/a", FAKE), ClipRecord("/b", REAL)], [])


def test_config_types_and_sources(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown option"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="'epochs' must be int"):
        TrainConfig.from_dict({"epochs": "3"})
    with pytest.raises(ValueError, match="'strict' must be bool"):
        TrainConfig.from_dict({"strict": "yes"})
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig.from_dict({"model": "nope"})
    assert TrainConfig.from_dict({"lr": 1}).lr == 1.0  # an int is a fine float
    toml = tmp_path / "run.toml"
    toml.write_text('epochs = 7\nlr = 0.01\ndataset_types = ["for-2sec"]\n')
    assert load_config_file(toml) == {"epochs": 7, "lr": 0.01, "dataset_types": ["for-2sec"]}
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="cannot parse"):
        load_config_file(bad)


def test_command_line_overrides_the_config_file(tmp_path: Path, monkeypatch) -> None:
    from deepfake_audio.cli import build_parser
    from deepfake_audio.commands import train as command

    config = tmp_path / "c.json"
    config.write_text(json.dumps({"epochs": 7, "lr": 0.01, "seed": 4}))
    seen = {}
    monkeypatch.setattr(
        "deepfake_audio.training.train.train", lambda c, resume, **_: seen.setdefault("c", c)
    )
    args = build_parser().parse_args(["train", "--config", str(config), "--epochs", "2"])
    assert command.given_options(args) == {"epochs": 2}
    with pytest.raises(AttributeError):  # the stub returns the config, not a TrainResult
        command.run(args)
    assert (seen["c"].epochs, seen["c"].lr, seen["c"].seed) == (2, 0.01, 4)


def test_resume_only_changes_how_a_run_runs(reference) -> None:
    with pytest.raises(ValueError, match="cannot change"):
        resume_config(reference.run_dir, {"lr": 0.5})
    assert resume_config(reference.run_dir, {"epochs": 9}).epochs == 9
    with pytest.raises(ValueError, match="already completed 3 of 3"):
        train(resume_config(reference.run_dir, {}), resume=True)


def test_resume_state_round_trip(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.9))
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.randn(4, 3)).sum().backward()
        optimizer.step()
    path = tmp_path / "state.safetensors"
    rng = torch.get_rng_state()
    save_resume_state(
        path, model, optimizer, epoch=2, history=[{"epoch": 1}], skipped=[], fingerprint="f"
    )
    state = load_resume_state(path)
    assert state.epoch == 2 and state.history == [{"epoch": 1}]
    again = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=0.5)
    again.load_state_dict(state.optimizer_state)
    original = optimizer.state_dict()
    restored = again.state_dict()
    assert restored["param_groups"] == original["param_groups"]
    for index, values in original["state"].items():
        for key, value in values.items():
            assert torch.equal(restored["state"][index][key], value)
    assert all(torch.equal(state.model_state[k], v) for k, v in model.state_dict().items())
    assert torch.equal(state.torch_rng, rng)
