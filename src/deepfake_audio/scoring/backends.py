"""Which runtime runs each model's windows: torch, or onnxruntime on the model's ONNX export.

``--backend torch`` is the path every model has; ``onnx`` runs the export
(:mod:`deepfake_audio.scoring.onnx_export`) in onnxruntime on the CPU; ``auto`` picks, per
model, the faster of the two among those that are valid. Valid means the export exists (some
models may not export), agrees with torch within
:data:`~deepfake_audio.scoring.onnx_export.TOLERANCE` P(fake) on every probe window, and runs
where the model runs (onnxruntime here is CPU-only: on a GPU ``auto`` is torch). Faster is
measured once, on a batch of the size the engine will score in, with both runtimes
interleaved and at most :data:`MEASURE_SECONDS` spent; the decision is remembered in the
cache, keyed by everything that could change it (checkpoint SHA-1, window, batch, threads,
onnxruntime and torch versions, CPU model), so later runs load it instead of measuring.

Cache layout, beside the decoded-audio cache (``$DEEPFAKE_AUDIO_CACHE``, else
``$XDG_CACHE_HOME/deepfake-audio``, else ``~/.cache/deepfake-audio``)::

    onnx/<checkpoint sha1>-<onnxruntime version>-<torch version>.onnx   the exports
    onnx/decisions.json                                                 auto's decisions

Without onnxruntime installed, ``auto`` quietly means torch.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepfake_audio.checkpoints import Detector
from deepfake_audio.data.cache import default_cache_dir
from deepfake_audio.fileio import write_text_atomic
from deepfake_audio.scoring.inference import score_windows
from deepfake_audio.scoring.onnx_export import (
    TOLERANCE,
    OnnxError,
    OnnxRunner,
    detector_sha1,
    export_onnx,
    onnxruntime_version,
    probe_windows,
    require_onnx,
)
from deepfake_audio.scoring.options import ScoringOptions, onnx_missing

log = logging.getLogger(__name__)

#: Time one model's first measurement may take, both runtimes together (plus one warm-up
#: window each): the batch measured shrinks below the engine's when a batch would not fit.
MEASURE_SECONDS = 3.0
#: Timed batches per runtime at most; the fastest of each counts (noise only slows a run).
MAX_REPEATS = 5
#: ``auto`` exports and times a model it has no decision for only when the job has at least
#: this many files: an export takes 5-40 s on 2 cores, which onnxruntime's 1.5-2x speed-up
#: repays over a few hundred clips, not over one. Smaller jobs use a remembered decision or
#: torch. (A long-running ``serve`` passes 0: it starts fast and uses what is remembered.)
AUTO_MEASURE_MIN_FILES = 200
DECISIONS_FILE = "decisions.json"
#: Bumped when what a decision means changes, so old ones are measured again.
DECISION_FORMAT = 1

WindowRunner = Callable[[np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class BackendChoice:
    """What runs one model: ``backend`` ``torch`` (``runner`` None) or ``onnx`` (an
    onnxruntime session), why, and whether this run measured it."""

    backend: str
    reason: str
    runner: OnnxRunner | None = None
    measured: bool = False


@dataclass(frozen=True)
class Timing:
    """Seconds per batch of ``windows`` windows for each runtime (the fastest of ``repeats``
    runs), and the largest |P(fake)| difference between them on that batch."""

    torch_seconds: float
    onnx_seconds: float
    windows: int
    repeats: int
    max_delta: float


def onnx_cache_dir() -> Path:
    """Where exports and decisions are kept: ``onnx/`` in the project's cache folder."""
    return default_cache_dir() / "onnx"


def cpu_model() -> str:
    """The processor's model name (a decision measured on one CPU says nothing of another)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def export_path(cache: Path, sha1: str) -> Path:
    """The cached export of the checkpoint with ``sha1`` for these onnxruntime and torch."""
    return cache / f"{sha1}-{onnxruntime_version()}-{torch.__version__}.onnx"


def cached_runner(detector: Detector, sha1: str, cache: Path, threads: int) -> OnnxRunner:
    """An onnxruntime session on ``detector``'s export in ``cache``, exporting (and checking
    it against torch) first when there is none, or when the file there cannot be loaded."""
    path = export_path(cache, sha1)
    if path.is_file():
        try:
            return OnnxRunner(path, threads)
        except Exception as exc:  # damaged by hand or disk: export it again
            log.warning("%s cannot be loaded (%s): exporting it again", path, exc)
    started = time.perf_counter()
    log.info("%s: exporting to ONNX once (cached in %s)", detector.name, cache)
    try:
        export_onnx(detector, path, source_sha1=sha1)
    except OSError as exc:  # a cache folder that cannot be written
        raise OnnxError(f"cannot write the ONNX export {path} ({exc.strerror or exc})") from exc
    log.info("%s: exported in %.1f s", detector.name, time.perf_counter() - started)
    return OnnxRunner(path, threads)


def measure(
    torch_run: WindowRunner,
    onnx_run: WindowRunner,
    windows: np.ndarray,
    budget: float | None = None,
) -> Timing:
    """Time both runtimes on ``windows`` (one batch), interleaved, within about ``budget``
    seconds: one window each first (twice: a warm-up, then the cost of a window), then as
    many windows of the batch as let a round of both take a third of the budget, repeated
    while time is left (at most :data:`MAX_REPEATS` rounds; the order alternates so neither
    always runs on a cache the other warmed). ``budget`` defaults to :data:`MEASURE_SECONDS`.
    """
    budget = MEASURE_SECONDS if budget is None else budget

    def timed(run: WindowRunner, batch: np.ndarray) -> tuple[float, np.ndarray]:
        start = time.perf_counter()
        out = run(batch, len(batch))
        return time.perf_counter() - start, out

    for run in (torch_run, onnx_run):  # first runs allocate and plan: not timed
        run(windows[:1], 1)
    per_window = max(timed(torch_run, windows[:1])[0], timed(onnx_run, windows[:1])[0])
    fits = int(budget / 3 / max(per_window, 1e-6))
    batch = windows[: max(1, min(len(windows), fits))]
    times: dict[str, list[float]] = {"torch": [], "onnx": []}
    runs = {"torch": torch_run, "onnx": onnx_run}
    outputs: dict[str, np.ndarray] = {}
    deadline = time.perf_counter() + budget
    for round_ in range(MAX_REPEATS):
        for name in ("torch", "onnx") if round_ % 2 == 0 else ("onnx", "torch"):
            seconds, out = timed(runs[name], batch)
            times[name].append(seconds)
            outputs.setdefault(name, out)
        if time.perf_counter() > deadline:
            break
    deltas = np.abs(outputs["torch"] - outputs["onnx"])
    delta = float(np.max(deltas)) if np.all(np.isfinite(deltas)) else float("inf")
    return Timing(min(times["torch"]), min(times["onnx"]), len(batch), len(times["torch"]), delta)


def decision_key(detector: Detector, sha1: str, batch: int, threads: int) -> str:
    """What a decision holds for: change any of it and auto measures again."""
    return json.dumps(
        {
            "format": DECISION_FORMAT,
            "sha1": sha1,
            "window": detector.preprocess.window_samples,
            "batch": batch,
            "threads": threads,
            "onnxruntime": onnxruntime_version(),
            "torch": torch.__version__,
            "cpu": cpu_model(),
        },
        sort_keys=True,
    )


def read_decisions(cache: Path) -> dict[str, dict[str, Any]]:
    """auto's remembered decisions (none when the file is missing or unreadable: they are
    measured again, never trusted half-read)."""
    file = cache / DECISIONS_FILE
    try:
        decisions = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s is unreadable (%s): measuring again", file, exc)
        return {}
    return decisions if isinstance(decisions, dict) else {}


def remember(cache: Path, key: str, decision: dict[str, Any]) -> None:
    """Add one decision to the cache's file (atomically; a lost race only costs a later run
    one more measurement)."""
    decisions = read_decisions(cache)
    decisions[key] = decision
    try:
        write_text_atomic(cache / DECISIONS_FILE, json.dumps(decisions, indent=1, sort_keys=True))
    except OSError as exc:  # a read-only cache: the decision holds for this run only
        log.warning("cannot write %s (%s): auto will measure again next time", cache, exc)


def _model_device(detector: Detector) -> torch.device:
    return next(detector.model.parameters()).device


def choose_auto(
    detector: Detector, batch: int, threads: int, cache: Path, files: int | None = None
) -> BackendChoice:
    """``auto`` for one model on the CPU: the remembered decision, else (for a job of at
    least :data:`AUTO_MEASURE_MIN_FILES` files, or of unknown size) export, check and time
    both runtimes and remember which was faster (torch when the export is unusable)."""
    sha1 = detector_sha1(detector)
    key = decision_key(detector, sha1, batch, threads)
    known = read_decisions(cache).get(key)
    if known is not None and known.get("backend") in ("torch", "onnx"):
        reason = f"remembered: {known.get('reason', '')}"
        if known["backend"] == "torch":
            return BackendChoice("torch", reason)
        try:
            return BackendChoice("onnx", reason, cached_runner(detector, sha1, cache, threads))
        except OnnxError as exc:  # the export went and cannot be made again: measure anew
            log.warning("%s", exc)
    if files is not None and files < AUTO_MEASURE_MIN_FILES:
        return BackendChoice(
            "torch",
            f"{files} file(s): too few to repay exporting and timing onnxruntime, which "
            f"auto does once per model on a job of at least {AUTO_MEASURE_MIN_FILES} files",
        )
    log.warning(
        "%s: exporting it to ONNX and timing onnxruntime against torch, once for this model "
        "and machine (seconds; remembered in %s; --backend torch skips it)",
        detector.name,
        cache,
    )
    decision: dict[str, Any] = {"model": detector.name, "measured_at": time.time()}
    runner = None
    try:
        runner = cached_runner(detector, sha1, cache, threads)
    except OnnxError as exc:
        decision |= {"backend": "torch", "reason": f"no valid ONNX export: {exc}"}
    if runner is not None:
        model = detector.model
        timing = measure(
            lambda w, n: score_windows(model, w, n),
            runner,
            probe_windows(detector.preprocess, count=batch, seed=1),
        )
        decision |= {
            "torch_seconds": timing.torch_seconds,
            "onnx_seconds": timing.onnx_seconds,
            "windows": timing.windows,
            "max_delta": timing.max_delta,
        }
        speed = (
            f"{timing.windows / timing.torch_seconds:.1f} windows/s with torch, "
            f"{timing.windows / timing.onnx_seconds:.1f} with onnxruntime "
            f"(batches of {timing.windows}, {threads} threads)"
        )
        if not timing.max_delta <= TOLERANCE:
            decision |= {
                "backend": "torch",
                "reason": f"onnxruntime disagrees with torch by {timing.max_delta:.3g} P(fake)",
            }
        elif timing.onnx_seconds < timing.torch_seconds:
            decision |= {"backend": "onnx", "reason": speed}
        else:
            decision |= {"backend": "torch", "reason": speed}
    remember(cache, key, decision)
    chosen = decision["backend"]
    return BackendChoice(
        chosen, f"measured: {decision['reason']}", runner if chosen == "onnx" else None, True
    )


def choose_backend(
    detector: Detector,
    options: ScoringOptions,
    cache: Path | None = None,
    files: int | None = None,
) -> BackendChoice:
    """What runs ``detector`` under ``options.backend`` (see the module's docstring), with
    ``options.batch_size`` settled (:func:`~deepfake_audio.scoring.engine.fitted_options`).

    ``onnx`` raises :class:`~deepfake_audio.scoring.onnx_export.OnnxError` when the model
    cannot be exported or its export disagrees with torch, and a ValueError for a model on a
    GPU; ``auto`` falls back to torch in both cases. ``files`` is the size of the job, for
    ``auto`` (see :data:`AUTO_MEASURE_MIN_FILES`; None: measure when nothing is remembered).
    """
    asked = options.backend
    if asked == "torch":
        return BackendChoice("torch", "asked for")
    device = _model_device(detector)
    cache = onnx_cache_dir() if cache is None else Path(cache)
    threads = torch.get_num_threads()
    if asked == "onnx":
        if device.type != "cpu":
            raise ValueError(
                f"{detector.name}: --backend onnx runs models on the CPU, and this one is on "
                f"{device}: use --device cpu, or --backend torch"
            )
        require_onnx("--backend onnx")
        runner = cached_runner(detector, detector_sha1(detector), cache, threads)
        return BackendChoice("onnx", "asked for", runner)
    if device.type != "cpu":
        return BackendChoice("torch", f"the model runs on {device}; onnxruntime here on the CPU")
    if onnx_missing():
        return BackendChoice("torch", f"{', '.join(onnx_missing())} not installed")
    return choose_auto(detector, options.batch_size or 64, threads, cache, files)


def choose_backends(
    detectors: Sequence[Detector],
    options: ScoringOptions,
    cache: Path | None = None,
    files: int | None = None,
) -> list[BackendChoice]:
    """:func:`choose_backend` for each detector of a job of ``files`` files, logged (info)."""
    choices = []
    for detector in detectors:
        choice = choose_backend(detector, options, cache, files)
        # torch by default is no news: said at debug level, so a compare of many models on a
        # small folder does not print one line per model
        level = logging.INFO if choice.backend != "torch" or choice.measured else logging.DEBUG
        log.log(level, "%s: backend %s (%s)", detector.name, choice.backend, choice.reason)
        choices.append(choice)
    return choices
