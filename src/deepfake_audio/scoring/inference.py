"""A torch model's probability of fake on windows: the one definition every runtime matches.

Its own module, below the engine, because the ONNX export (whose graph must compute the same
softmax) and the backend choice (which times torch against onnxruntime) need it, and the
engine in turn chooses backends: kept in the engine, it would make them import each other.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from deepfake_audio.data.records import FAKE


def fake_probability(logits: torch.Tensor) -> torch.Tensor:
    """``(batch, 2)`` logits -> ``(batch,)`` probability of fake (softmax, index 0)."""
    return torch.softmax(logits.float(), dim=-1)[:, FAKE]


@torch.inference_mode()
def score_windows(model: nn.Module, windows: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Fake-probability of each row of ``windows`` ``(n, samples)``, in batches."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(windows), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(windows[start : start + batch_size]))
        out.append(fake_probability(model(batch.to(device))).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
