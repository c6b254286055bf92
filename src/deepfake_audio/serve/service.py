"""The models of a running service, loaded once, and the bounded pool that runs analyses.

An analysis is the ``predict`` path on one file: :func:`~deepfake_audio.scoring.engine.
score_table`, :func:`~deepfake_audio.reports.predict.predictions` and
:func:`~deepfake_audio.reports.predict.predict_document`, so ``/api/analyze`` returns what
``predict --json`` prints. Scoring is CPU-bound: it runs on ``workers`` threads, never on the
event loop, and at most ``queue`` more analyses wait for one; beyond that :meth:`Service.
submit` raises :class:`Busy` (the API answers 503), so memory stays bounded however many
uploads arrive.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from deepfake_audio.data.records import ClipRecord
from deepfake_audio.provenance import provenance
from deepfake_audio.reports.predict import predict_document, predictions
from deepfake_audio.scoring.backends import choose_backends
from deepfake_audio.scoring.engine import fitted_options, resolve_device, score_table
from deepfake_audio.scoring.lineup import ENSEMBLE, FUSION, Lineup, make_lineup, rule_warnings
from deepfake_audio.scoring.load import LoadedModels, load_models
from deepfake_audio.scoring.options import ScoringOptions


class Busy(Exception):
    """Every worker is scoring and the queue is full: try again later."""


class UnreadableUpload(ValueError):
    """The uploaded file could not be decoded (the message is the decoder's reason)."""


@dataclass(frozen=True)
class Overrides:
    """What a request may change of the scoring: a fixed threshold, the aggregation, the hop."""

    threshold: float | None = None
    aggregate: str | None = None
    hop: float | None = None


class Service:
    """The loaded models and the pool that scores uploads with them."""

    def __init__(
        self,
        models: Sequence[str | os.PathLike[str]],
        *,
        fusion_path: str | None = None,
        options: ScoringOptions | None = None,
        workers: int = 1,
        queue: int = 8,
        command_line: str = "deepfake-audio serve",
        loaded: LoadedModels | None = None,
    ) -> None:
        if workers < 1 or queue < 0:
            raise ValueError(f"workers must be at least 1 and queue at least 0: {workers}, {queue}")
        options = options or ScoringOptions()
        self.loaded = loaded or load_models(
            models,
            fusion_path=fusion_path,
            device=resolve_device(options.device, options.backend),
        )
        self.lineup: Lineup = make_lineup(
            self.loaded.detectors,
            options=options,
            fusion=self.loaded.fusion,
            panels=self.loaded.panels,
        )
        # Decoding happens in the scoring thread (no process per request); the batch and
        # what runs each model are settled once here rather than on every request.
        options = replace(options, workers=1, progress=False)
        self.options = fitted_options(self.loaded.detectors, options)
        # files=0: start at once, on remembered decisions (an export can take 40 s)
        self.backends = choose_backends(self.loaded.detectors, self.options, files=0)
        self.provenance = provenance(command_line, self.lineup.files)  # SHA-256s, once
        self.capacity = workers + queue
        self._pending = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="analyze")

    def options_for(self, overrides: Overrides) -> ScoringOptions:
        """The service's scoring options with a request's overrides (ValueError if invalid)."""
        changes: dict[str, Any] = {}
        if overrides.threshold is not None:
            changes["threshold"] = overrides.threshold
        if overrides.aggregate is not None:
            changes["aggregation"] = overrides.aggregate
        if overrides.hop is not None:
            changes["hop_seconds"] = overrides.hop
        return replace(self.options, **changes)  # __post_init__ checks every value

    def analyze(self, path: str, name: str, options: ScoringOptions) -> dict:
        """``predict --json``'s document for the file at ``path``, reported as ``name``;
        :class:`UnreadableUpload` when it cannot be decoded."""
        table = score_table(
            self.loaded.detectors,
            [ClipRecord(path=path, label=None)],
            options,
            fusion=self.loaded.fusion,
            panels=self.loaded.panels,
            fit=False,  # settled at start
            backends=self.backends,
        )
        (verdict,) = predictions(table)
        if verdict.error is not None:
            raise UnreadableUpload(verdict.error.replace(path, name))
        verdict.path = name  # the temporary file's name means nothing to the user
        document = predict_document(table, [verdict], self.provenance)
        warnings = rule_warnings(
            self.loaded.detectors, options, self.loaded.fusion, self.loaded.panel_list
        )
        return document | {"warnings": warnings}

    def submit(self, job: Callable[[], Any]) -> Future:
        """Run ``job`` on the pool; :class:`Busy` when ``workers + queue`` jobs are there."""
        with self._lock:
            if self._pending >= self.capacity:
                raise Busy(f"{self._pending} analyses running or waiting; try again shortly")
            self._pending += 1
        try:
            future = self._pool.submit(job)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _: self._release())
        return future

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1

    @property
    def pending(self) -> int:
        return self._pending

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def describe(self) -> list[dict]:
        """Each model of the lineup: its kind, file, window, threshold, rule, calibration and
        (a detector) what runs it."""
        lineup = self.lineup
        detectors = dict(zip(lineup.names, self.loaded.detectors, strict=True))
        backends = dict(zip(lineup.names, self.backends, strict=True))
        out = []
        for name in lineup.models:
            entry: dict[str, Any] = {
                "name": name,
                "kind": "detector"
                if name in detectors
                else "ensemble"
                if name == ENSEMBLE
                else "fusion"
                if name == FUSION
                else "panel",
                "file": lineup.sources.get(name, ""),
                "threshold": lineup.thresholds[name],
                "decision": lineup.decision(name),
                "calibration": lineup.calibration(name).to_dict(),
                "deciding": name == lineup.deciding_model(),
            }
            detector = detectors.get(name)
            if detector is not None:
                entry |= {
                    "architecture": detector.model_name,
                    "sample_rate": detector.preprocess.sample_rate,
                    "window_seconds": detector.preprocess.window_seconds,
                    "stored_threshold": detector.threshold,
                    "stored_rule": detector.stored_rule,
                    "alias_of": lineup.aliases.get(name),
                    "backend": backends[name].backend,
                }
            else:
                entry["members"] = lineup.panel_members(name) or (
                    lineup.distinct if name == ENSEMBLE else []
                )
            out.append(entry)
        return out
