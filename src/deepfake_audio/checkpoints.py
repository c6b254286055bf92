"""Model files: safetensors weights with everything needed to use them inside the file.

A checkpoint rebuilds its model without the user naming the architecture, and scoring reads
the preprocessing from it, so a model is always fed audio the way it was trained. Loading
never unpickles: safetensors holds only tensors and a string-to-string metadata map, whose
values here are JSON.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from deepfake_audio import __version__, pretrained
from deepfake_audio.data.records import LABEL_NAMES
from deepfake_audio.fileio import atomic_output, decode_json_values
from deepfake_audio.models.registry import build_model, config_dict
from deepfake_audio.preprocess import PreprocessConfig
from deepfake_audio.scoring.calibration import Calibration, CalibrationError

FORMAT = "deepfake-audio-checkpoint/1"
FINAL_NAME = "fake_or_real_classifier.safetensors"  # a run's chosen model
DEFAULT_THRESHOLD = 0.5


class CheckpointError(ValueError):
    """A file is not a usable deepfake-audio checkpoint (the message says why)."""


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    model_name: str,
    preprocess: PreprocessConfig,
    metrics: dict[str, Any] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    scoring_rule: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights and metadata atomically (temp name, then rename).

    ``metrics`` are the validation metrics; ``threshold`` is the fake-probability threshold
    to use by default (the validation EER threshold after training); ``scoring_rule`` is how
    the scores behind that threshold were made (window aggregation and hop, see
    :class:`deepfake_audio.scoring.options.ScoringRule`); ``calibration`` maps its scores to
    log-likelihood ratios (:class:`deepfake_audio.scoring.calibration.Calibration`, as a
    dict; none: the identity); ``extra`` holds anything else worth keeping (epoch, manifest
    fingerprint, training config...).
    """
    metadata = {
        "format": FORMAT,
        "model": model_name,
        "model_config": json.dumps(config_dict(model)),
        "preprocess": json.dumps(preprocess.to_dict()),
        "labels": json.dumps({str(k): v for k, v in LABEL_NAMES.items()}),
        "metrics": json.dumps(metrics or {}),
        "threshold": json.dumps(float(threshold)),
        **({"scoring_rule": json.dumps(scoring_rule)} if scoring_rule is not None else {}),
        **({"calibration": json.dumps(calibration)} if calibration is not None else {}),
        "package_version": __version__,
        "extra": json.dumps(extra or {}),
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        tmp.chmod(0o644)  # safetensors creates files readable by their owner only
    return Path(path)


def copy_with_metadata(
    source: str | os.PathLike[str], target: str | os.PathLike[str], updates: dict[str, Any]
) -> Path:
    """Write ``source``'s weights to ``target`` with metadata fields replaced by ``updates``
    (JSON-encoded), atomically; ``source`` is never modified. Used for a run's final model
    and for a recalibrated one."""
    with safe_open(str(source), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    metadata.update({key: json.dumps(value) for key, value in updates.items()})
    with atomic_output(target) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        tmp.chmod(0o644)  # readable like the epoch files (safetensors creates 0600)
    return Path(target)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's metadata with JSON values decoded, without loading the weights."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
    except Exception as exc:  # safetensors raises several types for non-safetensors files
        raise CheckpointError(f"{path}: not a safetensors file ({exc})") from exc
    if raw.get("format") != FORMAT:
        found = raw.get("format")
        raise CheckpointError(f"{path}: not a deepfake-audio checkpoint (format {found!r})")
    return decode_json_values(raw)


@dataclass
class Detector:
    """A loaded model with everything needed to score audio as it was trained."""

    model: nn.Module
    model_name: str
    preprocess: PreprocessConfig
    threshold: float
    metadata: dict[str, Any] = field(repr=False)
    path: Path | None = None
    label: str | None = None  # its name in reports when not its file's (a panel member's)

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        return self.path.stem if self.path else self.model_name

    @property
    def selected_from(self) -> str | None:
        """For a run's final model, the file name of the epoch checkpoint it copies."""
        extra = self.metadata.get("extra")
        origin = extra.get("selected_from") if isinstance(extra, dict) else None
        return str(origin) if origin else None

    @property
    def calibration(self) -> Calibration:
        """The stored map from scores to log-likelihood ratios; the identity when the file
        has none (checked by :func:`check_checkpoint` when it has)."""
        stored = self.metadata.get("calibration")
        return Calibration() if stored is None else Calibration.from_dict(stored)

    @property
    def stored_rule(self) -> dict[str, Any] | None:
        """How the scores behind :attr:`threshold` were made (None in older checkpoints)."""
        rule = self.metadata.get("scoring_rule")
        return rule if isinstance(rule, dict) else None


def final_model_path(path: str | Path) -> Path:
    """``path`` itself for a checkpoint file; a run folder's final model for a folder; the
    packaged file for a built-in model's name (``aasist_l-asvspoof2019``, see
    :mod:`deepfake_audio.pretrained`).

    Lets every ``--model`` take a training run folder, so comparing runs needs no file names.
    """
    path = pretrained.resolve(path)
    if not path.is_dir():
        return path
    final = path / FINAL_NAME
    if not final.is_file() and (path / "panel.json").is_file():
        raise FileNotFoundError(
            f"{path} is a panel run (panel.json): predict, compare, evaluate and calibrate "
            f"take it as a model; here give one of its members ({path}/members/<name>)"
        )
    if not final.is_file():
        raise FileNotFoundError(
            f"{path} is a folder without {FINAL_NAME}: give a checkpoint file, or a run "
            "folder whose training finished at least one epoch"
        )
    return final


@dataclass(frozen=True)
class CheckedMetadata:
    """What a checkpoint's metadata claims, checked before anything is built from it."""

    model: str
    model_config: dict[str, Any]
    preprocess: PreprocessConfig
    threshold: float
    metadata: dict[str, Any]  # all of it, JSON values decoded


def check_checkpoint(path: str | os.PathLike[str]) -> CheckedMetadata:
    """Validate a checkpoint without allocating its model: the metadata's fields and types,
    a threshold in [0, 1], a window that is the model's input, and every stored tensor of the
    shape the architecture expects (the model is laid out on torch's ``meta`` device, so a
    tampered config cannot make us allocate 51 GB). Errors name the file and the field.
    """
    metadata = read_metadata(path)

    def bad(field_name: str, why: str) -> CheckpointError:
        return CheckpointError(f"{path}: metadata field {field_name!r} {why}")

    name = metadata.get("model")
    if not isinstance(name, str):
        raise bad("model", f"must name an architecture, got {name!r}")
    config = metadata.get("model_config")
    if not isinstance(config, dict):
        raise bad("model_config", f"must be an object, got {type(config).__name__}")
    try:
        preprocess = PreprocessConfig.from_dict(metadata.get("preprocess"))
    except (TypeError, ValueError, AttributeError) as exc:
        raise bad("preprocess", f"is not a preprocessing ({exc})") from exc
    threshold = metadata.get("threshold", DEFAULT_THRESHOLD)
    if not (
        isinstance(threshold, int | float) and math.isfinite(threshold) and 0 <= threshold <= 1
    ):
        raise bad("threshold", f"must be a number in [0, 1], got {threshold!r}")
    if "calibration" in metadata:
        try:
            Calibration.from_dict(metadata["calibration"])
        except CalibrationError as exc:
            raise bad("calibration", str(exc)) from exc
    samples = config.get("input_samples")
    if samples is not None and samples != preprocess.window_samples:
        raise bad(
            "preprocess",
            f"has a {preprocess.window_samples}-sample window, but the model takes {samples}",
        )
    try:
        with torch.device("meta"):  # shapes only: nothing is allocated
            expected = {
                k: tuple(v.shape) for k, v in build_model(name, config).state_dict().items()
            }
    except (TypeError, ValueError, RuntimeError) as exc:
        raise bad("model_config", f"does not build model {name} ({exc})") from exc
    with safe_open(str(path), framework="pt") as handle:
        stored = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    for key in sorted(set(expected) | set(stored)):
        if stored.get(key) != expected.get(key):
            found = "missing" if key not in stored else f"of shape {stored[key]}"
            wanted = f"of shape {expected[key]}" if key in expected else "none such"
            raise CheckpointError(
                f"{path}: weights do not fit model {name}: tensor {key!r} is {found}, "
                f"the model expects {wanted}"
            )
    return CheckedMetadata(name, config, preprocess, float(threshold), metadata)


def load_checkpoint(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Detector:
    """Rebuild the model stored in ``path`` (architecture and config from its metadata),
    after :func:`check_checkpoint` has validated what the file claims."""
    checked = check_checkpoint(path)
    model = build_model(checked.model, checked.model_config)
    try:
        model.load_state_dict(load_file(str(path), device=str(device)))
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit model {checked.model} ({exc})") from exc
    model.to(device).eval()
    return Detector(
        model=model,
        model_name=checked.model,
        preprocess=checked.preprocess,
        threshold=checked.threshold,
        metadata=checked.metadata,
        path=Path(path),
    )
