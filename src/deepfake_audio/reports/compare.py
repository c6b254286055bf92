"""Every model of a run over a folder of audio: per-file CSV, per-model summary, disagreements.

The original ``test_all_models.py`` as a library: :func:`find_checkpoints` picks the epoch
checkpoints and the final model of a run folder, :func:`compare` turns the
:class:`~deepfake_audio.scoring.table.ScoreTable` of every file and model (the ensemble
included) into rows, ranked summaries, disagreements and, when labelled files name their
generators, a per-generator breakdown; :func:`write_comparison` writes the timestamped CSVs.
Nothing here prints; :func:`format_report` returns the text the CLI shows.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from deepfake_audio import metrics
from deepfake_audio.checkpoints import FINAL_NAME, CheckpointError, check_checkpoint
from deepfake_audio.data.records import FAKE, LABEL_NAMES
from deepfake_audio.fileio import atomic_output, write_text_atomic
from deepfake_audio.reports.evaluate import breakdown, summarize
from deepfake_audio.reports.safe import csv_cell, printable
from deepfake_audio.scoring.table import ScoreTable

#: Name training gives the final model of a run.
FINAL_MODEL = Path(FINAL_NAME).stem
_EPOCH = re.compile(r"epoch_(\d+)", re.IGNORECASE)
_RUN_STAMP = re.compile(r"^\d{8}_\d{6}")


def newest_run(runs_dir: str | os.PathLike[str] = "runs") -> Path:
    """The newest run folder under ``runs_dir`` that holds checkpoints (or a panel).

    Run folders are named ``YYYYmmdd_HHMMSS``; those sort by name. Other names fall back to
    their modification time.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no runs folder {root} (give --models_dir)")
    candidates = [
        d
        for d in root.iterdir()
        if d.is_dir() and (any(d.glob("*.safetensors")) or (d / "panel.json").is_file())
    ]
    if not candidates:
        raise FileNotFoundError(f"no run folder with .safetensors checkpoints under {root}")

    def when(folder: Path) -> float:
        match = _RUN_STAMP.match(folder.name)
        if match:
            return datetime.strptime(match.group(0), "%Y%m%d_%H%M%S").timestamp()
        return folder.stat().st_mtime

    return max(candidates, key=lambda d: (when(d), d.name))


def find_checkpoints(models_dir: str | os.PathLike[str]) -> tuple[list[Path], list[tuple]]:
    """Checkpoints at the top of ``models_dir``: epochs in order, then others, the final last.

    Returns ``(checkpoints, skipped)`` where ``skipped`` lists ``(path, reason)`` for
    ``.safetensors`` files that are not deepfake-audio checkpoints.
    """
    folder = Path(models_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"models folder {folder} does not exist")
    found, skipped = [], []
    for path in sorted(folder.glob("*.safetensors")):
        try:
            check_checkpoint(path)  # a tampered or foreign file is skipped, not fatal
        except CheckpointError as exc:
            skipped.append((str(path), str(exc)))
            continue
        found.append(path)

    def order(path: Path) -> tuple[int, int, str]:
        match = _EPOCH.search(path.stem)
        if path.stem == FINAL_MODEL:
            return (2, 0, path.name)
        if match:
            return (0, int(match.group(1)), path.name)
        return (1, 0, path.name)

    found.sort(key=order)
    if not found:
        raise FileNotFoundError(f"no deepfake-audio checkpoints (*.safetensors) in {folder}")
    return found, skipped


@dataclass
class ModelSummary:
    """How one model (or the ensemble) judged the folder."""

    name: str
    threshold: float
    files: int
    called_fake: int
    called_real: int
    mean_p_fake: float
    mean_confidence: float  # probability of the class it chose, averaged
    labelled: int = 0
    accuracy: float = math.nan
    balanced_accuracy: float = math.nan
    eer: float = math.nan
    eer_threshold: float = math.nan
    roc_auc: float = math.nan
    min_dcf: float = math.nan  # ASVspoof 5 (see reports.evaluate.COSTS), from the llr
    act_dcf: float = math.nan
    cllr: float = math.nan  # bits
    rule: str = ""  # the decision rule behind threshold (bayes, eer, threshold)
    prior_fake: float = 0.5
    path: str = ""
    rank: int | None = None  # 1 = best; None when no file carries a label
    same_as: str = ""  # the model whose weights these are (a run's final model: its epoch)


@dataclass
class FileRow:
    path: str
    label: int | None
    duration: float
    windows: dict[str, int]  # model name -> number of windows
    p_fake: dict[str, float]  # model name (and ensemble) -> probability of fake


@dataclass
class Disagreement:
    path: str
    label: int | None
    fake_votes: int
    real_votes: int
    spread: float  # max - min probability of fake over the models
    ensemble_p_fake: float
    fake_models: list[str]


@dataclass
class Comparison:
    """Everything a comparison found; ``models`` includes the ensemble when there are >= 2
    models and the fusion when one was given."""

    models: list[str]
    thresholds: dict[str, float]
    rows: list[FileRow]
    summaries: list[ModelSummary]
    disagreements: list[Disagreement]
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    individual: list[str] = field(default_factory=list)  # models without ensemble and fusion
    # model -> generator -> metrics (evaluate.breakdown's by_generator); empty without them
    by_generator: dict[str, dict[str, dict]] = field(default_factory=dict)


def _summary(
    name: str,
    threshold: float,
    scores: np.ndarray,
    llr: np.ndarray,
    labels: list[int | None],
    path: str,
) -> ModelSummary:
    called_fake = metrics.predict(scores, threshold) == FAKE
    confidence = np.where(called_fake, scores, 1.0 - scores)
    summary = ModelSummary(
        name=name,
        threshold=threshold,
        files=int(scores.size),
        called_fake=int(called_fake.sum()),
        called_real=int((~called_fake).sum()),
        mean_p_fake=float(scores.mean()) if scores.size else math.nan,
        mean_confidence=float(confidence.mean()) if scores.size else math.nan,
        path=path,
    )
    known = [i for i, label in enumerate(labels) if label is not None]
    if known:
        known_labels = np.asarray([labels[i] for i in known])
        stats = summarize(known_labels, scores[known], threshold, llr[known])
        summary.labelled = len(known)
        for key in ("accuracy", "balanced_accuracy", "eer", "eer_threshold", "roc_auc"):
            setattr(summary, key, stats[key])
        for key in ("min_dcf", "act_dcf", "cllr"):
            setattr(summary, key, stats[key])
    return summary


def compare(table: ScoreTable) -> Comparison:
    """The comparison of every model of ``table``: per-file rows, ranked summaries,
    disagreements, and the per-generator breakdown when labelled files name generators."""
    lineup = table.lineup
    names = lineup.names
    rows = [
        FileRow(
            path=scored.record.path,
            label=scored.record.label,
            duration=float(scored.duration or 0.0),
            windows={n: len(scored.clips[n].window_scores) for n in names},
            p_fake={model: float(table.p_fake[model][k]) for model in lineup.models},
        )
        for k, scored in enumerate(table.scored)
    ]
    labels = [r.label for r in rows]
    summaries = [
        _summary(
            name,
            lineup.thresholds[name],
            np.asarray(table.p_fake[name], dtype=np.float64),
            np.asarray(table.llr[name], dtype=np.float64),
            labels,
            lineup.sources.get(name, ""),
        )
        for name in lineup.models
    ]
    for summary in summaries:
        summary.same_as = lineup.aliases.get(summary.name, "")
        decision = lineup.decision(summary.name)
        summary.rule, summary.prior_fake = str(decision["rule"]), float(decision["prior_fake"])
    labelled = [r for r in table.records if r.label is not None]
    by_generator: dict[str, dict] = {}
    if any(r.generator and r.label == FAKE for r in labelled):
        keep = np.asarray([r.label is not None for r in table.records])
        by_generator = {
            name: breakdown(
                labelled, table.p_fake[name][keep], lineup.thresholds[name], table.llr[name][keep]
            )["by_generator"]
            for name in lineup.models
        }
    return Comparison(
        models=lineup.models,
        thresholds=lineup.thresholds,
        rows=rows,
        summaries=rank_summaries(summaries),
        disagreements=find_disagreements(rows, lineup.distinct, lineup.thresholds),
        unreadable=table.unreadable,
        individual=list(names),
        by_generator=by_generator,
    )


def rank_summaries(summaries: Sequence[ModelSummary]) -> list[ModelSummary]:
    """Best first (setting each one's ``rank``): lowest EER, then highest balanced accuracy,
    then highest ROC-AUC.

    EER comes first because it does not depend on the threshold a model was saved with, so
    it compares detectors rather than their calibration (the field's convention). A model
    with no EER (one class among the labelled files) ranks after those with one. Without
    any labelled file there is nothing to rank by: the order is kept and ``rank`` stays None.
    """
    if not any(s.labelled for s in summaries):
        return list(summaries)

    def worst_last(value: float, lower_is_better: bool) -> tuple[bool, float]:
        missing = math.isnan(value)
        return missing, 0.0 if missing else (value if lower_is_better else -value)

    ranked = sorted(
        summaries,
        key=lambda s: (
            worst_last(s.eer, True),
            worst_last(s.balanced_accuracy, False),
            worst_last(s.roc_auc, False),
        ),
    )  # sorted() is stable: full ties keep the discovery order
    for position, summary in enumerate(ranked, start=1):
        summary.rank = position
    return ranked


def find_disagreements(
    rows: Sequence[FileRow], names: Sequence[str], thresholds: dict[str, float]
) -> list[Disagreement]:
    """Files the individual models do not agree on, most contested first.

    Most contested = the vote closest to an even split, then the widest spread of scores.
    """
    out = []
    for row in rows:
        fake_models = [n for n in names if row.p_fake[n] >= thresholds[n]]
        if 0 < len(fake_models) < len(names):
            values = [row.p_fake[n] for n in names]
            out.append(
                Disagreement(
                    path=row.path,
                    label=row.label,
                    fake_votes=len(fake_models),
                    real_votes=len(names) - len(fake_models),
                    spread=float(max(values) - min(values)),
                    ensemble_p_fake=float(np.mean(values)),
                    fake_models=fake_models,
                )
            )
    out.sort(key=lambda d: (abs(d.fake_votes - d.real_votes), -d.spread, d.path))
    return out


def _label_name(label: int | None) -> str:
    return LABEL_NAMES[label] if label is not None else ""


def _prediction(p_fake: float, threshold: float) -> str:
    return "fake" if p_fake >= threshold else "real"


def _fmt(value: float) -> str:
    return (
        "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.6f}"
    )


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    """Write a CSV whose text cells cannot start a formula, and whose undecodable file names
    (surrogate escapes) are written as visible ``\\udcxx`` escapes instead of failing."""
    with (
        atomic_output(path) as tmp,
        open(tmp, "w", newline="", encoding="utf-8", errors="backslashreplace") as handle,
    ):
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([csv_cell(cell) for cell in row] for row in rows)
    return path


def write_comparison(
    comparison: Comparison,
    output_dir: str | os.PathLike[str],
    stamp: str | None = None,
    provenance: dict | None = None,
) -> dict[str, Path]:
    """Write the four CSVs (files, summary, disagreements, unreadable) with one timestamp.

    Returns ``{"files": ..., "summary": ..., "disagreements": ..., "unreadable": ...}``, and
    ``"by_generator"`` when the comparison has a per-generator breakdown. ``provenance`` (see
    :mod:`deepfake_audio.provenance`) goes into ``comparison_<stamp>.json`` beside them, with
    the names of the CSVs it describes: a CSV has no place of its own for it.
    """
    out = Path(output_dir)
    stamp = stamp or datetime.now().strftime("%Y%m%d_%H%M%S")
    names = comparison.individual
    same_windows = all(
        len({r.windows[n] for n in names}) == 1 for r in comparison.rows
    )  # one column when every model cuts the same windows
    header = ["path", "label", "duration_s"]
    header += ["windows"] if same_windows else [f"{n}_windows" for n in names]
    for name in comparison.models:
        header += [f"{name}_prediction", f"{name}_p_fake"]
    file_rows = []
    for row in comparison.rows:
        line = [row.path, _label_name(row.label), f"{row.duration:.3f}"]
        line += [row.windows[names[0]]] if same_windows else [row.windows[n] for n in names]
        for name in comparison.models:
            p = row.p_fake[name]
            line += [_prediction(p, comparison.thresholds[name]), f"{p:.6f}"]
        file_rows.append(line)
    summary_header = [
        "rank", "model", "threshold", "decision", "prior_fake", "files", "called_fake",
        "called_real", "mean_p_fake", "mean_confidence", "labelled", "accuracy",
        "balanced_accuracy", "eer", "eer_threshold", "roc_auc", "min_dcf", "act_dcf", "cllr",
        "checkpoint", "same_weights_as",
    ]  # fmt: skip
    summary_rows = [
        [
            "" if s.rank is None else s.rank,
            s.name,
            f"{s.threshold:.6f}",
            s.rule,
            f"{s.prior_fake:g}",
            s.files,
            s.called_fake,
            s.called_real,
            _fmt(s.mean_p_fake),
            _fmt(s.mean_confidence),
            s.labelled,
            _fmt(s.accuracy),
            _fmt(s.balanced_accuracy),
            _fmt(s.eer),
            _fmt(s.eer_threshold),
            _fmt(s.roc_auc),
            _fmt(s.min_dcf),
            _fmt(s.act_dcf),
            _fmt(s.cllr),
            s.path,
            s.same_as,
        ]
        for s in comparison.summaries
    ]
    disagreement_rows = [
        [
            d.path,
            _label_name(d.label),
            d.fake_votes,
            d.real_votes,
            f"{d.spread:.6f}",
            f"{d.ensemble_p_fake:.6f}",
            ";".join(d.fake_models),
        ]
        for d in comparison.disagreements
    ]
    written = {
        "files": _write_csv(out / f"model_comparison_{stamp}.csv", header, file_rows),
        "summary": _write_csv(out / f"model_summary_{stamp}.csv", summary_header, summary_rows),
        "disagreements": _write_csv(
            out / f"disagreements_{stamp}.csv",
            ["path", "label", "fake_votes", "real_votes", "spread", "mean_p_fake", "fake_models"],
            disagreement_rows,
        ),
        "unreadable": _write_csv(
            out / f"unreadable_{stamp}.csv",
            ["path", "reason"],
            [list(u) for u in comparison.unreadable],
        ),
    }
    if comparison.by_generator:
        generator_rows = [
            [model, generator, stats["fake_count"], stats["real_count"], _fmt(stats["eer"]),
             _fmt(stats["roc_auc"]), _fmt(stats["fake_detection_rate"])]
            for model, generators in comparison.by_generator.items()
            for generator, stats in generators.items()
        ]  # fmt: skip
        written["by_generator"] = _write_csv(
            out / f"model_by_generator_{stamp}.csv",
            ["model", "generator", "fakes", "reals", "eer", "roc_auc", "fake_detection_rate"],
            generator_rows,
        )
    if provenance is not None:
        document = {**provenance, "files": {kind: p.name for kind, p in written.items()}}
        written["provenance"] = write_text_atomic(
            out / f"comparison_{stamp}.json", json.dumps(document, indent=2) + "\n"
        )
    return written


def format_report(comparison: Comparison, top: int = 20) -> str:
    """The per-model summary, the most contested files and the unreadable files, as text."""

    def pct(value: float) -> str:
        return "    -" if math.isnan(value) else f"{100 * value:5.1f}"

    def num(value: float) -> str:
        return "     -" if math.isnan(value) else f"{value:6.3f}"

    width = max([len(n) for n in comparison.models] + [5])
    lines = [
        f"rank  {'model':<{width}}  rule  thresh   files   fake   real  mean_p  conf   acc%  "
        "bacc%  eer%   auc  minDCF actDCF   Cllr",
    ]
    for s in comparison.summaries:
        auc = "    -" if math.isnan(s.roc_auc) else f"{s.roc_auc:.3f}"
        rank = "-" if s.rank is None else str(s.rank)
        rule = {"threshold": "fixed"}.get(s.rule, s.rule)
        lines.append(
            f"{rank:>4}  {s.name:<{width}}  {rule:<5} {s.threshold:.4f} {s.files:6d} "
            f"{s.called_fake:6d} {s.called_real:6d}  {s.mean_p_fake:.3f}  "
            f"{s.mean_confidence:.3f} {pct(s.accuracy)} {pct(s.balanced_accuracy)} "
            f"{pct(s.eer)} {auc} {num(s.min_dcf)} {num(s.act_dcf)} {num(s.cllr)}"
        )
    for s in comparison.summaries:
        if s.same_as:
            lines.append(
                f"      {s.name} has the weights of {s.same_as}: it is counted once in the "
                "ensemble and the votes"
            )
    labelled = comparison.summaries[0].labelled if comparison.summaries else 0
    total = len(comparison.rows)
    lines.append(
        f"{total} files scored, {labelled} with a label"
        + (
            "; ranked by EER, then balanced accuracy"
            if labelled
            else " (no fake/real folder: accuracy and EER not computed, models not ranked)"
        )
    )
    if comparison.by_generator:
        generators = sorted({g for per in comparison.by_generator.values() for g in per})
        lines.append("")
        lines.append("EER % per generator (its fakes against all real files):")
        lines.append(f"  {'model':<{width}}  " + "  ".join(f"{g:>12}" for g in generators))
        for model, per in comparison.by_generator.items():
            cells = [pct(per[g]["eer"]) if g in per else "    -" for g in generators]
            lines.append(f"  {model:<{width}}  " + "  ".join(f"{c:>12}" for c in cells))
    if len(comparison.individual) > 1:
        lines.append("")
        count = len(comparison.disagreements)
        lines.append(f"models disagree on {count} file(s); most contested first:")
        for d in comparison.disagreements[:top]:
            label = f" [{_label_name(d.label)}]" if d.label is not None else ""
            lines.append(
                f"  {d.fake_votes} fake / {d.real_votes} real  spread {d.spread:.3f}  "
                f"mean {d.ensemble_p_fake:.3f}  {d.path}{label}"
            )
        if count > top:
            lines.append(f"  ... and {count - top} more (see the disagreements CSV)")
    if comparison.unreadable:
        lines.append("")
        lines.append(f"{len(comparison.unreadable)} unreadable file(s):")
        lines += [f"  {path}: {reason}" for path, reason in comparison.unreadable]
    return "\n".join(printable(line) for line in lines)  # a file name cannot forge a line
