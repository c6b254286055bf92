"""Resume state: ``RUN/resume/state.safetensors``.

Weights, optimizer state and torch RNG as tensors, the epoch and history as JSON metadata.
Nothing is ever unpickled to resume.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from deepfake_audio import __version__
from deepfake_audio.fileio import atomic_output

RESUME_DIR = "resume"
RESUME_FILE = "state.safetensors"
RESUME_FORMAT = "deepfake-audio-resume/1"


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


#: Written in the run's resume folder while training runs; a kill (an OOM kill among them)
#: leaves it behind, so the next ``--resume`` can say how the last process ended.
RUNNING_FILE = "running.json"


def running_marker() -> str:
    """The marker's content: who is training, since when."""
    return json.dumps({"pid": os.getpid(), "started": datetime.now().isoformat(timespec="seconds")})


def unclean_stop(run_dir: Path) -> str | None:
    """What to tell a user resuming a run whose last process was killed (no clean stop)."""
    marker = run_dir / RESUME_DIR / RUNNING_FILE
    if not marker.is_file():
        return None
    try:
        seen = json.loads(marker.read_text())
    except ValueError:
        seen = {}
    state = run_dir / RESUME_DIR / RESUME_FILE
    last = f"epoch {load_resume_state(state).epoch}" if state.is_file() else "no completed epoch"
    return (
        f"the previous training process (pid {seen.get('pid', '?')}, started "
        f"{seen.get('started', '?')}) ended without a clean stop: it was killed, perhaps by "
        f"the kernel for want of memory (see --batch-size auto); resuming from {last}"
    )
