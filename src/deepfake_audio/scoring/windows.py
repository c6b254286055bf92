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
from deepfake_audio.preprocess import PreprocessConfig, SilenceTrimmer, WindowCutter

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


class Windower:
    """Cuts one signal, fed whole or in consecutive blocks, into every config's windows:
    resampled once per distinct model rate (:class:`StreamResampler`, the samples a whole
    resampling gives), trimmed of silent edges once per rate where a config asks for it
    (:class:`SilenceTrimmer`), cut once per config (:class:`WindowCutter`), silent windows
    left out. Window starts are in seconds of the file as it is, trimmed or not.
    The one path from audio to model windows, for clips and long files alike."""

    def __init__(
        self,
        configs: Sequence[PreprocessConfig],
        sample_rate: int,
        hop_seconds: float | None = None,
    ) -> None:
        rates = {config.sample_rate for config in configs}
        self.resamplers = {rate: StreamResampler(sample_rate, rate) for rate in rates}
        self.trimmers = {
            config.sample_rate: SilenceTrimmer(config.sample_rate)
            for config in configs
            if config.trim_silence
        }
        self.cutters = [WindowCutter(config, hop_seconds, drop_silent=True) for config in configs]

    def feed(
        self, mono: np.ndarray, last: bool = False
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Each config's windows that ``mono`` completes; ``last`` ends the signal (the
        end-aligned window, or the one padded window of a short clip)."""
        by_rate = {rate: resample(mono, last=last) for rate, resample in self.resamplers.items()}
        trimmed = {}
        for rate, trimmer in self.trimmers.items():
            kept = trimmer.feed(by_rate[rate])
            trimmed[rate] = np.concatenate([kept, trimmer.finish()]) if last else kept
        out = {}
        for index, cutter in enumerate(self.cutters):
            config = cutter.config
            signal = trimmed if config.trim_silence else by_rate
            windows, starts = cutter.feed(signal[config.sample_rate])
            if last:
                end_windows, end_starts = cutter.finish()
                windows = np.concatenate([windows, end_windows])
                starts = np.concatenate([starts, end_starts])
            if config.trim_silence:
                starts = starts + self.trimmers[config.sample_rate].dropped / config.sample_rate
            out[index] = (windows, starts)
        return out


def prepare_audio(
    mono: np.ndarray,
    sample_rate: int,
    configs: Sequence[PreprocessConfig],
    hop_seconds: float | None = None,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Windows of a whole mono clip for each config (see :class:`Windower`)."""
    return Windower(configs, sample_rate, hop_seconds).feed(mono, last=True)


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
    windower: Windower | None = None  # made at the first block, when the rate is known
    kept = dict.fromkeys(range(len(configs)), 0)  # windows so far per config
    try:
        for mono in blocks:
            if windower is None:
                windower = Windower(configs, blocks.sample_rate, hop_seconds)
            part = windower.feed(mono)
            for index, (_, starts) in part.items():
                kept[index] += len(starts)
            yield PreparedFile(path=path, windows=part, more=True)
        assert windower is not None  # AudioBlocks raises for a file without samples
        final = windower.feed(np.zeros(0, dtype=np.float32), last=True)
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
