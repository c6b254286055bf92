"""Every registered model trained and tested on the same data in one run (issue 6's table).

For each ``--models`` entry: train on ``DATA`` (the demo corpus by default) with the same
seed, epochs and batch size, each at its own window; then score the test split once with the
final (validation-chosen) model. Prints one Markdown row per model: parameters, training
throughput, inference real-time factor, validation EER, test EER and test EER per generator.

    python bench/bench_zoo.py --data demo/corpus --epochs 6 --models seed_cnn,lcnn_lfcc
    # all models, sized for a 2-core CPU (about an hour; the README's table):
    python bench/bench_zoo.py --data demo/corpus --epochs 6 --batch-size 8 --window-seconds 1 \
        --workdir runs/zoo
    python bench/bench_zoo.py --data demo/corpus --epochs 6    # each model's own window (GPU)

The run folders left in ``--workdir`` are ordinary training runs: ``deepfake-audio compare
--model WORKDIR/aasist --model WORKDIR/seed_cnn ...`` ranks them on any labelled folder.

*Training clips/s* is training clips times epochs over the summed epoch times of
``history.csv`` (validation included); *inference RTF* is seconds of test audio scored per
wall-clock second by the project's one scoring path (decode, windows, batched inference).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

from deepfake_audio.allocator import keep_freed_memory
from deepfake_audio.audio import decode_file
from deepfake_audio.checkpoints import load_checkpoint
from deepfake_audio.data.listing import dataset_records
from deepfake_audio.models.registry import model_names
from deepfake_audio.reports.evaluate import evaluate
from deepfake_audio.scoring.engine import score_table
from deepfake_audio.scoring.options import ScoringOptions
from deepfake_audio.training.config import TrainConfig
from deepfake_audio.training.train import train


def _percent(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.1f} %"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="demo/corpus", help="dataset root (default demo/corpus)")
    parser.add_argument("--models", default=",".join(model_names()), help="comma-separated")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr, help="Adam learning rate")
    parser.add_argument(
        "--window-seconds",
        type=float,
        help="one window for every model (default: each model's own, e.g. 4.04 s for AASIST)",
    )
    parser.add_argument("--workdir", default="/tmp/deepfake-audio-bench-zoo")
    parser.add_argument("--cache-dir", help="decode cache (default: the usual one)")
    args = parser.parse_args()
    keep_freed_memory()  # as the deepfake-audio command does

    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, torch {torch.__version__}")
    window = "each model's own" if args.window_seconds is None else f"{args.window_seconds} s"
    print(
        f"data: {args.data}; epochs {args.epochs}, batch {args.batch_size}, seed {args.seed}, "
        f"lr {args.lr}, window {window}"
    )
    test_records = dataset_records(args.data, splits=["testing"])
    rows = []
    for name in args.models.split(","):
        run_dir = Path(args.workdir) / name
        config = TrainConfig(
            data_root=args.data,
            output_dir=str(run_dir),
            model=name,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            lr=args.lr,
            window_seconds=args.window_seconds,
            cache_dir=args.cache_dir,
            progress=False,
        )
        result = train(config)
        manifest = (run_dir / "manifest.jsonl").read_text().splitlines()
        train_clips = sum('"split": "train"' in line for line in manifest)
        seconds = sum(float(row["seconds"]) for row in result.history)
        detector = load_checkpoint(result.final_model)
        began = time.perf_counter()
        evaluation = evaluate(score_table([detector], test_records, ScoringOptions()))
        elapsed = time.perf_counter() - began
        audio_seconds = sum(decode_file(r.path).duration for r in evaluation.records)
        model_key = evaluation.models[0]
        results = evaluation.results[model_key]
        best = result.history[(result.best_epoch or 1) - 1]
        rows.append(
            {
                "model": name,
                "parameters": sum(p.numel() for p in detector.model.parameters()),
                "window": detector.preprocess.window_seconds,
                "train_cps": train_clips * args.epochs / seconds,
                "rtf": audio_seconds / elapsed,
                "val_eer": float(best["val_eer"]),
                "test_eer": results["overall"]["eer"],
                "by_generator": {g: r["eer"] for g, r in results["by_generator"].items()},
            }
        )
        print(f"{name}: done in {seconds:.0f} s of training", flush=True)

    generators = sorted({g for row in rows for g in row["by_generator"]})
    header = ["model", "parameters", "window", "train clips/s", "inference RTF", "val EER",
              "test EER", *[f"test EER {g}" for g in generators]]  # fmt: skip
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [
            f"`{row['model']}`",
            f"{row['parameters']:,}",
            f"{row['window']:.2f} s",
            f"{row['train_cps']:.1f}",
            f"{row['rtf']:.1f}x",
            _percent(row["val_eer"]),
            _percent(row["test_eer"]),
            *[_percent(row["by_generator"].get(g)) for g in generators],
        ]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
