"""Inference speed of the registered models on CPU: real-time factor and work per second.

For each model: parameters, multiply-accumulates (MACs) per second of audio (counted by
``torch.utils.flop_counter`` on one window), and the real-time factor of batched inference
on random audio (seconds of audio scored per second of wall time; best of ``--repeats``
after one warm-up batch), with ``torch.set_num_threads(--threads)``.

    python bench/bench_models.py                          # all models, 2 threads, batch 8
    python bench/bench_models.py --models aasist_l --batch 4 --threads 2
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from deepfake_audio.models import build_model, model_names


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(model_names()))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} threads, batch {args.batch}, load average {load:.1f}"
    )
    print(f"{'model':<10} {'window':>8} {'params':>12} {'GMAC/s audio':>13} {'x real time':>12}")
    for name in args.models.split(","):
        model = build_model(name).eval()
        samples = model.config.input_samples
        rate = getattr(model.config, "sample_rate", 16000)
        params = sum(p.numel() for p in model.parameters())
        gmacs = macs_per_second(model, samples, rate) / 1e9
        rtf = real_time_factor(model, samples, rate, args.batch, args.repeats)
        print(f"{name:<10} {samples / rate:>7.2f}s {params:>12,} {gmacs:>13.2f} {rtf:>12.1f}")


if __name__ == "__main__":
    main()
