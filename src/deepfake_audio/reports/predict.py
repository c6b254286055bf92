"""Verdicts on files: FAKE or REAL, the probability of fake, and the threshold that decided.

A report over a :class:`~deepfake_audio.scoring.table.ScoreTable`. With several models the
verdict is the ensemble's (mean probability of fake at the mean of their thresholds, see
:mod:`deepfake_audio.scoring.lineup`); with a fitted fusion
(:mod:`deepfake_audio.scoring.fusion`) it is the fusion's, since the user asked for it by name. Each
model's own score stays in the JSON, and the fused ones under ``fused``. Every verdict
states its probability of fake (the posterior at the stated prior), the calibrated
log-likelihood ratio behind it, and its decision: the rule (``bayes``, ``eer`` or a fixed
``threshold``), the prior and the threshold on the probability (see
:mod:`deepfake_audio.scoring.lineup`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from deepfake_audio.data.listing import ScoringInput
from deepfake_audio.reports.safe import printable
from deepfake_audio.scoring.lineup import FUSION, PANEL
from deepfake_audio.scoring.table import ScoreTable


@dataclass
class ModelVerdict:
    """One model's judgement of a file, with the windows behind it."""

    p_fake: float
    threshold: float
    windows: list[dict[str, float]]  # [{"start": s, "end": s, "p_fake": p}]
    llr: float = 0.0
    decision: dict[str, object] = field(default_factory=dict)  # rule, prior, threshold...

    @property
    def verdict(self) -> str:
        return "FAKE" if self.p_fake >= self.threshold else "REAL"

    def to_dict(self, windows: bool = True) -> dict:
        return {
            "verdict": self.verdict,
            "p_fake": self.p_fake,
            "llr": self.llr,
            "threshold": self.threshold,
            "decision": self.decision,
            **({"windows": self.windows} if windows and self.windows else {}),
        }


@dataclass
class Prediction:
    """The verdict on one file (``error`` set, and no verdict, when it could not be read)."""

    path: str
    error: str | None = None
    duration: float | None = None
    p_fake: float | None = None
    threshold: float | None = None
    llr: float | None = None
    decision: dict[str, object] = field(default_factory=dict)
    model: str | None = None  # the model (or "ensemble", or "fusion") whose verdict this is
    models: dict[str, ModelVerdict] = field(default_factory=dict)
    fused: dict[str, ModelVerdict] = field(default_factory=dict)  # ensemble / fusion, no windows

    @property
    def verdict(self) -> str:
        if self.p_fake is None or self.threshold is None:
            return "ERROR"
        return "FAKE" if self.p_fake >= self.threshold else "REAL"

    def to_dict(self, windows: bool = True) -> dict:
        """JSON-ready; per-window scores (with times in seconds) when ``windows``."""
        out: dict = {"path": self.path, "verdict": self.verdict}
        if self.error is not None:
            out["error"] = self.error
            return out
        out |= {
            "p_fake": self.p_fake,
            "llr": self.llr,
            "threshold": self.threshold,
            "decision": self.decision,
            "model": self.model,
            "duration": self.duration,
            "models": {name: v.to_dict(windows) for name, v in self.models.items()},
        }
        if self.fused:
            out["fused"] = {name: v.to_dict(False) for name, v in self.fused.items()}
        return out


def predictions(
    table: ScoreTable, inputs: Sequence[ScoringInput] | None = None
) -> list[Prediction]:
    """A :class:`Prediction` per file, in order; bad files carry ``error``.

    ``table`` scored the ``inputs`` that could be listed; the others (a path that does not
    exist) are put back where the user named them, with their problem as the error.
    """
    lineup = table.lineup
    model = lineup.deciding_model()
    out: list[Prediction] = []
    scored = 0  # index into the p_fake arrays
    for file in table.files:
        if not file.ok:
            out.append(Prediction(path=file.record.path, error=file.error))
            continue
        duration = float(file.duration or 0.0)

        def verdict(name: str, windows: list[dict[str, float]], row: int) -> ModelVerdict:
            return ModelVerdict(
                float(table.p_fake[name][row]),
                lineup.thresholds[name],
                windows,
                float(table.llr[name][row]),
                lineup.decision(name),
            )

        verdicts = {}
        for name, clip in file.clips.items():
            length = table.window_seconds[name]
            window_p = lineup.p_fake(name, clip.window_scores)  # through the file's calibration
            windows = [
                {
                    "start": round(float(start), 4),
                    "end": round(min(float(start) + length, duration), 4),
                    "p_fake": float(p),
                }
                for start, p in zip(clip.window_starts, window_p, strict=True)
            ]
            verdicts[name] = verdict(name, windows, scored)
        fused = {name: verdict(name, [], scored) for name in lineup.fused}
        deciding = fused.get(model) or verdicts[model]
        out.append(
            Prediction(
                path=file.record.path,
                duration=duration,
                p_fake=deciding.p_fake,
                threshold=deciding.threshold,
                llr=deciding.llr,
                decision=deciding.decision,
                model=model,
                models=verdicts,
                fused=fused,
            )
        )
        scored += 1
    scored_in_order = iter(out)
    return [
        next(scored_in_order)
        if entry.problem is None
        else Prediction(path=entry.record.path, error=entry.problem)
        for entry in inputs or [ScoringInput(f.record) for f in table.files]
    ]


def predict_document(table: ScoreTable, verdicts: Sequence[Prediction], provenance: dict) -> dict:
    """The JSON document of ``predict --json`` (and of the service's ``/api/analyze``):
    ``provenance``, the models and their files, the fusion and panels when there are, the
    aggregation, and one entry per file (:meth:`Prediction.to_dict`, with its windows)."""
    sources = table.lineup.sources
    panels = {  # each panel's file and members: the members' verdicts are under "models"
        name: {"file": sources[name], "members": table.lineup.panel_members(name)}
        for name in table.lineup.fused
        if name.startswith(PANEL)
    }
    return {
        "provenance": provenance,
        "models": {name: sources[name] for name in table.lineup.names},
        **({"fusion": sources[FUSION]} if FUSION in sources else {}),
        **({"panels": panels} if panels else {}),
        "aggregate": table.options.aggregation,
        "files": [p.to_dict() for p in verdicts],
    }


def format_line(prediction: Prediction) -> str:
    """``FAKE  0.9731  (bayes threshold 0.5000, prior 0.5)  path``: the verdict, the
    probability of fake, how it was decided (the reason instead for a bad file)."""
    path = printable(prediction.path)  # a newline in a name cannot forge a verdict line
    if prediction.error is not None:
        return f"ERROR  {path}: {printable(prediction.error)}"
    rule, prior = prediction.decision.get("rule", ""), prediction.decision.get("prior_fake")
    return (
        f"{prediction.verdict}  {prediction.p_fake:.4f}  "
        f"({rule} threshold {prediction.threshold:.4f}, prior {prior:g})  {path}"
    )
