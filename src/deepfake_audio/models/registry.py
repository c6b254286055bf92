"""The model registry: ``--model NAME`` picks one of :data:`MODELS` (see the package docstring)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from torch import nn

from deepfake_audio.models import MODEL_NAMES
from deepfake_audio.models.aasist import AASIST, AASISTConfig, AASISTLConfig
from deepfake_audio.models.lcnn_lfcc import LCNNLFCC, LCNNLFCCConfig
from deepfake_audio.models.rawnet2 import RawNet2, RawNet2Config
from deepfake_audio.models.seed_cnn import SeedCNN, SeedCNNConfig


@dataclass(frozen=True)
class ModelSpec:
    model_class: type[nn.Module]
    config_class: type
    summary: str
    # Clips per training batch that fit a 16 GB machine at the model's own window, with room
    # to spare. Measured with training.memory.measure_step (kept freed memory, CPU): per clip
    # AASIST 1.1 GB, AASIST-L 0.9 GB, RawNet2 0.35 GB, LFCC-LCNN and seed_cnn under 0.05 GB.
    default_batch_size: int = 32


MODELS: dict[str, ModelSpec] = {
    "seed_cnn": ModelSpec(SeedCNN, SeedCNNConfig, "the original design's 1D CNN on raw audio"),
    "aasist": ModelSpec(
        AASIST,
        AASISTConfig,
        "AASIST (Jung et al. 2022): sinc front end + graph attention",
        default_batch_size=8,
    ),
    "aasist_l": ModelSpec(
        AASIST, AASISTLConfig, "AASIST-L: the 85 k-parameter AASIST", default_batch_size=8
    ),
    "rawnet2": ModelSpec(
        RawNet2,
        RawNet2Config,
        "RawNet2 (Tak et al. 2021): sinc filters, residual CNN, GRU",
        default_batch_size=24,
    ),
    "lcnn_lfcc": ModelSpec(
        LCNNLFCC, LCNNLFCCConfig, "LFCC + light CNN + BLSTM (the ASVspoof 2021 baseline)"
    ),
}


if tuple(sorted(MODELS)) != MODEL_NAMES:  # the torch-free list the command line shows
    raise ImportError(
        f"models.MODEL_NAMES {MODEL_NAMES} does not list the registry {sorted(MODELS)}"
    )


def model_names() -> list[str]:
    return sorted(MODELS)


def default_batch_size(name: str) -> int:
    """The model's training batch that fits a 16 GB machine (see :class:`ModelSpec`)."""
    return _spec(name).default_batch_size


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(model_names())}")
    return MODELS[name]


def make_config(name: str, values: dict[str, Any] | None = None) -> Any:
    """The model's config from a dict (e.g. read from a checkpoint or a config file).

    Unknown keys are an error; lists become tuples (JSON has no tuples).
    """
    config_class = _spec(name).config_class
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(
            f"unknown option(s) {sorted(unknown)} for model {name!r}; known: {sorted(known)}"
        )
    converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return config_class(**converted)


def build_model(name: str, config: dict[str, Any] | None = None) -> nn.Module:
    """Instantiate model ``name`` with config values overriding its defaults."""
    return _spec(name).model_class(make_config(name, config))


def config_dict(model: nn.Module) -> dict[str, Any]:
    """The model's config as a JSON-ready dict."""
    return dataclasses.asdict(model.config)  # type: ignore[arg-type]


def describe_models() -> list[dict[str, Any]]:
    """Each architecture's name, parameter count, default window and one-line summary (the
    models are laid out on torch's meta device: nothing is allocated)."""
    import torch

    out = []
    for name in model_names():
        with torch.device("meta"):
            model = build_model(name, {})
        samples = getattr(model.config, "input_samples", 0)
        rate = getattr(model.config, "sample_rate", 16000)
        out.append(
            {
                "name": name,
                "parameters": sum(p.numel() for p in model.parameters()),
                "window_seconds": samples / rate,
                "summary": MODELS[name].summary,
            }
        )
    return out
