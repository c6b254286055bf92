"""How a clip is judged: the scoring options every caller shares, and the window aggregation.

Torch-free on purpose: the command line builds :class:`ScoringOptions` (and lists
:data:`AGGREGATIONS` in ``--help``) before it knows whether any model will run.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Aggregation = Literal["mean", "max"]
AGGREGATIONS: tuple[Aggregation, ...] = ("mean", "max")
#: How a verdict is reached: ``auto`` is ``bayes`` for a calibrated model, else ``eer``.
DECISIONS = ("auto", "bayes", "eer")
#: What runs a model's windows: ``torch``; ``onnx``, onnxruntime on the model exported to
#: ONNX (CPU only); ``auto``, per model the faster of the two that agree (measured once and
#: remembered, see :mod:`deepfake_audio.scoring.backends`).
BACKENDS = ("auto", "torch", "onnx")
#: What installs the ONNX backend and ``export``: the ``onnx`` extra.
ONNX_INSTALL_HINT = "pip install 'deepfake-audio[onnx]'"
#: The modules it needs: the exporter's (onnx, onnxscript) and the runtime.
ONNX_MODULES = ("onnx", "onnxscript", "onnxruntime")


def onnx_missing() -> list[str]:
    """The ONNX modules that are not installed (none: ``--backend onnx`` and ``export``
    work). Looked up without importing them, so the command line can check cheaply."""
    return [name for name in ONNX_MODULES if importlib.util.find_spec(name) is None]


def aggregate(window_scores: np.ndarray, method: Aggregation = "mean") -> float:
    """One file score from its window scores ``(num_windows,)``."""
    if method == "mean":
        return float(np.mean(window_scores))
    if method == "max":
        return float(np.max(window_scores))
    raise ValueError(f"unknown aggregation {method!r}; use mean or max")


@dataclass(frozen=True)
class ScoringRule:
    """What turns a clip's windows into its score: the part of scoring a threshold depends on.

    A checkpoint stores the rule its validation threshold was set with; scoring with another
    rule gives other numbers, for which that threshold is not the equal-error point.
    """

    aggregation: Aggregation = "mean"
    hop_seconds: float | None = None  # None: the model's window, no overlap

    def to_dict(self) -> dict[str, Any]:
        return {"aggregation": self.aggregation, "hop_seconds": self.hop_seconds}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ScoringRule:
        hop = values.get("hop_seconds")
        return cls(str(values.get("aggregation", "mean")), None if hop is None else float(hop))  # type: ignore[arg-type]

    def describe(self) -> str:
        hop = "the window length" if self.hop_seconds is None else f"{self.hop_seconds:g} s"
        return f"--aggregate {self.aggregation}, hop {hop}"


@dataclass(frozen=True)
class ScoringOptions:
    """Everything that decides how files are scored, built once per command.

    How a verdict is reached (see :mod:`deepfake_audio.scoring.calibration`): ``p_fake`` is
    the posterior at ``prior_fake``; ``decision`` ``bayes`` calls a clip fake when that
    minimises the expected cost (``cost_miss``: calling a real clip fake; ``cost_fa``: calling
    a fake clip real, ASVspoof 5's names), ``eer`` at the model's validation EER threshold,
    ``auto`` bayes for calibrated models and eer for the rest; ``threshold`` (a P(fake))
    overrides them all. ``workers`` is the number of processes decoding audio while this one
    runs the models (1: decode here); ``batch_size`` counts windows, pooled across files
    (None: as many as fit in a modest share of memory, see
    :func:`deepfake_audio.scoring.engine.fit_batch`). ``backend`` is what runs each model
    (:data:`BACKENDS`); ``torch`` by default here, so library callers (tests, benches,
    training's panel) keep today's path, while the command line defaults to ``auto``.
    """

    threshold: float | None = None
    decision: str = "auto"
    prior_fake: float = 0.5
    cost_miss: float = 1.0
    cost_fa: float = 1.0
    hop_seconds: float | None = None
    aggregation: Aggregation = "mean"
    batch_size: int | None = None
    workers: int = 1
    device: str = "auto"
    progress: bool = False
    backend: str = "torch"

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {self.aggregation!r}; use mean or max")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.hop_seconds is not None and not 0 < self.hop_seconds < math.inf:
            raise ValueError(f"hop must be positive, got {self.hop_seconds}")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; use auto, torch or onnx")
        if self.decision not in DECISIONS:
            raise ValueError(f"unknown decision {self.decision!r}; use auto, bayes or eer")
        if not 0.0 < self.prior_fake < 1.0:
            raise ValueError(f"the prior of fake must be in (0, 1), got {self.prior_fake}")
        for name in ("cost_miss", "cost_fa"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value}")
        if self.threshold is not None and not (
            math.isfinite(self.threshold) and 0.0 <= self.threshold <= 1.0
        ):
            raise ValueError(f"threshold must be between 0 and 1, got {self.threshold}")

    @property
    def rule(self) -> ScoringRule:
        return ScoringRule(self.aggregation, self.hop_seconds)

    @property
    def bayes_threshold(self) -> float:
        """The P(fake) above which calling a clip fake costs less than calling it real:
        ``cost_miss / (cost_miss + cost_fa)`` (0.5 with equal costs)."""
        return self.cost_miss / (self.cost_miss + self.cost_fa)
