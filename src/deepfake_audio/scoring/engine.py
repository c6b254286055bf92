"""Scores from models: the one inference path behind validation, compare, evaluate, predict, fuse.

A score is the probability that a window (or a file) is fake. Files are cut into each model's
own windows (:mod:`deepfake_audio.scoring.windows`), windows are scored in batches, and a
file's score aggregates its windows (:func:`deepfake_audio.scoring.options.aggregate`, mean
by default). :func:`score_prepared` is that batching loop, and the only one: training's
validation feeds it the cached audio of each validation clip, :func:`score_table` the decoded
files of a command, so the threshold a checkpoint stores is the equal-error point of the very
scores users get.

:func:`score_table` decodes each file once whatever the number of models (in worker
processes while this one runs the models), resamples once per distinct model rate and
windows once per distinct preprocessing; windows of consecutive files are pooled into
batches, so torch uses every core (or the GPU) for one batch.

What runs a model's windows is pluggable (:attr:`Scorer.runner`): torch by default, or an
onnxruntime session on the model's ONNX export that :func:`score_table` sets up when
``options.backend`` asks for it (:mod:`deepfake_audio.scoring.backends`). Training's
validation builds its scorers itself and always runs torch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from deepfake_audio import allocator
from deepfake_audio.checkpoints import Detector
from deepfake_audio.data.records import ClipRecord
from deepfake_audio.memory_budget import available_memory, gib, peak_growth
from deepfake_audio.preprocess import PreprocessConfig
from deepfake_audio.reports.safe import printable
from deepfake_audio.scoring.calibration import posterior
from deepfake_audio.scoring.inference import score_windows
from deepfake_audio.scoring.lineup import make_lineup
from deepfake_audio.scoring.options import ScoringOptions, aggregate
from deepfake_audio.scoring.table import ClipScore, ScoredFile, ScoreTable
from deepfake_audio.scoring.windows import PreparedFile, prepare_files

if TYPE_CHECKING:
    from deepfake_audio.scoring.backends import BackendChoice
    from deepfake_audio.scoring.fusion import Fusion
    from deepfake_audio.scoring.panel import Panel


log = logging.getLogger(__name__)


def resolve_device(device: str = "auto", backend: str = "torch") -> torch.device:
    """``auto`` -> the GPU when torch sees one, else the CPU; ``cuda`` without a GPU is an
    error. The ``onnx`` backend runs on the CPU: ``auto`` is the CPU, ``cuda`` an error."""
    if backend == "onnx":
        if device.startswith("cuda"):
            raise ValueError("--backend onnx runs models on the CPU: drop --device cuda")
        return torch.device("cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no GPU")
    return torch.device(device)


#: Scores windows ``(n, samples)`` in batches of the given size: ``(n,)`` P(fake).
WindowRunner = Callable[[np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class Scorer:
    """One model as the engine runs it: its report name, which prepared windows it reads, and
    what runs them (``runner``; None: torch on ``model``, as :func:`score_windows` does)."""

    name: str
    model: nn.Module
    window_set: int  # index of its PreprocessConfig among those the files were prepared with
    runner: WindowRunner | None = None

    def score(self, windows: np.ndarray, batch_size: int) -> np.ndarray:
        """P(fake) of each of ``windows`` ``(n, samples)``."""
        if self.runner is not None:
            return self.runner(windows, batch_size)
        return score_windows(self.model, windows, batch_size)


def score_prepared(
    scorers: Sequence[Scorer],
    prepared: Iterable[PreparedFile],
    options: ScoringOptions,
    *,
    total: int | None = None,
    description: str = "scoring",
) -> Iterator[tuple[PreparedFile, dict[str, ClipScore]]]:
    """Every scorer's :class:`ClipScore` of every prepared file, in input order.

    Windows of consecutive files are pooled until a batch of ``options.batch_size`` windows
    is full, then each model scores the pool; a file's windows are aggregated by
    ``options.aggregation``. A file that could not be prepared comes back with no scores. A
    long file's parts (see :class:`PreparedFile`) are scored as they come and come back as
    one file, its last part, with the scores of all its windows.
    """
    for scorer in scorers:
        scorer.model.eval()
    batch_size = options.batch_size or AUTO_BATCH_MAX
    # The window scores and starts of the file whose parts are being scored, per model.
    partial: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {s.name: [] for s in scorers}

    def scored_parts(buffer: list[PreparedFile]) -> list[dict[str, tuple[np.ndarray, np.ndarray]]]:
        """Per part of ``buffer``, each model's window scores and starts (none for errors)."""
        good = [f for f in buffer if f.error is None]
        per_part: list[dict[str, tuple[np.ndarray, np.ndarray]]] = [{} for _ in good]
        for scorer in scorers if good else ():
            own_windows = [f.windows[scorer.window_set] for f in good]
            scores = scorer.score(np.concatenate([w for w, _ in own_windows]), batch_size)
            offsets = np.cumsum([0, *(len(w) for w, _ in own_windows)])
            for k, (_, starts) in enumerate(own_windows):
                per_part[k][scorer.name] = (scores[offsets[k] : offsets[k + 1]], starts)
        if allocator.enforce_budget():  # grown past the budget: freed memory is given back
            log.warning("allocator: %s", allocator.decision().reason)
        scored = iter(per_part)
        return [{} if f.error else next(scored) for f in buffer]

    def flush(buffer: list[PreparedFile]) -> list[tuple[PreparedFile, dict[str, ClipScore]]]:
        files = []
        for part, scores in zip(buffer, scored_parts(buffer), strict=True):
            for name, own in scores.items():
                partial[name].append(own)
            if part.more:
                continue
            clips = {}
            if part.error is None:
                for name, pieces in partial.items():
                    own = np.concatenate([p for p, _ in pieces])
                    starts = np.concatenate([t for _, t in pieces])
                    clips[name] = ClipScore(aggregate(own, options.aggregation), own, starts)
            files.append((part, clips))
            for pieces in partial.values():
                pieces.clear()
        return files

    bar = None
    if options.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=description, unit="file")
    buffer: list[PreparedFile] = []
    pooled = 0
    try:
        for item in prepared:
            buffer.append(item)
            if item.error is None and scorers:
                pooled += len(item.windows[scorers[0].window_set][0])
            if bar is not None and item.more:  # a long file: say how far into it we are
                bar.set_postfix_str(f"{printable(item.path)[-40:]} in parts", refresh=False)
            if pooled >= batch_size or len(buffer) >= 4 * batch_size:
                files = flush(buffer)
                yield from files
                if bar is not None:
                    bar.update(len(files))
                buffer, pooled = [], 0
        if buffer:
            files = flush(buffer)
            yield from files
            if bar is not None:
                bar.update(len(files))
    finally:
        if bar is not None:
            bar.close()


#: Share of the memory available a batch of windows may use.
BATCH_HEADROOM = 0.8
#: The default batch: as many windows as fit in this much memory, at most AUTO_BATCH_MAX.
#: The seed CNN measures about 28 MB a window on CPU, so it gets 9 windows: 183 windows/s
#: against 195 at 64, which would hold 0.8 GB more (2 cores).
AUTO_BATCH_MEMORY = 256 * 2**20
AUTO_BATCH_MAX = 64


def window_memory(model: nn.Module, window_samples: int) -> int | None:
    """Memory one more window adds to an inference batch of ``model``, measured as the peak
    growth of a 2-window batch after a 1-window one (None where it cannot be measured).

    Kept freed memory serves the first window's share again, so the growth is about one
    window; with glibc's default it is two, which only errs on the safe side.
    """
    windows = np.zeros((2, window_samples), dtype=np.float32)
    score_windows(model, windows[:1])  # what does not grow with the batch is allocated now
    return peak_growth(lambda: score_windows(model, windows))


def fit_batch(
    scorers: Sequence[Scorer], configs: Sequence[PreprocessConfig], options: ScoringOptions
) -> tuple[ScoringOptions, str | None]:
    """``options`` with a batch of windows that fits memory, and a note when an asked-for
    batch had to shrink (scoring then takes longer rather than dying of memory).

    No batch asked for: as many windows as fit in :data:`AUTO_BATCH_MEMORY` (and in the
    memory available), at most :data:`AUTO_BATCH_MAX`. Measured per model on the CPU only;
    a GPU's memory is the framework's to manage.
    """
    asked = options.batch_size
    room, source = available_memory()
    on_cpu = [s for s in scorers if next(s.model.parameters()).device.type == "cpu"]
    sizes = [window_memory(s.model, configs[s.window_set].window_samples) for s in on_cpu]
    per_window = max((size for size in sizes if size), default=0)
    limit = None if room is None else int(room * BATCH_HEADROOM)
    if asked is None:
        cap = AUTO_BATCH_MEMORY if limit is None else min(limit, AUTO_BATCH_MEMORY)
        fits = cap // per_window if per_window else AUTO_BATCH_MAX
        return replace(options, batch_size=max(1, min(AUTO_BATCH_MAX, fits))), None
    if limit is None or not per_window or limit // per_window >= asked:
        return options, None
    fits = max(1, limit // per_window)
    note = (
        f"scoring in batches of {fits} windows instead of {asked}: a window "
        f"takes about {gib(per_window)} and {gib(room)} is available ({source})"
    )
    return replace(options, batch_size=fits), note


def _scorers(
    detectors: Sequence[Detector],
    names: Sequence[str],
    backends: Sequence[BackendChoice] | None = None,
) -> tuple[list[PreprocessConfig], list[Scorer]]:
    """The distinct preprocessings to prepare files with, and a scorer per detector (run by
    its backend's runner, if any)."""
    configs: list[PreprocessConfig] = []
    scorers = []
    runners = [None] * len(detectors) if backends is None else [b.runner for b in backends]
    for detector, name, runner in zip(detectors, names, runners, strict=True):
        if detector.preprocess not in configs:
            configs.append(detector.preprocess)
        scorers.append(Scorer(name, detector.model, configs.index(detector.preprocess), runner))
    return configs, scorers


def fitted_options(detectors: Sequence[Detector], options: ScoringOptions) -> ScoringOptions:
    """``options`` with the batch :func:`fit_batch` settles for these detectors (a warning
    when an asked-for batch had to shrink). A long-running caller (``serve``) settles it
    once and scores with ``fit=False``, rather than measuring the models on every file."""
    configs, scorers = _scorers(detectors, [d.name for d in detectors])
    options, note = fit_batch(scorers, configs, options)  # shrink the batch, never die of it
    if note:
        log.warning("%s", note)
    return options


def score_table(
    detectors: Sequence[Detector],
    records: Sequence[ClipRecord],
    options: ScoringOptions,
    *,
    fusion: Fusion | None = None,
    panels: Sequence[tuple[Panel, Sequence[int]]] = (),
    description: str = "scoring",
    fit: bool = True,
    backends: Sequence[BackendChoice] | None = None,
) -> ScoreTable:
    """Score every record's file with every detector, plus the ensemble, the fusion and
    the panels.

    Verdict thresholds follow ``options`` (decision rule, prior, costs, or a fixed
    ``threshold``); ``fusion`` must have been fitted on exactly these detectors, and each
    panel comes with the indices of its members among them (see
    :func:`deepfake_audio.scoring.load.load_models`). A panel's members are detectors like
    any other: each file is decoded once and windowed once per distinct preprocessing for
    all of them. Unreadable files are kept in the table with their reason. ``fit=False``
    takes ``options``' batch as settled (see :func:`fitted_options`). ``backends`` (one per
    detector) says what runs each model; without, they are chosen here by
    ``options.backend`` (:func:`~deepfake_audio.scoring.backends.choose_backends`, after the
    batch is settled: auto times the models on it). A long-running caller chooses once.
    """
    lineup = make_lineup(detectors, options=options, fusion=fusion, panels=panels)
    if fit:
        options = fitted_options(detectors, options)
    if backends is None and options.backend != "torch":
        from deepfake_audio.scoring.backends import choose_backends

        backends = choose_backends(detectors, options, files=len(records))
    configs, scorers = _scorers(detectors, lineup.names, backends)
    prepared = prepare_files(
        [r.path for r in records], configs, hop_seconds=options.hop_seconds, workers=options.workers
    )
    results = score_prepared(
        scorers, prepared, options, total=len(records), description=description
    )
    files = [
        ScoredFile(record, item.error, item.duration, item.sample_rate, clips)
        for record, (item, clips) in zip(records, results, strict=True)
    ]
    per_model = {
        name: np.asarray([f.clips[name].score for f in files if f.ok], dtype=np.float64)
        for name in lineup.names
    }
    windows = {
        name: d.preprocess.window_seconds for name, d in zip(lineup.names, detectors, strict=True)
    }
    raw = lineup.with_fused(per_model)
    llr = {model: lineup.llr(model, raw[model]) for model in lineup.models}
    p_fake = {model: posterior(llr[model], options.prior_fake) for model in lineup.models}
    return ScoreTable(lineup, options, files, p_fake, windows, raw, llr)
