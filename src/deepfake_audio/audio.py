"""Decode any audio file to mono float32 at a chosen rate, and cut it into model windows.

One decoder with one error: libsndfile (through ``soundfile``) is tried first because it is
fast and exact for WAV/FLAC/OGG/MP3; FFmpeg (through ``av``) takes everything else (M4A, AAC,
Opus in MP4/WebM, WMA, ...). A file that neither can use raises :class:`AudioDecodeError`,
which names the file and every backend's reason. Library code raises; the CLI reports.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISBLK, S_ISCHR, S_ISDIR, S_ISFIFO, S_ISREG, S_ISSOCK

import numpy as np
import soundfile as sf

from deepfake_audio.read_limits import max_file_bytes, max_seconds

#: Extensions (lower case) that discovery treats as audio. Matching is case-insensitive.
AUDIO_EXTENSIONS = frozenset(
    {
        ".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".mp4",
        ".aif", ".aiff", ".au", ".snd", ".caf", ".w64", ".wma", ".webm", ".mka", ".amr",
    }
)  # fmt: skip

#: Below this peak amplitude (about -80 dBFS) a clip counts as silent and is not normalized.
SILENCE_PEAK = 1e-4

#: Files smaller than this are read in one system call (a single read is capped near 2 GiB).
_ONE_READ = 1 << 30


class AudioDecodeError(Exception):
    """A file could not be turned into usable audio. ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def is_audio_path(path: str | os.PathLike[str]) -> bool:
    """True when the file's extension is one we decode (case-insensitive).

    Discovery asks this of every file in a dataset, so it works on the string (``Path``'s
    parsing cost more than the rest of the test); the rule is ``Path(path).suffix``'s.
    """
    name = os.path.basename(os.fspath(path))
    if name in ("", ".", ".."):  # a trailing separator or dot: let pathlib normalise it
        return Path(path).suffix.lower() in AUDIO_EXTENSIONS
    dot = name.rfind(".")
    return 0 < dot < len(name) - 1 and name[dot:].lower() in AUDIO_EXTENSIONS


@dataclass(frozen=True)
class DecodedAudio:
    """Audio as stored in the file: ``samples`` is ``(channels, frames)`` float32.

    ``pcm16`` holds the file's own 16-bit samples, interleaved ``(frames * channels,)``,
    when they were read directly (plain 16-bit PCM WAV); ``samples`` is then exactly
    ``pcm16 / 32768``, so hashing needs no quantization (see :func:`decoded_content_hash`).
    """

    samples: np.ndarray
    sample_rate: int
    pcm16: np.ndarray | None = None

    @property
    def num_channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / self.sample_rate

    def mono(self) -> np.ndarray:
        """Mean of the channels, ``(frames,)`` float32."""
        if self.num_channels == 1:
            return self.samples[0]
        return self.samples.mean(axis=0, dtype=np.float32)


def check_wav_truncation(data: bytes, file_size: int | None = None) -> str | None:
    """Return a reason when a RIFF/WAVE file's data chunk claims more bytes than it holds.

    libsndfile silently reads what is there, so a half-copied WAV would otherwise pass as a
    shorter clip. ``data`` is the file or, with ``file_size``, its first bytes (enough to
    reach the data chunk's header; a head that does not reach it passes).
    """
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        return None
    file_size = len(data) if file_size is None else file_size
    endian = "<" if data[:4] == b"RIFF" else ">"
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack(endian + "I", data[pos + 4 : pos + 8])
        if chunk_id == b"data":
            available = file_size - (pos + 8)
            # 0xFFFFFFFF / 0 are used by streaming writers for "unknown length".
            if size not in (0, 0xFFFFFFFF) and available < size:
                return f"truncated WAV: data chunk declares {size} bytes, {available} remain"
            return None
        pos += 8 + size + (size & 1)
    return None


#: libsndfile reads a 16-bit sample k as k / 32768 (exact in float32); so does the fast path.
_PCM16_SCALE = np.float32(1.0 / 32768.0)


def _decode_pcm16_wav(data: bytes, limit: float) -> DecodedAudio | None:
    """Plain 16-bit PCM WAV, mono or stereo, read with numpy; None for anything else.

    Why: it is the commonest dataset format, and for short clips opening the file through
    libsndfile costs more than the samples (about 75 us against 10 us for a 1 s clip). The
    result is bit-identical to libsndfile's, which maps a 16-bit sample k to k / 32768 in
    float32 too (``tests/test_audio.py`` checks it). Whatever is unusual (RIFX, extensible
    or other sample formats, more channels, a data size of 0 or "unknown", a size that is not
    whole frames, a missing fmt chunk) returns None and goes to libsndfile as before.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    channels = 0
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                return None
            tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag != 1 or bits != 16 or channels not in (1, 2) or block_align != 2 * channels:
                return None
            if rate == 0:
                return None
        elif chunk_id == b"data":
            if not channels or size in (0, 0xFFFFFFFF) or size % (2 * channels):
                return None
            if body + size > len(data):
                return None  # truncated: decode_bytes has said so already
            if size / (2 * channels) / rate > limit:
                raise TooLong(size / (2 * channels) / rate, limit)
            pcm = np.frombuffer(data, dtype="<i2", count=size // 2, offset=body)
            if channels == 1:
                samples = np.multiply(pcm, _PCM16_SCALE, dtype=np.float32)[np.newaxis]
            else:  # interleaved (frames, 2) -> planar (2, frames)
                samples = np.empty((2, pcm.size // 2), dtype=np.float32)
                np.multiply(pcm.reshape(-1, 2).T, _PCM16_SCALE, out=samples)
            return DecodedAudio(samples, rate, pcm16=pcm)
        pos = body + size + (size & 1)
    return None


class Refused(Exception):
    """A backend found the file unusable in a way another backend would find it too (too
    long, truncated): decoding stops instead of trying the next one."""


class TooLong(Refused):
    """Raised by a backend as soon as a file is known to decode past ``limit`` seconds."""

    def __init__(self, seconds: float, limit: float | None = None) -> None:
        self.seconds = seconds
        limit = max_seconds() if limit is None else limit
        super().__init__(
            f"decodes to more than {limit / 3600:g} h of audio (at least {seconds / 3600:.1f} h);"
            " raise --max-duration to read it"
        )


class LongAudio(Exception):
    """The file decodes to more than the ``longest`` seconds its caller holds in memory at
    once: it is to be read a block at a time (:class:`deepfake_audio.audio_stream.AudioBlocks`)."""


def check_declared_length(declared: int, decoded: int, sample_rate: int) -> None:
    """Refuse a file that decodes to clearly less than its header declares (a copy cut short:
    an MP3's Xing header, a FLAC's STREAMINFO); a few frames of codec padding are tolerated."""
    if declared > 0 and declared - decoded > max(0.02 * declared, 4096):
        raise Refused(
            f"truncated: the header declares {declared / sample_rate:.1f} s, only "
            f"{decoded / sample_rate:.1f} s decode"
        )


def _decode_soundfile(data: bytes, limit: float) -> DecodedAudio:
    with sf.SoundFile(io.BytesIO(data)) as handle:
        if handle.frames / handle.samplerate > limit:  # known from the header
            raise TooLong(handle.frames / handle.samplerate, limit)
        samples = handle.read(dtype="float32", always_2d=True)
        rate = handle.samplerate
        check_declared_length(handle.frames, len(samples), rate)
    return DecodedAudio(np.ascontiguousarray(samples.T), int(rate))


def _decode_ffmpeg(data: bytes, limit: float) -> DecodedAudio:
    import av  # imported lazily: most corpora never need it

    with av.open(io.BytesIO(data), mode="r") as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        # Planar float keeps the channels apart: each frame -> (channels, n).
        resampler = av.AudioResampler(format="fltp")
        chunks: list[np.ndarray] = []
        rate = stream.rate or 0
        decoded = 0  # samples per channel so far: decoding stops at the cap, bounded
        for frame in container.decode(stream):
            rate = frame.sample_rate or rate
            decoded += frame.samples
            if rate and decoded / rate > limit:
                raise TooLong(decoded / rate, limit)
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
    if not chunks or not rate:
        raise ValueError("no audio frames decoded")
    return DecodedAudio(np.ascontiguousarray(np.concatenate(chunks, axis=1), np.float32), rate)


def backend_reason(exc: Exception) -> str:
    """A backend's error without the in-memory buffer's repr it tends to quote."""
    # soundfile.LibsndfileError has error_string; av's FFmpeg errors have strerror.
    text = getattr(exc, "error_string", None) or getattr(exc, "strerror", None) or str(exc)
    return str(text).strip() or type(exc).__name__


def decode_bytes(
    data: bytes, path: str | os.PathLike[str] = "<bytes>", *, longest: float | None = None
) -> DecodedAudio:
    """Decode the bytes of an audio file; ``path`` is used only in error messages.

    ``longest`` (seconds) bounds what is decoded here: a file found longer raises
    :class:`LongAudio` as soon as that is known, for its caller to read it in blocks.
    """
    if not data:
        raise AudioDecodeError(path, "file is empty (0 bytes)")
    truncated = check_wav_truncation(data)
    if truncated:
        raise AudioDecodeError(path, truncated)
    cap = max_seconds()
    limit = cap if longest is None else min(longest, cap)
    try:
        decoded = _decode_pcm16_wav(data, limit)
        is_pcm16 = decoded is not None  # 16-bit integers: always finite
        reasons = []
        for name, backend in (("soundfile", _decode_soundfile), ("ffmpeg", _decode_ffmpeg)):
            if decoded is not None:
                break
            try:
                decoded = backend(data, limit)
            except Refused:
                raise  # the next backend would refuse it all the same
            except Exception as exc:  # each backend has its own exception types
                reasons.append(f"{name}: {backend_reason(exc)}")
    except TooLong as exc:
        if limit < cap:
            raise LongAudio(path) from exc
        raise AudioDecodeError(path, str(exc)) from exc
    except Refused as exc:
        raise AudioDecodeError(path, str(exc)) from exc
    if decoded is None:
        raise AudioDecodeError(path, "not decodable audio (" + "; ".join(reasons) + ")")
    if decoded.samples.size == 0:
        raise AudioDecodeError(path, "no audio samples")
    if not is_pcm16 and not np.isfinite(decoded.samples).all():
        raise AudioDecodeError(path, "contains NaN or infinite samples")
    return decoded


def open_regular(path: str | os.PathLike[str]) -> tuple[int, os.stat_result]:
    """Open a file for reading and return its descriptor and ``fstat``; only a regular file
    within :func:`max_file_bytes` is accepted, anything else raises :class:`AudioDecodeError`.

    The stat is of what was opened (symlinks followed), so no device slips in by a link;
    O_NONBLOCK means opening a FIFO without a writer does not wait for one (it is refused).
    """
    limit = max_file_bytes()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise AudioDecodeError(path, f"cannot read file ({exc.strerror or exc})") from exc
    try:
        stat = os.fstat(fd)
        if not S_ISREG(stat.st_mode):
            raise AudioDecodeError(path, f"not a regular file ({_file_kind(stat.st_mode)})")
        if stat.st_size > limit:
            raise AudioDecodeError(path, _too_large(stat.st_size, limit))
    except BaseException:
        os.close(fd)
        raise
    return fd, stat


def read_bytes_and_stat(
    path: str | os.PathLike[str], *, whole_up_to: int | None = None
) -> tuple[bytes | None, os.stat_result]:
    """Read a file whole, with its ``stat`` taken from the same open file.

    The stat (size, mtime) belongs to the bytes read, which is what a cache keyed on it
    needs, and it costs no second look-up of the path. A file is read in one ``read`` of the
    size ``fstat`` gave plus a byte (a short file costs three system calls after ``open``,
    not five); one that grew meanwhile, or whose size is unknown, is read on to its end. OS
    errors become :class:`AudioDecodeError`. A file over ``whole_up_to`` bytes is not read:
    the bytes come back as None, for the caller to read it a block at a time.
    """
    limit = max_file_bytes()
    fd, stat = open_regular(path)
    try:
        if whole_up_to is not None and stat.st_size > whole_up_to:
            return None, stat
        data = os.read(fd, stat.st_size + 1) if stat.st_size < _ONE_READ else b""
        if len(data) != stat.st_size:  # grew, or huge: on to the end, bounded
            with open(fd, "rb", buffering=0, closefd=False) as handle:
                data += handle.read(limit + 1 - len(data))
        if len(data) > limit:
            raise AudioDecodeError(path, _too_large(len(data), limit))
    except OSError as exc:
        raise AudioDecodeError(path, f"cannot read file ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)
    return data, stat


def _too_large(size: int, limit: int) -> str:
    return (
        f"file is over the {round(limit / 2**20, 3):g} MB cap ({size / 2**20:.1f} MB); raise "
        "--max-file-mb to read it"
    )


_KINDS = (
    (S_ISFIFO, "a FIFO"),
    (S_ISCHR, "a character device"),
    (S_ISBLK, "a block device"),
    (S_ISSOCK, "a socket"),
    (S_ISDIR, "a folder"),
)


def _file_kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a plain file")


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """Read a file whole, turning OS errors into :class:`AudioDecodeError`."""
    data, _ = read_bytes_and_stat(path)
    assert data is not None  # read whole: no whole_up_to
    return data


#: Files over this many bytes are never read whole by the scoring and audit paths.
WHOLE_READ_BYTES = 64 << 20


def decode_file(path: str | os.PathLike[str], *, longest: float | None = None) -> DecodedAudio:
    """Decode a file at its own rate and channel count.

    With ``longest`` (seconds), a file longer than that, or over :data:`WHOLE_READ_BYTES`,
    raises :class:`LongAudio` instead: its caller reads it a block at a time.
    """
    if longest is None:
        return decode_bytes(read_bytes(path), path)
    data, _ = read_bytes_and_stat(path, whole_up_to=WHOLE_READ_BYTES)
    if data is None:
        raise LongAudio(path)
    return decode_bytes(data, path, longest=longest)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a mono float32 signal with soxr (high quality); a no-op at equal rates."""
    if from_rate == to_rate:
        return samples
    import soxr  # imported when first needed: an audit never resamples

    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def load_audio(path: str | os.PathLike[str], sample_rate: int | None = 16000) -> np.ndarray:
    """Load any supported file as mono float32 at ``sample_rate`` (``None`` keeps the file's).

    Raises :class:`AudioDecodeError` naming the file and the reason when it cannot be used.
    """
    decoded = decode_file(path)
    mono = decoded.mono()
    if sample_rate is None:
        return mono
    return resample(mono, decoded.sample_rate, sample_rate)


class ContentHasher:
    """:func:`audio_content_hash` fed a block at a time: the digest of consecutive blocks is
    that of the whole signal, so a long file read in blocks hashes as if decoded whole."""

    def __init__(self, sample_rate: int) -> None:
        self._digest = hashlib.sha1(str(sample_rate).encode())

    def update(self, mono: np.ndarray) -> None:
        scaled = mono * np.float32(32768.0)  # a new array: the caller's audio is left alone
        np.rint(scaled, out=scaled)
        np.clip(scaled, -32768, 32767, out=scaled)
        self._digest.update(np.ascontiguousarray(scaled.astype("<i2")))  # no second copy

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def audio_content_hash(mono: np.ndarray, sample_rate: int) -> str:
    """A hash of what the audio sounds like, independent of container and codec.

    Samples are quantized to 16 bits before hashing, so a lossless re-encode (WAV -> FLAC,
    float -> PCM_16 of the same samples) hashes the same while any real edit does not.
    SHA-1 is used for speed (it runs on the CPU's SHA instructions), not for secrecy.
    """
    hasher = ContentHasher(sample_rate)
    hasher.update(mono)
    return hasher.hexdigest()


def decoded_content_hash(decoded: DecodedAudio) -> str:
    """``audio_content_hash(decoded.mono(), decoded.sample_rate)``, without the quantization
    when the file held 16-bit mono PCM: its samples already are the quantized ones.

    The quantized mono signal of such a file is its sample values, bit for bit (k / 32768
    times 32768 is k again, well inside the 16-bit range), so the digest is the same.
    """
    if decoded.pcm16 is not None and decoded.num_channels == 1:
        digest = hashlib.sha1(str(decoded.sample_rate).encode())
        digest.update(decoded.pcm16)  # little-endian int16, as audio_content_hash writes them
        return digest.hexdigest()
    return audio_content_hash(decoded.mono(), decoded.sample_rate)


def file_bytes_hash(data: bytes) -> str:
    """A hash of the file's bytes (catches byte-for-byte copies); SHA-1 for speed."""
    return hashlib.sha1(data).hexdigest()


#: Containers written through FFmpeg (libsndfile cannot write them), with codec and format.
_FFMPEG_WRITERS = {
    ".m4a": ("aac", "mp4"),
    ".mp4": ("aac", "mp4"),
    ".aac": ("aac", "adts"),
    ".opus": ("libopus", "ogg"),
    ".webm": ("libopus", "webm"),
}


def encode_ffmpeg(
    samples: np.ndarray, sample_rate: int, suffix: str, bitrate: int | None = None
) -> bytes:
    """Encode float32 samples into ``suffix``'s container through FFmpeg; returns bytes.

    ``samples`` is mono ``(frames,)`` or ``(frames, channels)`` with one or two channels
    (soundfile's layout). Used for M4A/AAC/Opus output (the demo corpus, codec augmentation,
    the benchmark corpus) and for MP3 at a chosen bitrate.
    """
    import av

    codec, container_format = _FFMPEG_WRITERS.get(suffix.lower(), ("libmp3lame", "mp3"))
    if codec == "libopus" and sample_rate not in (8000, 12000, 16000, 24000, 48000):
        samples, sample_rate = resample(samples, sample_rate, 48000), 48000
    planar = np.ascontiguousarray(np.atleast_2d(np.asarray(samples, dtype=np.float32).T))
    layout = "stereo" if planar.shape[0] == 2 else "mono"  # planar: (channels, frames)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=sample_rate)
        stream.layout = layout
        if bitrate:
            stream.bit_rate = bitrate
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def write_audio(
    path: str | os.PathLike[str],
    samples: np.ndarray,
    sample_rate: int,
    subtype: str | None = None,
) -> Path:
    """Write mono float32 audio; the format follows the extension (wav, flac, ogg, mp3, m4a...).

    ``subtype`` picks a libsndfile sample format (e.g. ``PCM_24``, ``FLOAT``) for WAV/FLAC.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = target.suffix.lower()
    if suffix in _FFMPEG_WRITERS:
        target.write_bytes(encode_ffmpeg(samples, sample_rate, suffix))
    else:
        sf.write(str(target), samples, sample_rate, subtype=subtype)
    return target
