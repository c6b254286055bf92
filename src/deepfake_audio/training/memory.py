"""Will a training step fit in memory? Measure it before the first epoch, not after an OOM kill.

A training step's peak memory grows with the batch: the model, the optimizer state and the
framework cost a fixed amount, and every clip adds its activations (kept for the backward
pass). :func:`measure_step` runs one forward + backward + Adam step at batch 2 and batch 4 in
a fresh interpreter (so the measuring process's own peak is untouched, and a step that would
not fit never runs here) and fits ``peak = fixed + per_clip * batch``. :func:`plan_batch`
compares that with the memory available (:func:`deepfake_audio.memory_budget.available_memory`)
and says which batch fits.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from deepfake_audio import allocator
from deepfake_audio.memory_budget import available_memory, gib
from deepfake_audio.training.config import TrainConfig

#: Share of the available memory a planned step may use: the loader workers, the heap's
#: fragmentation and the rest of the process need the remainder.
HEADROOM = 0.8


@dataclass(frozen=True)
class StepMemory:
    """Peak memory of one training step: ``fixed + per_clip * batch`` bytes above the
    process's size before the step."""

    fixed: int
    per_clip: int

    def need(self, batch: int) -> int:
        return self.fixed + self.per_clip * batch


# The child: build the model, then one train step at batch 2 and at batch 4 (batch norm needs
# more than one clip in training mode), reporting the
# process's peak resident memory (a high-water mark) after building and after each step.
_PROBE = """
import json, resource, sys
values = json.loads(sys.argv[1])
if values["keep_freed_memory"]:
    from deepfake_audio.allocator import keep_freed_memory
    keep_freed_memory()
import torch
from deepfake_audio.models.registry import build_model
torch.manual_seed(0)
model = build_model(values["model"], values["config"]).train()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
PROBE_BATCHES = (2, 4)
peaks = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024]
for batch in PROBE_BATCHES:
    audio = torch.randn(batch, values["samples"])
    labels = torch.arange(batch) % 2
    loss = torch.nn.functional.cross_entropy(model(audio), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps(peaks))
"""


def measure_step(
    model: str, config: dict[str, Any], samples: int, *, keep_freed_memory: bool = True
) -> StepMemory:
    """Measure a training step of ``model`` on ``samples``-sample windows (see the module
    docstring). Takes a few seconds: a fresh interpreter imports torch and runs two steps.
    Remembered for the process (a step's memory is the model's, not the moment's), so runs
    of the same model one after the other, as a panel's members are, measure it once."""
    values = {
        "model": model,
        "config": config,
        "samples": samples,
        "keep_freed_memory": keep_freed_memory,
    }
    key = json.dumps(values, sort_keys=True)
    if key not in _MEASURED:
        _MEASURED[key] = _measure(values)
    return _MEASURED[key]


#: Steps measured by this process, by their JSON description.
_MEASURED: dict[str, StepMemory] = {}


def _measure(values: dict[str, Any]) -> StepMemory:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(values)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"measuring a training step failed: {done.stderr.strip()[-500:]}")
    built, small, large = json.loads(done.stdout.strip().splitlines()[-1])  # batch 2, 4
    per_clip = max((large - small) // 2, 1)
    return StepMemory(fixed=max(small - built - 2 * per_clip, 0), per_clip=per_clip)


@dataclass(frozen=True)
class BatchPlan:
    """The batch a run will use, how many batches make one optimizer step, and why."""

    batch_size: int
    accumulate: int
    need: int  # bytes the step is expected to take
    available: int | None
    source: str

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.accumulate


def plan_batch(
    step: StepMemory,
    batch_size: int | None,
    default_batch: int,
    accumulate: int,
    available: tuple[int | None, str],
) -> BatchPlan:
    """Check ``batch_size`` (None: ``auto``) against the memory available.

    ``auto`` takes the model's default batch if it fits, else the largest that does, and
    accumulates gradients so that the effective batch stays the default one. An explicit
    batch that will not fit is a ``MemoryError`` naming the need, the room and the batch that
    would fit; it is raised before any training, instead of an OOM kill in the first batch.
    """
    room, source = available
    budget = None if room is None else int(room * HEADROOM)
    fits = None if budget is None else (budget - step.fixed) // step.per_clip
    if batch_size is None:
        if fits is None or fits >= default_batch:
            return BatchPlan(default_batch, accumulate, step.need(default_batch), room, source)
        if fits < 1:
            raise MemoryError(_too_big(step, 1, room, source, fits))
        steps = math.ceil(default_batch / fits)  # batches per optimizer step
        chosen = math.ceil(default_batch / steps)  # <= fits; chosen x steps >= default
        return BatchPlan(chosen, accumulate * steps, step.need(chosen), room, source)
    if fits is not None and batch_size > fits:
        raise MemoryError(_too_big(step, batch_size, room, source, fits))
    return BatchPlan(batch_size, accumulate, step.need(batch_size), room, source)


def _too_big(step: StepMemory, batch: int, room: int | None, source: str, fits: int) -> str:
    advice = (
        f"--batch-size {fits} fits (or --batch-size auto, which keeps the effective batch "
        "with gradient accumulation)"
        if fits >= 1
        else "not even a batch of 1 fits: free memory, or use a machine with more"
    )
    return (
        f"a training step at batch {batch} needs about {gib(step.need(batch))} (measured: "
        f"{gib(step.fixed)} + {gib(step.per_clip)} per clip), but only {gib(room or 0)} is "
        f"available ({source}; a step may use {HEADROOM:.0%} of it): {advice}"
    )


def _single_cpu_process(config: TrainConfig) -> bool:
    import torch

    on_cpu = config.accelerator == "cpu" or (
        config.accelerator == "auto" and not torch.cuda.is_available()
    )
    return on_cpu and str(config.devices) in ("1", "auto") and config.num_nodes == 1


def plan_memory(config: TrainConfig) -> BatchPlan:
    """The batch (and accumulation) this run will use, checked against the memory available.

    On one CPU process a training step is measured first (:mod:`deepfake_audio.training.memory`)
    and a batch that cannot fit is an error naming the batch that would; ``auto`` picks it.
    GPU memory and several processes are not measured: the batch is taken as given.
    """
    requested = None if config.batch_size == "auto" else (config.batch_size or config.model_batch)
    if not _single_cpu_process(config):
        if requested is None:
            raise ValueError(
                "--batch-size auto measures CPU memory: give a batch size for GPUs or several "
                "processes"
            )
        return BatchPlan(requested, config.accumulate, 0, None, "not measured (GPU or DDP)")
    step = measure_step(
        config.model,
        config.model_values(),
        config.preprocess.window_samples,
        keep_freed_memory=allocator.decision().enabled,  # measured as the run will allocate
    )
    return plan_batch(step, requested, config.model_batch, config.accumulate, available_memory())


def describe_plan(plan: BatchPlan) -> str:
    room = "" if plan.available is None else f" of {gib(plan.available)} available ({plan.source})"
    need = "" if not plan.need else f"; a training step needs about {gib(plan.need)}{room}"
    return (
        f"batch {plan.batch_size} x accumulate {plan.accumulate} = effective batch "
        f"{plan.effective_batch}{need}"
    )
