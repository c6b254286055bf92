"""The CPU's practical peak: a float32 matrix product's multiply-accumulates per second.

A model cannot run faster than the machine's best dense kernel, so this is the ceiling to
hold a model's GMAC per second of audio against (``bench/bench_models.py`` prints that,
and its ``% peak`` column uses the same 2048x2048 product). For each ``--sizes`` N, an
N x N by N x N product in torch with ``torch.set_num_threads(--threads)``: one untimed
product, then the best and the median of ``--repeats``; GMAC/s = N^3 / seconds.

    python bench/bench_matmul.py
    python bench/bench_matmul.py --sizes 1024 2048 4096 --threads 2 --repeats 20
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from _proc import load_average


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeats", type=int, default=10, help="timed products (default 10)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"{platform.machine()}, torch {torch.__version__} with {args.threads} thread(s); "
        f"load average {load_average()}\n"
    )
    print("| size | GMAC/s, best | GMAC/s, median |")
    print("|---|---:|---:|")
    for n in args.sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b  # untimed: allocation, thread pool start
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
        best, median = n**3 / min(times) / 1e9, n**3 / statistics.median(times) / 1e9
        print(f"| {n}x{n} | {best:.0f} | {median:.0f} |", flush=True)
    print(f"\nload average at end: {load_average()}")


if __name__ == "__main__":
    main()
