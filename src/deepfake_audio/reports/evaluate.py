"""Metrics of one or more models on labelled data, overall and per dataset type and generator.

A report over a :class:`~deepfake_audio.scoring.table.ScoreTable`. Every number comes from
:mod:`deepfake_audio.metrics`: accuracy and the confusion at the model's decision threshold
(the rule, prior and threshold are stated beside them), EER and AUC from its scores, and the
ASVspoof 5 metrics from its calibrated log-likelihood ratios: minDCF and actDCF (π_spoof
0.05, C_miss 1, C_fa 10, written into the report), Cllr and minCllr in bits. Per generator,
a group holds only fakes, so its metrics pit that generator's fakes against *all* real clips
of the evaluation set (the ASVspoof per-attack practice); its ``fake_detection_rate`` is the
share of its fakes caught.
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

import numpy as np

from deepfake_audio import metrics
from deepfake_audio.data.records import FAKE, LABEL_NAMES, ClipRecord
from deepfake_audio.fileio import atomic_output, json_ready, staged_folder, write_text_atomic
from deepfake_audio.reports.safe import csv_cell, printable
from deepfake_audio.scoring.table import ScoreTable

GENERATOR_NOTE = (
    "per generator: that generator's fakes against all real clips of the evaluation set "
    "(ASVspoof per-attack convention); fake_detection_rate = share of its fakes called fake"
)


#: The ASVspoof 5 cost parameters of minDCF and actDCF, written into every report.
COSTS = {"p_spoof": metrics.P_SPOOF, "c_miss": metrics.C_MISS, "c_fa": metrics.C_FA}


def summarize(
    labels: np.ndarray, scores: np.ndarray, threshold: float, llr: np.ndarray | None
) -> dict:
    """:func:`deepfake_audio.metrics.summarize` plus, with ``llr``, the ASVspoof 5 metrics."""
    out = metrics.summarize(labels, scores, threshold)
    if llr is not None:
        out |= {
            "min_dcf": metrics.min_dcf(labels, llr, **COSTS),
            "act_dcf": metrics.act_dcf(labels, llr, **COSTS),
            "cllr": metrics.cllr(labels, llr),
            "min_cllr": metrics.min_cllr(labels, llr),
        }
    return out


def breakdown(
    records: Sequence[ClipRecord],
    scores: np.ndarray,
    threshold: float,
    llr: np.ndarray | None = None,
) -> dict:
    """Overall, per dataset type and per generator metrics of one model's file scores
    (P(fake) judged at ``threshold``), with the ASVspoof 5 metrics when ``llr`` is given."""
    labels = np.asarray([r.label for r in records])

    def stats(idx: np.ndarray | list[int]) -> dict:
        return summarize(labels[idx], scores[idx], threshold, None if llr is None else llr[idx])

    result = {"overall": stats(np.arange(len(labels)))}
    by_type: dict[str, list[int]] = defaultdict(list)
    by_generator: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        by_type[record.dataset_type].append(index)
        if record.label == FAKE and record.generator:
            by_generator[record.generator].append(index)
    result["by_dataset_type"] = {name: stats(idx) for name, idx in sorted(by_type.items())}
    reals = np.flatnonzero(labels != FAKE)
    per_generator = {}
    for name, idx in sorted(by_generator.items()):
        group = stats(np.concatenate([np.asarray(idx), reals]))
        group["fake_count"] = len(idx)
        group["real_count"] = int(reals.size)
        group["fake_detection_rate"] = float(np.mean(scores[idx] >= threshold))
        per_generator[name] = group
    result["by_generator"] = per_generator
    return result


@dataclass
class Evaluation:
    """A score table of labelled records and the metrics computed from it."""

    table: ScoreTable
    results: dict[str, dict] = field(default_factory=dict)  # model -> breakdown()
    # files left out before scoring (preparation found them unusable), then while scoring
    left_out: list[tuple[str, str]] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        return self.table.models

    @property
    def thresholds(self) -> dict[str, float]:
        return self.table.thresholds

    @property
    def records(self) -> list[ClipRecord]:
        return self.table.records

    @property
    def scores(self) -> dict[str, np.ndarray]:
        return self.table.p_fake

    @property
    def unreadable(self) -> list[tuple[str, str]]:
        return self.left_out + self.table.unreadable

    @property
    def labels(self) -> np.ndarray:
        return self.table.labels()


def evaluate(table: ScoreTable, unreadable: Sequence[tuple[str, str]] = ()) -> Evaluation:
    """The metrics of every model of ``table`` (its records must all be labelled).

    ``unreadable`` lists files left out before scoring, reported with those scoring found.
    """
    unlabelled = [r.path for r in table.records if r.label is None]
    if unlabelled:
        raise ValueError(f"cannot evaluate unlabelled files, e.g. {unlabelled[0]}")
    evaluation = Evaluation(table, left_out=list(unreadable))
    if table.records:
        for name in table.models:
            evaluation.results[name] = breakdown(
                table.records, table.p_fake[name], table.thresholds[name], table.llr[name]
            )
    return evaluation


def write_evaluation(
    evaluation: Evaluation,
    output_dir: str | os.PathLike[str],
    *,
    settings: dict | None = None,
    provenance: dict | None = None,
) -> dict[str, Path]:
    """Write ``metrics.json``, ``scores.csv``, ``roc.png``, ``det.png``, ``score_histogram.png``,
    ``calibration.png`` (reliability) and ``ape.png`` (actual vs minimum cost over priors).

    They are written as a set (staged, then moved in): a failure half-way leaves the previous
    report whole rather than a mix of old and new files.
    """
    with staged_folder(output_dir) as stage:
        written = _write_files(evaluation, stage, settings, provenance)
    return {kind: Path(output_dir) / path.name for kind, path in written.items()}


def _write_files(
    evaluation: Evaluation, out: Path, settings: dict | None, provenance: dict | None
) -> dict[str, Path]:
    from deepfake_audio.plots.calibration import plot_ape, plot_reliability
    from deepfake_audio.plots.evaluation import plot_det, plot_histograms, plot_roc

    lineup = evaluation.table.lineup
    deciding = lineup.deciding_model()
    document = {
        "provenance": provenance or {},
        "settings": settings or {},
        "files_scored": len(evaluation.records),
        "unreadable": [{"path": p, "reason": r} for p, r in evaluation.unreadable],
        "cost_parameters": COSTS,
        "notes": {
            "by_generator": GENERATOR_NOTE,
            "asvspoof5": "min_dcf and act_dcf are normalized detection costs (a miss: a real "
            "clip called fake; a false alarm: a fake clip called real), act_dcf at the Bayes "
            "threshold of the calibrated llr; cllr and min_cllr in bits",
            "p_fake": "the posterior probability of fake at the decision's prior_fake",
        },
        "deciding_model": deciding,
        "models": {
            name: {
                "checkpoint": lineup.sources.get(name, ""),
                "threshold": evaluation.thresholds[name],
                "decision": lineup.decision(name),
                "calibration": lineup.calibration(name).to_dict(),
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
    header += ["p_fake", "llr", "prediction"]  # the deciding model's (see metrics.json)
    for name in evaluation.models:
        header += [f"{name}_p_fake", f"{name}_llr", f"{name}_prediction"]
    with (
        atomic_output(out / "scores.csv") as tmp,
        open(tmp, "w", newline="", encoding="utf-8", errors="backslashreplace") as handle,
    ):
        writer = csv.writer(handle)
        writer.writerow(header)
        windows = evaluation.table.window_counts(evaluation.table.lineup.names[0])
        for index, record in enumerate(evaluation.records):
            line = [
                record.path,
                LABEL_NAMES[record.label],
                record.split or "",
                record.dataset_type,
                record.generator or "",
                windows[index],
            ]
            for name in [deciding, *evaluation.models]:
                p = float(evaluation.scores[name][index])
                called = "fake" if p >= evaluation.thresholds[name] else "real"
                line += [p, float(evaluation.table.llr[name][index]), called]  # exact floats
            writer.writerow([csv_cell(cell) for cell in line])
    paths["scores"] = out / "scores.csv"
    if not evaluation.records:  # nothing scored: the JSON lists why, there is nothing to plot
        return paths
    curves = {n: (evaluation.labels, evaluation.scores[n]) for n in evaluation.models}
    paths["roc"] = plot_roc(curves, out / "roc.png")
    paths["det"] = plot_det(curves, out / "det.png")
    paths["histogram"] = plot_histograms(curves, evaluation.thresholds, out / "score_histogram.png")
    paths["calibration"] = plot_reliability(curves, out / "calibration.png")
    llrs = {n: (evaluation.labels, evaluation.table.llr[n]) for n in evaluation.models}
    paths["ape"] = plot_ape(llrs, out / "ape.png")
    return paths


def format_summary(evaluation: Evaluation) -> str:
    """A short table per model: overall, then per dataset type and per generator."""

    def pct(value: float) -> str:
        return "    -" if value is None or math.isnan(value) else f"{100 * value:5.1f}"

    def num(value: float) -> str:
        return "-" if value is None or math.isnan(value) else f"{value:.4f}"

    lines = [f"{len(evaluation.records)} labelled files scored"]
    for name in evaluation.models:
        result = evaluation.results.get(name)
        if not result:
            continue
        overall = result["overall"]
        c = overall["confusion"]
        lines.append("")
        decision = evaluation.table.lineup.decision(name)
        lines.append(
            f"{name}  ({decision['rule']} threshold {evaluation.thresholds[name]:.4f}, prior "
            f"{decision['prior_fake']:g}): "
            f"acc {pct(overall['accuracy'])}%  bal.acc {pct(overall['balanced_accuracy'])}%  "
            f"EER {pct(overall['eer'])}%  AUC "
            + ("-" if math.isnan(overall["roc_auc"]) else f"{overall['roc_auc']:.3f}")
        )
        if "min_dcf" in overall:
            lines.append(
                f"  ASVspoof 5: minDCF {num(overall['min_dcf'])}  actDCF "
                f"{num(overall['act_dcf'])}  Cllr {num(overall['cllr'])}  minCllr "
                f"{num(overall['min_cllr'])} bits"
                + ("" if decision["calibrated"] else "  (not calibrated)")
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
    return "\n".join(printable(line) for line in lines)  # a file name cannot forge a line
