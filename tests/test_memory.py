"""Training that never dies of memory: the step is measured, a batch that cannot fit is an
error naming one that does, ``--batch-size auto`` picks it, a killed run says so on resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepfake_audio.cli import main
from deepfake_audio.memory_budget import LIMIT_ENV, parse_size
from deepfake_audio.training import memory as memory_module
from deepfake_audio.training.memory import StepMemory, measure_step, plan_batch

GIB = 2**30


def test_the_measured_need_grows_with_the_batch() -> None:
    step = measure_step("seed_cnn", {"input_samples": 16000}, 16000)
    assert step.per_clip > 0
    assert step.need(8) > step.need(1)


def test_sizes() -> None:
    assert parse_size("8G") == 8 * GIB and parse_size("512M") == 512 * 2**20
    assert parse_size("1.5g") == int(1.5 * GIB) and parse_size("1000") == 1000
    with pytest.raises(ValueError, match="8G or 512M"):
        parse_size("lots")


def test_plans() -> None:
    step = StepMemory(fixed=GIB, per_clip=GIB)  # 0.8 x 5 GB = 4 GB: fixed + 3 clips
    room = (5 * GIB, "test")
    assert plan_batch(step, 3, 32, 1, room).batch_size == 3
    with pytest.raises(MemoryError, match=r"--batch-size 3 fits"):
        plan_batch(step, 8, 32, 1, room)
    auto = plan_batch(step, None, 8, 1, room)  # 8 = 3 steps of 3 (9 >= 8)
    assert (auto.batch_size, auto.accumulate, auto.effective_batch) == (3, 3, 9)
    assert plan_batch(step, None, 2, 1, room).batch_size == 2  # the default fits
    assert plan_batch(step, None, 8, 1, (None, "unknown")).batch_size == 8
    with pytest.raises(MemoryError, match="not even a batch of 1"):
        plan_batch(step, None, 8, 1, (GIB, "test"))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    from tests.test_train import make_corpus

    counts = {"training": {"fake": 4, "real": 4}, "validation": {"fake": 2, "real": 2}}
    return make_corpus(tmp_path / "data", counts, seed=3)


def _train_args(corpus: Path, tmp_path: Path, run: str) -> list[str]:
    from tests.test_train import SMALL_ARGS

    args = [a for a in SMALL_ARGS if a not in ("--batch-size", "8")]  # the default batch
    return ["train", *args, "--data-root", str(corpus), "--cache-dir", str(tmp_path / "cache"),
            "--output-dir", str(tmp_path / run), "--epochs", "1"]  # fmt: skip


@pytest.fixture
def small_budget(monkeypatch) -> None:
    """A step of 0.1 GB + 0.1 GB per clip and 1 GB available: 0.8 GB for a step, 7 clips."""
    step = StepMemory(GIB // 10, GIB // 10)
    monkeypatch.setattr(memory_module, "measure_step", lambda *args, **kwargs: step)
    monkeypatch.setenv(LIMIT_ENV, "1G")


def test_a_budget_too_low_is_a_one_line_error(corpus, tmp_path, small_budget, capsys) -> None:
    assert main([*_train_args(corpus, tmp_path, "run"), "--batch-size", "16"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.startswith("error: a training step at batch 16")
    assert f"({LIMIT_ENV}" in error and "--batch-size 7 fits" in error
    assert not (tmp_path / "run").exists()  # stopped before any work


def test_batch_size_auto_fits_the_budget(corpus, tmp_path, small_budget) -> None:
    assert main([*_train_args(corpus, tmp_path, "run"), "--batch-size", "auto"]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["batch_size"], config["accumulate"]) == (7, 5)  # seed_cnn's 32 as 5 x 7
    log = (tmp_path / "run" / "train.log").read_text()
    assert "batch 7 x accumulate 5 = effective batch 35" in log
    assert "allocator: glibc's default: half the available memory (0.5 GB" in log
