"""The shortcut audit: per-file facts, and a planted cue found first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepfake_audio.audio import write_audio
from deepfake_audio.cli import main
from deepfake_audio.data.features import FeatureAccumulator, signal_features
from deepfake_audio.data.probe import probe_file
from deepfake_audio.data.records import FAKE, REAL, TEST, TRAIN, VALIDATION, ClipRecord
from deepfake_audio.data.shortcuts import ALL, audit_shortcuts, shortcut_warnings
from tests.detectors import fake_signal, real_signal

RATE = 16000


def test_silence_loudness_and_bandwidth_are_measured() -> None:
    speech = real_signal(1.0, RATE, seed=1)
    clip = np.concatenate([np.zeros(8000, np.float32), speech, np.zeros(3200, np.float32)])
    facts = signal_features(clip, RATE)
    assert facts["leading_silence"] == pytest.approx(0.5, abs=0.021)
    assert facts["trailing_silence"] == pytest.approx(0.2, abs=0.021)
    assert facts["duration"] == pytest.approx(1.7)
    assert facts["peak_db"] == pytest.approx(20 * np.log10(np.abs(clip).max()), abs=0.01)
    noise = fake_signal(1.0, RATE)
    narrow = np.convolve(noise, np.ones(8) / 8, "same").astype(np.float32)  # a low-pass
    assert signal_features(narrow, RATE)["rolloff_hz"] < signal_features(noise, RATE)["rolloff_hz"]
    silent = signal_features(np.zeros(RATE, np.float32), RATE)
    assert silent["leading_silence"] == silent["trailing_silence"] == 1.0


def test_blocks_give_the_features_of_the_whole() -> None:
    clip = np.concatenate([np.zeros(5000, np.float32), real_signal(2.0, RATE, seed=3)])
    accumulator = FeatureAccumulator(RATE)
    for start in range(0, clip.size, 7001):  # blocks that do not fall on frame boundaries
        accumulator.update(clip[start : start + 7001])
    whole, blocks = signal_features(clip, RATE), accumulator.result()
    for name in ("duration", "leading_silence", "trailing_silence", "peak_db"):
        assert blocks[name] == whole[name], name
    assert blocks["rms_db"] == pytest.approx(whole["rms_db"], abs=1e-3)


def test_probe_reports_the_file_facts(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "a.flac", real_signal(0.5, 22050), 22050, subtype="PCM_24")
    facts = probe_file(str(path)).features
    assert facts["container"] == "flac" and facts["bit_depth"] == 24
    assert facts["sample_rate"] == 22050 and facts["channels"] == 1


def records_with(cue: float, n: int = 60, seed: int = 0) -> tuple[list, dict]:
    """Records over three splits whose only fake/real difference is a leading silence of
    ``cue`` seconds before every fake (and a random, class-free length of everything)."""
    rng = np.random.default_rng(seed)
    records, features = [], {}
    for split, count in ((TRAIN, n), (VALIDATION, n // 2), (TEST, n // 2)):
        for i in range(count):
            label = FAKE if i % 2 else REAL
            path = f"/{split}/{i}.wav"
            records.append(ClipRecord(path=path, label=label, split=split))
            lead = rng.uniform(0, 0.05) + (cue * rng.uniform(0.8, 1.2) if label == FAKE else 0.0)
            features[path] = {
                "duration": rng.uniform(1, 5), "leading_silence": lead,
                "trailing_silence": rng.uniform(0, 0.3), "rms_db": rng.normal(-20, 3),
                "peak_db": rng.normal(-3, 1), "rolloff_hz": rng.normal(5000, 500),
                "dc_offset": rng.normal(0, 1e-3), "sample_rate": 16000.0, "channels": 1.0,
                "bit_depth": 16.0, "container": "wav",
            }  # fmt: skip
    return records, features


def test_a_planted_leading_silence_is_flagged_first() -> None:
    records, features = records_with(cue=0.5)
    report = audit_shortcuts(records, features)
    first = report["shortcuts"][0]
    assert first["feature"] in ("leading_silence", ALL) and first["auc"] >= 0.9
    by_name = {row["feature"]: row for row in report["shortcuts"]}
    assert by_name["leading_silence"]["auc"] >= 0.9 and by_name["leading_silence"]["flagged"]
    assert not by_name["duration"]["flagged"] and by_name["sample_rate"]["auc"] == 0.5
    assert report["evaluated_on"] == [TEST, VALIDATION]
    (line, *_) = [w for w in shortcut_warnings(report) if "leading_silence" in w]
    assert "train with --trim-silence" in line


def test_clean_data_flags_nothing_and_one_class_is_skipped() -> None:
    records, features = records_with(cue=0.0)
    report = audit_shortcuts(records, features)
    assert not any(row["flagged"] for row in report["shortcuts"])
    only_fake = [r for r in records if r.label == FAKE]
    assert "skipped" in audit_shortcuts(only_fake, features)


def test_audit_reports_a_planted_cue_end_to_end(tmp_path: Path, capsys) -> None:
    """A FoR-layout folder whose fakes all start with 0.6 s of silence (and are as long)."""
    root = tmp_path / "data"
    seed = 0
    for split, count in (("training", 16), ("validation", 6), ("testing", 6)):
        for label in ("fake", "real"):
            for i in range(count):
                seed += 1
                if label == "fake":  # the same lengths as the real clips, 0.6 s of it silence
                    voice = real_signal(0.8 + 0.1 * (i % 4), RATE, seed=seed)
                    voice = np.concatenate([np.zeros(int(0.6 * RATE), np.float32), voice])
                else:
                    voice = real_signal(1.4 + 0.1 * (i % 4), RATE, seed=seed)
                write_audio(root / "for-2sec" / split / label / f"{i}.wav", voice, RATE)
    out = tmp_path / "report.json"
    args = ["audit", str(root), "--json", str(out), "--cache-dir", str(tmp_path / "c")]
    assert main([*args, "--no-progress", "--workers", "1"]) == 0
    report = json.loads(out.read_text())["shortcuts"]
    assert report["shortcuts"][0]["feature"] in ("leading_silence", ALL)
    assert {r["feature"]: r for r in report["shortcuts"]}["leading_silence"]["auc"] >= 0.9
    text = capsys.readouterr().out
    assert "Shortcut audit" in text and "leading_silence alone separates" in text
