"""Training: typed config, the LightningModule, the run folder, checkpoints and resume.

One run is one folder (``RUN``):

* ``config.json`` (the resolved :class:`TrainConfig`), ``train.log``, ``data_report.json``
  (discovery, separation and balance report), ``manifest.jsonl`` (the records used),
  ``unreadable.csv`` (files left out, with the reason);
* ``history.csv``, ``accuracy.png``, ``loss.png``, rewritten after every epoch;
* ``model_epoch_NN_valacc_0.XXXX.safetensors`` per epoch, and at the end
  ``fake_or_real_classifier.safetensors``: the epoch with the lowest validation EER (ties: higher
  validation accuracy). The test split is never looked at;
* ``resume/state.safetensors``: weights, optimizer state and torch RNG as tensors, the epoch and
  history as JSON metadata. Nothing is ever unpickled to resume.

Every file is written under a temporary name and renamed, so a kill leaves whole files only.
Under DDP every rank trains, validation scores are gathered from all ranks before metrics are
computed, and only rank zero writes.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
import types
import typing
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from deepfake_audio import __version__
from deepfake_audio.augment import AugmentConfig, build_augmenter
from deepfake_audio.checkpoints import save_checkpoint
from deepfake_audio.data.loading import ClipDataModule
from deepfake_audio.data.pipeline import DataOptions, PreparedData, prepare
from deepfake_audio.data.records import (
    LABEL_NAMES,
    TRAIN,
    VALIDATION,
    ClipRecord,
    manifest_fingerprint,
    write_manifest,
)
from deepfake_audio.fileio import atomic_output, write_text_atomic
from deepfake_audio.metrics import accuracy, equal_error_rate, predict, roc_auc
from deepfake_audio.models import build_model, make_config
from deepfake_audio.plots.history import plot_history
from deepfake_audio.preprocess import PreprocessConfig
from deepfake_audio.scoring import fake_probability

log = logging.getLogger(__name__)

FINAL_NAME = "fake_or_real_classifier.safetensors"
RESUME_DIR = "resume"
RESUME_FILE = "state.safetensors"
RESUME_FORMAT = "deepfake-audio-resume/1"
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

#: Options that may differ when a run is resumed (how it runs, not what it learns).
RESUME_OVERRIDABLE = frozenset(
    {"epochs", "num_workers", "accelerator", "devices", "num_nodes", "strategy", "progress"}
)

#: Model config keys that training sets itself (from the window and ``sample_rate``), so that
#: the model, the stored preprocessing and scoring can never disagree.
SET_BY_TRAINING = ("input_samples", "sample_rate")

#: The rate at which the models' default ``input_samples`` are given (when the model's config
#: has no ``sample_rate`` of its own).
MODEL_DEFAULT_RATE = 16000

#: The augmentations in the order :class:`~deepfake_audio.augment.Augmenter` applies them.
AUGMENT_ORDER = ("rawboost", "noise", "codec", "gain")


def checkpoint_name(epoch: int, val_accuracy: float) -> str:
    """``model_epoch_01_valacc_0.7240.safetensors``, the original naming."""
    return f"model_epoch_{epoch:02d}_valacc_{val_accuracy:.4f}.safetensors"


# -- configuration ---------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved as ``config.json`` in the run folder."""

    data_root: str = "./dataset_root"
    output_dir: str | None = None  # default: ./runs/YYYYmmdd_HHMMSS
    model: str = "seed_cnn"
    model_config: dict[str, Any] = field(default_factory=dict)  # overrides of model defaults
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    # preprocessing (stored in every checkpoint)
    sample_rate: int = 16000
    window_seconds: float | None = None  # default: the model's own window (see model_window)
    normalization: Literal["peak", "rms", "none"] = "peak"
    # on-the-fly augmentation of training windows: AugmentConfig keys, all off by default
    augment: dict[str, Any] = field(default_factory=dict)
    # data selection (see DataOptions)
    layout: str = "auto"
    dataset_types: list[str] | None = None
    splits: list[str] | None = None
    strict: bool = False
    balance: Literal["undersample", "weighted", "none"] = "undersample"
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    cache_dir: str | None = None
    workers: int | None = None  # decoding processes (default: all cores)
    # hardware
    num_workers: int | None = None  # DataLoader workers (default: all cores)
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "num_nodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        make_config(self.model, self.model_config)  # unknown model or option -> ValueError
        fixed = sorted(set(SET_BY_TRAINING) & set(self.model_config))
        if fixed:
            raise ValueError(
                f"model_config may not set {fixed}: training sets them from window_seconds "
                "and sample_rate (use those options instead)"
            )
        if self.window_seconds is None:  # resolved here so config.json holds the real window
            self.window_seconds = self.model_window()
        self.preprocess  # noqa: B018 (validates the preprocessing values)
        self.augment_config  # noqa: B018 (unknown keys, wrong types -> ValueError)

    def model_window(self) -> float:
        """The model's own window in seconds: its default ``input_samples`` at its design rate.

        Why: each architecture was designed (and in its paper, tuned) for one input length,
        e.g. 64,600 samples (4.0375 s) for AASIST, RawNet2 and LCNN-LFCC, 32,000 (2 s) for
        seed_cnn. Keeping the duration, not the sample count, means ``--sample-rate 8000``
        still shows the model 4.0375 s of speech.
        """
        config = make_config(self.model)
        samples = getattr(config, "input_samples", None)
        if samples is None:
            return PreprocessConfig.window_seconds
        return samples / getattr(config, "sample_rate", MODEL_DEFAULT_RATE)

    @property
    def preprocess(self) -> PreprocessConfig:
        window = self.model_window() if self.window_seconds is None else self.window_seconds
        return PreprocessConfig(self.sample_rate, window, self.normalization)

    @property
    def augment_config(self) -> AugmentConfig:
        """The resolved augmentation (its rate is always the training ``sample_rate``)."""
        return augment_config(self.augment, self.sample_rate)

    def data_options(self) -> DataOptions:
        return DataOptions(
            layout=self.layout,
            dataset_types=self.dataset_types,
            splits=self.splits,
            strict=self.strict,
            balance=self.balance,
            seed=self.seed,
            validation_fraction=self.validation_fraction,
            test_fraction=self.test_fraction,
            cache_dir=self.cache_dir,
            workers=self.workers,
        )

    def model_values(self) -> dict[str, Any]:
        """Model config values, with input length and rate set from the preprocessing."""
        values = dict(self.model_config)
        known = {f.name for f in fields(make_config(self.model))}
        if "input_samples" in known:
            values["input_samples"] = self.preprocess.window_samples
        if "sample_rate" in known:  # sinc filters and LFCC frames are laid out in Hz and ms
            values["sample_rate"] = self.sample_rate
        return values

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a dict (a config file, CLI flags); unknown keys and wrong types are errors."""
        hints = typing.get_type_hints(cls)
        unknown = sorted(set(values) - set(hints))
        if unknown:
            raise ValueError(f"{source}: unknown option(s) {unknown}; known: {sorted(hints)}")
        for key, value in values.items():
            if not _matches(value, hints[key]):
                raise ValueError(
                    f"{source}: option {key!r} must be {_type_name(hints[key])}, got {value!r}"
                )
        converted = {k: _to_float(v, hints[k]) for k, v in values.items()}
        return cls(**converted)


def augment_config(values: dict[str, Any], sample_rate: int) -> AugmentConfig:
    """``AugmentConfig`` from the ``augment`` option; unknown keys and wrong types are errors.

    ``sample_rate`` is not an option here: it is always the training rate, so the codec and
    RawBoost filters work at the rate the windows really have.
    """
    if "sample_rate" in values:
        raise ValueError("augment.sample_rate is not an option: it follows sample_rate")
    parts = {f.name for f in fields(AugmentConfig)} - {"sample_rate"}
    for part, options in values.items():
        if part not in parts:
            continue  # AugmentConfig.from_dict names it in its error
        if not isinstance(options, dict):
            raise ValueError(f"augment.{part} must be a table/object, got {options!r}")
        hints = typing.get_type_hints(type(getattr(AugmentConfig(), part)))
        for key, value in options.items():
            if key in hints and not _matches(value, hints[key]):
                raise ValueError(
                    f"augment.{part}.{key} must be {_type_name(hints[key])}, got {value!r}"
                )
    return AugmentConfig.from_dict({**values, "sample_rate": sample_rate})


def merge_nested(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` merged in, key by key at every level of nested dicts.

    Why: ``--augment noise`` on the command line must switch noise on without wiping the
    noise or RawBoost settings a ``--config`` file gives.
    """
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_nested(merged[key], value)
        else:
            merged[key] = value
    return merged


def _matches(value: Any, annotation: Any) -> bool:
    """Whether ``value`` (parsed from JSON/TOML) fits a config field's annotation."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if origin is Literal:
        return value in args
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if origin is tuple:  # tuple[X, ...] in a config dataclass: a JSON/TOML list
        return isinstance(value, list | tuple) and all(_matches(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _to_float(value: Any, annotation: Any) -> Any:
    """An int given for a float option becomes a float (``window_seconds = 4`` in TOML)."""
    floats = annotation is float or float in typing.get_args(annotation)
    return (
        float(value) if floats and isinstance(value, int) and not isinstance(value, bool) else value
    )


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Values from a JSON or TOML config file (TOML when the name ends in ``.toml``)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            values = tomllib.loads(text)
        else:
            values = json.loads(text)
    except ValueError as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise ValueError(f"{path}: cannot parse config file ({exc})") from exc
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a config file must hold a table/object of options")
    return values


def default_output_dir() -> Path:
    return Path("runs") / datetime.now().strftime("%Y%m%d_%H%M%S")


# -- checks before training ------------------------------------------------------------------


def _label_counts(records: Sequence[ClipRecord]) -> dict[str, int]:
    counts = dict.fromkeys(LABEL_NAMES.values(), 0)
    for record in records:
        counts[record.label_name] += 1
    return counts


def check_trainable(
    train: Sequence[ClipRecord],
    validation: Sequence[ClipRecord],
    before_balance: dict | None = None,
) -> None:
    """Raise ValueError, naming the split and its counts, when training cannot be meaningful.

    Training needs both classes; validation needs both too, since checkpoints are chosen by
    the validation EER. ``before_balance`` (the report's ``balance.before``) explains splits
    that balancing emptied: undersampling drops a dataset type that has only one class.
    """
    for name, records in ((TRAIN, train), (VALIDATION, validation)):
        counts = _label_counts(records)
        if all(counts.values()):
            continue
        found = ""
        if before_balance is not None:
            cells = before_balance.get(name, {}).values()
            before = {label: sum(c.get(label, 0) for c in cells) for label in counts}
            if before != counts:
                found = f"; before balancing: fake {before['fake']}, real {before['real']}"
        what = "is empty" if not records else "has one class only"
        raise ValueError(
            f"the {name} split {what} (fake {counts['fake']}, real {counts['real']}{found}): "
            "training needs both fake and real clips in the train and validation splits"
        )


# -- resume state ----------------------------------------------------------------------------


@dataclass
class ResumeState:
    """What continuing a run needs, read from ``RUN/resume/state.safetensors``."""

    epoch: int  # last completed epoch (1-based)
    history: list[dict]
    skipped: list[list[str]]  # [path, reason] of clips skipped during training
    manifest_fingerprint: str
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]
    torch_rng: torch.Tensor | None


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors and a JSON-ready remainder."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, param_state in state["state"].items():
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{param_id}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], rest: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        _, param_id, key = name.split(".", 2)
        state.setdefault(int(param_id), {})[key] = tensor
    for param_id, values in rest["scalars"].items():
        state.setdefault(int(param_id), {}).update(values)
    groups = [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in group.items()}
        for group in rest["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def save_resume_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    epoch: int,
    history: list[dict],
    skipped: list[list[str]],
    fingerprint: str,
) -> None:
    """Write everything resuming needs to one safetensors file, atomically."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    optimizer_tensors, optimizer_rest = _flatten_optimizer(optimizer.state_dict())
    tensors.update(optimizer_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "epoch": epoch,
        "history": history,
        "skipped": skipped,
        "manifest_fingerprint": fingerprint,
        "optimizer": optimizer_rest,
        "package_version": __version__,
    }
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": RESUME_FORMAT, "state": json.dumps(meta)})


def load_resume_state(path: Path) -> ResumeState:
    """Read a state written by :func:`save_resume_state` (tensors and JSON only)."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        if metadata.get("format") != RESUME_FORMAT:
            raise ValueError(f"{path}: not a deepfake-audio resume state")
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    meta = json.loads(metadata["state"])
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    optimizer_tensors = {k: v for k, v in tensors.items() if k.startswith("optimizer.")}
    return ResumeState(
        epoch=int(meta["epoch"]),
        history=meta["history"],
        skipped=meta.get("skipped", []),
        manifest_fingerprint=meta["manifest_fingerprint"],
        model_state=model_state,
        optimizer_state=_unflatten_optimizer(optimizer_tensors, meta["optimizer"]),
        torch_rng=tensors.get("rng.torch"),
    )


# -- the LightningModule ---------------------------------------------------------------------


class DetectorModule(L.LightningModule):
    """Cross-entropy training of a registry model; validation metrics over all ranks.

    After each validation epoch :attr:`epoch_metrics` holds the train and validation metrics of
    the epoch, identical on every rank (computed from gathered values).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: float,
        weight_decay: float = 0.0,
        optimizer_state: dict | None = None,
        torch_rng: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.lr = lr
        self.weight_decay = weight_decay
        self._optimizer_state = optimizer_state
        self._torch_rng = torch_rng
        self.epoch_metrics: dict[str, float] = {}
        self.skipped: dict[str, str] = {}  # path -> reason, clips skipped on this rank
        self._train_sums = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count
        self._val_rows: list[torch.Tensor] = []

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.model(audio)  # (batch, samples) -> (batch, 2)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        optimizer = torch.optim.Adam(
            self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        if self._optimizer_state is not None:
            optimizer.load_state_dict(self._optimizer_state)
        return optimizer

    def on_fit_start(self) -> None:
        if self._torch_rng is not None:  # continue the dropout RNG where the run left it
            torch.set_rng_state(self._torch_rng)

    def _usable(self, batch: dict, split: str) -> torch.Tensor:
        """``(batch,)`` bool mask of items that were read; remembers the ones that were not."""
        records = getattr(self.trainer.datamodule, f"{split}_set").records
        for index, error in zip(batch["index"].tolist(), batch["error"], strict=True):
            if error:
                self.skipped.setdefault(records[index].path, error)
        return torch.tensor([not e for e in batch["error"]], device=batch["audio"].device)

    def on_train_epoch_start(self) -> None:
        self._train_sums = torch.zeros(3, dtype=torch.float64, device=self.device)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        ok = self._usable(batch, "train")  # (batch,)
        logits = self(batch["audio"])  # (batch, 2)
        losses = F.cross_entropy(logits.float(), batch["label"], reduction="none")  # (batch,)
        count = ok.sum()
        loss = (losses * ok).sum() / count.clamp(min=1)
        with torch.no_grad():
            correct = ((logits.argmax(dim=-1) == batch["label"]) & ok).sum()
            self._train_sums += torch.stack([(losses * ok).sum(), correct, count]).double()
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(ok))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_rows = []

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        ok = self._usable(batch, "val")
        logits = self(batch["audio"])  # (batch, 2)
        scores = fake_probability(logits)  # (batch,) P(fake): the project's one scoring path
        losses = F.cross_entropy(logits.float(), batch["label"], reduction="none")
        rows = torch.stack(
            [batch["index"].double(), scores.double(), batch["label"].double(), losses.double()],
            dim=1,
        )  # (batch, 4): index, score, label, loss
        self._val_rows.append(rows[ok])

    def _gather_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Concatenate ``(n_rank, k)`` rows from every rank (n may differ between ranks)."""
        if self.trainer.world_size == 1:
            return rows
        count = torch.tensor([rows.shape[0]], device=self.device)
        counts = self.all_gather(count).flatten().tolist()  # (world,)
        padded = torch.zeros(max(counts), rows.shape[1], dtype=rows.dtype, device=self.device)
        padded[: rows.shape[0]] = rows
        gathered = self.all_gather(padded)  # (world, max_n, k)
        return torch.cat([gathered[r, :n] for r, n in enumerate(counts)])

    def _gather_skipped(self) -> None:
        if self.trainer.world_size > 1 and torch.distributed.is_initialized():
            everyone: list[dict[str, str]] = [{} for _ in range(self.trainer.world_size)]
            torch.distributed.all_gather_object(everyone, self.skipped)
            for skipped in everyone:
                self.skipped.update(skipped)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        empty = torch.zeros(0, 4, dtype=torch.float64)
        local = torch.cat(self._val_rows) if self._val_rows else empty  # (n_rank, 4)
        rows = self._gather_rows(local.to(self.device)).cpu().numpy()  # (n_all, 4)
        _, first = np.unique(rows[:, 0], return_index=True)  # one row per validation item
        rows = rows[first]
        labels, scores = rows[:, 2].astype(np.int64), rows[:, 1]
        eer, eer_threshold = equal_error_rate(labels, scores)
        sums = self.all_gather(self._train_sums)  # (3,) or (world, 3)
        loss_sum, correct, count = (sums.sum(0) if sums.ndim == 2 else sums).tolist()
        self._gather_skipped()
        self.epoch_metrics = {
            "train_loss": loss_sum / count if count else math.nan,
            "train_accuracy": correct / count if count else math.nan,
            "val_loss": float(rows[:, 3].mean()) if len(rows) else math.nan,
            "val_accuracy": accuracy(labels, predict(scores, 0.5)),
            "val_eer": eer,
            "val_eer_threshold": eer_threshold,
            "val_roc_auc": roc_auc(labels, scores),
            "val_count": len(rows),
        }
        for key in ("val_accuracy", "val_eer"):
            self.log(key, self.epoch_metrics[key], prog_bar=True, rank_zero_only=True)


# -- the run folder --------------------------------------------------------------------------


def _clean_temporaries(run_dir: Path) -> None:
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
    with safe_open(str(source), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    extra = json.loads(metadata.get("extra", "{}"))
    extra.update(selected_epoch=row["epoch"], selected_from=row["checkpoint"])
    extra["selection"] = SELECTION_RULE
    metadata["extra"] = json.dumps(extra)
    target = run_dir / FINAL_NAME
    with atomic_output(target) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return target


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
    ) -> None:
        self.run_dir = run_dir
        self.config = config
        self.prepared = prepared
        self.fingerprint = fingerprint
        self.start_epoch = start_epoch
        self.history = list(history or [])
        self.skipped = {path: reason for path, reason in skipped or []}
        self._handler: logging.Handler | None = None
        self._epoch_started = 0.0

    def _attach_log(self) -> None:
        self._handler = logging.FileHandler(self.run_dir / "train.log", encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        for name in ("deepfake_audio", "lightning.pytorch"):
            logging.getLogger(name).addHandler(self._handler)
        logging.getLogger("deepfake_audio").setLevel(logging.INFO)

    def detach_log(self) -> None:
        if self._handler is not None:
            for name in ("deepfake_audio", "lightning.pytorch"):
                logging.getLogger(name).removeHandler(self._handler)
            self._handler.close()
            self._handler = None

    def unreadable(self) -> list[list[str]]:
        entries = [[p, r] for p, r in self.prepared.unreadable]
        entries += [[p, f"skipped during training: {r}"] for p, r in sorted(self.skipped.items())]
        return entries

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _clean_temporaries(self.run_dir)
        self._attach_log()
        config = self.config.to_dict() | {"output_dir": str(self.run_dir)}
        write_text_atomic(self.run_dir / "config.json", json.dumps(config, indent=2) + "\n")
        report = json.dumps(self.prepared.report, indent=2, default=str) + "\n"
        write_text_atomic(self.run_dir / "data_report.json", report)
        write_manifest(self.prepared.records, self.run_dir / "manifest.jsonl")
        write_unreadable(self.unreadable(), self.run_dir / "unreadable.csv")
        train, val = self.prepared.split(TRAIN), self.prepared.split(VALIDATION)
        log.info(
            "run %s: model %s, %d train clips %s, %d validation clips %s, %d unreadable, "
            "%d processes, manifest %s",
            self.run_dir,
            self.config.model,
            len(train),
            _label_counts(train),
            len(val),
            _label_counts(val),
            len(self.prepared.unreadable),
            trainer.world_size,
            self.fingerprint,
        )
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


# -- entry point -----------------------------------------------------------------------------


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict]
    final_model: Path | None  # None on ranks other than zero
    best_epoch: int | None
    unreadable: list[list[str]]
    is_global_zero: bool


def _env_rank() -> int:
    """This process's rank before the Trainer knows it (launchers set one of these)."""
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def _quiet_known_warnings() -> None:
    """Hide warnings that are expected here and say nothing actionable to the user."""
    for pattern in (
        ".*does not have many workers.*",  # --num-workers is the user's choice
        ".*sync_dist=True.*",  # logged values are already gathered from every rank
        ".*all_gather is deprecated.*",  # inside Lightning's all_gather
        ".*treespec, LeafSpec.*",  # inside Lightning, with newer torch
    ):
        warnings.filterwarnings("ignore", pattern)


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


def resume_config(run_dir: str | os.PathLike[str], overrides: dict[str, Any]) -> TrainConfig:
    """The config of an existing run, with only how-it-runs options changed by ``overrides``."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no config.json)")
    values = load_config_file(path)
    overrides = dict(overrides)
    if "augment" in overrides:  # flags adjust the run's augmentation; compare what results
        overrides["augment"] = merge_nested(values.get("augment", {}), overrides["augment"])
    illegal = sorted(
        k
        for k, v in overrides.items()
        if k not in RESUME_OVERRIDABLE and not _same_option(k, values.get(k), v, values)
    )
    if illegal:
        raise ValueError(
            f"cannot change {illegal} when resuming; only {sorted(RESUME_OVERRIDABLE)} may change"
        )
    values.update({k: v for k, v in overrides.items() if k in RESUME_OVERRIDABLE})
    values["output_dir"] = str(run_dir)
    return TrainConfig.from_dict(values, source=str(path))


def _same_option(key: str, old: Any, new: Any, run_values: dict[str, Any]) -> bool:
    """Whether ``new`` leaves option ``key`` of a run as it was (augmentation compared resolved,
    so that spelling out a default, e.g. ``--augment none``, is no change)."""
    if key != "augment":
        return old == new
    rate = int(run_values.get("sample_rate", TrainConfig.sample_rate))
    try:
        return augment_config(old or {}, rate) == augment_config(new or {}, rate)
    except ValueError:
        return False


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    callbacks: Sequence[L.Callback] = (),
) -> TrainResult:
    """Prepare the data, train, and write the run folder; returns the run's history.

    With ``resume`` the run in ``config.output_dir`` continues after its last completed epoch.
    Raises ValueError (before any training) for unusable data, and KeyboardInterrupt when
    interrupted (Ctrl-C or SIGTERM), leaving the last completed epoch resumable.
    """
    run_dir = Path(config.output_dir) if config.output_dir else default_output_dir()
    rank_zero = _env_rank() == 0
    L.seed_everything(config.seed, workers=True, verbose=False)
    model = build_model(config.model, config.model_values())  # a bad config fails before data
    augment = config.augment_config
    prepared = prepare(
        config.data_root,
        config.data_options(),
        sample_rate=config.sample_rate,
        progress=config.progress and rank_zero,
    )
    train_records, val_records = prepared.split(TRAIN), prepared.split(VALIDATION)
    check_trainable(train_records, val_records, prepared.report.get("balance", {}).get("before"))
    fingerprint = manifest_fingerprint(prepared.records)

    state = _prepare_resume(run_dir, fingerprint) if resume else None
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
    module = DetectorModule(
        model,
        lr=config.lr,
        weight_decay=config.weight_decay,
        optimizer_state=state.optimizer_state if state else None,
        torch_rng=state.torch_rng if state else None,
    )
    data = ClipDataModule(
        train_records,
        val_records,
        prepared.cache.audio,  # type: ignore[union-attr]
        config.preprocess,
        batch_size=config.batch_size,
        num_workers=config.num_workers,
        seed=config.seed,
        weighted=config.balance == "weighted",
        epoch_offset=start_epoch,
        augment=build_augmenter(augment) if augment.enabled else None,
    )
    recorder = RunRecorder(
        run_dir,
        config,
        prepared,
        fingerprint,
        start_epoch=start_epoch,
        history=state.history if state else None,
        skipped=state.skipped if state else None,
    )
    _quiet_known_warnings()
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
        use_distributed_sampler=False,  # ClipDataModule shards by rank itself
        default_root_dir=run_dir,
        callbacks=[recorder, *callbacks],
    )
    final = best = None
    try:
        try:
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
        recorder.detach_log()
    return TrainResult(
        run_dir=run_dir,
        history=recorder.history,
        final_model=final,
        best_epoch=best,
        unreadable=recorder.unreadable(),
        is_global_zero=trainer.is_global_zero,
    )


__all__ = [
    "FINAL_NAME",
    "DetectorModule",
    "RunRecorder",
    "TrainConfig",
    "TrainResult",
    "best_epoch",
    "check_trainable",
    "checkpoint_name",
    "load_resume_state",
    "resume_config",
    "train",
]
