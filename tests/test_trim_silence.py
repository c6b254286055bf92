"""`--trim-silence`: leading and trailing silence leave every clip before it is windowed, in
training and scoring alike, stored in the checkpoint; the remedy the shortcut audit names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepfake_audio.checkpoints import check_checkpoint
from deepfake_audio.cli import main
from deepfake_audio.data.loading import ClipDataset
from deepfake_audio.data.records import ClipRecord
from deepfake_audio.data.shortcuts import shortcut_warnings
from deepfake_audio.preprocess import PreprocessConfig, SilenceTrimmer, trim_silence
from deepfake_audio.scoring.windows import Windower
from tests.test_train import RATE, SMALL_ARGS, make_corpus

FRAME = 20  # samples in a 20 ms frame at 1 kHz


def tone(seconds: float, rate: int = 1000, level: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * 97 * t)).astype(np.float32)


def quiet(seconds: float, rate: int = 1000, seed: int = 0) -> np.ndarray:
    """Noise at about -70 dBFS: silence by the -50 dBFS rule, but not digital zeros."""
    rng = np.random.default_rng(seed)
    return (3e-4 * rng.standard_normal(round(seconds * rate))).astype(np.float32)


def test_the_edges_go_and_the_inside_stays() -> None:
    signal = np.concatenate([quiet(1.0), tone(0.5), quiet(0.3, seed=1), tone(0.5), quiet(0.7)])
    out = trim_silence(signal, 1000)
    # leading 1.0 s and trailing 0.7 s are whole frames of silence; the 0.3 s gap stays
    np.testing.assert_array_equal(out, signal[1000 : 1000 + 1300])


def test_fed_in_blocks_it_gives_what_the_whole_gives() -> None:
    signal = np.concatenate([quiet(0.73), tone(0.41), quiet(0.55, seed=2), tone(0.3), quiet(1.1)])
    whole = trim_silence(signal, 1000)
    rng = np.random.default_rng(0)
    for _ in range(20):
        cuts = np.sort(rng.integers(0, signal.size, size=rng.integers(1, 12)))
        trimmer = SilenceTrimmer(1000)
        parts = [trimmer.feed(block) for block in np.split(signal, cuts)]
        parts.append(trimmer.finish())
        np.testing.assert_array_equal(np.concatenate(parts), whole)
        assert trimmer.dropped == 720  # 36 whole silent frames before the first sound


def test_a_signal_without_sound_is_left_as_it_is() -> None:
    signal = quiet(1.5)
    np.testing.assert_array_equal(trim_silence(signal, 1000), signal)
    assert trim_silence(np.zeros(0, np.float32), 1000).size == 0


def test_memory_is_bounded_by_the_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """A silent run longer than the hold: leading, its oldest part is dropped; inside, it is
    passed on; so a streamed file of any length is trimmed in bounded memory."""
    trimmer = SilenceTrimmer(1000)
    trimmer.hold = 200  # 0.2 s instead of 30 s
    out = [trimmer.feed(quiet(1.0))]
    assert trimmer._held.size <= 200 and out[0].size == 0
    out.append(trimmer.feed(tone(0.2)))
    assert trimmer.dropped == 1000  # every leading sample: 800 spilled, 200 held
    out.append(trimmer.feed(quiet(1.0, seed=3)))
    assert trimmer._held.size <= 200
    out.append(trimmer.feed(tone(0.2)))
    out.append(trimmer.finish())
    assert sum(part.size for part in out) == 200 + 1000 + 200  # the inner run passes on whole


def test_windows_of_a_trimmed_config_start_where_the_sound_is() -> None:
    rate = 1000
    signal = np.concatenate([quiet(1.5), tone(1.0), quiet(0.9)])
    trimmed = PreprocessConfig(rate, 0.5, "peak", trim_silence=True)
    plain = PreprocessConfig(rate, 0.5, "peak")
    windows = Windower([trimmed, plain], rate).feed(signal, last=True)
    trimmed_windows, trimmed_starts = windows[0]
    np.testing.assert_allclose(trimmed_starts, [1.5, 2.0])  # seconds in the file as it is
    for window in trimmed_windows:  # no window holds a silent edge
        np.testing.assert_allclose(np.abs(window).max(), 1.0, rtol=1e-5)
        frames = window.reshape(-1, FRAME)
        assert np.sqrt((frames**2).mean(axis=1)).min() > 0.1
    plain_starts = windows[1][1]
    assert len(plain_starts) > len(trimmed_starts)  # the untrimmed config still sees the edges


def test_streamed_blocks_window_as_the_whole_clip() -> None:
    rate = 1000
    signal = np.concatenate([quiet(2.2), tone(3.1), quiet(0.4, seed=5), tone(1.3), quiet(1.7)])
    config = PreprocessConfig(rate, 0.5, "peak", trim_silence=True)
    whole_windows, whole_starts = Windower([config], rate, 0.25).feed(signal, last=True)[0]
    windower = Windower([config], rate, 0.25)
    parts = [windower.feed(block) for block in np.array_split(signal, 7)]
    parts.append(windower.feed(np.zeros(0, np.float32), last=True))
    np.testing.assert_array_equal(np.concatenate([p[0][0] for p in parts]), whole_windows)
    np.testing.assert_allclose(np.concatenate([p[0][1] for p in parts]), whole_starts)


def test_training_windows_come_from_the_trimmed_clip() -> None:
    rate = 1000
    clip = np.concatenate([np.zeros(3000, np.float32), tone(0.5)])
    record = ClipRecord(path="a.wav", label=0, split="training", dataset_type="t")
    for trim, silent_windows in ((True, 0), (False, None)):
        config = PreprocessConfig(rate, 0.5, "none", trim_silence=trim)
        dataset = ClipDataset([record], lambda _: clip, config, seed=0)
        windows = [dataset.window(clip, 0, epoch) for epoch in range(20)]
        silent = sum(float(np.abs(w).max()) == 0.0 for w in windows)
        if silent_windows is None:
            assert silent > 0  # untrimmed, most random windows fall in the 3 s of silence
        else:
            assert silent == silent_windows


def test_older_checkpoints_read_as_untrimmed() -> None:
    values = {"sample_rate": 16000, "window_seconds": 2.0, "normalization": "peak"}
    assert PreprocessConfig.from_dict(values).trim_silence is False
    config = PreprocessConfig(16000, 2.0, "peak", trim_silence=True)
    assert PreprocessConfig.from_dict(config.to_dict()) == config


def test_warnings_say_the_remedy_is_applied() -> None:
    report = {
        "shortcuts": [
            {"feature": "leading_silence", "auc": 0.97, "flagged": True, "remedy": "r"},
            {"feature": "duration", "auc": 0.85, "flagged": True, "remedy": "cut"},
        ]
    }
    plain = shortcut_warnings(report)
    assert "train with" not in plain[0] and plain[0].startswith("warning: shortcut:")
    trimmed = shortcut_warnings(report, trim_silence=True)
    assert trimmed[0].startswith("note: shortcut: leading_silence")
    assert "--trim-silence removes it" in trimmed[0]
    assert trimmed[1].startswith("warning: shortcut: duration")


def test_a_run_trained_with_it_trims_when_it_scores(tmp_path: Path, capsys) -> None:
    counts = {"training": {"fake": 6, "real": 6}, "validation": {"fake": 3, "real": 3}}
    corpus = make_corpus(tmp_path / "data", counts)
    run = tmp_path / "run"
    args = ["train", "--data-root", str(corpus), "--output-dir", str(run), "--epochs", "1"]
    args += ["--trim-silence", "--cache-dir", str(tmp_path / "c")]
    assert main([*args, *SMALL_ARGS]) == 0
    assert json.loads((run / "config.json").read_text())["trim_silence"] is True
    final = run / "fake_or_real_classifier.safetensors"
    assert check_checkpoint(final).preprocess.trim_silence is True
    clip = tmp_path / "late.wav"
    sf.write(clip, np.concatenate([np.zeros(RATE), tone(1.0, RATE)]), RATE, "PCM_16")
    capsys.readouterr()
    assert main(["predict", "--model", str(final), "--json", str(clip)]) == 0
    (result,) = json.loads(capsys.readouterr().out)["files"]
    (verdict,) = result["models"].values()
    starts = [w["start"] for w in verdict["windows"]]
    assert starts and min(starts) == pytest.approx(1.0)  # the silent second was trimmed
