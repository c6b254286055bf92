"""Decode a file once and cut it into windows for every model that will score it.

This is the CPU half of scoring (see :mod:`deepfake_audio.scoring.engine`): decode, mix to mono,
resample once per distinct model rate, cut windows once per distinct
:class:`~deepfake_audio.preprocess.PreprocessConfig`. It imports no torch, so worker
processes that run it start in a fraction of a second and leave the model to the main process.
Bad files come back with an ``error`` instead of raising, so a batch always finishes.

A file longer than :data:`~deepfake_audio.audio_stream.LONG_SECONDS` is not prepared whole:
a worker marks it ``streamed`` and :func:`with_long_files_streamed` reads it in this process
a block at a time (:class:`~deepfake_audio.audio_stream.AudioBlocks`), as consecutive parts
whose windows are those the whole file would give. Memory then stays bounded whatever a
file's duration.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from deepfake_audio import audio as audio_lib
from deepfake_audio import parallel
from deepfake_audio.audio_stream import LONG_SECONDS, AudioBlocks, StreamResampler
from deepfake_audio.preprocess import PreprocessConfig, WindowCutter, sliding_windows

#: Why a file with no window above the silence level gets no score.
SILENT = "silent: no window above -80 dBFS, nothing for a detector to judge"


@dataclass
class PreparedFile:
    """One file ready for the models: windows per config index, or the reason it is unusable.

    A long file comes as several parts: every part but the last has ``more`` set, and only
    the last carries the file's ``duration``, ``sample_rate`` or ``error``. ``streamed`` marks
    a long file a worker left to be read in parts (it has no windows yet).
    """

    path: str
    error: str | None = None
    duration: float | None = None  # seconds, at the file's own rate
    sample_rate: int | None = None  # the file's own rate
    # config index -> (windows (num_windows, window_samples) float32, start seconds (num_windows,))
    windows: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    more: bool = False
    streamed: bool = False


def prepare_audio(
    mono: np.ndarray,
    sample_rate: int,
    configs: Sequence[PreprocessConfig],
    hop_seconds: float | None = None,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Windows of a mono clip for each config, silent ones left out (see
    :class:`~deepfake_audio.preprocess.WindowCutter`); resampling is done once per distinct
    rate."""
    by_rate: dict[int, np.ndarray] = {}
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for index, config in enumerate(configs):
        if config.sample_rate not in by_rate:
            by_rate[config.sample_rate] = audio_lib.resample(mono, sample_rate, config.sample_rate)
        out[index] = sliding_windows(
            by_rate[config.sample_rate], config, hop_seconds, drop_silent=True
        )
    return out


def prepared(
    path: str,
    windows: dict[int, tuple[np.ndarray, np.ndarray]],
    duration: float,
    sample_rate: int,
) -> PreparedFile:
    """A prepared whole file, or the :data:`SILENT` error when a config kept no window."""
    if any(len(starts) == 0 for _, starts in windows.values()):
        return PreparedFile(path=path, error=SILENT)
    return PreparedFile(path=path, duration=duration, sample_rate=sample_rate, windows=windows)


def prepare_file(
    path: str, configs: Sequence[PreprocessConfig], hop_seconds: float | None = None
) -> PreparedFile:
    """Decode ``path`` once and window it for every config; never raises for a bad file.

    A file longer than :data:`~deepfake_audio.audio_stream.LONG_SECONDS` comes back
    ``streamed``, without windows.
    """
    try:
        decoded = audio_lib.decode_file(path, longest=LONG_SECONDS)
        windows = prepare_audio(decoded.mono(), decoded.sample_rate, configs, hop_seconds)
    except audio_lib.LongAudio:
        return PreparedFile(path=str(path), streamed=True)
    except audio_lib.AudioDecodeError as exc:
        return PreparedFile(path=str(path), error=exc.reason)
    except (ValueError, MemoryError) as exc:  # e.g. a resampler refusing odd input
        return PreparedFile(path=str(path), error=f"cannot prepare audio ({exc})")
    return prepared(str(path), windows, decoded.duration, decoded.sample_rate)


def prepare_files(
    paths: Sequence[str],
    configs: Sequence[PreprocessConfig],
    *,
    hop_seconds: float | None = None,
    workers: int = 1,
    chunk: int = 8,
) -> Iterator[PreparedFile]:
    """Prepare files in order; ``workers`` > 1 decodes in that many processes.

    With a pool the main process is free to run the model on earlier files while the workers
    decode the next ones; only a few chunks are in flight, so memory stays flat. Long files
    come as several parts (see :class:`PreparedFile`), read in this process.
    """
    job = partial(prepare_file, configs=list(configs), hop_seconds=hop_seconds)
    prepared = parallel.ordered_map(
        job, [str(p) for p in paths], workers=max(1, workers), batch_size=chunk
    )
    yield from with_long_files_streamed(prepared, configs, hop_seconds)


def stream_parts(
    path: str, configs: Sequence[PreprocessConfig], hop_seconds: float | None = None
) -> Iterator[PreparedFile]:
    """A long file's windows for every config, a block of audio at a time: parts with
    ``more`` set, then a last one with the file's duration (or the error that ended it)."""
    blocks = AudioBlocks(path)
    cutters = [WindowCutter(config, hop_seconds, drop_silent=True) for config in configs]
    resamplers: dict[int, StreamResampler] = {}
    kept = dict.fromkeys(range(len(configs)), 0)  # windows so far per config

    def windows_of(mono: np.ndarray, last: bool) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        by_rate = {}
        for rate in {c.sample_rate for c in configs}:
            if rate not in resamplers:
                resamplers[rate] = StreamResampler(blocks.sample_rate, rate)
            by_rate[rate] = resamplers[rate](mono, last=last)
        cut = {i: c.feed(by_rate[c.config.sample_rate]) for i, c in enumerate(cutters)}
        if not last:
            return cut
        ends = {i: c.finish() for i, c in enumerate(cutters)}
        return {i: _joined(cut[i], ends[i]) for i in cut}

    try:
        for mono in blocks:
            part = windows_of(mono, last=False)
            for index, (_, starts) in part.items():
                kept[index] += len(starts)
            yield PreparedFile(path=path, windows=part, more=True)
        final = windows_of(np.zeros(0, dtype=np.float32), last=True)
        if any(kept[index] + len(starts) == 0 for index, (_, starts) in final.items()):
            yield PreparedFile(path=path, error=SILENT)
            return
    except audio_lib.AudioDecodeError as exc:
        yield PreparedFile(path=path, error=exc.reason)
        return
    except (ValueError, MemoryError) as exc:
        yield PreparedFile(path=path, error=f"cannot prepare audio ({exc})")
        return
    yield PreparedFile(
        path=path, duration=blocks.duration, sample_rate=blocks.sample_rate, windows=final
    )


def _joined(
    first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([first[0], second[0]]), np.concatenate([first[1], second[1]])


def with_long_files_streamed(
    prepared: Iterable[PreparedFile],
    configs: Sequence[PreprocessConfig],
    hop_seconds: float | None = None,
) -> Iterator[PreparedFile]:
    """``prepared`` with each ``streamed`` file replaced by its parts, read here, in order."""
    for item in prepared:
        if item.streamed:
            yield from stream_parts(item.path, configs, hop_seconds)
        else:
            yield item
