"""Decode a file once and cut it into windows for every model that will score it.

This is the CPU half of scoring (see :mod:`deepfake_audio.scoring.engine`): decode, mix to mono,
resample once per distinct model rate, cut windows once per distinct
:class:`~deepfake_audio.preprocess.PreprocessConfig`. It imports no torch, so worker
processes that run it start in a fraction of a second and leave the model to the main process.
Bad files come back with an ``error`` instead of raising, so a batch always finishes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from deepfake_audio import audio as audio_lib
from deepfake_audio import parallel
from deepfake_audio.preprocess import PreprocessConfig, sliding_windows


@dataclass
class PreparedFile:
    """One file ready for the models: windows per config index, or the reason it is unusable."""

    path: str
    error: str | None = None
    duration: float | None = None  # seconds, at the file's own rate
    sample_rate: int | None = None  # the file's own rate
    # config index -> (windows (num_windows, window_samples) float32, start seconds (num_windows,))
    windows: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def prepare_audio(
    mono: np.ndarray,
    sample_rate: int,
    configs: Sequence[PreprocessConfig],
    hop_seconds: float | None = None,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Windows of a mono clip for each config; resampling is done once per distinct rate."""
    by_rate: dict[int, np.ndarray] = {}
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for index, config in enumerate(configs):
        if config.sample_rate not in by_rate:
            by_rate[config.sample_rate] = audio_lib.resample(mono, sample_rate, config.sample_rate)
        out[index] = sliding_windows(by_rate[config.sample_rate], config, hop_seconds)
    return out


def prepare_file(
    path: str, configs: Sequence[PreprocessConfig], hop_seconds: float | None = None
) -> PreparedFile:
    """Decode ``path`` once and window it for every config; never raises for a bad file."""
    try:
        decoded = audio_lib.decode_file(path)
        windows = prepare_audio(decoded.mono(), decoded.sample_rate, configs, hop_seconds)
    except audio_lib.AudioDecodeError as exc:
        return PreparedFile(path=str(path), error=exc.reason)
    except (ValueError, MemoryError) as exc:  # e.g. a resampler refusing odd input
        return PreparedFile(path=str(path), error=f"cannot prepare audio ({exc})")
    return PreparedFile(
        path=str(path),
        duration=decoded.duration,
        sample_rate=decoded.sample_rate,
        windows=windows,
    )


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
    decode the next ones; only a few chunks are in flight, so memory stays flat.
    """
    job = partial(prepare_file, configs=list(configs), hop_seconds=hop_seconds)
    yield from parallel.ordered_map(
        job, [str(p) for p in paths], workers=max(1, workers), batch_size=chunk
    )
