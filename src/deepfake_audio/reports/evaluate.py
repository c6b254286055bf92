"""Metrics of one or more models on labelled data, overall and per dataset type and generator.

Every number comes from :mod:`deepfake_audio.metrics` at the model's own threshold (its
validation EER threshold, unless overridden). Per generator, a group holds only fakes, so its
EER and AUC pit that generator's fakes against *all* real clips of the evaluation set (the
ASVspoof per-attack practice); its ``fake_detection_rate`` is the share of its fakes caught.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepfake_audio import metrics
from deepfake_audio.checkpoints import Detector
from deepfake_audio.data.layouts import discover
from deepfake_audio.data.records import FAKE, LABEL_NAMES, ClipRecord, parse_label
from deepfake_audio.data.splits import select_splits
from deepfake_audio.fileio import atomic_output, json_ready, write_text_atomic
from deepfake_audio.scoring.engine import (
    Aggregation,
    make_lineup,
    score_files,
)

if TYPE_CHECKING:
    from deepfake_audio.scoring.fusion import Fusion

#: The demo corpus's per-file description, read when it sits at the data root.
METADATA_FILE = "metadata.csv"

GENERATOR_NOTE = (
    "per generator: that generator's fakes against all real clips of the evaluation set "
    "(ASVspoof per-attack convention); fake_detection_rate = share of its fakes called fake"
)


def apply_metadata(records: Sequence[ClipRecord], root: str | os.PathLike[str]) -> list[ClipRecord]:
    """Fill generator (and dataset type) from ``ROOT/metadata.csv`` when the file exists.

    Paths in the CSV are relative to ``ROOT``. A row whose label contradicts the folder is
    ignored (the folder decides, as everywhere else).
    """
    table = Path(root) / METADATA_FILE
    if not Path(root).is_dir() or not table.is_file():
        return list(records)
    with open(table, newline="", encoding="utf-8-sig") as handle:
        rows = {
            str((Path(root) / row["path"]).absolute()): row
            for row in csv.DictReader(handle)
            if row.get("path")
        }
    out = []
    for record in records:
        row = rows.get(str(Path(record.path).absolute()))
        if row is None:
            out.append(record)
            continue
        try:
            if row.get("label") and parse_label(row["label"]) != record.label:
                out.append(record)
                continue
        except ValueError:
            pass
        changes = {}
        if row.get("generator"):
            changes["generator"] = row["generator"]
        if row.get("dataset_type"):
            changes["dataset_type"] = row["dataset_type"]
        out.append(record.with_(**changes) if changes else record)
    return out


def load_records(
    data: str | os.PathLike[str],
    *,
    layout: str = "auto",
    dataset_types: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
) -> list[ClipRecord]:
    """Labelled records of a dataset root or manifest, the chosen splits only.

    Raises ``ValueError`` when the split selection leaves nothing (e.g. ``--splits testing``
    on data without split folders).
    """
    records = discover(data, layout, dataset_types).records
    records = apply_metadata(records, data)
    chosen = select_splits(records, splits)
    if not chosen:
        found = sorted({str(r.split) for r in records})
        raise ValueError(f"no records in splits {list(splits or [])} (splits found: {found})")
    return chosen


def breakdown(records: Sequence[ClipRecord], scores: np.ndarray, threshold: float) -> dict:
    """Overall, per dataset type and per generator metrics of one model's file scores."""
    labels = np.asarray([r.label for r in records])
    result = {"overall": metrics.summarize(labels, scores, threshold)}
    by_type: dict[str, list[int]] = defaultdict(list)
    by_generator: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        by_type[record.dataset_type].append(index)
        if record.label == FAKE and record.generator:
            by_generator[record.generator].append(index)
    result["by_dataset_type"] = {
        name: metrics.summarize(labels[idx], scores[idx], threshold)
        for name, idx in sorted(by_type.items())
    }
    reals = np.flatnonzero(labels != FAKE)
    per_generator = {}
    for name, idx in sorted(by_generator.items()):
        pooled = np.concatenate([np.asarray(idx), reals])
        stats = metrics.summarize(labels[pooled], scores[pooled], threshold)
        stats["fake_count"] = len(idx)
        stats["real_count"] = int(reals.size)
        stats["fake_detection_rate"] = float(np.mean(scores[idx] >= threshold))
        per_generator[name] = stats
    result["by_generator"] = per_generator
    return result


@dataclass
class Evaluation:
    """Scores of every model on the readable records, and the metrics computed from them."""

    models: list[str]  # then the ensemble (several models) and the fusion (when given)
    thresholds: dict[str, float]
    records: list[ClipRecord]  # readable records, in the order of the score arrays
    scores: dict[str, np.ndarray]  # model -> probability of fake per record
    windows: list[int]  # windows of the first model per record
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    checkpoints: dict[str, str] = field(default_factory=dict)
    results: dict[str, dict] = field(default_factory=dict)  # model -> breakdown()

    @property
    def labels(self) -> np.ndarray:
        return np.asarray([r.label for r in self.records])


def evaluate_models(
    detectors: Sequence[Detector],
    records: Sequence[ClipRecord],
    *,
    threshold: float | None = None,
    hop_seconds: float | None = None,
    method: Aggregation = "mean",
    batch_size: int = 64,
    workers: int = 1,
    progress: bool = False,
    fusion: Fusion | None = None,
) -> Evaluation:
    """Score every record with every model (and the ensemble) and compute the metrics.

    ``fusion`` adds a model named ``fusion`` judged at its stored threshold (or
    ``threshold``); it must have been fitted on exactly these detectors.
    """
    lineup = make_lineup(detectors, threshold=threshold, fusion=fusion)
    names = lineup.names
    by_path = {r.path: r for r in records}
    kept: list[ClipRecord] = []
    per_model: dict[str, list[float]] = {n: [] for n in names}
    windows: list[int] = []
    unreadable = []
    for result in score_files(
        detectors,
        [r.path for r in records],
        names=names,
        hop_seconds=hop_seconds,
        method=method,
        batch_size=batch_size,
        workers=workers,
        progress=progress,
        description="evaluating",
    ):
        if result.error is not None:
            unreadable.append((result.path, result.error))
            continue
        kept.append(by_path[result.path])
        windows.append(len(result.clips[names[0]].window_scores))
        for name in names:
            per_model[name].append(result.clips[name].score)
    scores = {n: np.asarray(v, dtype=np.float64) for n, v in per_model.items()}
    scores = lineup.with_fused(scores)
    models, thresholds, checkpoints = lineup.models, lineup.thresholds, lineup.sources
    evaluation = Evaluation(
        models=models,
        thresholds=thresholds,
        records=kept,
        scores=scores,
        windows=windows,
        unreadable=unreadable,
        checkpoints=checkpoints,
    )
    if kept:
        for name in models:
            evaluation.results[name] = breakdown(kept, scores[name], thresholds[name])
    return evaluation


def write_evaluation(
    evaluation: Evaluation,
    output_dir: str | os.PathLike[str],
    *,
    settings: dict | None = None,
) -> dict[str, Path]:
    """Write ``metrics.json``, ``scores.csv``, ``roc.png``, ``det.png``, ``score_histogram.png``."""
    from deepfake_audio.plots.evaluation import plot_det, plot_histograms, plot_roc

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "settings": settings or {},
        "files_scored": len(evaluation.records),
        "unreadable": [{"path": p, "reason": r} for p, r in evaluation.unreadable],
        "notes": {"by_generator": GENERATOR_NOTE},
        "models": {
            name: {
                "checkpoint": evaluation.checkpoints.get(name, ""),
                "threshold": evaluation.thresholds[name],
                **evaluation.results.get(name, {}),
            }
            for name in evaluation.models
        },
    }
    paths = {
        "metrics": write_text_atomic(
            out / "metrics.json", json.dumps(json_ready(document), indent=2, allow_nan=False)
        )
    }
    header = ["path", "label", "split", "dataset_type", "generator", "windows"]
    for name in evaluation.models:
        header += [f"{name}_p_fake", f"{name}_prediction"]
    with (
        atomic_output(out / "scores.csv") as tmp,
        open(tmp, "w", newline="", encoding="utf-8") as handle,
    ):
        writer = csv.writer(handle)
        writer.writerow(header)
        for index, record in enumerate(evaluation.records):
            line = [
                record.path,
                LABEL_NAMES[record.label],
                record.split or "",
                record.dataset_type,
                record.generator or "",
                evaluation.windows[index],
            ]
            for name in evaluation.models:
                p = float(evaluation.scores[name][index])
                called = "fake" if p >= evaluation.thresholds[name] else "real"
                line += [f"{p:.6f}", called]
            writer.writerow(line)
    paths["scores"] = out / "scores.csv"
    curves = {n: (evaluation.labels, evaluation.scores[n]) for n in evaluation.models}
    paths["roc"] = plot_roc(curves, out / "roc.png")
    paths["det"] = plot_det(curves, out / "det.png")
    paths["histogram"] = plot_histograms(curves, evaluation.thresholds, out / "score_histogram.png")
    return paths


def format_summary(evaluation: Evaluation) -> str:
    """A short table per model: overall, then per dataset type and per generator."""

    def pct(value: float) -> str:
        return "    -" if value is None or math.isnan(value) else f"{100 * value:5.1f}"

    lines = [f"{len(evaluation.records)} labelled files scored"]
    for name in evaluation.models:
        result = evaluation.results.get(name)
        if not result:
            continue
        overall = result["overall"]
        c = overall["confusion"]
        lines.append("")
        lines.append(
            f"{name}  (threshold {evaluation.thresholds[name]:.4f}): "
            f"acc {pct(overall['accuracy'])}%  bal.acc {pct(overall['balanced_accuracy'])}%  "
            f"EER {pct(overall['eer'])}%  AUC "
            + ("-" if math.isnan(overall["roc_auc"]) else f"{overall['roc_auc']:.3f}")
        )
        lines.append(
            f"  confusion: fake->fake {c['true_fake']}  fake->real {c['fake_called_real']}  "
            f"real->fake {c['real_called_fake']}  real->real {c['true_real']}"
        )
        for kind, key in (("dataset type", "by_dataset_type"), ("generator", "by_generator")):
            groups = result[key]
            if len(groups) < 1 or (key == "by_dataset_type" and len(groups) < 2):
                continue
            for group, stats in groups.items():
                extra = (
                    f"  caught {pct(stats['fake_detection_rate'])}%"
                    if "fake_detection_rate" in stats
                    else f"  acc {pct(stats['accuracy'])}%"
                )
                lines.append(
                    f"  {kind} {group}: n={stats['count']}  EER {pct(stats['eer'])}%{extra}"
                )
    if evaluation.unreadable:
        lines.append("")
        lines.append(f"{len(evaluation.unreadable)} unreadable file(s):")
        lines += [f"  {p}: {r}" for p, r in evaluation.unreadable]
    return "\n".join(lines)
