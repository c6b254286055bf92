"""Files per second of scan + hash + decode + resample, against the floor and librosa.

For each format separately, on the same generated files (see ``bench/_corpus.py``):

* ``floor``: bare ``soundfile.read`` + mixdown + ``soxr.resample`` to 16 kHz in one process
  (M4A: libsndfile cannot read it, so the floor is bare ``av`` decode + mixdown + soxr);
* ``librosa``: ``librosa.load(path, sr=16000, mono=True)`` in one process;
* ``ours w=1`` / ``ours w=2``: ``probe_files(paths, target_rate=16000, workers=N)``, i.e. read
  once, hash the bytes, decode, hash the audio, resample; ``w=2`` includes starting the pool;
* ``cache build`` / ``cache reread``: ``ClipCache.probe(..., with_audio=True, workers=2)`` on an
  empty cache (decode + append to the cache), then again from a fresh ``ClipCache`` (a second
  run) reading every clip's audio back from the memory map: no decoding.

Every file is read once before timing, so all contenders find it in the OS page cache alike.
Each in-process contender is warmed up on one file first (imports, JIT), outside the timing.
Each contender runs ``--repeat`` times (default 2) and its best run counts: other load on the
machine only ever slows a run. CPU time is summed over this process and every process below
it (the forkserver and the pool workers, read from ``/proc``), so files per CPU-second compare
per-core cost even on a busy machine; "after start-up" counts from the first result to the
last, leaving out the pool's start-up (forkserver, worker imports).

    python bench/bench_decode.py                 # 750 files per format, best of 2
    python bench/bench_decode.py --files 200 --formats wav,mp3
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from _corpus import FORMATS, make_corpus
from _proc import cpu_seconds, descendants

TARGET_RATE = 16000
BATCH = 16  # probe_files' default batch size


def floor_soundfile(path: str) -> np.ndarray:
    import soundfile as sf
    import soxr

    samples, rate = sf.read(path, dtype="float32", always_2d=True)  # (frames, channels)
    mono = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1, dtype=np.float32)
    return soxr.resample(mono, rate, TARGET_RATE, quality="HQ")


def floor_av(path: str) -> np.ndarray:
    import av
    import soxr

    with av.open(path) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        chunks = [frame.to_ndarray() for frame in container.decode(stream)]  # (channels, n)
    samples = np.concatenate(chunks, axis=1)
    if samples.dtype != np.float32:  # AAC decodes to planar float; others may not
        samples = samples.astype(np.float32)
    mono = samples[0] if samples.shape[0] == 1 else samples.mean(axis=0, dtype=np.float32)
    return soxr.resample(mono, rate, TARGET_RATE, quality="HQ")


def librosa_load(path: str) -> np.ndarray:
    import warnings

    import librosa

    with warnings.catch_warnings():  # "PySoundFile failed. Trying audioread instead." etc.
        warnings.simplefilter("ignore")
        return librosa.load(path, sr=TARGET_RATE, mono=True)[0]


class Clock:
    """Wall and CPU time of one run, CPU summed over this process and all below it.

    Pool workers exit when the pool closes, taking their CPU counters with them, so a run
    that uses them calls :meth:`stop` while they are still alive (after the last result).
    """

    def __init__(self) -> None:
        self._cpu0 = cpu_seconds(descendants(os.getpid()))
        self.start = time.perf_counter()
        self.first: float | None = None  # wall time of the first result, when recorded
        self.first_cpu: float | None = None  # tree CPU seconds used by then
        self.wall: float | None = None
        self.cpu: float | None = None

    def first_result(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()
            cpu = cpu_seconds(descendants(os.getpid()))
            self.first_cpu = sum(t - self._cpu0.get(pid, 0.0) for pid, t in cpu.items())

    def stop(self) -> None:
        if self.wall is not None:
            return
        self.wall = time.perf_counter() - self.start
        cpu1 = cpu_seconds(descendants(os.getpid()))
        self.cpu = sum(t - self._cpu0.get(pid, 0.0) for pid, t in cpu1.items())


Run = Callable[[Clock], int]


def per_file(func: Callable[[str], object], paths: Sequence[str]) -> Run:
    def run(clock: Clock) -> int:
        for path in paths:
            func(path)
        return len(paths)

    return run


def ours(paths: Sequence[str], workers: int) -> Run:
    from deepfake_audio.data.probe import probe_files

    def run(clock: Clock) -> int:
        count = 0
        for result in probe_files(paths, target_rate=TARGET_RATE, workers=workers):
            clock.first_result()
            if result.error:
                raise RuntimeError(f"{result.path}: {result.error}")
            count += 1
            if count == len(paths):
                clock.stop()  # before the pool shuts down (see Clock)
        return count

    return run


def cache_build(paths: Sequence[str], folder: Path, workers: int) -> Run:
    from deepfake_audio.data.cache import ClipCache

    def run(clock: Clock) -> int:
        shutil.rmtree(folder, ignore_errors=True)
        done = 0

        def seen(_result: object) -> None:
            nonlocal done
            done += 1
            if done == len(paths):
                clock.stop()

        cache = ClipCache(folder, TARGET_RATE)
        return len(cache.probe(paths, with_audio=True, workers=workers, on_result=seen))

    return run


def cache_reread(paths: Sequence[str], folder: Path, workers: int) -> Run:
    from deepfake_audio.data.cache import ClipCache

    def run(clock: Clock) -> int:
        cache = ClipCache(folder, TARGET_RATE)  # a second run: a fresh object, same folder
        probes = cache.probe(paths, with_audio=True, workers=workers)
        total = 0.0
        for path in paths:  # one epoch over the cached audio
            total += float(np.sum(cache.audio(path)))
        return len(probes)

    return run


def stage_breakdown(paths: Sequence[str]) -> dict[str, float]:
    """Milliseconds per file of each step of ``probe_file`` (one process), and the floor's."""
    import soundfile as sf

    from deepfake_audio.audio import (
        audio_content_hash,
        decode_bytes,
        file_bytes_hash,
        read_bytes,
        resample,
    )

    totals = dict.fromkeys(
        ("read", "decode", "hash bytes", "mono", "hash audio", "peak", "resample"), 0.0
    )
    floor_read = 0.0
    for path in paths:
        t0 = time.perf_counter()
        data = read_bytes(path)
        t1 = time.perf_counter()
        decoded = decode_bytes(data, path)
        t2 = time.perf_counter()
        file_bytes_hash(data)
        t3 = time.perf_counter()
        mono = decoded.mono()
        t4 = time.perf_counter()
        audio_content_hash(mono, decoded.sample_rate)
        t5 = time.perf_counter()
        np.max(np.abs(mono))
        t6 = time.perf_counter()
        resample(mono, decoded.sample_rate, TARGET_RATE)
        t7 = time.perf_counter()
        for key, took in zip(
            totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6), strict=True
        ):
            totals[key] += took
        if not path.endswith(".m4a"):
            t8 = time.perf_counter()
            sf.read(path, dtype="float32", always_2d=True)
            floor_read += time.perf_counter() - t8
    out = {key: 1e3 * value / len(paths) for key, value in totals.items()}
    out["(floor: sf.read(path))"] = 1e3 * floor_read / len(paths)
    return out


def machine_info() -> list[str]:
    import av
    import soundfile
    import soxr

    try:
        import librosa

        librosa_version = librosa.__version__
    except ImportError:
        librosa_version = "not installed"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if "model name" in line)
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"machine: {cores} cores usable ({cpu}), {platform.system()} {platform.release()}",
        f"python {platform.python_version()}, numpy {np.__version__}, soundfile "
        f"{soundfile.__version__} (libsndfile {soundfile.__libsndfile_version__}), soxr "
        f"{soxr.__version__}, av {av.__version__}, librosa {librosa_version}",
        "load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()),
    ]


def bench_format(fmt: str, paths: Sequence[str], workdir: Path, workers: int, repeat: int) -> dict:
    """Files/s of every contender on ``paths`` (all of format ``fmt``)."""
    for path in paths:  # warm the OS page cache for everyone alike
        Path(path).read_bytes()
    floor_name, floor_func = (
        ("floor (av+soxr)", floor_av)
        if fmt == "m4a"
        else (
            "floor (soundfile+soxr)",
            floor_soundfile,
        )
    )
    cache_dir = workdir / f"cache-{fmt}"
    contenders: list[tuple[str, Callable[[], int], Callable[[str], object] | None]] = [
        (floor_name, per_file(floor_func, paths), floor_func),
        ("librosa.load", per_file(librosa_load, paths), librosa_load),
        ("ours w=1", ours(paths, 1), None),
        (f"ours w={workers}", ours(paths, workers), None),
        (f"cache build w={workers}", cache_build(paths, cache_dir, workers), None),
        (f"cache reread w={workers}", cache_reread(paths, cache_dir, workers), None),
    ]
    # Best of ``repeat`` runs per contender: other load on the machine only ever slows a run.
    rates: dict[str, float | None] = {}
    cpu_rates: dict[str, float | None] = {}
    steady: dict[str, float] = {}
    steady_cpu: dict[str, float] = {}

    def best(table: dict, key: str, value: float | None) -> None:
        if value is not None:
            table[key] = max(value, table.get(key) or 0.0)

    for attempt in range(repeat):
        for name, run, single in contenders:
            if attempt and name in rates and rates[name] is None:
                continue  # could not read it the first time
            try:
                if single is not None:
                    single(paths[0])  # warm-up outside the timing (imports, numba JIT)
                else:
                    ours(paths[:1], 1)(Clock())
                clock = Clock()
                count = run(clock)
                clock.stop()
            except Exception as exc:  # librosa without FFmpeg on M4A, for one
                reason = str(exc).strip().splitlines()[0][:60] if str(exc).strip() else ""
                print(f"  {name:<24} cannot read ({type(exc).__name__}: {reason})", flush=True)
                rates[name] = cpu_rates[name] = None
                continue
            best(rates, name, count / clock.wall)
            best(cpu_rates, name, count / clock.cpu if clock.cpu else None)
            line = f"  {name:<24} {count / clock.wall:8.1f} files/s  ({clock.wall:.2f} s wall"
            line += f", {clock.cpu:.2f} s CPU)" if clock.cpu else ")"
            # Batches done by the first result: one per worker at most (count them all, so
            # the rate after start-up is if anything too low).
            skip = BATCH * (workers if name.endswith(f"w={workers}") else 1)
            if clock.first is not None and count > 2 * skip:
                # From the first result to the last: without the pool's start-up.
                wall = clock.start + clock.wall - clock.first
                best(steady, name, (count - skip) / wall)
                best(steady_cpu, name, (count - skip) / (clock.cpu - clock.first_cpu))
                line += f"; after start-up {(count - skip) / wall:.1f} files/s"
                line += f" ({clock.cpu - clock.first_cpu:.2f} s CPU)"
            print(line, flush=True)
    shutil.rmtree(cache_dir, ignore_errors=True)
    stages = stage_breakdown(paths)
    print("  ms per file (ours, one process): "
          + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()), flush=True)  # fmt: skip
    return {"floor": floor_name, "rates": rates, "cpu": cpu_rates, "steady": steady,
            "steady_cpu": steady_cpu, "stages": stages}  # fmt: skip


def fmt_rate(value: float | None) -> str:
    return "cannot read" if value is None else f"{value:.0f}"


def fmt_ratio(num: float | None, den: float | None) -> str:
    return "n/a" if num is None or den is None else f"{num / den:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=750, help="files per format (default 750)")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset")
    parser.add_argument("--workdir", default="/tmp/deepfake-audio-bench", help="corpus + cache")
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel runs")
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        parser.error(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    workdir = Path(args.workdir)

    print("\n".join(machine_info()))
    print(f"command: python {' '.join(sys.argv)}")
    print("page cache: every file is read once before timing (warm for all contenders)\n")
    summary = {}
    for fmt in formats:
        start = time.perf_counter()
        paths = make_corpus(workdir / "corpus" / fmt, args.files, fmt, seed=args.seed)
        size = sum(os.path.getsize(p) for p in paths) / 1e6
        print(f"{fmt}: {len(paths)} files, {size:.0f} MB (corpus ready in "
              f"{time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
        summary[fmt] = bench_format(fmt, paths, workdir, args.workers, args.repeat)

    w = args.workers
    print("\nThroughput, files/s (wall clock; w = worker processes; CPU = files per CPU-second)\n")
    print(f"| format | floor | librosa.load | ours w=1 | ours w={w} | ours w={w} after start-up "
          f"| cache build w={w} | cache reread | floor, CPU | ours w={w}, CPU |")  # fmt: skip
    print("|---|" + "---:|" * 9)
    for fmt, result in summary.items():
        r, cpu = result["rates"], result["cpu"]
        floor = result["floor"]
        cells = [
            f"{fmt_rate(r[floor])} ({floor.split(' ', 1)[1].strip('()')})",
            fmt_rate(r["librosa.load"]),
            fmt_rate(r["ours w=1"]),
            fmt_rate(r[f"ours w={w}"]),
            fmt_rate(result["steady"].get(f"ours w={w}")),
            fmt_rate(r[f"cache build w={w}"]),
            fmt_rate(r[f"cache reread w={w}"]),
            fmt_rate(cpu[floor]),
            fmt_rate(cpu[f"ours w={w}"]),
        ]
        print(f"| {fmt.upper()} | " + " | ".join(cells) + " |")

    print("\nRatios (aims: per core >= 0.67x of the floor, i.e. within 1.5x; > 1x librosa)\n")
    print(f"| format | ours w={w} per core / floor | same, after start-up | same, by CPU time "
          f"| same, by CPU after start-up | ours w=1 / floor | ours w=1 / librosa "
          f"| ours w={w} / librosa |")  # fmt: skip
    print("|---|" + "---:|" * 7)
    for fmt, result in summary.items():
        r, cpu = result["rates"], result["cpu"]
        floor = r[result["floor"]]
        par, par_steady = r[f"ours w={w}"], result["steady"].get(f"ours w={w}")
        cells = [
            fmt_ratio(None if par is None else par / w, floor),
            fmt_ratio(None if par_steady is None else par_steady / w, floor),
            fmt_ratio(cpu[f"ours w={w}"], cpu[result["floor"]]),
            fmt_ratio(result["steady_cpu"].get(f"ours w={w}"), cpu[result["floor"]]),
            fmt_ratio(r["ours w=1"], floor),
            fmt_ratio(r["ours w=1"], r["librosa.load"]),
            fmt_ratio(par, r["librosa.load"]),
        ]
        print(f"| {fmt.upper()} | " + " | ".join(cells) + " |")

    print("\nWhere the time goes, ms per file (ours, one process)\n")
    keys = list(next(iter(summary.values()))["stages"])
    print("| format | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for fmt, result in summary.items():
        st = result["stages"]
        cells = [
            f"{st[k]:.2f}" if not (fmt == "m4a" and k.startswith("(floor")) else "n/a" for k in keys
        ]
        print(f"| {fmt.upper()} | " + " | ".join(cells) + " |")
    print("\nload average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
