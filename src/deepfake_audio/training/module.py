"""The LightningModule: cross-entropy training of a registry model, validation over all ranks.

Validation scores each clip through the scoring engine (:mod:`deepfake_audio.training.validation`),
so its EER threshold is that of the scores ``predict`` gives; the calibration each checkpoint
stores is fitted on the same scores.
"""

from __future__ import annotations

import logging
import math

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepfake_audio.metrics import accuracy, equal_error_rate, predict, roc_auc
from deepfake_audio.scoring.calibration import CalibrationError, fit_calibration
from deepfake_audio.scoring.engine import Scorer, score_prepared
from deepfake_audio.scoring.options import ScoringOptions
from deepfake_audio.training.validation import ValidationItem, clip_loss

log = logging.getLogger(__name__)

#: Top-level modules that make a model's front end and encoder (frozen by freeze_front_end).
FRONT_END_MODULES = ("sinc", "front", "front_end", "front_bn", "first_bn", "encoder")


def front_end_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``model``'s front end and encoder; an error when it has none."""
    found = [p for name, p in model.named_parameters() if name.split(".")[0] in FRONT_END_MODULES]
    if not found:
        raise ValueError(
            f"{type(model).__name__} has no front end or encoder to freeze "
            f"(looked for modules named {', '.join(FRONT_END_MODULES)})"
        )
    return found


#: The name the model being trained goes by in the scoring engine.
SCORER_NAME = "model"


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
        scoring: ScoringOptions | None = None,
        weight_decay: float = 0.0,
        optimizer_state: dict | None = None,
        torch_rng: torch.Tensor | None = None,
        freeze_front_end: int = 0,
        start_epoch: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        self.lr = lr
        self.freeze_front_end = freeze_front_end  # epochs (counted over the whole run)
        self.start_epoch = start_epoch  # epochs done before this fit (a resumed run)
        self._front_end = front_end_parameters(model) if freeze_front_end else []
        self.scoring = scoring or ScoringOptions()  # how validation clips are scored
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

    def _usable(self, batch: dict) -> torch.Tensor:
        """``(batch,)`` bool mask of training items that were read; remembers the others."""
        records = self.trainer.datamodule.train_set.records
        for index, error in zip(batch["index"].tolist(), batch["error"], strict=True):
            if error:
                self.skipped.setdefault(records[index].path, error)
        return torch.tensor([not e for e in batch["error"]], device=batch["audio"].device)

    def on_train_epoch_start(self) -> None:
        self._train_sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        frozen = self.start_epoch + self.current_epoch < self.freeze_front_end
        for parameter in self._front_end:
            parameter.requires_grad_(not frozen)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        ok = self._usable(batch)  # (batch,)
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

    def validation_step(self, batch: list[ValidationItem], batch_idx: int) -> None:
        """Score the batch's clips as the scoring engine scores any file; keep one row each."""
        records = self.trainer.datamodule.val_set.records
        scorer = Scorer(SCORER_NAME, self.model, window_set=0)
        results = score_prepared([scorer], [item for _, item in batch], self.scoring)
        rows = []
        for (index, _), (item, clips) in zip(batch, results, strict=True):
            if item.error is not None:
                self.skipped.setdefault(item.path, item.error)
                continue
            label = records[index].label
            score = clips[SCORER_NAME].score
            rows.append([index, score, label, clip_loss(score, label)])
        if rows:  # (clips, 4): index, score, label, loss
            self._val_rows.append(torch.tensor(rows, dtype=torch.float64, device=self.device))

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
        try:  # the map from this epoch's scores to log-likelihood ratios
            calibration = fit_calibration(labels, scores, data="validation").to_dict()
        except CalibrationError as exc:  # one class, or scores that do not separate yet
            log.warning("no calibration for this epoch: %s", exc)
            calibration = None
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
            "calibration": calibration,
        }
        for key in ("val_accuracy", "val_eer"):
            self.log(key, self.epoch_metrics[key], prog_bar=True, rank_zero_only=True)
