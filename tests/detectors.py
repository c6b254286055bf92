"""Real checkpoints for scoring tests: untrained ones, and a tiny model trained in seconds.

The trained model learns two clearly separable synthetic classes, *fake* = white noise and
*real* = a low sine tone, from 0.25 s windows at 8 kHz (2,000 samples).
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from deepfake_audio.checkpoints import save_checkpoint
from deepfake_audio.data.records import FAKE, REAL
from deepfake_audio.models.registry import build_model
from deepfake_audio.preprocess import PreprocessConfig, make_window

RATE = 8000
WINDOW_SECONDS = 0.25
SAMPLES = 2000
PREPROCESS = PreprocessConfig(sample_rate=RATE, window_seconds=WINDOW_SECONDS)


def fake_signal(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """White noise: the 'fake' class."""
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal(round(seconds * rate))).astype(np.float32)


def real_signal(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A low tone with a trace of noise: the 'real' class."""
    rng = np.random.default_rng(seed)
    freq = 120 + 200 * rng.random()
    t = np.arange(round(seconds * rate)) / rate
    noise = 0.003 * rng.standard_normal(t.size)
    return (0.5 * np.sin(2 * np.pi * freq * t + rng.random() * 6) + noise).astype(np.float32)


def untrained_checkpoint(
    path: Path,
    seed: int = 0,
    threshold: float = 0.5,
    preprocess: PreprocessConfig = PREPROCESS,
    scoring_rule: dict | None = None,
) -> Path:
    torch.manual_seed(seed)
    model = build_model("seed_cnn", {"input_samples": preprocess.window_samples})
    return save_checkpoint(
        path,
        model,
        model_name="seed_cnn",
        preprocess=preprocess,
        threshold=threshold,
        scoring_rule=scoring_rule,
    )


def trained_checkpoint(path: Path, steps: int = 10, threshold: float = 0.5) -> Path:
    """seed_cnn trained for ``steps`` batches on noise (fake) vs tone (real) windows."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_model("seed_cnn", {"input_samples": SAMPLES, "dropout": 0.0})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for step in range(steps):
        windows, labels = [], []
        for i in range(16):
            label = FAKE if i % 2 else REAL
            make = fake_signal if label == FAKE else real_signal
            clip = make(0.5, RATE, seed=1000 * step + i)
            windows.append(make_window(clip, PREPROCESS, rng)[0])
            labels.append(label)
        logits = model(torch.from_numpy(np.stack(windows)))
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return save_checkpoint(
        path, model, model_name="seed_cnn", preprocess=PREPROCESS, threshold=threshold
    )


@functools.cache
def shared_trained_checkpoint() -> Path:
    """One trained checkpoint per test process (training takes seconds; tests only read it)."""
    folder = Path(tempfile.mkdtemp(prefix="deepfake-audio-trained-"))
    return trained_checkpoint(folder / "trained.safetensors")


def trained_and_untrained(folder: Path, seed: int, threshold: float = 0.5) -> list[Path]:
    """``[trained.safetensors, untrained.safetensors]`` in ``folder``: a model that knows the
    task next to one that does not (``seed`` and ``threshold`` are the untrained one's)."""
    trained = folder / "trained.safetensors"
    shutil.copy(shared_trained_checkpoint(), trained)
    return [trained, untrained_checkpoint(folder / "untrained.safetensors", seed, threshold)]
