"""Long files are read a block at a time: the same audio, hashes, windows and scores as a whole
file, in memory that does not grow with the duration; silence gets no verdict."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepfake_audio import audio_stream
from deepfake_audio.audio import AudioDecodeError, decode_file, write_audio
from deepfake_audio.audio_stream import AudioBlocks, StreamResampler
from deepfake_audio.checkpoints import load_checkpoint
from deepfake_audio.cli import main
from deepfake_audio.commands.read_limits import duration_hours
from deepfake_audio.data import probe
from deepfake_audio.data.records import ClipRecord
from deepfake_audio.preprocess import PreprocessConfig, WindowCutter, sliding_windows
from deepfake_audio.scoring import windows as windows_module
from deepfake_audio.scoring.engine import score_table
from deepfake_audio.scoring.options import ScoringOptions
from deepfake_audio.scoring.windows import SILENT
from tests.detectors import fake_signal, real_signal, shared_trained_checkpoint


def stereo(seconds: float, rate: int) -> np.ndarray:
    left = real_signal(seconds, rate, seed=1)
    return np.stack([left, fake_signal(seconds, rate, seed=2)], axis=1)


@pytest.mark.parametrize(
    ("name", "rate", "channels"),
    [("a.wav", 16000, 1), ("b.flac", 44100, 2), ("c.mp3", 22050, 1), ("d.m4a", 16000, 1)],
)
def test_blocks_are_the_whole_signal(tmp_path: Path, name: str, rate: int, channels: int) -> None:
    """Every backend's blocks, joined, are the mono signal a whole decode gives: bit for bit,
    or for MP3 to float rounding (libsndfile's reader computes a frame in pieces)."""
    signal = stereo(7.3, rate) if channels == 2 else real_signal(7.3, rate)
    path = write_audio(tmp_path / name, signal, rate)
    whole = decode_file(path)
    blocks = AudioBlocks(path, block_seconds=1.0)
    parts = list(blocks)
    assert len(parts) >= 7
    atol = 1e-6 if name.endswith(".mp3") else 0
    np.testing.assert_allclose(np.concatenate(parts), whole.mono(), rtol=0, atol=atol)
    assert (blocks.sample_rate, blocks.num_channels) == (whole.sample_rate, whole.num_channels)
    assert blocks.duration == pytest.approx(whole.duration)
    data = path.read_bytes()  # from bytes already in memory, the same
    joined = np.concatenate(list(AudioBlocks(path, data)))
    np.testing.assert_allclose(joined, whole.mono(), rtol=0, atol=atol)


def test_stream_resampling_is_whole_resampling() -> None:
    signal = real_signal(3.1, 44100)
    resampler = StreamResampler(44100, 16000)
    parts = [resampler(signal[i : i + 10_000]) for i in range(0, len(signal), 10_000)]
    parts.append(resampler(np.zeros(0, np.float32), last=True))
    from deepfake_audio.audio import resample

    np.testing.assert_array_equal(np.concatenate(parts), resample(signal, 44100, 16000))


@pytest.mark.parametrize("hop", [None, 0.3, 1.7])
@pytest.mark.parametrize("length", [500, 1000, 2400, 5321])
def test_window_cutter_cuts_what_sliding_windows_cuts(length: int, hop: float | None) -> None:
    config = PreprocessConfig(sample_rate=1000, window_seconds=1.0)
    clip = real_signal(length / 1000, 1000, seed=length)
    rng = np.random.default_rng(length)
    cutter = WindowCutter(config, hop)
    cuts, position = [], 0
    while position < length:
        size = int(rng.integers(1, 700))
        cuts.append(cutter.feed(clip[position : position + size]))
        position += size
    cuts.append(cutter.finish())
    expected_windows, expected_starts = sliding_windows(clip, config, hop)
    np.testing.assert_array_equal(np.concatenate([w for w, _ in cuts]), expected_windows)
    np.testing.assert_array_equal(np.concatenate([s for _, s in cuts]), expected_starts)


def test_silent_windows_are_left_out_when_asked() -> None:
    config = PreprocessConfig(sample_rate=1000, window_seconds=1.0)
    clip = np.concatenate([np.zeros(2000, np.float32), real_signal(1.0, 1000)])
    cutter = WindowCutter(config, drop_silent=True)
    _, starts = cutter.feed(clip)
    np.testing.assert_array_equal(np.concatenate([starts, cutter.finish()[1]]), [2.0])
    assert len(sliding_windows(clip, config)[1]) == 3  # training keeps them


def test_a_long_file_scores_as_it_would_whole(tmp_path: Path, monkeypatch) -> None:
    """Read in parts (a 1-second 'long' limit, blocks of 0.7 s), a file at another rate gets
    the window scores it gets decoded whole, and the files around it are unaffected."""
    detector = load_checkpoint(shared_trained_checkpoint())
    paths = [
        write_audio(tmp_path / "a.wav", fake_signal(0.6, 16000), 16000),
        write_audio(tmp_path / "long.flac", stereo(9.0, 22050), 22050),
        write_audio(tmp_path / "b.wav", real_signal(0.6, 16000), 16000),
    ]
    records = [ClipRecord(path=str(p), label=None) for p in paths]
    options = ScoringOptions(hop_seconds=0.1, batch_size=16)
    whole = score_table([detector], records, options)
    monkeypatch.setattr(windows_module, "LONG_SECONDS", 1.0)
    monkeypatch.setattr(audio_stream, "BLOCK_SECONDS", 0.7)
    streamed = score_table([detector], records, options)
    name = whole.lineup.names[0]
    for before, after in zip(whole.files, streamed.files, strict=True):
        assert after.ok and after.duration == pytest.approx(before.duration)
        clip_before, clip_after = before.clips[name], after.clips[name]
        np.testing.assert_array_equal(clip_after.window_starts, clip_before.window_starts)
        np.testing.assert_allclose(clip_after.window_scores, clip_before.window_scores, atol=1e-5)
    # 0.25 s windows every 0.1 s over 9 s: 0.0 ... 8.7, then 8.75 aligned to the end
    assert len(streamed.files[1].clips[name].window_scores) == 89


def test_an_audit_of_a_long_file_hashes_it_as_whole(tmp_path: Path, monkeypatch) -> None:
    path = write_audio(tmp_path / "long.flac", stereo(6.0, 44100), 44100)
    whole = probe.probe_file(str(path), target_rate=16000)
    monkeypatch.setattr(probe, "LONG_SECONDS", 1.0)
    monkeypatch.setattr(audio_stream, "BLOCK_SECONDS", 0.5)
    blocks = probe.probe_file(str(path), target_rate=16000)
    for field in ("duration", "sample_rate", "num_channels", "file_hash", "audio_hash", "silent"):
        assert getattr(blocks, field) == getattr(whole, field), field
    np.testing.assert_array_equal(blocks.audio, whole.audio)


def test_a_silent_file_gets_no_verdict(tmp_path: Path, capsys) -> None:
    write_audio(tmp_path / "quiet.wav", np.zeros(16000, np.float32), 16000)
    write_audio(tmp_path / "tone.wav", real_signal(1.0, 16000), 16000)
    model = str(shared_trained_checkpoint())
    assert main(["predict", str(tmp_path), "-m", model, "--no-progress", "--workers", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith(("FAKE", "REAL")) and "tone.wav" in line for line in lines)
    assert f"ERROR  {tmp_path / 'quiet.wav'}: {SILENT}" in lines


def test_a_truncated_mp3_is_refused(tmp_path: Path) -> None:
    whole = write_audio(tmp_path / "whole.mp3", real_signal(10.0, 16000), 16000)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    assert decode_file(whole).duration == pytest.approx(10.0, abs=0.1)
    with pytest.raises(AudioDecodeError, match=r"truncated: the header declares 10.0 s, only"):
        decode_file(cut)
    with pytest.raises(AudioDecodeError, match="truncated"):
        list(AudioBlocks(cut, block_seconds=1.0))


def test_read_limits_on_the_command_line(tmp_path: Path, capsys) -> None:
    write_audio(tmp_path / "minute.flac", real_signal(60.0, 8000), 8000)
    write_audio(tmp_path / "short.wav", real_signal(1.0, 16000), 16000)
    model = str(shared_trained_checkpoint())
    base = ["predict", str(tmp_path), "-m", model, "--no-progress", "--workers", "1"]
    env = {k: os.environ.get(k) for k in ("DEEPFAKE_AUDIO_MAX_HOURS", "DEEPFAKE_AUDIO_MAX_FILE_MB")}
    try:
        assert main([*base, "--max-duration", "30s"]) == 0
        out = capsys.readouterr().out
        assert "minute.flac: decodes to more than" in out and "--max-duration" in out
        assert sum(line.startswith(("FAKE", "REAL")) for line in out.splitlines()) == 1
        assert main([*base, "--max-duration", "2m", "--max-file-mb", "0.5"]) == 0
        out = capsys.readouterr().out
        assert "minute.flac: file is over the 0.5 MB cap" in out and "--max-file-mb" in out
        assert sum(line.startswith(("FAKE", "REAL")) for line in out.splitlines()) == 1
    finally:
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_durations_parse() -> None:
    assert duration_hours("4h") == 4
    assert duration_hours("90m") == duration_hours("90min") == 1.5
    assert duration_hours("45s") == duration_hours("45") == pytest.approx(45 / 3600)
    for bad in ("0", "-1h", "inf", "soon"):
        with pytest.raises(Exception, match="duration"):
            duration_hours(bad)


def test_a_long_file_is_windowed_in_bounded_memory(tmp_path: Path) -> None:
    """An hour of audio (a quiet constant: a 180 kB FLAC) is 230 MB decoded and as much again
    in windows. Under an address-space limit of 200 MB above what the imports take, reading
    it whole fails; in blocks every window comes through."""
    path = tmp_path / "hour.flac"
    with sf.SoundFile(path, "w", 16000, 1, "PCM_16") as handle:
        for _ in range(60):
            handle.write(np.full(16000 * 60, 10, np.int16))  # 3e-4: not silent
    child = textwrap.dedent(
        f"""
        import resource, sys
        import numpy as np
        from deepfake_audio.audio import AudioDecodeError, decode_file
        from deepfake_audio.preprocess import PreprocessConfig
        from deepfake_audio.scoring.windows import prepare_files
        with open("/proc/self/status") as status:
            vm = next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmSize"))
        limit = vm + 200 * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            decode_file({str(path)!r}).mono()
            print("whole: read")
        except (MemoryError, AudioDecodeError) as exc:  # a backend's MemoryError is a reason
            print("whole: out of memory" if "allocate" in str(exc) else exc)
        windows = 0
        for part in prepare_files([{str(path)!r}], [PreprocessConfig()]):
            assert part.error is None, part.error
            windows += len(part.windows[0][1])
        print("blocks:", windows, part.duration)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["whole: out of memory", "blocks: 1800 3600.0"]
