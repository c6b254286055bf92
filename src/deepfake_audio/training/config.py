"""Training configuration: the typed :class:`TrainConfig`, config files and resume checks.

An unknown option or a wrong type is an error (``from_dict``, :func:`augment_config`); the
resolved config is saved as ``config.json`` in the run folder, and :func:`resume_config` reads
it back, letting only how-it-runs options change.
"""

from __future__ import annotations

import json
import os
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from deepfake_audio.augment import AugmentConfig
from deepfake_audio.data.pipeline import DataOptions
from deepfake_audio.models.registry import default_batch_size, make_config
from deepfake_audio.preprocess import PreprocessConfig
from deepfake_audio.scoring.options import ScoringOptions

#: Options that may differ when a run is resumed (how it runs, not what it learns).
RESUME_OVERRIDABLE = frozenset(
    {
        "epochs",
        "budget_minutes",
        "num_workers",
        "accelerator",
        "devices",
        "num_nodes",
        "strategy",
        "progress",
    }
)

#: Model config keys that training sets itself (from the window and ``sample_rate``), so that
#: the model, the stored preprocessing and scoring can never disagree.
SET_BY_TRAINING = ("input_samples", "sample_rate")

#: The rate at which the models' default ``input_samples`` are given (when the model's config
#: has no ``sample_rate`` of its own).
MODEL_DEFAULT_RATE = 16000

#: The key under which a run's config.json records its provenance (not an option).
PROVENANCE_KEY = "provenance"

#: The augmentations in the order :class:`~deepfake_audio.augment.Augmenter` applies them.
AUGMENT_ORDER = ("rawboost", "noise", "codec", "gain")


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved as ``config.json`` in the run folder."""

    data_root: str = "./dataset_root"
    output_dir: str | None = None  # default: ./runs/YYYYmmdd_HHMMSS
    model: str = "seed_cnn"
    model_config: dict[str, Any] = field(default_factory=dict)  # overrides of model defaults
    epochs: int = 10
    # wall-clock minutes for the whole run (data preparation included): when spent, the epoch
    # under way ends after its current batch, is validated and written like any other
    # (training.budget); None: no limit, the run trains its epochs
    budget_minutes: float | None = None
    # clips per batch: None is the model's default (fits 16 GB), "auto" the largest batch up
    # to it that fits the memory available, accumulating to keep the effective batch
    batch_size: int | str | None = None
    accumulate: int = 1  # batches per optimizer step (effective batch = batch_size x this)
    lr: float = 1e-3
    weight_decay: float = 0.0
    # fine-tuning: a checkpoint (or built-in model name) whose weights the run starts from;
    # its architecture and preprocessing are the run's (see init_from_values)
    init_from: str | None = None
    freeze_front_end: int = 0  # epochs during which the front end and encoder stay frozen
    seed: int = 0
    # preprocessing (stored in every checkpoint)
    sample_rate: int = 16000
    window_seconds: float | None = None  # default: the model's own window (see model_window)
    normalization: Literal["peak", "rms", "none"] = "peak"
    trim_silence: bool = False  # drop leading/trailing silence before windowing (a shortcut)
    # how validation judges a clip, as scoring commands do (stored with the threshold)
    aggregate: Literal["mean", "max"] = "mean"
    hop_seconds: float | None = None  # default: the window length, no overlap
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
    group_by_folder: int | None = None  # folder level under data_root naming each speaker
    near_duplicates: Literal["off", "report", "drop"] = "drop"  # edited copies across splits
    near_duplicate_threshold: float = 0.25  # fingerprint similarity of one recording
    shortcut_threshold: float = 0.8  # oriented AUC from which a per-file fact is flagged
    # fakes of these generators are left out of train/validation, kept in test (DataOptions)
    exclude_generators: list[str] | None = None
    max_bad_fraction: float = 0.05  # of a split's files that may be unusable before we stop
    # hardware
    num_workers: int | None = None  # DataLoader workers (default: all cores)
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "accumulate", "num_nodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if isinstance(self.batch_size, str) and self.batch_size != "auto":
            raise ValueError(f"batch_size must be a number or auto, got {self.batch_size!r}")
        if isinstance(self.batch_size, int) and self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.budget_minutes is not None and not 0 < self.budget_minutes < float("inf"):
            raise ValueError(f"budget_minutes must be positive, got {self.budget_minutes}")
        if self.freeze_front_end < 0:
            raise ValueError(f"freeze_front_end must be >= 0, got {self.freeze_front_end}")
        if self.freeze_front_end and not self.init_from:
            raise ValueError("freeze_front_end needs init_from: a front end worth keeping")
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {self.max_bad_fraction}")
        self.scoring  # noqa: B018 (validates aggregate and hop_seconds)
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
    def model_batch(self) -> int:
        """The model's own default batch (see ``models.registry.default_batch_size``)."""
        return default_batch_size(self.model)

    @property
    def preprocess(self) -> PreprocessConfig:
        window = self.model_window() if self.window_seconds is None else self.window_seconds
        return PreprocessConfig(self.sample_rate, window, self.normalization, self.trim_silence)

    @property
    def scoring(self) -> ScoringOptions:
        """How validation scores a clip: the scoring engine's options, windows batched by
        ``batch_size``."""
        return ScoringOptions(
            hop_seconds=self.hop_seconds,
            aggregation=self.aggregate,
            batch_size=self.batch_size if isinstance(self.batch_size, int) else self.model_batch,
        )

    @property
    def augment_config(self) -> AugmentConfig:
        """The resolved augmentation (its rate is always the training ``sample_rate``)."""
        return augment_config(self.augment, self.sample_rate)

    def data_options(self) -> DataOptions:
        return DataOptions.from_attributes(self)

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
    values.pop(PROVENANCE_KEY, None)  # where a run's config.json came from, not an option
    return values


#: The default learning rate when fine-tuning (a tenth of training from scratch's): large
#: steps would wipe out what the pretrained weights know before the new data is learnt.
FINE_TUNE_LR = 1e-4


def init_from_values(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with what ``init_from`` fixes filled in: the checkpoint's architecture and
    config, its preprocessing (unless given), and the fine-tuning learning rate (unless
    given). Asking for another architecture than the checkpoint's is an error."""
    from deepfake_audio.checkpoints import check_checkpoint, final_model_path

    source = final_model_path(values["init_from"])
    checked = check_checkpoint(source)
    if values.get("model", checked.model) != checked.model:
        raise ValueError(
            f"--init-from {values['init_from']} is a {checked.model} model; it cannot start a "
            f"{values['model']} run (leave --model out: it comes from the checkpoint)"
        )
    out = dict(values)
    out["model"] = checked.model
    out["model_config"] = {
        k: v for k, v in checked.model_config.items() if k not in SET_BY_TRAINING
    } | dict(values.get("model_config") or {})
    preprocess = checked.preprocess
    out.setdefault("sample_rate", preprocess.sample_rate)
    out.setdefault("window_seconds", preprocess.window_seconds)
    out.setdefault("normalization", preprocess.normalization)
    out.setdefault("trim_silence", preprocess.trim_silence)
    out.setdefault("lr", FINE_TUNE_LR)
    return out


def default_output_dir() -> Path:
    return Path("runs") / datetime.now().strftime("%Y%m%d_%H%M%S")


def resume_config(run_dir: str | os.PathLike[str], overrides: dict[str, Any]) -> TrainConfig:
    """The config of an existing run, with only how-it-runs options changed by ``overrides``."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no config.json)")
    values = load_config_file(path)
    values.pop("budget_minutes", None)  # a budget is for one invocation: given again, or none
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
