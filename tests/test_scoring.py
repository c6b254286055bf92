"""The one scoring path: windows, aggregation, batching across files, decode once per file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from deepfake_audio import audio
from deepfake_audio.checkpoints import load_checkpoint
from deepfake_audio.data.records import ClipRecord
from deepfake_audio.preprocess import PreprocessConfig, sliding_windows
from deepfake_audio.scoring.engine import resolve_device, score_table
from deepfake_audio.scoring.inference import fake_probability, score_windows
from deepfake_audio.scoring.lineup import ENSEMBLE, make_lineup, model_names, rule_warnings
from deepfake_audio.scoring.options import ScoringOptions, ScoringRule, aggregate
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


def records(paths) -> list[ClipRecord]:
    return [ClipRecord(path=str(p), label=None) for p in paths]


def table(detectors, paths, **options):
    return score_table(detectors, records(paths), ScoringOptions(**options))


def test_pooled_scores_match_each_file_scored_alone(files, detectors) -> None:
    """Pooling windows of many files into one batch must not change any file's score."""
    scored = table(detectors, files, batch_size=7)
    assert [f.record.path for f in scored.files] == [str(p) for p in files]
    names = model_names(detectors)
    for k, result in enumerate(scored.scored):
        for name, detector in zip(names, detectors, strict=True):
            samples = audio.load_audio(result.record.path, detector.preprocess.sample_rate)
            windows, _ = sliding_windows(samples, detector.preprocess)
            alone = score_windows(detector.model, windows, batch_size=1)
            clip = result.clips[name]
            assert clip.score == pytest.approx(float(np.mean(alone)), abs=1e-5)
            np.testing.assert_allclose(clip.window_scores, alone, atol=1e-5)
            assert scored.p_fake[name][k] == pytest.approx(clip.score, rel=1e-9)  # identity
        ensemble = np.mean([c.score for c in result.clips.values()])
        assert scored.p_fake[ENSEMBLE][k] == pytest.approx(ensemble)


def test_unreadable_files_come_back_with_reasons(files, detectors) -> None:
    scored = table(detectors[:1], files)
    results = {Path(f.record.path).name: f for f in scored.files}
    assert "empty" in results["empty.flac"].error
    assert results["broken.wav"].error
    assert not results["broken.wav"].clips
    assert len(scored.scored) == len(files) - 2
    assert dict(scored.unreadable).keys() == {str(files[2]), str(files[-1])}
    assert len(scored.p_fake[model_names(detectors[:1])[0]]) == len(files) - 2


def test_long_file_is_scored_over_all_its_windows(long_file, detectors) -> None:
    detector = detectors[0]  # 0.25 s windows
    long = [long_file]
    (mean,) = table([detector], long, aggregation="mean").files
    clip = mean.clips[detector.name]
    assert len(clip.window_scores) == math.ceil(60 / PREPROCESS.window_seconds)
    assert clip.window_starts[0] == 0.0
    assert clip.window_starts[-1] == pytest.approx(60 - PREPROCESS.window_seconds)
    assert clip.score == pytest.approx(float(np.mean(clip.window_scores)))
    (highest,) = table([detector], long, aggregation="max").files
    assert highest.clips[detector.name].score == pytest.approx(float(np.max(clip.window_scores)))
    (overlap,) = table([detector], long, hop_seconds=0.125).files
    assert len(overlap.clips[detector.name].window_scores) == 479  # (60 - 0.25) / 0.125 + 1


def test_each_file_is_decoded_once_for_all_models(files, detectors, monkeypatch) -> None:
    calls: list[str] = []
    real_decode = audio.decode_file

    def counting(path, **kwargs):
        calls.append(str(path))
        return real_decode(path, **kwargs)

    monkeypatch.setattr(audio, "decode_file", counting)
    scored = table(detectors, files, workers=1)
    assert len(detectors) == 3
    assert sorted(calls) == sorted(str(p) for p in files)
    assert all(len(f.clips) == 3 for f in scored.scored)


def test_worker_processes_give_the_same_scores(files, detectors) -> None:
    many = files * 3  # more than one chunk of 8, so the pool really starts
    here = table(detectors[:1], many, workers=1)
    pooled = table(detectors[:1], many, workers=2)
    for a, b in zip(here.files, pooled.files, strict=True):
        assert (a.record.path, a.error) == (b.record.path, b.error)
    name = model_names(detectors[:1])[0]
    np.testing.assert_allclose(here.p_fake[name], pooled.p_fake[name], atol=1e-6)


def test_model_names_are_unique(tmp_path: Path) -> None:
    paths = []
    for run in ("run_a", "run_b"):
        (tmp_path / run).mkdir()
        paths.append(untrained_checkpoint(tmp_path / run / "fake_or_real_classifier.safetensors"))
    loaded = [load_checkpoint(p) for p in paths]
    assert model_names(loaded) == ["run_a/fake_or_real_classifier", "run_b/fake_or_real_classifier"]


def test_device_resolution(monkeypatch) -> None:
    assert resolve_device("cpu").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
    assert resolve_device("cuda").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(ValueError, match="GPU"):
        resolve_device("cuda")


def test_bad_options_raise() -> None:
    with pytest.raises(ValueError, match="aggregation"):
        ScoringOptions(aggregation="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch size"):
        ScoringOptions(batch_size=0)
    with pytest.raises(ValueError, match="hop"):
        ScoringOptions(hop_seconds=0.0)
    with pytest.raises(ValueError, match="hop"):
        ScoringOptions(hop_seconds=math.inf)  # was a traceback deep in the windowing
    with pytest.raises(ValueError, match="threshold"):
        ScoringOptions(threshold=1.5)


def test_rule_warnings_name_the_models_scored_another_way(tmp_path: Path) -> None:
    """A threshold belongs to the rule it was set with: scoring otherwise says so."""
    mean_rule = ScoringRule("mean", None).to_dict()
    stored = load_checkpoint(
        untrained_checkpoint(tmp_path / "stored.safetensors", 1, scoring_rule=mean_rule)
    )
    legacy = load_checkpoint(untrained_checkpoint(tmp_path / "legacy.safetensors", 2))
    assert stored.stored_rule == mean_rule and legacy.stored_rule is None
    assert rule_warnings([stored, legacy], ScoringOptions()) == []
    (line,) = rule_warnings([stored, legacy], ScoringOptions(aggregation="max"))
    assert line.startswith("warning: stored's threshold") and "max" in line
    assert len(rule_warnings([stored], ScoringOptions(hop_seconds=0.5))) == 1
    assert rule_warnings([stored], ScoringOptions(aggregation="max", threshold=0.3)) == []


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
    overridden = make_lineup(detectors, options=ScoringOptions(threshold=0.5))
    assert set(overridden.thresholds.values()) == {0.5}
    single = make_lineup(detectors[:1])
    assert single.models == ["a"]
    assert set(single.with_fused({"a": np.array([0.3])})) == {"a"}
    with pytest.raises(ValueError, match="no model"):
        make_lineup([])


def test_a_low_budget_shrinks_the_batch_of_windows(files, detectors, monkeypatch, caplog) -> None:
    """Under a memory budget scoring takes smaller batches, never a different score."""
    from deepfake_audio.scoring import engine

    reference = table(detectors[:1], files, batch_size=64)
    monkeypatch.setattr(engine, "available_memory", lambda: (100 * 2**20, "test"))
    monkeypatch.setattr(engine, "window_memory", lambda model, samples: 10 * 2**20)
    with caplog.at_level("WARNING", logger="deepfake_audio.scoring.engine"):
        shrunk = table(detectors[:1], files, batch_size=64)
    assert shrunk.options.batch_size == 8  # 0.8 x 100 MB / 10 MB a window
    assert "scoring in batches of 8 windows instead of 64" in caplog.text
    name = model_names(detectors[:1])[0]
    np.testing.assert_allclose(shrunk.p_fake[name], reference.p_fake[name], atol=1e-6)


def test_window_memory_is_measured() -> None:
    """A 4 s window of seed_cnn: 32 channels of 64,000 float32 samples and more (over 8 MB)."""
    from deepfake_audio.models.registry import build_model
    from deepfake_audio.scoring.engine import window_memory

    model = build_model("seed_cnn", {"input_samples": 64000})
    assert window_memory(model, 64000) > 8 * 2**20
