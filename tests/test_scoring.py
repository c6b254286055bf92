"""The one scoring path: windows, aggregation, batching across files, decode once per file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from deepfake_audio import audio
from deepfake_audio.checkpoints import load_checkpoint
from deepfake_audio.preprocess import PreprocessConfig
from deepfake_audio.scoring.engine import (
    ENSEMBLE,
    FileScores,
    aggregate,
    fake_probability,
    make_lineup,
    model_names,
    resolve_device,
    score_clip,
    score_files,
)
from tests.detectors import (
    PREPROCESS,
    fake_signal,
    real_signal,
    shared_trained_checkpoint,
    untrained_checkpoint,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("scoring_audio")
    paths = []
    for i, ext in enumerate(("wav", "flac", "mp3", "ogg", "m4a")):
        make = fake_signal if i % 2 else real_signal
        paths.append(
            audio.write_audio(root / f"clip_{i}.{ext}", make(0.3 + 0.4 * i, seed=i), 16000)
        )
    broken = root / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    empty = root / "empty.flac"
    empty.write_bytes(b"")
    paths[2:2] = [broken]
    paths.append(empty)
    return paths


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minute of audio: must be judged on all of it, not its first window."""
    root = tmp_path_factory.mktemp("scoring_long")
    return audio.write_audio(root / "long.wav", fake_signal(60.0, seed=9), 16000)


@pytest.fixture(scope="module")
def detectors(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("scoring_models")
    other_rate = PreprocessConfig(sample_rate=16000, window_seconds=0.125)
    return [
        load_checkpoint(shared_trained_checkpoint()),
        load_checkpoint(untrained_checkpoint(folder / "a.safetensors", seed=1)),
        load_checkpoint(untrained_checkpoint(folder / "b.safetensors", 2, preprocess=other_rate)),
    ]


def test_fake_probability_is_softmax_of_the_fake_logit() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    expected = [math.exp(2) / (math.exp(2) + 1), 0.5]
    assert fake_probability(logits).tolist() == pytest.approx(expected)


def test_aggregate() -> None:
    scores = np.array([0.1, 0.9, 0.2])
    assert aggregate(scores, "mean") == pytest.approx(0.4)
    assert aggregate(scores, "max") == pytest.approx(0.9)
    with pytest.raises(ValueError):
        aggregate(scores, "median")  # type: ignore[arg-type]


def test_score_files_matches_each_file_scored_alone(files, detectors) -> None:
    """Pooling windows of many files into one batch must not change any file's score."""
    results = list(score_files(detectors, files, batch_size=7))
    assert [r.path for r in results] == [str(p) for p in files]
    names = model_names(detectors)
    for result in results:
        if not result.ok:
            continue
        for name, detector in zip(names, detectors, strict=True):
            samples = audio.load_audio(result.path, detector.preprocess.sample_rate)
            alone = score_clip(detector.model, samples, detector.preprocess)
            clip = result.clips[name]
            assert clip.score == pytest.approx(alone.score, abs=1e-5)
            np.testing.assert_allclose(clip.window_scores, alone.window_scores, atol=1e-5)
        assert result.fused() == pytest.approx(np.mean([c.score for c in result.clips.values()]))


def test_unreadable_files_come_back_with_reasons(files, detectors) -> None:
    results = {Path(r.path).name: r for r in score_files(detectors[:1], files)}
    assert "empty" in results["empty.flac"].error
    assert results["broken.wav"].error
    assert not results["broken.wav"].clips
    assert sum(r.ok for r in results.values()) == len(files) - 2


def test_long_file_is_scored_over_all_its_windows(long_file, detectors) -> None:
    detector = detectors[0]  # 0.25 s windows
    long = [long_file]
    (mean,) = score_files([detector], long, method="mean")
    clip = mean.clips[detector.name]
    assert len(clip.window_scores) == math.ceil(60 / PREPROCESS.window_seconds)
    assert clip.window_starts[0] == 0.0
    assert clip.window_starts[-1] == pytest.approx(60 - PREPROCESS.window_seconds)
    assert clip.score == pytest.approx(float(np.mean(clip.window_scores)))
    (highest,) = score_files([detector], long, method="max")
    assert highest.clips[detector.name].score == pytest.approx(float(np.max(clip.window_scores)))
    (overlap,) = score_files([detector], long, hop_seconds=0.125)
    assert len(overlap.clips[detector.name].window_scores) == 479  # (60 - 0.25) / 0.125 + 1


def test_each_file_is_decoded_once_for_all_models(files, detectors, monkeypatch) -> None:
    calls: list[str] = []
    real_decode = audio.decode_file

    def counting(path):
        calls.append(str(path))
        return real_decode(path)

    monkeypatch.setattr(audio, "decode_file", counting)
    results = list(score_files(detectors, files, workers=1))
    assert len(detectors) == 3
    assert sorted(calls) == sorted(str(p) for p in files)
    assert all(len(r.clips) == 3 for r in results if r.ok)


def test_worker_processes_give_the_same_scores(files, detectors) -> None:
    many = files * 3  # more than one chunk of 8, so the pool really starts
    here = list(score_files(detectors[:1], many, workers=1))
    pooled = list(score_files(detectors[:1], many, workers=2))
    for a, b in zip(here, pooled, strict=True):
        assert (a.path, a.error) == (b.path, b.error)
        if a.ok:
            assert a.clips[detectors[0].name].score == pytest.approx(
                b.clips[detectors[0].name].score, abs=1e-6
            )


def test_model_names_are_unique(tmp_path: Path) -> None:
    paths = []
    for run in ("run_a", "run_b"):
        (tmp_path / run).mkdir()
        paths.append(untrained_checkpoint(tmp_path / run / "fake_or_real_classifier.safetensors"))
    loaded = [load_checkpoint(p) for p in paths]
    assert model_names(loaded) == ["run_a/fake_or_real_classifier", "run_b/fake_or_real_classifier"]


def test_device_resolution() -> None:
    assert resolve_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="GPU"):
            resolve_device("cuda")


def test_bad_options_raise(files, detectors) -> None:
    with pytest.raises(ValueError):
        list(score_files(detectors, files, method="median"))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        list(score_files(detectors, files, batch_size=0))
    assert FileScores("x", "bad").ok is False


def test_lineup_names_thresholds_and_ensemble(tmp_path: Path) -> None:
    detectors = [
        load_checkpoint(untrained_checkpoint(tmp_path / "a.safetensors", 1, threshold=0.2)),
        load_checkpoint(untrained_checkpoint(tmp_path / "b.safetensors", 2, threshold=0.6)),
    ]
    lineup = make_lineup(detectors)
    assert lineup.models == ["a", "b", ENSEMBLE]
    assert lineup.thresholds == pytest.approx({"a": 0.2, "b": 0.6, ENSEMBLE: 0.4})
    assert lineup.sources["a"].endswith("a.safetensors")
    scores = lineup.with_fused({"a": np.array([0.1, 0.9]), "b": np.array([0.3, 0.5])})
    np.testing.assert_allclose(scores[ENSEMBLE], [0.2, 0.7])
    overridden = make_lineup(detectors, threshold=0.5)
    assert set(overridden.thresholds.values()) == {0.5}
    single = make_lineup(detectors[:1])
    assert single.models == ["a"]
    assert set(single.with_fused({"a": np.array([0.3])})) == {"a"}
    with pytest.raises(ValueError, match="no model"):
        make_lineup([])
