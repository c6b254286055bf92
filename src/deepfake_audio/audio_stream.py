"""Read a long file a block at a time, so memory does not grow with its duration.

Clips are decoded whole (:func:`deepfake_audio.audio.decode_bytes`, with its fast path for
16-bit WAV). A file that decodes to more than its caller holds at once (a FLAC of three
hours of silence is 546 KB), or whose bytes are too many to hold, is read here instead:
:class:`AudioBlocks` gives its mono signal as consecutive blocks of a few tens of seconds,
:class:`StreamResampler` resamples them as if the signal were whole, and
:class:`~deepfake_audio.audio.ContentHasher` hashes them to the digest of the whole. The same
checks apply as to a whole file: a regular file only, the byte and duration caps, a WAV or a
header that promises more than the file holds, NaN samples.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import numpy as np
import soundfile as sf

from deepfake_audio.audio import (
    AudioDecodeError,
    Refused,
    TooLong,
    backend_reason,
    check_declared_length,
    check_wav_truncation,
    max_seconds,
    open_regular,
)

#: Files that decode to more than this many seconds are read here rather than whole: the
#: windows of a minute at 16 kHz are 3.8 MB, and a few dozen files are in flight between
#: worker processes.
LONG_SECONDS = 60.0

#: Seconds of audio per block: a block of 48 kHz stereo is 11 MB of float32.
BLOCK_SECONDS = 30.0

#: Samples in an MPEG-1 layer III frame (twice an MPEG-2 one).
_MP3_FRAME = 1152

#: Bytes read to find a WAV's data chunk header.
_HEAD_BYTES = 1 << 16


class AudioBlocks:
    """A file's audio as consecutive mono float32 blocks of about ``block_seconds`` (default
    :data:`BLOCK_SECONDS`).

    Iterating decodes the file once, from ``data`` when its bytes are already in memory, else
    from the file. ``sample_rate`` and ``num_channels`` are set once the first block is out,
    ``frames`` counts the frames given so far. A file that cannot be used raises
    :class:`~deepfake_audio.audio.AudioDecodeError` naming it, at the start or half-way.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        data: bytes | None = None,
        block_seconds: float | None = None,
    ) -> None:
        self.path = str(path)
        self.data = data
        self.block_seconds = BLOCK_SECONDS if block_seconds is None else block_seconds
        self.sample_rate = 0
        self.num_channels = 0
        self.frames = 0

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            if self.data is not None:
                yield from self._decode(io.BytesIO(self.data), len(self.data))
                return
            fd, stat = open_regular(self.path)
            with open(fd, "rb") as handle:
                yield from self._decode(handle, stat.st_size)
        except Refused as exc:
            raise AudioDecodeError(self.path, str(exc)) from exc
        except OSError as exc:
            raise AudioDecodeError(self.path, f"cannot read file ({exc.strerror or exc})") from exc

    def _decode(self, handle: io.RawIOBase | io.BufferedIOBase, size: int) -> Iterator[np.ndarray]:
        if size == 0:
            raise AudioDecodeError(self.path, "file is empty (0 bytes)")
        truncated = check_wav_truncation(handle.read(_HEAD_BYTES), size)
        if truncated:
            raise AudioDecodeError(self.path, truncated)
        handle.seek(0)
        try:
            opened = sf.SoundFile(handle)
        except Exception as exc:  # libsndfile cannot read it: FFmpeg may
            soundfile_reason = f"soundfile: {backend_reason(exc)}"
        else:
            with opened:
                blocks = self._soundfile_blocks(opened)
                yield from self._checked(blocks, "soundfile")
            return
        handle.seek(0)
        yield from self._checked(self._ffmpeg_blocks(handle), "ffmpeg", soundfile_reason)

    def _checked(
        self, blocks: Iterator[np.ndarray], backend: str, earlier: str | None = None
    ) -> Iterator[np.ndarray]:
        """Every block counted against the duration cap and checked for NaN; a backend's
        own errors become one :class:`AudioDecodeError`."""
        limit = max_seconds()
        try:
            for mono in blocks:
                self.frames += len(mono)
                if self.frames / self.sample_rate > limit:
                    raise TooLong(self.frames / self.sample_rate)
                if not np.isfinite(mono).all():
                    raise AudioDecodeError(self.path, "contains NaN or infinite samples")
                yield mono
        except (AudioDecodeError, Refused):
            raise
        except Exception as exc:  # each backend has its own exception types
            reasons = [r for r in (earlier, f"{backend}: {backend_reason(exc)}") if r]
            raise AudioDecodeError(
                self.path, "not decodable audio (" + "; ".join(reasons) + ")"
            ) from exc
        if self.frames == 0:
            raise AudioDecodeError(self.path, "no audio samples")

    def _soundfile_blocks(self, handle: sf.SoundFile) -> Iterator[np.ndarray]:
        self.sample_rate, self.num_channels = int(handle.samplerate), int(handle.channels)
        if handle.frames / handle.samplerate > max_seconds():  # known from the header
            raise TooLong(handle.frames / handle.samplerate)
        # Whole MP3 frames (1,152 samples, or 576): libsndfile's MP3 reader gives other
        # samples (by up to 3e-3) when a read ends inside a frame.
        frames = _MP3_FRAME * max(1, round(self.block_seconds * self.sample_rate / _MP3_FRAME))
        decoded = 0
        while True:  # not SoundFile.blocks: it yields whole blocks past a truncated end
            block = handle.read(frames, dtype="float32", always_2d=True)
            if not len(block):
                break
            decoded += len(block)
            yield _mono(block.T)
        check_declared_length(handle.frames, decoded, self.sample_rate)

    def _ffmpeg_blocks(self, handle: io.RawIOBase | io.BufferedIOBase) -> Iterator[np.ndarray]:
        import av  # imported lazily: most corpora never need it

        with av.open(handle, mode="r") as container:
            if not container.streams.audio:
                raise ValueError("no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp")  # planar: (channels, n) a frame
            pending: list[np.ndarray] = []
            held = 0
            for frame in container.decode(stream):
                if not self.sample_rate:
                    self.sample_rate = frame.sample_rate or stream.rate or 0
                    if not self.sample_rate:
                        raise ValueError("no sample rate")
                for out in resampler.resample(frame):
                    planar = out.to_ndarray()
                    self.num_channels = max(self.num_channels, planar.shape[0])
                    pending.append(_mono(planar))
                    held += planar.shape[1]
                if held >= self.block_seconds * self.sample_rate:
                    yield np.concatenate(pending)
                    pending, held = [], 0
            for out in resampler.resample(None):
                pending.append(_mono(out.to_ndarray()))
            if pending:
                yield np.concatenate(pending)


def _mono(planar: np.ndarray) -> np.ndarray:
    """``(channels, n)`` -> ``(n,)`` float32, as :meth:`DecodedAudio.mono` mixes a whole file."""
    if planar.shape[0] == 1:
        return np.ascontiguousarray(planar[0], dtype=np.float32)
    return planar.mean(axis=0, dtype=np.float32)


class StreamResampler:
    """Resample consecutive blocks of one signal; the output is the same samples as
    resampling the whole signal at once with :func:`deepfake_audio.audio.resample` (soxr's
    stream keeps the filter's state across blocks)."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self._stream = None
        if from_rate != to_rate:
            import soxr

            self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """The resampled samples that ``block`` completes; ``last`` flushes the filter."""
        if self._stream is None:
            return block
        return self._stream.resample_chunk(block, last=last)
