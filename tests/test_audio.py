"""Decoding: every format, bit depth, rate and channel count; every kind of bad file."""

from __future__ import annotations

import io
import os
import signal
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepfake_audio.audio import (
    AUDIO_EXTENSIONS,
    AudioDecodeError,
    audio_content_hash,
    decode_bytes,
    decode_file,
    decoded_content_hash,
    is_audio_path,
    load_audio,
    read_bytes_and_stat,
    write_audio,
)
from deepfake_audio.data.probe import probe_file
from deepfake_audio.read_limits import MAX_FILE_MB_ENV, MAX_HOURS_ENV
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


def _pcm16_wav(
    pcm: np.ndarray, rate: int, extra: bytes = b"", data_size: int | None = None
) -> bytes:
    """A 16-bit PCM WAV built by hand from ``pcm`` ``(frames, channels)`` int16, so its bytes
    (and their hash) depend on no library; ``extra`` chunks go before the data chunk."""
    channels = pcm.shape[1]
    data = pcm.astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + extra
    body += b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


_ODD_CHUNK = b"LIST" + struct.pack("<I", 3) + b"abc\0"  # odd size: one pad byte follows


def _libsndfile(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return np.ascontiguousarray(samples.T), rate  # (channels, frames)


@pytest.mark.parametrize("channels", [1, 2])
def test_pcm16_wav_is_read_exactly_as_libsndfile_reads_it(channels: int) -> None:
    pcm = np.random.default_rng(channels).integers(-32768, 32768, size=(999, channels))
    pcm[:2] = [[-32768], [32767]]  # both extremes
    data = _pcm16_wav(pcm, 22050, extra=_ODD_CHUNK)
    decoded = decode_bytes(data)
    assert decoded.pcm16 is not None  # the direct path, not libsndfile
    expected, rate = _libsndfile(data)
    assert decoded.sample_rate == rate and decoded.samples.dtype == np.float32
    assert decoded.samples.flags.c_contiguous
    np.testing.assert_array_equal(decoded.samples, expected)


def test_pcm16_wav_written_by_libsndfile_takes_the_direct_path(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "x.wav", tone(0.3, 16000), 16000, subtype="PCM_16")
    decoded = decode_file(path)
    assert decoded.pcm16 is not None
    np.testing.assert_array_equal(decoded.samples, _libsndfile(path.read_bytes())[0])


def _other_wav(case: str) -> bytes:
    pcm = np.random.default_rng(0).integers(-32768, 32768, size=(500, 2))
    if case == "odd_size":  # a data chunk that ends mid-frame
        return _pcm16_wav(pcm, 16000, data_size=4 * 500 - 2)[:-2]
    if case == "unknown_length":  # streaming writers' 0xFFFFFFFF
        return _pcm16_wav(pcm, 16000, data_size=0xFFFFFFFF)
    buffer = io.BytesIO()
    if case == "six_channels":  # WAVE_FORMAT_EXTENSIBLE
        sf.write(buffer, np.tile(pcm[:, :1], (1, 6)) / 32768, 16000, "PCM_16", format="WAV")
    else:
        sf.write(buffer, pcm / 32768, 16000, case, format="WAV")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "case", ["PCM_24", "PCM_U8", "FLOAT", "six_channels", "odd_size", "unknown_length"]
)
def test_other_wavs_still_decode_through_libsndfile(case: str) -> None:
    data = _other_wav(case)
    decoded = decode_bytes(data)
    assert decoded.pcm16 is None
    expected, rate = _libsndfile(data)
    assert decoded.sample_rate == rate
    np.testing.assert_array_equal(decoded.samples, expected)


def test_hashes_keep_their_cache_format_v2_values(tmp_path: Path) -> None:
    """The cache stores these hashes (CACHE_FORMAT v2): a faster path must not change them.

    The values were computed by the code before the direct WAV path existed.
    """
    ramp = np.concatenate([np.arange(-32768, 32768, 7), [32767, -32768, 0]])[:, None]
    cases = [
        (ramp, 16000, "49eaabc50f82f1dc29c8a1fb0ab28baf4bfacbf1",
         "9c46ff63dec8566f315fab363895567e6f889d32"),
        (np.hstack([ramp, ramp[::-1]]), 22050, "efe35c4050e7084fa1a00db9ff04103d962eefd4",
         "cb46e0e84cd7caf8c6ace701b3b93ca2535460f1"),
    ]  # fmt: skip
    for pcm, rate, file_hash, audio_hash in cases:
        path = tmp_path / f"{pcm.shape[1]}.wav"
        path.write_bytes(_pcm16_wav(pcm, rate, extra=_ODD_CHUNK))
        result = probe_file(str(path))
        assert (result.file_hash, result.audio_hash) == (file_hash, audio_hash)
        decoded = decode_file(path)
        assert audio_content_hash(decoded.mono(), rate) == audio_hash
    signal = (np.sin(np.arange(10000) * 0.01) * 1.2).astype(np.float32)  # clips at +-1
    assert audio_content_hash(signal, 44100) == "5f896bc4d8eca0f6c23fdae434b332ab5a24af3c"


@pytest.mark.parametrize(
    ("name", "subtype"),
    [("m.wav", "PCM_16"), ("m24.wav", "PCM_24"), ("f.wav", "FLOAT"), ("m.flac", "PCM_16")],
)
@pytest.mark.parametrize("channels", [1, 2])
def test_decoded_content_hash_is_audio_content_hash(
    tmp_path: Path, name: str, subtype: str, channels: int
) -> None:
    signal = np.stack([tone(0.3, seed=1), tone(0.3, freq=660, seed=2)], axis=1)[:, :channels]
    path = tmp_path / name
    sf.write(path, signal, 16000, subtype=subtype)
    decoded = decode_file(path)
    assert decoded_content_hash(decoded) == audio_content_hash(decoded.mono(), 16000)


@pytest.mark.parametrize(
    "name",
    ["a.wav", "A.WAV", ".wav", "a.", "a..wav", "..wav", "a.wav.", "dir.wav/", "x.wav/.",
     "dir/x.FLAC", "noext", "a.tar.mp3", ".", "..", "", "d/.hidden"],
)  # fmt: skip
def test_is_audio_path_follows_pathlibs_suffix(name: str) -> None:
    assert is_audio_path(name) == (Path(name).suffix.lower() in AUDIO_EXTENSIONS)
    assert is_audio_path(Path(name)) == is_audio_path(name)


def test_read_bytes_and_stat_describe_the_same_file(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "x.wav", tone(0.2), 16000)
    data, stat = read_bytes_and_stat(path)
    assert data == path.read_bytes()
    assert (stat.st_size, stat.st_mtime_ns) == (path.stat().st_size, path.stat().st_mtime_ns)
    with pytest.raises(AudioDecodeError, match="cannot read"):
        read_bytes_and_stat(tmp_path / "missing.wav")
    with pytest.raises(AudioDecodeError, match=r"not a regular file \(a folder\)"):
        read_bytes_and_stat(tmp_path)


def test_special_files_are_refused_without_waiting(tmp_path: Path) -> None:
    """A FIFO (no writer: a plain open would wait forever), a pipe, and a symlink named like
    audio pointing at /dev/zero (endless) are refused at once, naming what they are."""
    fifo = tmp_path / "x.wav"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.wav"
    zero.symlink_to("/dev/zero")
    read_end, write_end = os.pipe()

    def blocked(signum, frame):
        raise AssertionError("reading blocked on a special file")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(30)  # a guard against hanging the suite, not a timing assertion
    try:
        for path, kind in ((fifo, "a FIFO"), (zero, "a character device"),
                           (f"/proc/self/fd/{read_end}", "a FIFO")):  # fmt: skip
            with pytest.raises(AudioDecodeError, match=f"not a regular file \\({kind}\\)"):
                read_bytes_and_stat(path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        os.close(read_end)
        os.close(write_end)


def test_reads_are_bounded(tmp_path: Path, monkeypatch) -> None:
    path = write_audio(tmp_path / "x.wav", tone(1.0), 16000)  # 32 kB of samples
    monkeypatch.setenv(MAX_FILE_MB_ENV, "0.01")  # 10 kB
    with pytest.raises(AudioDecodeError, match=r"over the 0.01 MB cap .*--max-file-mb"):
        read_bytes_and_stat(path)
    monkeypatch.setenv(MAX_FILE_MB_ENV, "1")
    assert read_bytes_and_stat(path)[0] == path.read_bytes()


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "m4a"])
def test_a_file_that_decodes_too_long_is_refused(tmp_path: Path, monkeypatch, ext) -> None:
    """A tiny file can decode to hours (a FLAC of silence): past the cap it is refused by
    every backend, from the header where it says, else as soon as decoding passes the cap."""
    path = write_audio(tmp_path / f"minute.{ext}", np.zeros(60 * 16000, np.float32), 16000)
    monkeypatch.setenv(MAX_HOURS_ENV, str(30 / 3600))  # 30 s
    with pytest.raises(AudioDecodeError, match=r"more than .* h of audio.*--max-duration"):
        decode_file(path)
    monkeypatch.setenv(MAX_HOURS_ENV, str(90 / 3600))
    assert decode_file(path).duration == pytest.approx(60, abs=0.1)
