"""test_all_models.py / ``deepfake-audio compare``: every checkpoint of a run over a folder."""

from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepfake_audio import metrics
from deepfake_audio.audio import write_audio
from deepfake_audio.cli import main
from deepfake_audio.data.layouts import label_from_folders
from deepfake_audio.data.records import FAKE, REAL
from deepfake_audio.reports.compare import (
    ModelSummary,
    find_checkpoints,
    newest_run,
    rank_summaries,
)
from deepfake_audio.training.run_folder import write_final_model
from tests.detectors import (
    fake_signal,
    real_signal,
    shared_trained_checkpoint,
    untrained_checkpoint,
)

REPO = Path(__file__).resolve().parents[1]
MODELS = ("model_epoch_01_valacc_0.5000", "model_epoch_02_valacc_0.6000", "fake_or_real_classifier")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-epoch run folder as training writes it (the final model is a trained one)."""
    runs = tmp_path_factory.mktemp("runs")
    run = runs / "20260102_030405"
    run.mkdir()
    untrained_checkpoint(run / f"{MODELS[0]}.safetensors", seed=1)
    untrained_checkpoint(run / f"{MODELS[1]}.safetensors", seed=2, threshold=0.45)
    shutil.copy(shared_trained_checkpoint(), run / f"{MODELS[2]}.safetensors")
    (run / "config.json").write_text("{}")
    (run / "not_a_checkpoint.safetensors").write_bytes(b"junk")
    older = runs / "20250101_000000"
    older.mkdir()
    untrained_checkpoint(older / "fake_or_real_classifier.safetensors")
    return run


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Labelled clips in mixed formats and subfolders, a broken and an empty file, a 60 s call."""
    root = tmp_path_factory.mktemp("compare_audio")
    for i, ext in enumerate(("wav", "flac", "mp3", "ogg", "m4a", "wav")):
        sub = "nested/" if i == 5 else ""
        seconds = 0.5 + 0.3 * i
        write_audio(root / "fake" / f"{sub}f{i}.{ext}", fake_signal(seconds, seed=i), 16000)
        write_audio(root / "real" / f"{sub}r{i}.{ext}", real_signal(seconds, 22050, seed=i), 22050)
    write_audio(root / "real" / "call_60s.wav", real_signal(60.0, seed=50), 16000)
    write_audio(root / "unlabelled.flac", fake_signal(1.0, seed=77), 16000)
    (root / "fake" / "broken.mp3").write_bytes(b"ID3\x03\x00\x00\x00garbage" * 4)
    (root / "real" / "zero.wav").write_bytes(b"")
    (root / "notes.txt").write_text("not audio")
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def only(folder: Path, pattern: str) -> Path:
    (found,) = sorted(folder.glob(pattern))
    return found


def test_original_command_over_a_three_epoch_run(run_dir: Path, audio_dir: Path, tmp_path: Path):
    """The done criterion: the original command, run as a script, writes every report."""
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    completed = subprocess.run(
        [sys.executable, str(REPO / "test_all_models.py"), "--audio_dir", str(audio_dir),
         "--output_dir", str(out), "--models_dir", str(run_dir), "--no-progress"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    printed = completed.stdout
    assert "not_a_checkpoint.safetensors" in completed.stderr  # skipped, with its reason

    rows = read_csv(only(out, "model_comparison_*.csv"))
    readable = 6 + 6 + 1 + 1  # fake, real, the 60 s call, the unlabelled file
    assert len(rows) == readable
    assert len({r["path"] for r in rows}) == readable
    header = list(rows[0])
    for name in (*MODELS, "ensemble"):
        assert f"{name}_p_fake" in header and f"{name}_prediction" in header
    assert header[:4] == ["path", "label", "duration_s", "windows"]
    call = next(r for r in rows if r["path"].endswith("call_60s.wav"))
    assert int(call["windows"]) == 240  # 60 s in 0.25 s windows
    assert call["label"] == "real"
    assert next(r for r in rows if r["path"].endswith("unlabelled.flac"))["label"] == ""
    for row in rows:
        members = [float(row[f"{n}_p_fake"]) for n in MODELS]
        assert float(row["ensemble_p_fake"]) == pytest.approx(np.mean(members), abs=2e-6)

    # The per-model summary, recomputed independently from the per-file CSV.
    ranked = read_csv(only(out, "model_summary_*.csv"))
    summary = {s["model"]: s for s in ranked}
    assert sorted(summary) == sorted([*MODELS, "ensemble"])
    # Ranked best first by EER: ranks 1..n down the file, EER never falling.
    assert [int(s["rank"]) for s in ranked] == list(range(1, len(ranked) + 1))
    eers = [float(s["eer"]) for s in ranked]
    assert eers == sorted(eers)
    assert ranked[0]["model"] in ("fake_or_real_classifier", "ensemble")  # not an untrained one
    labelled = [r for r in rows if r["label"]]
    truth = np.array([FAKE if r["label"] == "fake" else REAL for r in labelled])
    for name, expected_threshold in zip(MODELS, (0.5, 0.45, 0.5), strict=True):
        s = summary[name]
        assert float(s["threshold"]) == pytest.approx(expected_threshold)
        p = np.array([float(r[f"{name}_p_fake"]) for r in rows])
        assert int(s["files"]) == readable
        assert int(s["called_fake"]) == int(np.sum(p >= expected_threshold))
        assert int(s["called_real"]) == int(np.sum(p < expected_threshold))
        assert all(
            (r[f"{name}_prediction"] == "fake")
            == (float(r[f"{name}_p_fake"]) >= expected_threshold)
            for r in rows
        )
        assert float(s["mean_p_fake"]) == pytest.approx(p.mean(), abs=1e-5)
        confidence = np.where(p >= expected_threshold, p, 1 - p)
        assert float(s["mean_confidence"]) == pytest.approx(confidence.mean(), abs=1e-5)
        pl = np.array([float(r[f"{name}_p_fake"]) for r in labelled])
        called = np.where(pl >= expected_threshold, FAKE, REAL)
        assert float(s["accuracy"]) == pytest.approx(np.mean(called == truth), abs=1e-6)
        assert int(s["labelled"]) == len(labelled)
    assert float(summary["ensemble"]["threshold"]) == pytest.approx(np.mean([0.5, 0.45, 0.5]))
    assert float(summary["fake_or_real_classifier"]["accuracy"]) > 0.8  # the trained one
    assert float(summary["fake_or_real_classifier"]["eer"]) < 0.2

    # Disagreements: exactly the files where the models' calls differ, most contested first.
    disagreements = read_csv(only(out, "disagreements_*.csv"))
    expected = {r["path"] for r in rows if len({r[f"{n}_prediction"] for n in MODELS}) > 1}
    assert {d["path"] for d in disagreements} == expected
    balance = [abs(int(d["fake_votes"]) - int(d["real_votes"])) for d in disagreements]
    assert balance == sorted(balance)
    assert disagreements, "a trained and two untrained models must disagree on some file"
    assert f"models disagree on {len(disagreements)} file(s); most contested first" in printed

    unreadable = {
        Path(u["path"]).name: u["reason"] for u in read_csv(only(out, "unreadable_*.csv"))
    }
    assert set(unreadable) == {"broken.mp3", "zero.wav"}
    assert "empty" in unreadable["zero.wav"]
    assert unreadable["broken.mp3"]
    assert "2 unreadable file(s)" in printed and "zero.wav" in printed
    assert "ensemble" in printed
    stamp = only(out, "model_comparison_*.csv").stem.removeprefix("model_comparison_")
    assert len(stamp) == 15 and stamp[8] == "_"
    assert (out / f"model_summary_{stamp}.csv").exists()


def test_threshold_overrides_every_model(run_dir, audio_dir, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    code = main(
        ["compare", "--audio-dir", str(audio_dir / "fake"), "--output-dir", str(out),
         "--models-dir", str(run_dir), "--threshold", "0", "--no-progress", "--workers", "1"]
    )  # fmt: skip
    assert code == 0
    rows = read_csv(only(out, "model_comparison_*.csv"))
    assert len(rows) == 6
    for name in (*MODELS, "ensemble"):
        assert {r[f"{name}_prediction"] for r in rows} == {"fake"}
    summary = read_csv(only(out, "model_summary_*.csv"))
    assert {float(s["threshold"]) for s in summary} == {0.0}
    assert {float(s["accuracy"]) for s in summary} == {1.0}  # every file is a fake
    assert "broken.mp3" in capsys.readouterr().out


def test_default_models_dir_is_the_newest_run(run_dir: Path, audio_dir, tmp_path, monkeypatch):
    assert newest_run(run_dir.parent) == run_dir
    monkeypatch.chdir(tmp_path)
    shutil.copytree(run_dir.parent, tmp_path / "runs")
    code = main(
        ["compare", "--audio-dir", str(audio_dir / "real" / "nested"), "--output-dir", "out",
         "--no-progress", "--workers", "1"]
    )  # fmt: skip
    assert code == 0
    summary = read_csv(only(tmp_path / "out", "model_summary_*.csv"))
    assert sorted(s["model"] for s in summary) == sorted([*MODELS, "ensemble"])


def test_find_checkpoints_orders_epochs_then_final(run_dir: Path) -> None:
    found, skipped = find_checkpoints(run_dir)
    assert [p.stem for p in found] == list(MODELS)
    assert [Path(p).name for p, _ in skipped] == ["not_a_checkpoint.safetensors"]


def test_missing_folders_are_errors(tmp_path: Path, run_dir: Path) -> None:
    with pytest.raises(FileNotFoundError):
        newest_run(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError):
        find_checkpoints(tmp_path)
    assert (
        main(["compare", "--audio-dir", str(tmp_path / "none"), "--models-dir", str(run_dir)]) == 1
    )


def test_label_from_folders() -> None:
    """compare labels files by the layouts' own rule (data.layouts), not a copy of it."""
    assert label_from_folders("/data/x/fake/gen/a.wav") == FAKE
    assert label_from_folders("/data/bonafide/a.wav") == REAL
    assert label_from_folders("/data/real/fake/a.wav") == FAKE  # the nearest folder decides
    assert label_from_folders("/data/fake.wav") is None
    assert math.isnan(metrics.roc_auc(np.array([FAKE]), np.array([0.5])))


def _summary(name: str, eer: float, bacc: float, labelled: int = 10) -> ModelSummary:
    return ModelSummary(
        name=name, threshold=0.5, files=10, called_fake=5, called_real=5, mean_p_fake=0.5,
        mean_confidence=0.7, labelled=labelled, eer=eer, balanced_accuracy=bacc,
    )  # fmt: skip


def test_ranking_is_by_eer_then_balanced_accuracy_with_missing_eer_last() -> None:
    ranked = rank_summaries(
        [
            _summary("no_eer", math.nan, 1.0),
            _summary("worse", 0.30, 0.9),
            _summary("tie_low_bacc", 0.10, 0.7),
            _summary("tie_high_bacc", 0.10, 0.8),
        ]
    )
    assert [s.name for s in ranked] == ["tie_high_bacc", "tie_low_bacc", "worse", "no_eer"]
    assert [s.rank for s in ranked] == [1, 2, 3, 4]


def test_without_labels_nothing_is_ranked() -> None:
    summaries = [_summary("b", math.nan, math.nan, 0), _summary("a", math.nan, math.nan, 0)]
    ranked = rank_summaries(summaries)
    assert [s.name for s in ranked] == ["b", "a"]
    assert [s.rank for s in ranked] == [None, None]


def test_a_run_folder_stands_for_its_final_model(run_dir: Path, audio_dir, tmp_path, capsys):
    """``--model RUN`` compares runs (one per architecture, say) without naming files."""
    other = tmp_path / "other_run"
    other.mkdir()
    untrained_checkpoint(other / "fake_or_real_classifier.safetensors", seed=3)
    out = tmp_path / "out"
    code = main(
        ["compare", "--audio-dir", str(audio_dir / "fake"), "--output-dir", str(out),
         "--model", str(run_dir), "--model", str(other), "--no-progress", "--workers", "1"]
    )  # fmt: skip
    assert code == 0
    summary = read_csv(only(out, "model_summary_*.csv"))
    names = {s["model"]: s["checkpoint"] for s in summary}
    assert set(names) == {
        f"{run_dir.name}/fake_or_real_classifier",
        "other_run/fake_or_real_classifier",
        "ensemble",
    }
    assert names["other_run/fake_or_real_classifier"].endswith(
        "other_run/fake_or_real_classifier.safetensors"
    )

    empty = tmp_path / "unfinished_run"
    empty.mkdir()
    capsys.readouterr()
    code = main(["compare", "--audio-dir", str(audio_dir), "--model", str(empty), "--no-progress"])
    assert code == 1
    assert f"{empty} is a folder without fake_or_real_classifier" in capsys.readouterr().err


def test_metadata_generators_give_a_per_generator_breakdown(tmp_path: Path, capsys) -> None:
    """A metadata.csv above the folder names each fake's generator: compare reports each
    generator's fakes against all real files, from the same scores as the per-file CSV."""
    root = tmp_path / "corpus"
    rows = ["path,label,generator"]
    for i in range(4):
        generator = ("world", "griffinlim")[i % 2]
        write_audio(root / "testing" / "fake" / f"f{i}.wav", fake_signal(0.6, seed=i), 16000)
        write_audio(root / "testing" / "real" / f"r{i}.wav", real_signal(0.6, seed=i), 16000)
        rows += [f"testing/fake/f{i}.wav,fake,{generator}", f"testing/real/r{i}.wav,real,bonafide"]
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    model = tmp_path / "stored.safetensors"
    rule = {"aggregation": "mean", "hop_seconds": None}
    untrained_checkpoint(model, seed=4, scoring_rule=rule)
    out = tmp_path / "out"
    args = ["compare", "--audio-dir", str(root / "testing"), "--output-dir", str(out)]
    args += ["--model", str(model), "--model", str(shared_trained_checkpoint()), "--no-progress"]
    assert main([*args, "--workers", "1", "--aggregate", "max"]) == 0
    captured = capsys.readouterr()
    # the stored threshold was set for the mean of the windows: scoring by max says so, once
    assert captured.err.count("warning: stored's threshold was set for --aggregate mean") == 1
    assert "EER % per generator" in captured.out
    files = read_csv(only(out, "model_comparison_*.csv"))
    by_generator = read_csv(only(out, "model_by_generator_*.csv"))
    assert {(r["model"], r["generator"]) for r in by_generator} == {
        (m, g) for m in ("stored", "trained", "ensemble") for g in ("world", "griffinlim")
    }
    generator_of = {f"f{i}.wav": ("world", "griffinlim")[i % 2] for i in range(4)}
    for row in by_generator:
        assert (int(row["fakes"]), int(row["reals"])) == (2, 4)
        chosen = [
            r for r in files
            if r["label"] == "real" or generator_of.get(Path(r["path"]).name) == row["generator"]
        ]  # fmt: skip
        labels = np.array([FAKE if r["label"] == "fake" else REAL for r in chosen])
        scores = np.array([float(r[f"{row['model']}_p_fake"]) for r in chosen])
        eer, _ = metrics.equal_error_rate(labels, scores)
        assert float(row["eer"]) == pytest.approx(eer, abs=1e-6)


def test_a_folder_without_generators_writes_no_breakdown(run_dir, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    write_audio(folder / "fake" / "a.wav", fake_signal(0.6, seed=1), 16000)
    write_audio(folder / "real" / "b.wav", real_signal(0.6, seed=2), 16000)
    out = tmp_path / "out"
    args = ["compare", "--audio-dir", str(folder), "--output-dir", str(out)]
    assert main([*args, "--models-dir", str(run_dir), "--no-progress", "--workers", "1"]) == 0
    assert not list(out.glob("model_by_generator_*.csv"))
    assert len(read_csv(only(out, "model_summary_*.csv"))) == len(MODELS) + 1


def test_the_final_model_is_an_alias_counted_once(tmp_path: Path, audio_dir: Path) -> None:
    """A run's final model copies its chosen epoch: the ensemble averages each distinct
    checkpoint once, the votes count it once, and the summary says whose weights it has."""
    run = tmp_path / "run"
    run.mkdir()
    epochs = ["model_epoch_01_valacc_0.5000", "model_epoch_02_valacc_0.9000"]
    untrained_checkpoint(run / f"{epochs[0]}.safetensors", seed=1, threshold=0.4)
    shutil.copy(shared_trained_checkpoint(), run / f"{epochs[1]}.safetensors")
    write_final_model(run, {"epoch": 2, "checkpoint": f"{epochs[1]}.safetensors"})
    out = tmp_path / "out"
    args = ["compare", "--audio-dir", str(audio_dir / "fake"), "--output-dir", str(out)]
    assert main([*args, "--models-dir", str(run), "--no-progress", "--workers", "1"]) == 0
    rows = read_csv(only(out, "model_comparison_*.csv"))
    for row in rows:
        first, second = (float(row[f"{e}_p_fake"]) for e in epochs)
        assert float(row["fake_or_real_classifier_p_fake"]) == second
        assert float(row["ensemble_p_fake"]) == pytest.approx((first + second) / 2, abs=1e-6)
    summary = {s["model"]: s for s in read_csv(only(out, "model_summary_*.csv"))}
    assert summary["fake_or_real_classifier"]["same_weights_as"] == epochs[1]
    assert summary[epochs[1]]["same_weights_as"] == ""
    assert float(summary["ensemble"]["threshold"]) == pytest.approx((0.4 + 0.5) / 2)
    for row in read_csv(only(out, "disagreements_*.csv")):  # two distinct voters
        assert int(row["fake_votes"]) + int(row["real_votes"]) == 2
        assert "fake_or_real_classifier" not in row["fake_models"]
