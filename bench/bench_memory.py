"""Peak memory of the data path for 1,000 versus 10,000 files: it should not grow with the count.

Each measurement runs in a fresh Python process; this script polls that process and every
process below it (the forkserver and its pool workers) in ``/proc`` every 20 ms and reports the
peak of their summed memory:

(a phase too short for the polling is covered by the main process's own peak RSS and its
memory at exit):

* ``anon``: anonymous + shared memory (``RssAnon + RssShmem``): the heap, what can't be dropped;
* ``RSS``: the same plus file-backed pages (``VmRSS``), which includes the pages of the memory-
  mapped audio cache that an epoch touched: page cache the kernel reclaims under pressure.

Scenarios (``prepare`` is the audit/training data path: discovery, probe, separation, balance):

* ``audit``: ``prepare(root)`` on an empty cache: hash and decode every file, no audio kept;
* ``train, build cache``: ``prepare(root, sample_rate=16000)`` on an empty cache: decode,
  resample and append every clip to the cache;
* ``train, cached epoch``: the same again (everything from the cache), then one epoch reading
  every selected clip's audio from the memory map.

    python bench/bench_memory.py                       # 1,000 vs 10,000 short WAV files
    python bench/bench_memory.py --counts 1000,5000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _corpus import make_corpus
from _proc import TreeMemorySampler, memory_mb

SCENARIOS = ("audit", "train, build cache", "train, cached epoch")


def child(scenario: str, root: str, cache_dir: str, workers: int) -> None:
    """One measurement, in this (fresh) process; prints a JSON line of what it saw."""
    import numpy as np

    from deepfake_audio.data.pipeline import DataOptions, prepare

    start = time.perf_counter()
    options = DataOptions(cache_dir=cache_dir, workers=workers)
    rate = None if scenario == "audit" else 16000
    data = prepare(root, options, sample_rate=rate, progress=False)
    seconds = time.perf_counter() - start
    epoch_samples = 0
    if scenario == "train, cached epoch":
        for record in data.records:  # what a data loader does, one clip at a time
            audio = data.cache.audio(record.path)
            epoch_samples += int(audio.shape[0])
            float(np.sum(audio))
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    now = memory_mb(os.getpid())  # a short last phase can fall between the parent's samples
    result = {
        "records": len(data.records),
        "discovered": data.report["discovered"],
        "seconds": seconds,
        "epoch_seconds_of_audio": epoch_samples / 16000,
        "main_peak_mb": self_peak,
        "main_anon_end_mb": now.get("RssAnon", 0.0) + now.get("RssShmem", 0.0),
    }
    print("RESULT " + json.dumps(result), flush=True)


def measure(scenario: str, root: Path, cache_dir: Path, workers: int) -> dict:
    command = [sys.executable, __file__, "--child", scenario, "--root", str(root)]
    command += ["--cache", str(cache_dir), "--workers", str(workers)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    sampler = TreeMemorySampler(process.pid)
    sampler.start()
    out, _ = process.communicate()
    sampler.stop()
    if process.returncode != 0:
        raise RuntimeError(f"{scenario} on {root} failed (exit {process.returncode})")
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result.update(
        tree_peak_rss_mb=max(sampler.peak_rss, result["main_peak_mb"]),
        tree_peak_anon_mb=max(sampler.peak_anon, result["main_anon_end_mb"]),
        processes=sampler.peak_processes,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="1000,10000", help="comma-separated file counts")
    parser.add_argument("--workdir", default="/tmp/deepfake-audio-bench", help="corpus + cache")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.root, args.cache, args.workers)
        return

    counts = [int(c) for c in args.counts.split(",")]
    workdir = Path(args.workdir)
    print(f"machine: {len(os.sched_getaffinity(0))} cores, python {sys.version.split()[0]}")
    print(f"command: python {' '.join(sys.argv)}")
    print(f"workers: {args.workers}; files: WAV, 1-2 s, 22.05/44.1/48 kHz, a quarter stereo\n")
    results: dict[tuple[str, int], dict] = {}
    for count in counts:
        start = time.perf_counter()
        root = workdir / f"memory-{count}"
        make_corpus(root, count, "wav", seed=args.seed, seconds=(1.0, 2.0))
        print(f"{count} files ready in {root} ({time.perf_counter() - start:.0f} s)", flush=True)
        cache_dir = workdir / f"memory-cache-{count}"
        for scenario in SCENARIOS:
            if scenario != "train, cached epoch":
                shutil.rmtree(cache_dir, ignore_errors=True)  # start from an empty cache
            results[scenario, count] = r = measure(scenario, root, cache_dir, args.workers)
            print(
                f"  {scenario:<20} anon {r['tree_peak_anon_mb']:7.1f} MB, RSS "
                f"{r['tree_peak_rss_mb']:7.1f} MB over {r['processes']} processes "
                f"(main alone {r['main_peak_mb']:.1f} MB), {r['records']} records, "
                f"{r['seconds']:.1f} s",
                flush=True,
            )
        shutil.rmtree(cache_dir, ignore_errors=True)

    low, high = min(counts), max(counts)
    print(
        f"\n| scenario | anon MB, {low:,} files | anon MB, {high:,} files | ratio "
        f"| RSS MB, {low:,} | RSS MB, {high:,} | ratio | main process MB, {low:,} "
        f"| main process MB, {high:,} |"
    )
    print("|---|" + "---:|" * 8)
    for scenario in SCENARIOS:
        a, b = results[scenario, low], results[scenario, high]
        print(
            f"| {scenario} | {a['tree_peak_anon_mb']:.0f} | {b['tree_peak_anon_mb']:.0f} "
            f"| {b['tree_peak_anon_mb'] / a['tree_peak_anon_mb']:.2f}x "
            f"| {a['tree_peak_rss_mb']:.0f} | {b['tree_peak_rss_mb']:.0f} "
            f"| {b['tree_peak_rss_mb'] / a['tree_peak_rss_mb']:.2f}x "
            f"| {a['main_peak_mb']:.0f} | {b['main_peak_mb']:.0f} |"
        )
    per_1k = {
        s: (results[s, high]["tree_peak_anon_mb"] - results[s, low]["tree_peak_anon_mb"])
        / ((high - low) / 1000)
        for s in SCENARIOS
    }
    print(
        "\ngrowth of anon memory per 1,000 more files: "
        + ", ".join(f"{s} {v:.1f} MB" for s, v in per_1k.items())
    )


if __name__ == "__main__":
    main()
