"""``deepfake-audio evaluate``: metrics overall / per type / per generator, curves, scores CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepfake_audio import metrics
from deepfake_audio.audio import write_audio
from deepfake_audio.checkpoints import load_checkpoint, save_checkpoint
from deepfake_audio.cli import main
from deepfake_audio.data.listing import dataset_records
from deepfake_audio.data.pipeline import DataOptions
from deepfake_audio.data.records import FAKE, REAL, manifest_fingerprint, write_manifest
from tests.detectors import fake_signal, real_signal, trained_and_untrained

GENERATORS = ("world", "griffinlim")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo-corpus-shaped tree with metadata.csv naming each fake's generator."""
    root = tmp_path_factory.mktemp("eval_corpus")
    rows = []
    seed = 0
    for dataset_type, count in (("demo-a", 4), ("demo-b", 2)):
        for split in ("training", "testing"):
            for label in ("fake", "real"):
                for i in range(count):
                    seed += 1
                    ext = ("wav", "flac", "mp3", "m4a")[i % 4]
                    relative = f"{dataset_type}/{split}/{label}/clip_{i}.{ext}"
                    make = fake_signal if label == "fake" else real_signal
                    write_audio(root / relative, make(0.6, 16000, seed=seed), 16000)
                    generator = GENERATORS[i % 2] if label == "fake" else "human"
                    rows.append([relative, split, label, generator, "nl", "test"])
    (root / "demo-a" / "testing" / "fake" / "broken.wav").write_bytes(b"RIFF....WAVE")
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "split", "label", "generator", "language", "source"])
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return trained_and_untrained(tmp_path_factory.mktemp("eval_models"), seed=4, threshold=0.3)


@pytest.fixture(scope="module")
def report(corpus: Path, models: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval_out")
    args = ["evaluate", "--data", str(corpus), "--output-dir", str(out), "--splits", "testing"]
    for model in models:
        args += ["--model", str(model)]
    assert main([*args, "--no-progress", "--workers", "1"]) == 0
    return out


def scores_table(report: Path) -> list[dict[str, str]]:
    with open(report / "scores.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_outputs_are_written(report: Path) -> None:
    for name in ("roc.png", "det.png", "score_histogram.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = scores_table(report)
    assert len(rows) == 12  # the testing split, the broken file left out
    assert {r["split"] for r in rows} == {"test"}
    document = json.loads((report / "metrics.json").read_text())
    assert set(document["models"]) == {"trained", "untrained", "ensemble"}
    assert [Path(u["path"]).name for u in document["unreadable"]] == ["broken.wav"]
    assert "all real clips" in document["notes"]["by_generator"]


def test_metrics_match_an_independent_computation(report: Path) -> None:
    rows = scores_table(report)
    document = json.loads((report / "metrics.json").read_text())
    labels = np.array([FAKE if r["label"] == "fake" else REAL for r in rows])
    for name, threshold in (("trained", 0.5), ("untrained", 0.3), ("ensemble", 0.4)):
        result = document["models"][name]
        assert result["threshold"] == pytest.approx(threshold)
        scores = np.array([float(r[f"{name}_p_fake"]) for r in rows])
        called = np.where(scores >= threshold, FAKE, REAL)
        overall = result["overall"]
        assert overall["accuracy"] == pytest.approx(np.mean(called == labels), abs=1e-6)
        assert overall["confusion"]["true_fake"] == int(np.sum((called == FAKE) & (labels == FAKE)))
        assert overall["count"] == len(rows)
        assert set(result["by_dataset_type"]) == {"demo-a", "demo-b"}
        assert set(result["by_generator"]) == set(GENERATORS)
        reals = labels == REAL
        for generator, stats in result["by_generator"].items():
            mine = np.array([r["generator"] == generator for r in rows]) & (labels == FAKE)
            pooled = mine | reals
            eer, _ = metrics.equal_error_rate(labels[pooled], scores[pooled])
            assert stats["eer"] == pytest.approx(eer, abs=1e-6)
            assert stats["fake_count"] == int(mine.sum()) and stats["real_count"] == int(
                reals.sum()
            )
            rate = np.mean(scores[mine] >= threshold)
            assert stats["fake_detection_rate"] == pytest.approx(rate)
    members = np.array([[float(r["trained_p_fake"]), float(r["untrained_p_fake"])] for r in rows])
    ensemble = np.array([float(r["ensemble_p_fake"]) for r in rows])
    np.testing.assert_allclose(ensemble, members.mean(axis=1), atol=2e-6)
    assert document["models"]["trained"]["overall"]["accuracy"] > 0.8


def test_metadata_names_the_generators(corpus: Path, tmp_path: Path) -> None:
    options = DataOptions(balance="none", cache_dir=str(tmp_path / "cache"))
    records = dataset_records(corpus, options, ["training"]).records
    fakes = [r for r in records if r.label == FAKE]
    assert {r.generator for r in fakes} == set(GENERATORS)
    assert all(r.split == "train" for r in records)
    # a folder without split folders is carved, as training carves it (it was an error)
    carved = dataset_records(corpus / "demo-a" / "testing", options, ["training"]).records
    assert carved and {r.split for r in carved} == {"train"}


def _leaky_corpus(root: Path) -> Path:
    """Training, validation and testing clips, and one training fake copied into testing as
    16-bit FLAC (the same samples in another container)."""
    for split, offset in (("training", 0), ("validation", 50), ("testing", 100)):
        for i in range(3):
            fake, real = fake_signal(0.6, seed=offset + i), real_signal(0.6, seed=offset + i)
            write_audio(root / split / "fake" / f"f{i}.wav", fake, 16000)
            write_audio(root / split / "real" / f"r{i}.wav", real, 16000)
    pcm, rate = sf.read(root / "training" / "fake" / "f0.wav", dtype="int16")  # the same samples
    sf.write(root / "testing" / "fake" / "copy.flac", pcm, rate, subtype="PCM_16")
    write_audio(root / "testing" / "real" / "r9.wav", real_signal(0.6, seed=109), 16000)
    return root


def test_evaluate_drops_planted_leaks_as_training_does(tmp_path: Path, models, capsys) -> None:
    """A test file that is a training file in another container is left out, and said so."""
    root = _leaky_corpus(tmp_path / "data")
    cache = str(tmp_path / "cache")
    audit = tmp_path / "audit.json"
    assert (
        main(["audit", str(root), "--cache-dir", cache, "--json", str(audit), "--no-progress"]) == 0
    )
    dropped = {
        Path(p).name
        for finding in json.loads(audit.read_text())["separation"]["findings"]
        if finding["kind"] == "leak"
        for p in finding["dropped"]
    }
    assert dropped == {"copy.flac"}
    out = tmp_path / "eval"
    args = ["evaluate", "--data", str(root), "-m", str(models[0]), "--output-dir", str(out)]
    capsys.readouterr()
    assert main([*args, "--cache-dir", cache, "--no-progress", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "1 file(s) copied across splits were left out" in printed
    names = {Path(r["path"]).name for r in scores_table(out)}
    assert "copy.flac" not in names
    assert {n for n in names if n.startswith("f")} == {"f0.wav", "f1.wav", "f2.wav"}
    assert len(names) == 6  # balanced as training balances: 3 of the 4 real clips


def test_evaluate_a_run_on_its_own_test_split(tmp_path: Path, models, capsys) -> None:
    """--run RUN scores exactly the run's test split, with its final model; and the run's
    model evaluated on a root holding its training files says so."""
    root = _leaky_corpus(tmp_path / "data")
    cache = str(tmp_path / "cache")
    prepared = dataset_records(root, DataOptions(cache_dir=cache), None).records
    run = tmp_path / "run"
    run.mkdir()
    write_manifest(prepared, run / "manifest.jsonl")
    detector = load_checkpoint(models[0])
    save_checkpoint(
        run / "fake_or_real_classifier.safetensors", detector.model, model_name="seed_cnn",
        preprocess=detector.preprocess, threshold=detector.threshold,
        extra={"manifest_fingerprint": manifest_fingerprint(prepared)},
    )  # fmt: skip
    out = tmp_path / "eval"
    assert main(["evaluate", "--run", str(run), "--output-dir", str(out), "--no-progress"]) == 0
    expected = sorted(r.path for r in prepared if r.split == "test")
    assert sorted(r["path"] for r in scores_table(out)) == expected
    capsys.readouterr()
    args = ["evaluate", "--data", str(root), "-m", str(run), "--splits", "training,testing"]
    assert main([*args, "--output-dir", str(tmp_path / "e2"), "--cache-dir", cache]) == 0
    warning = capsys.readouterr().err
    assert "warning: 6 of 12 evaluation file(s) were in fake_or_real_classifier" in warning
    assert "by path 6" in warning  # the training files; the test files are not
