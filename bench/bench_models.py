"""Inference speed of the registered models on CPU: real-time factor and work per second.

For each model: parameters, multiply-accumulates (MACs) per second of audio (counted by
``torch.utils.flop_counter`` on one window), and the real-time factor of batched inference
on random audio (seconds of audio scored per second of wall time; best of ``--repeats``
after one warm-up batch), with ``torch.set_num_threads(--threads)``.

The real-time factor is measured twice per model, each in a fresh process: with glibc's
default allocator settings (the baseline) and with the freed memory kept, as the
``deepfake-audio`` command runs (:mod:`deepfake_audio.allocator`); the last column is
their ratio, and each process's peak memory is printed too.

    python bench/bench_models.py                          # all models, 2 threads, batch 8
    python bench/bench_models.py --models aasist_l --batch 4 --threads 2
    python bench/bench_models.py --models aasist_l,lcnn_lfcc --train   # training steps too
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from deepfake_audio.allocator import ENV_SWITCH, keep_freed_memory
from deepfake_audio.models.registry import build_model, model_names


def macs_per_second(model: torch.nn.Module, samples: int, rate: int) -> float:
    with FlopCounterMode(display=False) as counter:  # (needs autograd on: no no_grad)
        model(torch.randn(1, samples))
    return counter.get_total_flops() / 2 / (samples / rate)


def real_time_factor(model: torch.nn.Module, samples: int, rate: int, batch: int, repeats: int):
    audio = torch.randn(batch, samples)
    with torch.inference_mode():
        model(audio)  # warm-up: allocator, oneDNN kernel selection
        best = min(_timed(model, audio) for _ in range(repeats))
    return batch * samples / rate / best


def _timed(model: torch.nn.Module, audio: torch.Tensor) -> float:
    start = time.perf_counter()
    model(audio)
    return time.perf_counter() - start


def _measure_in_child(name: str, args: argparse.Namespace, keep: bool) -> dict:
    """Real-time factor and peak memory of ``name`` in a fresh process (allocator state is
    process-wide and cannot be reset)."""
    command = [sys.executable, __file__, "--child", name, "--batch", str(args.batch),
               "--threads", str(args.threads), "--repeats", str(args.repeats)]  # fmt: skip
    command += ["--train"] if args.train else []
    env = dict(os.environ, **{ENV_SWITCH: "1" if keep else "0"})
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def train_clips_per_second(model: torch.nn.Module, samples: int, batch: int, repeats: int):
    """Clips/s of training steps (forward, cross-entropy, backward, Adam) on random audio."""
    model.train()
    audio, labels = torch.randn(batch, samples), torch.randint(0, 2, (batch,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> float:
        start = time.perf_counter()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(audio), labels).backward()
        optimizer.step()
        return time.perf_counter() - start

    step()  # warm-up
    return batch / min(step() for _ in range(repeats))


def _child(name: str, args: argparse.Namespace) -> None:
    kept = keep_freed_memory()
    torch.set_num_threads(args.threads)
    model = build_model(name).eval()
    samples = model.config.input_samples
    rate = getattr(model.config, "sample_rate", 16000)
    result = {"kept": kept, "rtf": real_time_factor(model, samples, rate, args.batch, args.repeats)}
    if args.train:
        result["train"] = train_clips_per_second(model, samples, args.batch, args.repeats)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(model_names()))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--train", action="store_true", help="also time training steps (slow for AASIST)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one measurement, as JSON
    args = parser.parse_args()
    if args.child:
        _child(args.child, args)
        return
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} threads, batch {args.batch}, load average {load:.1f}"
    )
    print(
        f"{'model':<10} {'window':>8} {'params':>12} {'GMAC/s audio':>13} "
        f"{'x RT glibc':>11} {'x RT kept':>10} {'ratio':>6} {'MB glibc':>9} {'MB kept':>8}"
    )
    for name in args.models.split(","):
        model = build_model(name).eval()
        samples = model.config.input_samples
        rate = getattr(model.config, "sample_rate", 16000)
        params = sum(p.numel() for p in model.parameters())
        gmacs = macs_per_second(model, samples, rate) / 1e9
        base = _measure_in_child(name, args, keep=False)
        kept = _measure_in_child(name, args, keep=True)
        if not kept["kept"]:
            print("(this C library is not glibc: both columns use its default allocator)")
        print(
            f"{name:<10} {samples / rate:>7.2f}s {params:>12,} {gmacs:>13.2f} "
            f"{base['rtf']:>11.1f} {kept['rtf']:>10.1f} {kept['rtf'] / base['rtf']:>5.2f}x "
            f"{base['peak_mb']:>9.0f} {kept['peak_mb']:>8.0f}"
        )
        if args.train:
            print(
                f"{'':<10} training, clips/s: glibc {base['train']:.2f}, kept "
                f"{kept['train']:.2f} ({kept['train'] / base['train']:.2f}x)"
            )


if __name__ == "__main__":
    main()
