"""A cold ``deepfake-audio audit`` against a bare decode loop over the same files (issue 10).

For each size (``--sizes``, default 5,000 and 50,000) a corpus of short 16 kHz mono 16-bit
WAV files (0.5-1.5 s, seeded, speech-like: see ``bench/_corpus.py``) is written once into
``--workdir`` in a Fake-or-Real layout, ``ROOT/for-norm/<training|validation|testing>/
<fake|real>/clip_NNNNNN.wav`` (80/10/10 splits, labels alternating), and reused by later runs.
Then, each in a fresh process with its start-up included, alternating so that a change in
the machine's load hits both alike:

* ``loop``: the baseline, a bare single-process ``soundfile.read`` + ``soxr.resample`` to
  16 kHz over the same files (their list handed over in a file, so it does not even walk);
* ``audit``: ``deepfake-audio audit ROOT --no-progress --cache-dir EMPTY`` exactly as a user
  runs it (the console script next to this Python), on an empty cache every time: discovery,
  reading, both hashes, decoding, silence check, the cache index, separation, balance, report.

Every file is read once before timing, so both find the files in the OS page cache. Each is
run ``--repeats`` times (default 3) and the median counts. The aim (issue 10, item 6) is an
audit/loop ratio of at most 0.75: both cores in use and no fixed cost that dominates a small
dataset. The load average is printed because the machine may be shared.

    python bench/bench_audit.py                          # 5,000 and 50,000 files, median of 3
    python bench/bench_audit.py --sizes 5000 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from _corpus import LABELS, SPLITS, synth_clip
from _proc import load_average, time_process

RATE = 16000

#: The baseline: what any tool must do at least (decode, resample), in one bare process.
LOOP = """
import sys
import soundfile as sf
import soxr
with open(sys.argv[1]) as handle:
    paths = handle.read().splitlines()
for path in paths:
    samples, rate = sf.read(path, dtype="float32")
    soxr.resample(samples, rate, 16000, quality="HQ")
print(len(paths))
"""


def clip_path(root: Path, index: int) -> Path:
    """Where clip ``index`` goes: splits 80/10/10, labels alternate."""
    slot = index % 10
    split = SPLITS[0] if slot < 8 else SPLITS[1] if slot == 8 else SPLITS[2]
    return root / "for-norm" / split / LABELS[index % 2] / f"clip_{index:06d}.wav"


def _write_one(job: tuple[str, int, int]) -> None:
    import numpy as np
    import soundfile as sf

    root, index, seed = job
    rng = np.random.default_rng([seed, index])
    samples = synth_clip(rng, RATE, float(rng.uniform(0.5, 1.5)), 1)  # (frames, 1)
    path = clip_path(Path(root), index)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    sf.write(str(tmp), samples, RATE, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


def make_short_corpus(root: Path, count: int, seed: int) -> list[str]:
    """Write ``count`` short WAV clips under ``root`` (reused when its stamp says so)."""
    stamp = root / f".corpus-short-wav-{count}-{seed}"
    paths = [str(clip_path(root, i)) for i in range(count)]
    if stamp.exists():
        return paths
    shutil.rmtree(root, ignore_errors=True)  # never mix in files of another corpus
    root.mkdir(parents=True)
    jobs = [(str(root), i, seed) for i in range(count)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for _ in pool.map(_write_one, jobs, chunksize=256):
            pass
    stamp.touch()
    return paths


def audit_command() -> list[str]:
    """The command a user runs: the installed console script beside this Python, else -m."""
    script = Path(sys.executable).parent / "deepfake-audio"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "deepfake_audio"]


def measure(
    root: Path, paths: list[str], repeats: int, workdir: Path, extra: list[str]
) -> dict[str, list[float]]:
    """Wall seconds of the loop and of a cold audit, ``repeats`` times each, alternating."""
    for path in paths:  # warm the page cache for both alike
        with open(path, "rb") as handle:
            handle.read()
    listing = workdir / f"paths-{len(paths)}.txt"
    listing.write_text("\n".join(paths) + "\n")
    times: dict[str, list[float]] = {"loop": [], "audit": []}
    for attempt in range(repeats):
        seconds, out = time_process([sys.executable, "-c", LOOP, str(listing)])
        assert int(out) == len(paths), out
        times["loop"].append(seconds)
        with tempfile.TemporaryDirectory(dir=workdir, prefix="cache-") as cache_dir:
            command = [*audit_command(), "audit", str(root), "--no-progress", *extra]
            seconds, out = time_process([*command, "--cache-dir", cache_dir])
        if f"Files discovered: {len(paths)}" not in out:
            raise RuntimeError(f"the audit did not see {len(paths)} files:\n{out[:2000]}")
        times["audit"].append(seconds)
        print(
            f"  run {attempt + 1}: loop {times['loop'][-1]:.2f} s, audit {seconds:.2f} s "
            f"(load average {load_average()})",
            flush=True,
        )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="5000,50000", help="comma-separated file counts")
    parser.add_argument("--repeats", type=int, default=3, help="median of N runs (default 3)")
    parser.add_argument(
        "--workdir",
        default=str(Path(tempfile.gettempdir()) / "deepfake-audio-bench" / "audit"),
        help="corpora (kept and reused) and the empty caches",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--audit-args",
        default="",
        help="more audit options, e.g. '--sample-rate 16000' to also cache the audio "
        "training reads",
    )
    args = parser.parse_args()
    extra = args.audit_args.split()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    print(f"machine: {len(os.sched_getaffinity(0))} cores, python {sys.version.split()[0]}")
    print(f"command: python {' '.join(sys.argv)}")
    print(
        f"audit: {' '.join(audit_command())} audit ROOT --no-progress {' '.join(extra)} "
        "--cache-dir EMPTY"
    )
    print(f"load average at start: {load_average()}\n")
    rows = []
    for size in sizes:
        start = time.perf_counter()
        root = workdir / f"short-{size}"
        paths = make_short_corpus(root, size, args.seed)
        megabytes = sum(os.path.getsize(p) for p in paths) / 1e6
        print(f"{size} files, {megabytes:.0f} MB in {root} (ready in "
              f"{time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
        times = measure(root, paths, args.repeats, workdir, extra)
        rows.append((size, {k: statistics.median(v) for k, v in times.items()}, load_average()))

    print(f"\nMedian of {args.repeats} fresh processes each (aim: audit/loop <= 0.75)\n")
    print("| files | loop s | audit s | audit / loop | load average (1/5/15 min) after |")
    print("|---:|---:|---:|---:|---|")
    for size, median, load in rows:
        loop, audit = median["loop"], median["audit"]
        print(f"| {size:,} | {loop:.2f} | {audit:.2f} | {audit / loop:.2f} | {load} |")


if __name__ == "__main__":
    main()
