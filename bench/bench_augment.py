"""Cost of each training-time augmentation per window, on one core.

Each augmentation of ``deepfake_audio.augment`` is switched on alone (probability 1) and
applied to ``--windows`` speech-like windows (``bench/_corpus.py``) of ``--seconds`` at
16 kHz, each with its own seeded generator, as the data loader calls it. Printed per
augmentation: the median milliseconds per window and the range over the windows (one
untimed call first: imports, FFmpeg's codec set-up). The BLAS and OpenMP pools are held to
one thread, as in a data-loader worker; a DataLoader runs one such worker per core.

    python bench/bench_augment.py
    python bench/bench_augment.py --windows 50 --seconds 4.0375
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from _corpus import synth_clip  # noqa: E402
from _proc import load_average  # noqa: E402

from deepfake_audio.augment import AugmentConfig, build_augmenter  # noqa: E402

RATE = 16000

#: (name, the ``augment`` table of a config file that switches it on alone)
CASES: list[tuple[str, dict]] = [
    ("gain", {"gain": {"enabled": True}}),
    ("noise (white)", {"noise": {"enabled": True}}),
    ("noise (pink)", {"noise": {"enabled": True, "colour": "pink"}}),
    ("rawboost isd", {"rawboost": {"enabled": True, "algorithm": "isd"}}),
    ("rawboost ssi", {"rawboost": {"enabled": True, "algorithm": "ssi"}}),
    ("rawboost lnl", {"rawboost": {"enabled": True, "algorithm": "lnl"}}),
    ("rawboost lnl+isd (default)", {"rawboost": {"enabled": True}}),
    ("rawboost lnl+isd+ssi", {"rawboost": {"enabled": True, "algorithm": "lnl+isd+ssi"}}),
    ("codec (mp3/aac/opus)", {"codec": {"enabled": True, "p": 1.0}}),
]


def windows(count: int, seconds: float, seed: int) -> list[np.ndarray]:
    """``count`` mono float32 windows of speech-like audio at 16 kHz."""
    rng = np.random.default_rng(seed)
    return [synth_clip(rng, RATE, seconds, 1)[:, 0] for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=30, help="timed windows (default 30)")
    parser.add_argument("--seconds", type=float, default=4.0375, help="window length (4.0375)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    audio = windows(args.windows, args.seconds, args.seed)
    print(
        f"{args.windows} windows of {args.seconds} s at 16 kHz, one thread; load average "
        f"{load_average()}\n"
    )
    print("| augmentation | ms per window, median | range |")
    print("|---|---:|---:|")
    for name, table in CASES:
        augment = build_augmenter(AugmentConfig.from_dict(table))
        augment(audio[0], np.random.default_rng([args.seed, len(audio)]))  # untimed: set-up
        times = []
        for i, window in enumerate(audio):
            rng = np.random.default_rng([args.seed, i])
            start = time.perf_counter()
            augment(window, rng)
            times.append(1000 * (time.perf_counter() - start))
        print(
            f"| {name} | {statistics.median(times):.1f} | {min(times):.1f}-{max(times):.1f} |",
            flush=True,
        )
    print(f"\nload average at end: {load_average()}")


if __name__ == "__main__":
    main()
