"""The run folder: checkpoint names, history, the chosen final model, and the callback writing them.

:class:`RunRecorder` writes, on rank zero, ``config.json``, ``train.log``, ``data_report.json``,
``manifest.jsonl`` and ``unreadable.csv`` at the start; after every epoch the epoch's
checkpoint, ``history.csv``, the plots and the resume state. :func:`write_final_model` copies
the epoch chosen by :data:`SELECTION_RULE` to :data:`FINAL_NAME`.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import lightning as L

from deepfake_audio import allocator
from deepfake_audio.checkpoints import (
    FINAL_NAME,
    copy_with_metadata,
    read_metadata,
    save_checkpoint,
)
from deepfake_audio.data.listing import MANIFEST_FILE
from deepfake_audio.data.pipeline import PreparedData
from deepfake_audio.data.records import LABEL_NAMES, TRAIN, VALIDATION, ClipRecord, write_manifest
from deepfake_audio.fileio import write_text_atomic
from deepfake_audio.plots.history import plot_history
from deepfake_audio.provenance import provenance
from deepfake_audio.training.config import AUGMENT_ORDER, PROVENANCE_KEY, TrainConfig
from deepfake_audio.training.module import DetectorModule
from deepfake_audio.training.resume import RESUME_DIR, RESUME_FILE, save_resume_state

log = logging.getLogger(__name__)

HISTORY_COLUMNS = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "val_eer",
    "val_roc_auc",
    "lr",
    "seconds",
)
SELECTION_RULE = "lowest validation EER, ties broken by higher validation accuracy"


def checkpoint_name(epoch: int, val_accuracy: float) -> str:
    """``model_epoch_01_valacc_0.7240.safetensors``, the original naming."""
    return f"model_epoch_{epoch:02d}_valacc_{val_accuracy:.4f}.safetensors"


def label_counts(records: Sequence[ClipRecord]) -> dict[str, int]:
    counts = dict.fromkeys(LABEL_NAMES.values(), 0)
    for record in records:
        counts[record.label_name] += 1
    return counts


def clean_temporaries(run_dir: Path) -> None:
    """Remove temporary files a killed process may have left (``.NAME.PID.tmp``)."""
    for folder in (run_dir, run_dir / RESUME_DIR):
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


def _format_row(row: dict) -> dict:
    out = {}
    for key in HISTORY_COLUMNS:
        value = row.get(key)
        out[key] = value if isinstance(value, int) else f"{value:.6g}"
    return out


def write_history(rows: Sequence[dict], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_format_row(row) for row in rows)
    write_text_atomic(path, buffer.getvalue())


def write_unreadable(entries: Sequence[Sequence[str]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("path", "reason"))
    writer.writerows(entries)
    write_text_atomic(path, buffer.getvalue())


def best_epoch(history: Sequence[dict]) -> dict:
    """The history row chosen by :data:`SELECTION_RULE` (validation only)."""

    def key(row: dict) -> tuple[float, float, int]:
        eer = row["val_eer"] if not math.isnan(row["val_eer"]) else math.inf
        return eer, -row["val_accuracy"], row["epoch"]

    return min(history, key=key)


def write_final_model(run_dir: Path, row: dict) -> Path:
    """Copy the chosen epoch's checkpoint to ``fake_or_real_classifier.safetensors``.

    The weights are the epoch file's; its metadata gains which epoch was chosen and why.
    """
    source = run_dir / row["checkpoint"]
    extra = read_metadata(source).get("extra", {})
    extra.update(selected_epoch=row["epoch"], selected_from=row["checkpoint"])
    extra["selection"] = SELECTION_RULE
    return copy_with_metadata(source, run_dir / FINAL_NAME, {"extra": extra})


class RunRecorder(L.Callback):
    """Writes the run folder on rank zero: reports at the start, files after every epoch."""

    def __init__(
        self,
        run_dir: Path,
        config: TrainConfig,
        prepared: PreparedData,
        fingerprint: str,
        *,
        start_epoch: int = 0,
        history: list[dict] | None = None,
        skipped: list[list[str]] | None = None,
        command_line: str = "",
        notes: Sequence[str] = (),
    ) -> None:
        self.run_dir = run_dir
        self.config = config
        self.prepared = prepared
        self.fingerprint = fingerprint
        self.start_epoch = start_epoch
        self.history = list(history or [])
        self.skipped = {path: reason for path, reason in skipped or []}
        self.provenance = provenance(command_line)  # version and command, in the run's JSON
        self.notes = list(notes)  # said in train.log at the start (batch plan, last stop)
        self._handler: logging.Handler | None = None
        self._saved_level = logging.NOTSET
        self._epoch_started = 0.0

    def _attach_log(self) -> None:
        self._handler = logging.FileHandler(self.run_dir / "train.log", encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        for name in ("deepfake_audio", "lightning.pytorch"):
            logging.getLogger(name).addHandler(self._handler)
        # train.log records the run at INFO whatever the caller's logging: lowered for the
        # run only, and restored by detach_log.
        ours = logging.getLogger("deepfake_audio")
        self._saved_level = ours.level
        if ours.getEffectiveLevel() > logging.INFO:
            ours.setLevel(logging.INFO)

    def detach_log(self) -> None:
        if self._handler is not None:
            for name in ("deepfake_audio", "lightning.pytorch"):
                logging.getLogger(name).removeHandler(self._handler)
            self._handler.close()
            self._handler = None
            logging.getLogger("deepfake_audio").setLevel(self._saved_level)

    def unreadable(self) -> list[list[str]]:
        entries = [[p, r] for p, r in self.prepared.unreadable]
        entries += [[p, f"skipped during training: {r}"] for p, r in sorted(self.skipped.items())]
        return entries

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        clean_temporaries(self.run_dir)
        self._attach_log()
        config = self.config.to_dict() | {"output_dir": str(self.run_dir)}
        config[PROVENANCE_KEY] = self.provenance
        write_text_atomic(self.run_dir / "config.json", json.dumps(config, indent=2) + "\n")
        report = self.prepared.report | {PROVENANCE_KEY: self.provenance}
        report = json.dumps(report, indent=2, default=str) + "\n"
        write_text_atomic(self.run_dir / "data_report.json", report)
        write_manifest(self.prepared.records, self.run_dir / MANIFEST_FILE)
        write_unreadable(self.unreadable(), self.run_dir / "unreadable.csv")
        train, val = self.prepared.split(TRAIN), self.prepared.split(VALIDATION)
        log.info(
            "run %s: model %s, %d train clips %s, %d validation clips %s, %d unreadable, "
            "%d processes, manifest %s",
            self.run_dir,
            self.config.model,
            len(train),
            label_counts(train),
            len(val),
            label_counts(val),
            len(self.prepared.unreadable),
            trainer.world_size,
            self.fingerprint,
        )
        for note in self.notes:
            log.info("%s", note)
        if self.start_epoch:
            log.info("resuming after epoch %d", self.start_epoch)
        augment = self.config.augment_config
        if augment.enabled:
            on = [name for name in AUGMENT_ORDER if getattr(augment, name).enabled]
            log.info("augmenting training windows: %s", ", ".join(on))
        if augment.gain.enabled and self.config.normalization != "none":
            log.warning(
                "gain augmentation has no effect with normalization %r: windows are augmented "
                "before they are normalized, and normalization undoes a gain change",
                self.config.normalization,
            )

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_started = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if allocator.enforce_budget():  # grown past the budget: freed memory is given back
            log.warning("allocator: %s", allocator.decision().reason)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        assert isinstance(pl_module, DetectorModule)
        metrics = pl_module.epoch_metrics
        epoch = self.start_epoch + trainer.current_epoch + 1
        name = checkpoint_name(epoch, metrics["val_accuracy"])
        row = {
            "epoch": epoch,
            **{k: metrics[k] for k in HISTORY_COLUMNS if k in metrics},
            "lr": trainer.optimizers[0].param_groups[0]["lr"],
            "seconds": time.perf_counter() - self._epoch_started,
            "val_eer_threshold": metrics["val_eer_threshold"],
            "checkpoint": name,
        }
        save_checkpoint(
            self.run_dir / name,
            pl_module.model,
            model_name=self.config.model,
            preprocess=self.config.preprocess,
            metrics={k: v for k, v in metrics.items() if k.startswith("val_")},
            threshold=metrics["val_eer_threshold"],
            scoring_rule=self.config.scoring.rule.to_dict(),  # the rule behind that threshold
            calibration=metrics["calibration"],  # fitted on the same validation scores
            extra={
                "epoch": epoch,
                "manifest_fingerprint": self.fingerprint,
                "augment": self.config.augment_config.to_dict(),  # resolved, all defaults
                "train_config": self.config.to_dict() | {"output_dir": str(self.run_dir)},
                "threshold_rule": "validation equal error rate; P(fake) >= threshold is fake",
            },
        )
        self.history.append(row)
        self.skipped.update(pl_module.skipped)
        write_history(self.history, self.run_dir / "history.csv")
        plot_history(self.history, self.run_dir)
        if pl_module.skipped:
            write_unreadable(self.unreadable(), self.run_dir / "unreadable.csv")
        save_resume_state(
            self.run_dir / RESUME_DIR / RESUME_FILE,
            pl_module.model,
            trainer.optimizers[0],
            epoch=epoch,
            history=self.history,
            skipped=[[p, r] for p, r in sorted(self.skipped.items())],
            fingerprint=self.fingerprint,
        )
        log.info(
            "epoch %02d/%d: train loss %.4f acc %.4f | val loss %.4f acc %.4f EER %.4f "
            "AUC %.4f | %.1f s | %s",
            epoch,
            self.config.epochs,
            row["train_loss"],
            row["train_accuracy"],
            row["val_loss"],
            row["val_accuracy"],
            row["val_eer"],
            row["val_roc_auc"],
            row["seconds"],
            name,
        )
