"""A generated, Fake-or-Real-shaped corpus for the benchmarks (deterministic for a seed).

``ROOT/for-bench/<training|validation|testing>/<fake|real>/clip_NNNNNN.<ext>``: speech-like
signals (a harmonic series on a wandering pitch, shaped by a noise-driven syllable envelope,
plus breath noise), 1-6 s, at 22.05/44.1/48 kHz, a quarter of them stereo. Files are written
on every core; a corpus already complete in ``ROOT`` is reused, not rewritten.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

# Run as ``python bench/x.py`` from a checkout without installing: find the package in src/.
_SRC = Path(__file__).resolve().parent.parent / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

FORMATS = ("wav", "flac", "mp3", "m4a")
RATES = (22050, 44100, 48000)
SPLITS = ("training", "validation", "testing")
LABELS = ("fake", "real")


def synth_clip(rng: np.random.Generator, rate: int, seconds: float, channels: int) -> np.ndarray:
    """A speech-like clip, ``(frames, channels)`` float32 peaking near -3 dBFS."""
    n = int(rate * seconds)
    t = np.arange(n) / rate
    # Pitch wanders around a speaker's base (90-250 Hz) with a slow random walk.
    base = rng.uniform(90.0, 250.0)
    walk = np.cumsum(rng.normal(0.0, 1.0, n // 256 + 2))
    walk = np.interp(np.arange(n), np.arange(walk.size) * 256, walk)
    f0 = base * (1.0 + 0.08 * np.tanh(walk / 8.0))
    phase = np.cumsum(f0 / rate)  # in periods
    # One period of a harmonic series with random weights, read as a wavetable (far cheaper
    # than summing sines per sample).
    harmonics = min(20, int(0.45 * rate / (base * 1.1)))
    grid = np.arange(1024) / 1024
    table = np.zeros(1025)
    for k in range(1, harmonics + 1):
        table[:-1] += rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * k * grid + rng.uniform(0, 6.3))
    table[-1] = table[0]
    voiced = np.interp(np.mod(phase, 1.0) * 1024, np.arange(1025), table)
    # Syllable envelope: low-passed noise, rectified (about 4 syllables a second).
    knots = int(seconds * 8) + 2
    env = np.abs(np.interp(t, np.linspace(0, seconds, knots), rng.normal(size=knots)))
    noise = rng.normal(0.0, 0.05, n)
    mono = env * voiced + noise * (0.3 + env)
    out = np.empty((n, channels))
    for c in range(channels):
        out[:, c] = mono * (1.0 - 0.2 * c) + rng.normal(0.0, 0.01, n) * c
    return (0.7 * out / np.max(np.abs(out))).astype(np.float32)


def clip_path(root: Path, index: int, fmt: str) -> Path:
    """Where clip ``index`` goes: splits 80/10/10, labels alternate."""
    slot = index % 10
    split = SPLITS[0] if slot < 8 else SPLITS[1] if slot == 8 else SPLITS[2]
    label = LABELS[index % 2]
    return root / "for-bench" / split / label / f"clip_{index:06d}.{fmt}"


def _write_one(args: tuple[str, int, str, int, float, float]) -> str:
    import soundfile as sf

    from deepfake_audio.audio import encode_ffmpeg

    root, index, fmt, seed, min_s, max_s = args
    rng = np.random.default_rng([seed, index])
    rate = int(rng.choice(RATES))
    channels = 2 if rng.random() < 0.25 else 1
    seconds = float(rng.uniform(min_s, max_s))
    samples = synth_clip(rng, rate, seconds, channels)
    path = clip_path(Path(root), index, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    if fmt == "m4a":
        tmp.write_bytes(encode_ffmpeg(samples, rate, ".m4a"))
    else:
        subtype = {"wav": "PCM_16", "flac": "PCM_16", "mp3": None}[fmt]
        kind = {"wav": "WAV", "flac": "FLAC", "mp3": "MP3"}[fmt]
        sf.write(str(tmp), samples, rate, subtype=subtype, format=kind)
    os.replace(tmp, path)
    return str(path)


def make_corpus(
    root: str | os.PathLike[str],
    count: int,
    fmt: str,
    *,
    seed: int = 0,
    seconds: tuple[float, float] = (1.0, 6.0),
    workers: int | None = None,
) -> list[str]:
    """Write ``count`` clips of format ``fmt`` under ``root``; returns their paths, sorted.

    A root already holding exactly these files (same count, format, seed, durations: see the
    stamp file) is reused as is.
    """
    root = Path(root)
    stamp = root / f".corpus-{fmt}-{count}-{seed}-{seconds[0]}-{seconds[1]}"
    paths = [str(clip_path(root, i, fmt)) for i in range(count)]
    if stamp.exists():
        return sorted(paths)
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob(".corpus-*"):
        old.unlink()
    jobs = [(str(root), i, fmt, seed, seconds[0], seconds[1]) for i in range(count)]
    workers = workers or os.cpu_count() or 1
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(_write_one, jobs, chunksize=32):
            pass
    # Files from an earlier, larger corpus in the same root would be discovered too.
    wanted = set(paths)
    for stale in (root / "for-bench").rglob("clip_*"):
        if str(stale) not in wanted:
            stale.unlink()
    stamp.touch()
    return sorted(paths)


def main() -> None:
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", help="folder to write the corpus into (one per format)")
    parser.add_argument("--files", type=int, default=1000, help="clips per format")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=6.0)
    args = parser.parse_args()
    for fmt in args.formats.split(","):
        start = time.perf_counter()
        target = Path(args.root) / fmt
        paths = make_corpus(
            target, args.files, fmt, seed=args.seed, seconds=(args.min_seconds, args.max_seconds)
        )
        took = time.perf_counter() - start
        print(f"{fmt}: {len(paths)} files in {target} ({took:.1f} s)")


if __name__ == "__main__":
    main()
