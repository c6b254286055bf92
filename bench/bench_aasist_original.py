"""Our ``aasist`` against the authors' released code, side by side in one process.

Both models are built from the same published config (``model_config`` of the released
``config/AASIST-L.conf`` by default, read at run time) and hold the same weights: the
released model is built with its own ``Model(d_args)``, and ours gets its state dict through
:func:`deepfake_audio.models.clovaai.convert_clovaai_aasist`. Before timing, the bench
checks that the two give the same logits in eval mode.

Timed, at the same settings for both (batch, window ``nb_samp``, threads, allocator setting
of :func:`deepfake_audio.allocator.keep_freed_memory`, made once for the whole process):

* training steps as the released ``main.py`` runs them: forward, weighted cross-entropy
  (0.1 fake, 0.9 real), ``zero_grad``, backward, Adam with the conf's ``optim_config``
  (lr, betas, weight decay, amsgrad); clips per second;
* inference (eval mode, ``torch.inference_mode``): real-time factor, seconds of 16 kHz
  audio scored per second.

Besides wall-clock rates the bench prints the ratio of median CPU seconds per call (both
threads): on a machine shared with other jobs a step's wall time includes waits for a
core, which hit the two models unequally from round to round, while CPU time mostly does
not (spinning at OpenMP barriers still counts).

The two are interleaved (A, B, B, A, ... so that neither always runs first) after warm-up
steps, and the median of the rounds is reported with the range of the per-round ratios,
which shows how far the load of a shared machine moved them: run it more than once.

The released code is imported from a file at run time only (nothing of it is in the
package). Either point at a checkout's files or let the bench extract them with ``git
show`` from a git directory (a bare repository, or a checkout's ``.git``):

    python bench/bench_aasist_original.py --original-repo /work/.mirror/clovaai+aasist/repo
    python bench/bench_aasist_original.py --original AASIST.py --conf AASIST-L.conf
    python bench/bench_aasist_original.py --original-repo REPO --rounds 7 --batch 8
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F

from deepfake_audio.allocator import decision, keep_freed_memory
from deepfake_audio.models.clovaai import convert_clovaai_aasist
from deepfake_audio.models.registry import build_model

SAMPLE_RATE = 16000
CLASS_WEIGHTS = (0.1, 0.9)  # the released main.py's CrossEntropyLoss weights


def extract(repo: str, revision: str, conf: str, into: Path) -> tuple[Path, Path]:
    """``models/AASIST.py`` and the conf file of ``repo`` at ``revision``, written to ``into``."""
    paths = []
    for inner, name in (("models/AASIST.py", "AASIST.py"), (conf, Path(conf).name)):
        text = subprocess.run(
            ["git", "--git-dir", repo, "show", f"{revision}:{inner}"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        path = into / name
        path.write_text(text)
        paths.append(path)
    return paths[0], paths[1]


def import_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("clovaai_aasist_original", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Original(torch.nn.Module):
    """The released model, returning only the logits (its forward gives (hidden, logits))."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.model(audio, Freq_aug=False)[1]  # main.py's default: freq_aug False


def build_pair(
    module: ModuleType, conf: dict[str, Any], seed: int
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(ours, original) with the same weights, from the conf's ``model_config``."""
    torch.manual_seed(seed)
    d_args = conf["model_config"]
    original = module.Model(d_args)
    name, values, tensors = convert_clovaai_aasist(original.state_dict(), d_args)
    ours = build_model(name, values)
    ours.load_state_dict(tensors, strict=True)
    return ours, Original(original)


def adam(model: torch.nn.Module, optim: dict[str, Any]) -> torch.optim.Adam:
    """Adam as the released ``utils._get_optimizer`` builds it from ``optim_config``."""
    return torch.optim.Adam(
        model.parameters(),
        lr=optim["base_lr"],
        betas=tuple(optim["betas"]),
        weight_decay=optim["weight_decay"],
        amsgrad=str(optim.get("amsgrad", "False")).lower() in ("true", "1", "yes"),
    )


Timing = tuple[float, float]  # (wall-clock seconds, CPU seconds of the process)


def timed(run: Callable[[], object]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def train_step(model: torch.nn.Module, optimizer, audio, labels) -> Callable[[], Timing]:
    weight = torch.tensor(CLASS_WEIGHTS)

    def run() -> None:
        loss = F.cross_entropy(model(audio), labels, weight=weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return lambda: timed(run)


def infer_step(model: torch.nn.Module, audio: torch.Tensor) -> Callable[[], Timing]:
    def run() -> None:
        with torch.inference_mode():
            model(audio)

    return lambda: timed(run)


def interleave(
    ours: Callable[[], Timing], original: Callable[[], Timing], rounds: int, warmup: int
) -> tuple[list[Timing], list[Timing]]:
    """(wall, CPU) seconds per call of each, alternating which goes first."""
    for _ in range(warmup):
        ours(), original()
    times: dict[str, list[Timing]] = {"ours": [], "original": []}
    calls = {"ours": ours, "original": original}
    for r in range(rounds):
        order = ("ours", "original") if r % 2 == 0 else ("original", "ours")
        for name in order:
            times[name].append(calls[name]())
    return times["ours"], times["original"]


def summary(kind: str, unit: str, per: float, ours: list[Timing], original: list[Timing]) -> dict:
    """Median rates, their ratio and the range of per-round ratios (rate = per / seconds),
    by wall clock; and the ratio of median CPU seconds, which waiting for a core shared
    with other jobs does not inflate (on an idle machine the two ratios agree)."""
    wall_ours, cpu_ours = zip(*ours, strict=True)
    wall_orig, cpu_orig = zip(*original, strict=True)
    rate_ours = per / statistics.median(wall_ours)
    rate_orig = per / statistics.median(wall_orig)
    ratios = [o / s for s, o in zip(wall_ours, wall_orig, strict=True)]  # original / ours
    best = min(wall_orig) / min(wall_ours)
    cpu_ratio = statistics.median(cpu_orig) / statistics.median(cpu_ours)
    print(
        f"{kind:<10} ours {rate_ours:7.2f} {unit}, original {rate_orig:7.2f} {unit}: "
        f"ours/original {rate_ours / rate_orig:.2f}x (median; best-of {best:.2f}x; "
        f"rounds {min(ratios):.2f}-{max(ratios):.2f}x; CPU time {cpu_ratio:.2f}x)"
    )
    return {
        "ours": rate_ours,
        "original": rate_orig,
        "ratio": rate_ours / rate_orig,
        "ratio_best": best,
        "round_ratios": ratios,
        "ratio_cpu": cpu_ratio,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--original", type=Path, help="the released models/AASIST.py")
    source.add_argument("--original-repo", help="a git directory of clovaai/aasist")
    parser.add_argument("--revision", default="HEAD", help="with --original-repo")
    parser.add_argument(
        "--conf", default="config/AASIST-L.conf",
        help="the conf file (a path; with --original-repo, a path inside the repository)",
    )  # fmt: skip
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (A and B each)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each first")
    parser.add_argument("--no-train", action="store_true", help="inference only")
    parser.add_argument("--no-infer", action="store_true", help="training only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    kept = keep_freed_memory()  # process-wide: both models run under the same setting
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.original_repo:
            code, conf_path = extract(args.original_repo, args.revision, args.conf, Path(tmp))
        else:
            code, conf_path = args.original, Path(args.conf)
        conf = json.loads(conf_path.read_text())
        module = import_file(code)
    ours, original = build_pair(module, conf, args.seed)
    samples = int(conf["model_config"]["nb_samp"])

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} threads, batch {args.batch}, {samples} samples "
        f"({samples / SAMPLE_RATE:.2f} s), allocator: {decision().reason} ({kept}), "
        f"load average {load:.1f}"
    )
    print(f"config {conf_path.name}: {json.dumps(conf['model_config'])}")

    generator = torch.Generator().manual_seed(args.seed)
    audio = torch.randn(args.batch, samples, generator=generator)
    labels = torch.randint(0, 2, (args.batch,), generator=generator)
    ours.eval(), original.eval()
    with torch.inference_mode():
        difference = (ours(audio[:2]) - original(audio[:2])).abs().max().item()
    print(f"eval logits, max |ours - original| on 2 clips: {difference:.2e}")
    if difference > 1e-3:
        raise SystemExit("the two models disagree: not the same architecture or weights")

    results: dict[str, Any] = {"difference": difference, "batch": args.batch}
    if not args.no_infer:
        times = interleave(
            infer_step(ours, audio), infer_step(original, audio), args.rounds, args.warmup
        )
        per = args.batch * samples / SAMPLE_RATE
        results["infer"] = summary("inference", "x RT", per, *times)
    if not args.no_train:
        ours.train(), original.train()
        times = interleave(
            train_step(ours, adam(ours, conf["optim_config"]), audio, labels),
            train_step(original, adam(original, conf["optim_config"]), audio, labels),
            args.rounds,
            args.warmup,
        )
        results["train"] = summary("training", "clips/s", args.batch, *times)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
