"""The panel recipe: diverse detectors on one prepared dataset, fused on validation, one model.

``deepfake-audio train --recipe panel`` runs :func:`train_panel`:

1. the data are prepared once (discovery, separation, balance, cache), exactly as ``train``
   prepares them, and every member trains on those very records, so all members share one
   split (the same manifest fingerprint in every checkpoint);
2. each trained member is an ordinary run in ``RUN/members/<name>/`` (resumable, with its own
   history and final model chosen on validation); built-in pretrained members are used
   zero-shot, costing no training;
3. a logistic-regression fusion of the members' scores and a calibration of the fused score
   are fitted on the validation split, never on test (:func:`fit_panel`);
4. ``RUN/panel.json`` (:mod:`deepfake_audio.scoring.panel`) is the model that every scoring
   command takes as one ``--model``; ``RUN/manifest.jsonl`` lets ``evaluate --run RUN``
   evaluate it on the run's own test split.

Members are chosen for diversity of front end and augmentation, not for their single scores:
raw-waveform CNN, the same with RawBoost and codec augmentation, LFCC + light CNN, and
AASIST-L trained on ASVspoof 2019 LA (zero-shot by default; ``aasist_l_finetuned`` fine-tunes
it when the budget allows: on a CPU an epoch of a few thousand 4 s clips takes about 40 min).

**Budget.** ``budget_minutes`` is the wall-clock time of the whole recipe. What preparation
took is spent; the fusion's scoring of the validation split is reserved (estimated per member
from a timed batch of windows, at most a quarter of the budget); the rest is shared among the
trained members by weight, each member given its share of what is left when it starts (so
time one member leaves unused goes to the next), and enforced by the member's own ``budget_minutes``
(:mod:`deepfake_audio.training.budget`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepfake_audio import pretrained
from deepfake_audio.checkpoints import Detector, load_checkpoint
from deepfake_audio.data.listing import MANIFEST_FILE
from deepfake_audio.data.pipeline import PreparedData, prepare
from deepfake_audio.data.records import (
    TEST,
    TRAIN,
    VALIDATION,
    ClipRecord,
    manifest_fingerprint,
    write_manifest,
)
from deepfake_audio.fileio import write_text_atomic
from deepfake_audio.models.registry import build_model
from deepfake_audio.parallel import default_workers
from deepfake_audio.provenance import provenance
from deepfake_audio.reports.fuse import fit_on_table
from deepfake_audio.scoring.calibration import Calibration, CalibrationError, fit_calibration
from deepfake_audio.scoring.engine import resolve_device, score_table, score_windows
from deepfake_audio.scoring.fusion import Fusion, fusion_from_weights, logit_features
from deepfake_audio.scoring.fusion_selection import select_fusion
from deepfake_audio.scoring.options import ScoringOptions
from deepfake_audio.scoring.panel import MEMBERS_DIR, PANEL_FILE, Panel, PanelMember
from deepfake_audio.scoring.table import ScoreTable
from deepfake_audio.training.budget import validation_windows
from deepfake_audio.training.config import (
    PROVENANCE_KEY,
    TrainConfig,
    default_output_dir,
    init_from_values,
)
from deepfake_audio.training.run_folder import write_unreadable
from deepfake_audio.training.train import TrainResult, check_trainable, check_usable_fraction, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemberRecipe:
    """How one member is made: training options of its own, or a built-in model as is."""

    name: str
    about: str
    values: dict[str, Any] = field(default_factory=dict)  # TrainConfig values of the member
    builtin: str | None = None  # a built-in pretrained model used zero-shot (no training)
    weight: float = 1.0  # its share of the training time, against the other trained members
    seed_offset: int = 0  # added to the panel's seed: another start of the same recipe


RECIPES: dict[str, MemberRecipe] = {
    recipe.name: recipe
    for recipe in (
        MemberRecipe("seed_cnn", "the original raw-waveform CNN", {"model": "seed_cnn"}),
        MemberRecipe(
            "seed_cnn_b",
            "the raw-waveform CNN again from another seed: with seed_cnn, a deep ensemble",
            {"model": "seed_cnn"},
            seed_offset=1,
        ),
        MemberRecipe(
            "seed_cnn_rawboost_codec",
            "the raw-waveform CNN trained on RawBoost and codec-augmented windows",
            {
                "model": "seed_cnn",
                "augment": {"rawboost": {"enabled": True}, "codec": {"enabled": True}},
            },
        ),
        MemberRecipe("lcnn_lfcc", "LFCC front end + light CNN", {"model": "lcnn_lfcc"}),
        MemberRecipe(
            "aasist_l-asvspoof2019",
            "AASIST-L as published (ASVspoof 2019 LA), zero-shot",
            builtin="aasist_l-asvspoof2019",
        ),
        MemberRecipe(
            "aasist_l_finetuned",
            "AASIST-L fine-tuned from the ASVspoof 2019 LA weights",
            {"init_from": "aasist_l-asvspoof2019"},
            weight=2.0,
        ),
    )
}
#: The members of ``--recipe panel`` unless ``--panel-members`` chooses.
DEFAULT_MEMBERS = (
    "seed_cnn", "seed_cnn_b", "seed_cnn_rawboost_codec", "lcnn_lfcc", "aasist_l-asvspoof2019",
)  # fmt: skip
#: The default time of the whole recipe: about an hour for a few thousand clips on 2 cores.
DEFAULT_BUDGET_MINUTES = 60.0
#: Options each member's recipe sets: given for the whole panel they are an error.
PER_MEMBER = ("model", "model_config", "init_from", "freeze_front_end", "augment")
#: The fusion's scoring is reserved this factor of its estimate, plus these seconds (loading
#: the members, hashing them, writing the panel).
FUSION_MARGIN = 2.0
FUSION_SECONDS = 5.0
#: ...but never more than this share of the budget: timed on a loaded machine the estimate
#: can swallow the members' time (measured: 378 s reserved of 8 min, 165 s used), and a
#: fusion that overruns a little costs less than members that never trained.
FUSION_MAX_SHARE = 0.25
#: Seconds a member is given at least, however little is left (it still trains one batch).
MIN_MEMBER_SECONDS = 1.0


@dataclass
class MemberOutcome:
    """What became of one member: its checkpoint, and how its training went."""

    name: str
    checkpoint: Path
    builtin: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class PanelResult:
    run_dir: Path
    panel_file: Path
    panel: Panel
    members: list[MemberOutcome]
    seconds: float  # the whole recipe
    budget_seconds: float | None


def recipes_for(names: Sequence[str]) -> list[MemberRecipe]:
    """The recipes of ``names``, in order; unknown or repeated names are an error."""
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise ValueError(
            f"unknown panel member(s) {', '.join(unknown)}; choose from {', '.join(RECIPES)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"a panel member is named twice in {', '.join(names)}")
    if len(names) < 2:
        raise ValueError("a panel needs at least two members: its strength is their diversity")
    return [RECIPES[n] for n in names]


def member_configs(
    values: dict[str, Any], recipes: Sequence[MemberRecipe], run_dir: Path
) -> dict[str, TrainConfig]:
    """The training config of each trained member: the panel's options and its recipe's, in
    ``run_dir/members/<name>``. Checked before any data work (a bad option fails at once)."""
    given = sorted(set(values) & set(PER_MEMBER))
    if given:
        raise ValueError(
            f"{', '.join(given)}: a panel's members set these themselves; choose members with "
            f"--panel-members ({', '.join(RECIPES)})"
        )
    configs = {}
    base = TrainConfig.from_dict(values, source="panel options")
    for recipe in recipes:
        if recipe.builtin is not None:
            continue
        merged = {**values, **recipe.values, "output_dir": str(run_dir / MEMBERS_DIR / recipe.name)}
        if recipe.seed_offset:
            merged["seed"] = base.seed + recipe.seed_offset
        if merged.get("init_from"):
            merged = init_from_values(merged)
        config = TrainConfig.from_dict(merged, source=f"panel member {recipe.name}")
        if config.sample_rate != base.sample_rate:
            raise ValueError(
                f"panel member {recipe.name} trains at {config.sample_rate} Hz, the panel's data "
                f"are prepared at {base.sample_rate} Hz: give --sample-rate"
            )
        configs[recipe.name] = config
    return configs


def _device(accelerator: str) -> str:
    return {"cpu": "cpu", "gpu": "cuda", "cuda": "cuda"}.get(accelerator, "auto")


def window_seconds_cost(model: torch.nn.Module, window_samples: int, windows: int = 4) -> float:
    """Seconds one window takes to score with ``model`` on this CPU (a warm-up, then a timed
    batch of ``windows``)."""
    batch = np.zeros((windows, window_samples), dtype=np.float32)
    score_windows(model, batch[:1])
    started = time.perf_counter()
    score_windows(model, batch)
    return (time.perf_counter() - started) / windows


def fusion_estimate(
    recipes: Sequence[MemberRecipe],
    configs: dict[str, TrainConfig],
    records: Sequence[ClipRecord],
    hop_seconds: float | None,
) -> float:
    """Seconds the fusion's scoring of ``records`` (the validation split) will take: every
    member's windows at the cost of a timed batch of its architecture, with margins."""
    total = 0.0
    for recipe in recipes:
        if recipe.builtin is not None:
            detector = load_checkpoint(pretrained.PRETRAINED[recipe.builtin].path)
            model, preprocess = detector.model, detector.preprocess
        else:
            config = configs[recipe.name]
            model, preprocess = build_model(config.model, config.model_values()), config.preprocess
        cost = window_seconds_cost(model, preprocess.window_samples)
        total += validation_windows(records, preprocess, hop_seconds) * cost
    return FUSION_MARGIN * total + FUSION_SECONDS


def fit_panel(
    members: Sequence[tuple[str, Path, str | None]],
    records: Sequence[ClipRecord],
    options: ScoringOptions,
    *,
    fitted: dict[str, Any] | None = None,
) -> tuple[Panel, dict[str, np.ndarray]]:
    """Score the **validation** records among ``records`` with each member (its name, its
    checkpoint, and the built-in model's name if it is one) and fit the fusion and the
    calibration of the fused score on them.

    Records of other splits are left out here, whatever their labels: the test split never
    touches the panel. Returns the panel (members by absolute path; :meth:`Panel.save`
    makes them relative) and the validation scores (per member and fused, by name).
    """
    validation = [r for r in records if r.split == VALIDATION]
    if not validation:
        raise ValueError("the panel's fusion is fitted on the validation split, which is empty")
    device = resolve_device(options.device)
    detectors: list[Detector] = []
    for name, path, _ in members:
        detector = load_checkpoint(path, device=device)
        detector.label = name
        detectors.append(detector)
    table = score_table(detectors, validation, options, description="fitting the panel")
    if table.unreadable:
        log.warning("%d validation file(s) could not be scored", len(table.unreadable))
    described = {
        **(fitted or {}),
        "splits": [VALIDATION],
        "manifest_fingerprint": manifest_fingerprint(records),
    }
    fusion = _fuse(table, described)
    fused = fusion.predict(np.column_stack([table.raw[n] for n in table.lineup.names]))
    labels = table.labels()
    try:
        calibration = fit_calibration(labels, fused, data="the panel's validation split")
        calibration = Calibration(
            calibration.scale,
            calibration.offset,
            {
                **calibration.fitted,
                "aggregate": options.aggregation,
                "hop_seconds": options.hop_seconds,
            },
        )
    except CalibrationError as exc:  # fused scores that cannot be calibrated: say so
        log.warning("the panel's fused score is left uncalibrated: %s", exc)
        calibration = Calibration()
    panel_members = [
        PanelMember(name, fused.sha1, None if builtin else str(Path(path).absolute()), builtin)
        for (name, path, builtin), fused in zip(members, fusion.members, strict=True)
    ]
    scores = {name: table.raw[name] for name in table.lineup.names} | {"panel": fused}
    return Panel(panel_members, fusion, calibration), scores


def _fuse(table: ScoreTable, fitted: dict[str, Any]) -> Fusion:
    """The panel's fusion: the candidate that does best on validation generators it was not
    fitted on (:mod:`deepfake_audio.scoring.fusion_selection`); the plain logistic fusion
    when validation names fewer than two generators."""
    names = table.lineup.names
    scores = np.column_stack([table.raw[n] for n in names])
    labels = table.labels()
    selection = select_fusion(
        labels, logit_features(scores), [r.generator for r in table.records], names
    )
    if selection is None:
        log.info("validation names fewer than two generators: plain logistic fusion")
        return fit_on_table(table, fitted=fitted)
    log.info(
        "panel fusion: %s (mean EER %.1f %% on held-out validation generators; plain "
        "logistic C=1 %.1f %%)",
        selection.chosen,
        100 * selection.mean_eer(selection.chosen),
        100 * selection.mean_eer("logistic C=1"),
    )
    return fusion_from_weights(
        labels,
        scores,
        names=names,
        paths=[table.lineup.sources[n] for n in names],
        coefficients=selection.weights.coefficients,
        intercept=selection.weights.intercept,
        fitted={
            **fitted,
            "selection": selection.to_dict(),
            "aggregate": table.options.aggregation,
            "hop_seconds": table.options.hop_seconds,
            "unreadable": len(table.unreadable),
        },
    )


def _describe_member(recipe: MemberRecipe, result: TrainResult | None, share: float | None) -> dict:
    if result is None:
        spec = pretrained.PRETRAINED[str(recipe.builtin)]
        return {
            "about": recipe.about,
            "model": spec.architecture,
            "zero_shot": True,
            "trained_on": spec.training_data,
        }
    best = result.history[result.best_epoch - 1] if result.best_epoch else {}
    config = json.loads((result.run_dir / "config.json").read_text(encoding="utf-8"))
    augment = config.get("augment") or {}
    augmented = sorted(k for k, v in augment.items() if isinstance(v, dict) and v.get("enabled"))
    return {
        "about": recipe.about,
        "model": config["model"],
        "run": f"{MEMBERS_DIR}/{recipe.name}",
        "augment": augmented,
        "init_from": config.get("init_from"),
        "window_seconds": config["window_seconds"],
        "sample_rate": config["sample_rate"],
        "epochs_trained": len(result.history),
        "best_epoch": result.best_epoch,
        "validation_eer": best.get("val_eer"),
        "training_seconds": round(sum(row.get("seconds", 0.0) for row in result.history), 1),
        "budget_minutes": None if share is None else round(share / 60, 3),
        "stopped_by_budget": result.budget_stop,
    }


def _write_data(run_dir: Path, prepared: PreparedData, command_line: str) -> None:
    """The shared data of every member: the manifest (``evaluate --run RUN`` reads it), the
    preparation report and the unreadable files."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(prepared.records, run_dir / MANIFEST_FILE)
    report = prepared.report | {PROVENANCE_KEY: provenance(command_line)}
    text = json.dumps(report, indent=2, default=str) + "\n"
    write_text_atomic(run_dir / "data_report.json", text)
    write_unreadable([[p, r] for p, r in prepared.unreadable], run_dir / "unreadable.csv")


def train_panel(
    values: dict[str, Any],
    *,
    members: Sequence[str] = DEFAULT_MEMBERS,
    budget_minutes: float | None = DEFAULT_BUDGET_MINUTES,
    command_line: str = "",
) -> PanelResult:
    """Run the panel recipe (see the module docstring) with the training options ``values``
    (as ``train`` takes them, less those each member sets) and write ``RUN/panel.json``.

    ``budget_minutes`` None trains every member its full ``epochs``.
    """
    started = time.monotonic()
    recipes = recipes_for(list(members))
    values = dict(values)
    values.pop("budget_minutes", None)  # the panel's, shared out below
    values.setdefault("devices", 1)  # one process: "auto" would start DDP on several GPUs
    if str(values["devices"]) != "1" or values.get("num_nodes", 1) != 1:
        raise ValueError(
            "a panel trains its members one after the other in this one process: leave "
            "--devices and --num-nodes out (one GPU, or the CPU, is used)"
        )
    run_dir = Path(values.get("output_dir") or default_output_dir())
    values["output_dir"] = str(run_dir)
    base = TrainConfig.from_dict(values, source="panel options")
    configs = member_configs(values, recipes, run_dir)  # every option checked before the data
    prepared = prepare(
        base.data_root, base.data_options(), sample_rate=base.sample_rate, progress=base.progress
    )
    check_usable_fraction(prepared.discovered, prepared.unreadable, base.max_bad_fraction)
    check_trainable(
        prepared.split(TRAIN),
        prepared.split(VALIDATION),
        prepared.report.get("balance", {}).get("before"),
        prepared.report.get("excluded_generators"),
    )
    _write_data(run_dir, prepared, command_line)
    validation = prepared.split(VALIDATION)
    budget = None if budget_minutes is None else 60.0 * budget_minutes
    reserve = 0.0
    if budget is not None:
        estimate = fusion_estimate(recipes, configs, validation, base.hop_seconds)
        reserve = min(estimate, FUSION_MAX_SHARE * budget)
    log.info(
        "panel %s: %s; data prepared in %.0f s%s",
        run_dir,
        ", ".join(r.name for r in recipes),
        time.monotonic() - started,
        "" if budget is None else f"; budget {budget / 60:g} min, {reserve:.0f} s kept for fusion",
    )

    outcomes: list[MemberOutcome] = []
    trained = [r for r in recipes if r.builtin is None]
    for index, recipe in enumerate(recipes):
        if recipe.builtin is not None:
            path = pretrained.PRETRAINED[recipe.builtin].path
            facts = _describe_member(recipe, None, None)
            outcomes.append(MemberOutcome(recipe.name, path, recipe.builtin, facts))
            continue
        config, share = configs[recipe.name], None
        if budget is not None:
            left = budget - (time.monotonic() - started) - reserve
            later = [r for r in trained if r is recipe or recipes.index(r) > index]
            share = max(left * recipe.weight / sum(r.weight for r in later), MIN_MEMBER_SECONDS)
            config.budget_minutes = share / 60
        log.info(
            "panel member %s (%s)%s",
            recipe.name,
            recipe.about,
            "" if share is None else f": {share / 60:.1f} min",
        )
        result = train(config, command_line=command_line, prepared=prepared)
        if result.final_model is None:  # another rank of a distributed run: rank 0 writes
            raise RuntimeError("a panel is written by the first process only")
        facts = _describe_member(recipe, result, share)
        outcomes.append(MemberOutcome(recipe.name, result.final_model, None, facts))

    fusion_started = time.monotonic()
    options = ScoringOptions(
        hop_seconds=base.hop_seconds,
        aggregation=base.aggregate,
        workers=base.workers or default_workers(),
        device=_device(base.accelerator),
        progress=base.progress,
    )
    fitted = {"data": str(base.data_root), "run": str(run_dir)}
    panel, _ = fit_panel(
        [(o.name, o.checkpoint, o.builtin) for o in outcomes],
        prepared.records,
        options,
        fitted=fitted,
    )
    for member, outcome in zip(panel.members, outcomes, strict=True):
        member.facts = outcome.facts
    elapsed = time.monotonic() - started
    panel.info = {
        "recipe": {"members": [r.name for r in recipes], "weights": [r.weight for r in recipes]},
        "data": {
            "root": str(base.data_root),
            "manifest": MANIFEST_FILE,
            "manifest_fingerprint": manifest_fingerprint(prepared.records),
            "clips": {s: len(prepared.split(s)) for s in (TRAIN, VALIDATION, TEST)},
        },
        "budget": {
            "budget_minutes": budget_minutes,
            "spent_minutes": round((elapsed + 1.0) / 60, 3),  # the writing that follows
            "fusion_reserved_seconds": round(reserve, 1),
            "fusion_seconds": round(time.monotonic() - fusion_started, 1),
        },
        "provenance": provenance(command_line),
    }
    panel_file = run_dir / PANEL_FILE
    panel.save(panel_file)
    seconds = time.monotonic() - started
    log.info("panel written: %s (%.0f s in all)", panel_file, seconds)
    return PanelResult(run_dir, panel_file, panel, outcomes, seconds, budget)


def format_summary(result: PanelResult) -> str:
    """What the command prints: every member, its weight and EER, and the panel's own."""

    def pct(value: float | None) -> str:
        return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}%"

    by_name = {m.name: m for m in result.panel.fusion.members}
    lines = [f"panel of {len(result.members)} members (validation EER, fusion weight):"]
    for outcome in result.members:
        facts = outcome.facts
        how = (
            "zero-shot"
            if outcome.builtin
            else f"{facts.get('epochs_trained')} epoch(s), {facts.get('training_seconds')} s"
            + (", stopped by the budget" if facts.get("stopped_by_budget") else "")
        )
        member = by_name[outcome.name]
        lines.append(
            f"  {outcome.name:<26} EER {pct(member.validation_eer):>7}  weight "
            f"{member.coefficient:+.3f}  ({how})"
        )
    panel = result.panel
    budget = "" if result.budget_seconds is None else f" of {result.budget_seconds / 60:g}"
    lines += [
        f"panel: validation EER {pct(panel.validation_eer)}, threshold {panel.threshold:.4f}, "
        f"{panel.calibration.describe()}",
        f"time: {result.seconds / 60:.1f}{budget} min",
        f"run folder: {result.run_dir}",
        f"panel model: {result.panel_file} (give it, or the run folder, as --model)",
    ]
    return "\n".join(lines)


__all__ = [
    "DEFAULT_BUDGET_MINUTES",
    "DEFAULT_MEMBERS",
    "RECIPES",
    "PanelResult",
    "fit_panel",
    "format_summary",
    "train_panel",
]
