"""On-the-fly augmentation of training windows, off by default.

Each augmentation is switched on separately in :class:`AugmentConfig` and applied, each with
its own probability, in this order: RawBoost (:mod:`.rawboost`), additive noise at a random
SNR, codec re-encoding (:mod:`.codec`), random gain (:mod:`.simple`). The order follows the
way audio degrades in the world: the source and its channel, then background noise, then
the compression of the file, then whatever level the recording ends up at.

Augmentation is seeded by the caller: :func:`build_augmenter` returns a callable
``augment(window, rng) -> window``; the data loader passes a ``np.random.Generator``
derived from ``(seed, epoch, index)``, so a run is reproducible whatever the number of
workers. The callable is a small picklable object, so it travels to data-loader workers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepfake_audio.augment.codec import CodecConfig, random_transcode
from deepfake_audio.augment.rawboost import RawBoostConfig, rawboost
from deepfake_audio.augment.simple import add_noise, apply_gain

__all__ = [
    "AugmentConfig",
    "Augmenter",
    "CodecConfig",
    "GainConfig",
    "NoiseConfig",
    "RawBoostConfig",
    "build_augmenter",
]


def _check_probability(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} p must be in [0, 1], got {p}")


@dataclass(frozen=True)
class GainConfig:
    enabled: bool = False
    p: float = 1.0
    min_db: float = -6.0
    max_db: float = 6.0

    def __post_init__(self) -> None:
        _check_probability("gain", self.p)
        if self.min_db > self.max_db:
            raise ValueError("gain min_db must not exceed max_db")


@dataclass(frozen=True)
class NoiseConfig:
    enabled: bool = False
    p: float = 1.0
    min_snr_db: float = 5.0
    max_snr_db: float = 40.0
    colour: str = "white"  # white, pink or brown

    def __post_init__(self) -> None:
        _check_probability("noise", self.p)
        if self.min_snr_db > self.max_snr_db:
            raise ValueError("noise min_snr_db must not exceed max_snr_db")
        if self.colour not in ("white", "pink", "brown"):
            raise ValueError(f"noise colour must be white, pink or brown, got {self.colour!r}")


@dataclass(frozen=True)
class AugmentConfig:
    """All augmentations, each off by default; ``sample_rate`` is that of the windows."""

    sample_rate: int = 16000
    rawboost: RawBoostConfig = field(default_factory=RawBoostConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    codec: CodecConfig = field(default_factory=CodecConfig)
    gain: GainConfig = field(default_factory=GainConfig)

    @property
    def enabled(self) -> bool:
        return any(part.enabled for part in (self.rawboost, self.noise, self.codec, self.gain))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> AugmentConfig:
        """Build from nested dicts (a config file, a run folder); unknown keys are errors."""
        values = dict(values or {})
        _reject_unknown("augment", values, cls)
        parts: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            value = values[f.name]
            if f.name == "sample_rate":
                parts[f.name] = int(value)
                continue
            part_class = type(getattr(cls(), f.name))
            if isinstance(value, part_class):
                parts[f.name] = value
                continue
            if not isinstance(value, dict):
                raise ValueError(f"augment.{f.name} must be a mapping, got {value!r}")
            _reject_unknown(f"augment.{f.name}", value, part_class)
            parts[f.name] = part_class(
                **{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
            )
        return cls(**parts)


def _reject_unknown(where: str, values: dict[str, Any], config_class: type) -> None:
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} in {where}; known: {sorted(known)}")


class Augmenter:
    """``augmenter(window, rng)``: the enabled augmentations applied to a mono window.

    Returns float32 of the window's shape. With nothing enabled it returns the window
    unchanged (as float32) and draws nothing from ``rng``.
    """

    def __init__(self, config: AugmentConfig) -> None:
        self.config = config

    def __call__(self, window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if window.ndim != 1:
            raise ValueError(f"augmentation takes a mono window, got shape {window.shape}")
        config, rate = self.config, self.config.sample_rate
        out = window.astype(np.float32, copy=False)
        if not config.enabled:
            return out
        if config.rawboost.enabled and rng.random() < config.rawboost.p:
            out = rawboost(out, config.rawboost, rate, rng)
        if config.noise.enabled and rng.random() < config.noise.p:
            snr_db = rng.uniform(config.noise.min_snr_db, config.noise.max_snr_db)
            out = add_noise(out, snr_db, rng, config.noise.colour)
        if config.codec.enabled and rng.random() < config.codec.p:
            out = random_transcode(out, config.codec, rate, rng)
        if config.gain.enabled and rng.random() < config.gain.p:
            out = apply_gain(out, rng.uniform(config.gain.min_db, config.gain.max_db))
        return np.ascontiguousarray(out, dtype=np.float32)


def build_augmenter(
    config: AugmentConfig | None = None,
) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """The augmentation callable for ``config`` (identity when nothing is enabled)."""
    return Augmenter(config or AugmentConfig())
