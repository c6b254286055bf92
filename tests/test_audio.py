"""Decoding: every format, bit depth, rate and channel count; every kind of bad file."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepfake_audio.audio import (
    AudioDecodeError,
    audio_content_hash,
    decode_file,
    is_audio_path,
    load_audio,
    write_audio,
)
from tests.synth import tone


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_wav_bit_depths_decode_to_the_same_signal(tmp_path: Path, subtype: str) -> None:
    signal = tone(0.5, 16000)
    path = tmp_path / f"x_{subtype}.wav"
    sf.write(path, signal, 16000, subtype=subtype)
    decoded = load_audio(path, 16000)
    assert decoded.dtype == np.float32
    assert decoded.shape == signal.shape
    tolerance = 1e-2 if subtype == "PCM_U8" else 1e-4
    assert np.max(np.abs(decoded - signal)) < tolerance


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "ogg", "m4a", "aac", "opus"])
def test_every_format_decodes_to_mono_at_the_target_rate(tmp_path: Path, ext: str) -> None:
    path = write_audio(tmp_path / f"x.{ext}", tone(1.0, 16000), 16000)
    audio = load_audio(path, 16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # Lossy codecs add priming samples; the length stays within ~100 ms of 1 s.
    assert abs(audio.size - 16000) < 1700
    assert 0.1 < np.max(np.abs(audio)) < 1.0


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_any_rate_is_resampled(tmp_path: Path, rate: int) -> None:
    path = tmp_path / "x.flac"
    sf.write(path, tone(1.0, rate), rate)
    audio = load_audio(path, 16000)
    assert abs(audio.size - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / audio.size - 440) < 5  # pitch survives


def test_channels_are_averaged(tmp_path: Path) -> None:
    left, right = tone(0.5, seed=1), tone(0.5, freq=880, seed=2)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    decoded = decode_file(path)
    assert decoded.num_channels == 2
    np.testing.assert_allclose(load_audio(path), (left + right) / 2, atol=1e-6)


def test_six_channels_become_mono(tmp_path: Path) -> None:
    path = tmp_path / "six.wav"
    sf.write(path, np.tile(tone(0.25)[:, None], (1, 6)), 16000)
    assert load_audio(path).ndim == 1


def test_none_rate_keeps_the_files_rate(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    sf.write(path, tone(0.5, 22050), 22050)
    assert load_audio(path, None).size == 11025


@pytest.mark.parametrize("name", ["UPPER.WAV", "with space.Flac", "ünïcødé 声音.mp3"])
def test_names_with_case_spaces_and_unicode(tmp_path: Path, name: str) -> None:
    assert is_audio_path(name)
    path = tmp_path / "dir with space" / name
    path.parent.mkdir()
    write_audio(tmp_path / ("tmp" + Path(name).suffix.lower()), tone(0.5), 16000).rename(path)
    assert load_audio(path).size > 7000


def test_non_audio_extensions_are_not_audio() -> None:
    assert not is_audio_path("notes.txt")
    assert not is_audio_path("wav")


def _expect_error(path: Path, fragment: str) -> AudioDecodeError:
    with pytest.raises(AudioDecodeError) as info:
        load_audio(path)
    assert info.value.path == str(path)
    assert fragment in info.value.reason
    assert str(path) in str(info.value)
    return info.value


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.touch()
    _expect_error(path, "empty")


def test_truncated_wav(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "full.wav", tone(1.0), 16000)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(path.read_bytes()[:5000])
    _expect_error(cut, "truncated")


def test_truncated_header(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "full.flac", tone(1.0), 16000)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(path.read_bytes()[:20])
    _expect_error(cut, "not decodable")


def test_text_file_named_mp3(tmp_path: Path) -> None:
    path = tmp_path / "fake.mp3"
    path.write_text("this is not audio at all " * 20)
    error = _expect_error(path, "not decodable")
    assert "soundfile" in error.reason and "ffmpeg" in error.reason


def test_nan_samples(tmp_path: Path) -> None:
    signal = tone(0.5)
    signal[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, signal, 16000, subtype="FLOAT")
    _expect_error(path, "NaN")


def test_wav_with_no_samples(tmp_path: Path) -> None:
    path = tmp_path / "zero_frames.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    _expect_error(path, "no audio samples")


def test_missing_file(tmp_path: Path) -> None:
    _expect_error(tmp_path / "missing.wav", "cannot read")


def test_streaming_wav_with_unknown_length_is_not_truncated(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "x.wav", tone(0.5), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    index = data.index(b"data")
    data[index + 4 : index + 8] = struct.pack("<I", 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    assert load_audio(path).size == 8000


def test_content_hash_survives_lossless_reencode(tmp_path: Path) -> None:
    signal = tone(0.5)
    wav = write_audio(tmp_path / "a.wav", signal, 16000, subtype="PCM_16")
    flac = write_audio(tmp_path / "b.flac", load_audio(wav), 16000)
    assert audio_content_hash(load_audio(wav), 16000) == audio_content_hash(load_audio(flac), 16000)
    louder = load_audio(wav) * 0.5
    assert audio_content_hash(louder, 16000) != audio_content_hash(load_audio(wav), 16000)
