"""Training: checks on the data, the Trainer set-up and :func:`train`, the entry point.

One run is one folder (``RUN``):

* ``config.json`` (the resolved :class:`~deepfake_audio.training.config.TrainConfig`),
  ``train.log``, ``data_report.json`` (discovery, separation and balance report),
  ``manifest.jsonl`` (the records used), ``unreadable.csv`` (files left out, with the reason);
* ``history.csv``, ``accuracy.png``, ``loss.png``, rewritten after every epoch;
* ``model_epoch_NN_valacc_0.XXXX.safetensors`` per epoch, and at the end
  ``fake_or_real_classifier.safetensors``: the epoch with the lowest validation EER (ties: higher
  validation accuracy). The test split is never looked at;
* ``resume/state.safetensors``: weights, optimizer state and torch RNG as tensors, the epoch and
  history as JSON metadata. Nothing is ever unpickled to resume.

Every file is written under a temporary name and renamed, so a kill leaves whole files only.
Under DDP every rank trains, validation scores are gathered from all ranks before metrics are
computed, and only rank zero writes.

The parts live in their own modules: :mod:`deepfake_audio.training.config` (options, config files,
what may change on resume), :mod:`deepfake_audio.training.module` (the LightningModule),
:mod:`deepfake_audio.training.run_folder` (checkpoint names, history, final model and the
:class:`~deepfake_audio.training.run_folder.RunRecorder` callback) and
:mod:`deepfake_audio.training.resume` (the resume state).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch

from deepfake_audio import allocator
from deepfake_audio.augment import build_augmenter
from deepfake_audio.checkpoints import final_model_path, load_checkpoint
from deepfake_audio.data.loading import ClipDataModule
from deepfake_audio.data.pipeline import PreparedData, prepare
from deepfake_audio.data.records import TRAIN, VALIDATION, ClipRecord, manifest_fingerprint
from deepfake_audio.data.shortcuts import shortcut_warnings
from deepfake_audio.fileio import write_text_atomic
from deepfake_audio.models.registry import build_model
from deepfake_audio.training.budget import TimeBudget, validation_windows
from deepfake_audio.training.config import TrainConfig, default_output_dir
from deepfake_audio.training.memory import describe_plan, plan_memory
from deepfake_audio.training.module import DetectorModule
from deepfake_audio.training.resume import (
    RESUME_DIR,
    RESUME_FILE,
    RUNNING_FILE,
    ResumeState,
    load_resume_state,
    running_marker,
    unclean_stop,
)
from deepfake_audio.training.run_folder import (
    FINAL_NAME,
    SELECTION_RULE,
    RunRecorder,
    best_epoch,
    label_counts,
    write_final_model,
)
from deepfake_audio.training.validation import ValidationClips, collate_items

log = logging.getLogger(__name__)


# -- checks before training ------------------------------------------------------------------


def check_trainable(
    train: Sequence[ClipRecord],
    validation: Sequence[ClipRecord],
    before_balance: dict | None = None,
    exclusion: dict | None = None,
) -> None:
    """Raise ValueError, naming the split and its counts, when training cannot be meaningful.

    Training needs both classes; validation needs both too, since checkpoints are chosen by
    the validation EER. ``before_balance`` (the report's ``balance.before``) explains splits
    that balancing emptied: undersampling drops a dataset type that has only one class.
    ``exclusion`` (the report's ``excluded_generators``) explains fakes that
    ``--exclude-generators`` removed.
    """
    for name, records in ((TRAIN, train), (VALIDATION, validation)):
        counts = label_counts(records)
        if all(counts.values()):
            continue
        found = ""
        if before_balance is not None:
            cells = before_balance.get(name, {}).values()
            before = {label: sum(c.get(label, 0) for c in cells) for label in counts}
            if before != counts:
                found = f"; before balancing: fake {before['fake']}, real {before['real']}"
        removed = sum((exclusion or {}).get("removed", {}).get(name, {}).values())
        if removed and not counts["fake"]:
            found += f"; --exclude-generators removed {removed} fake(s) from it"
        what = "is empty" if not records else "has one class only"
        raise ValueError(
            f"the {name} split {what} (fake {counts['fake']}, real {counts['real']}{found}): "
            "training needs both fake and real clips in the train and validation splits"
        )


# -- entry point -----------------------------------------------------------------------------


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict]
    final_model: Path | None  # None on ranks other than zero
    best_epoch: int | None
    unreadable: list[list[str]]
    is_global_zero: bool
    budget_stop: str | None = None  # why the time budget ended training, if it did


def _env_rank() -> int:
    """This process's rank before the Trainer knows it (launchers set one of these)."""
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


#: Warnings expected here that say nothing actionable to the user (hidden during fit only).
KNOWN_WARNINGS = (
    ".*does not have many workers.*",  # --num-workers is the user's choice
    ".*sync_dist=True.*",  # logged values are already gathered from every rank
    ".*all_gather is deprecated.*",  # inside Lightning's all_gather
    ".*treespec, LeafSpec.*",  # inside Lightning, with newer torch
)


class _NoAdverts(logging.Filter):
    """Lightning advertises a cloud logger on every run; a user of this tool has no use for it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


@contextmanager
def _quiet_known_noise() -> Iterator[None]:
    """Hide :data:`KNOWN_WARNINGS` and Lightning's advert while the trainer runs, and only
    then: the caller's warning filters and loggers are left as they were."""
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    adverts = _NoAdverts()
    rank_zero.addFilter(adverts)
    try:
        with warnings.catch_warnings():
            for pattern in KNOWN_WARNINGS:
                warnings.filterwarnings("ignore", pattern)
            yield
    finally:
        rank_zero.removeFilter(adverts)


def check_usable_fraction(
    discovered: Sequence[ClipRecord],
    unreadable: Sequence[tuple[str, str]],
    max_bad_fraction: float,
) -> None:
    """Raise ValueError when more than ``max_bad_fraction`` of a split's files are unusable.

    Training on what is left of a mostly broken split would report metrics of a few
    survivors; the message names the split, the counts and the first reasons. Files not yet
    in a split (carved later) count as one group.
    """
    reasons = dict(unreadable)
    by_split: dict[str | None, list[ClipRecord]] = {}
    for record in discovered:
        if record.split in (TRAIN, VALIDATION, None):
            by_split.setdefault(record.split, []).append(record)
    for split, records in by_split.items():
        paths = sorted({r.path for r in records})
        bad = [p for p in paths if p in reasons]
        if paths and len(bad) / len(paths) > max_bad_fraction:
            name = f"the {split} split" if split else "the data"
            examples = "; ".join(f"{p}: {reasons[p]}" for p in bad[:3])
            raise ValueError(
                f"{len(bad)} of {len(paths)} files of {name} ({100 * len(bad) / len(paths):.1f} %) "
                f"cannot be used, more than --max-bad-fraction {max_bad_fraction:g} allows "
                f"(e.g. {examples}); `deepfake-audio audit` lists them all. Fix or remove them, "
                "or raise --max-bad-fraction"
            )


def _interrupted(run_dir: Path) -> KeyboardInterrupt:
    message = f"training interrupted; continue with --resume {run_dir}"
    log.warning(message)
    return KeyboardInterrupt(message)


def _parse_devices(devices: int | str) -> int | str:
    if isinstance(devices, str) and devices.lstrip("-").isdigit():
        return int(devices)
    return devices


def _prepare_resume(run_dir: Path, fingerprint: str) -> ResumeState | None:
    path = run_dir / RESUME_DIR / RESUME_FILE
    if not path.exists():
        return None  # killed before the first epoch ended: start over in the same folder
    state = load_resume_state(path)
    if state.manifest_fingerprint != fingerprint:
        raise ValueError(
            f"{run_dir}: the data differ from those the run started with (manifest "
            f"{fingerprint} vs {state.manifest_fingerprint}); start a new run instead"
        )
    return state


def _drop_later_checkpoints(run_dir: Path, epoch: int) -> None:
    """Epoch files newer than the resume state (killed before the state was saved)."""
    for path in run_dir.glob("model_epoch_*_valacc_*.safetensors"):
        try:
            number = int(path.name.split("_")[2])
        except (IndexError, ValueError):
            continue
        if number > epoch:
            path.unlink(missing_ok=True)


def pretrained_state(source: str) -> dict[str, torch.Tensor]:
    """The weights of a checkpoint, run folder or built-in model, checked as any load is."""
    return load_checkpoint(final_model_path(source)).model.state_dict()


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    callbacks: Sequence[L.Callback] = (),
    command_line: str = "",
    prepared: PreparedData | None = None,
) -> TrainResult:
    """Prepare the data, train, and write the run folder; returns the run's history.

    With ``resume`` the run in ``config.output_dir`` continues after its last completed epoch.
    ``prepared`` is data already prepared with this config's data options and sample rate
    (a panel prepares once for all its members, so their splits are the same records); by
    default the data are prepared here. ``config.budget_minutes`` bounds the wall-clock time
    of the whole call (:mod:`deepfake_audio.training.budget`). Raises ValueError (before any
    training) for unusable data, and KeyboardInterrupt when interrupted (Ctrl-C or SIGTERM),
    leaving the last completed epoch resumable.
    """
    started = time.monotonic()  # the budget counts from here: preparation and planning too
    run_dir = Path(config.output_dir) if config.output_dir else default_output_dir()
    rank_zero = _env_rank() == 0
    L.seed_everything(config.seed, workers=True, verbose=False)
    model = build_model(config.model, config.model_values())  # a bad config fails before data
    plan = plan_memory(config)  # a step that cannot fit stops here, before any data work
    config.batch_size, config.accumulate = plan.batch_size, plan.accumulate  # into config.json
    augment = config.augment_config
    if prepared is None:
        prepared = prepare(
            config.data_root,
            config.data_options(),
            sample_rate=config.sample_rate,
            progress=config.progress and rank_zero,
        )
    elif prepared.cache is None or prepared.cache.sample_rate != config.sample_rate:
        rate = prepared.cache.sample_rate if prepared.cache else None
        raise ValueError(
            f"the prepared data hold audio at {rate} Hz, the run trains at {config.sample_rate} Hz"
        )
    train_records, val_records = prepared.split(TRAIN), prepared.split(VALIDATION)
    if rank_zero:
        shortcuts = prepared.report.get("shortcuts", {})
        for line in shortcut_warnings(shortcuts, trim_silence=config.trim_silence):
            log.warning("%s", line)
    check_usable_fraction(prepared.discovered, prepared.unreadable, config.max_bad_fraction)
    check_trainable(
        train_records,
        val_records,
        prepared.report.get("balance", {}).get("before"),
        prepared.report.get("excluded_generators"),
    )
    fingerprint = manifest_fingerprint(prepared.records)

    state = _prepare_resume(run_dir, fingerprint) if resume else None
    notes = [describe_plan(plan), f"allocator: {allocator.decision().reason}"]
    unclean = unclean_stop(run_dir) if resume else None
    if unclean:
        log.warning(unclean)
        notes.append(unclean)
    start_epoch = state.epoch if state else 0
    if start_epoch >= config.epochs:
        raise ValueError(
            f"{run_dir} already completed {start_epoch} of {config.epochs} epochs; "
            "pass a larger --epochs to train longer"
        )
    if resume and rank_zero:
        _drop_later_checkpoints(run_dir, start_epoch)

    if state:
        model.load_state_dict(state.model_state)
    elif config.init_from:
        model.load_state_dict(pretrained_state(config.init_from), strict=True)
        notes.append(f"started from {config.init_from} ({final_model_path(config.init_from)})")
    module = DetectorModule(
        model,
        lr=config.lr,
        freeze_front_end=config.freeze_front_end,
        start_epoch=start_epoch,
        scoring=config.scoring,
        weight_decay=config.weight_decay,
        optimizer_state=state.optimizer_state if state else None,
        torch_rng=state.torch_rng if state else None,
    )
    audio_source = prepared.cache.audio  # type: ignore[union-attr]
    data = ClipDataModule(
        train_records,
        ValidationClips(val_records, audio_source, config.preprocess, config.hop_seconds),
        audio_source,
        config.preprocess,
        val_collate=collate_items,
        batch_size=config.batch_size,
        num_workers=config.num_workers,
        seed=config.seed,
        weighted=config.balance == "weighted",
        epoch_offset=start_epoch,
        augment=build_augmenter(augment) if augment.enabled else None,
    )
    budget = None
    if config.budget_minutes is not None:
        budget = TimeBudget(
            started + 60 * config.budget_minutes,
            validation_windows=validation_windows(
                val_records, config.preprocess, config.hop_seconds
            ),
            batch_size=plan.batch_size,
        )
        notes.append(f"time budget: {config.budget_minutes:g} min for the whole run")
    recorder = RunRecorder(
        run_dir,
        config,
        prepared,
        fingerprint,
        start_epoch=start_epoch,
        history=state.history if state else None,
        skipped=state.skipped if state else None,
        command_line=command_line,
        notes=notes,
    )
    with _quiet_known_noise():  # Lightning's advert comes with the Trainer
        trainer = L.Trainer(
            max_epochs=config.epochs - start_epoch,
            accelerator=config.accelerator,
            devices=_parse_devices(config.devices),
            num_nodes=config.num_nodes,
            strategy=config.strategy,
            precision=config.precision,  # type: ignore[arg-type]
            logger=False,
            enable_checkpointing=False,  # the RunRecorder writes safetensors checkpoints
            enable_progress_bar=config.progress,
            enable_model_summary=config.progress,
            num_sanity_val_steps=0,
            accumulate_grad_batches=config.accumulate,
            use_distributed_sampler=False,  # ClipDataModule shards by rank itself
            default_root_dir=run_dir,
            callbacks=[recorder, *([budget] if budget else []), *callbacks],
        )
    final = best = None
    marker = run_dir / RESUME_DIR / RUNNING_FILE
    try:
        if trainer.is_global_zero:  # removed on any clean stop: left behind, it means a kill
            write_text_atomic(marker, running_marker())
        try:
            with _quiet_known_noise():
                trainer.fit(module, datamodule=data)
        except SystemExit as exc:  # Lightning turns Ctrl-C and SIGTERM into SystemExit
            trainer.should_stop = True
            raise _interrupted(run_dir) from exc
        if trainer.interrupted:
            raise _interrupted(run_dir)
        if trainer.is_global_zero:
            chosen = best_epoch(recorder.history)
            final, best = write_final_model(run_dir, chosen), chosen["epoch"]
            log.info("final model %s = epoch %02d (%s)", FINAL_NAME, best, SELECTION_RULE)
    finally:
        marker.unlink(missing_ok=True)  # a clean stop: finished, interrupted or an error
        recorder.detach_log()
    return TrainResult(
        run_dir=run_dir,
        history=recorder.history,
        final_model=final,
        best_epoch=best,
        unreadable=recorder.unreadable(),
        is_global_zero=trainer.is_global_zero,
        budget_stop=budget.stopped if budget else None,
    )


__all__ = ["TrainResult", "check_trainable", "train"]
