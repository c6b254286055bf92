"""Scoring options shared by compare, predict and evaluate, and loading their models."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from deepfake_audio.checkpoints import Detector, final_model_path, load_checkpoint
from deepfake_audio.parallel import default_workers
from deepfake_audio.scoring.engine import AGGREGATIONS, resolve_device
from deepfake_audio.scoring.fusion import Fusion


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def add_scoring_options(parser: argparse.ArgumentParser, *, verdicts: bool = True) -> None:
    """The scoring options; ``verdicts`` adds ``--threshold`` and ``--fusion`` (not for
    ``fuse``, which fits a fusion and its threshold rather than using them)."""
    group = parser.add_argument_group("scoring")
    if verdicts:
        group.add_argument(
            "--threshold",
            type=_probability,
            help="call a file fake when its probability of fake is at least this (default: "
            "each model's stored validation-EER threshold; the ensemble uses their mean, the "
            "fusion its own)",
        )
        group.add_argument(
            "--fusion",
            metavar="FILE",
            help="a fusion file written by `deepfake-audio fuse` for exactly these models: "
            "adds a model named fusion (learned weights, its own stored threshold)",
        )
    group.add_argument(
        "--aggregate",
        choices=AGGREGATIONS,
        default="mean",
        help="file score from its window scores: mean (default) or max (flags a file when "
        "any part of it looks fake)",
    )
    group.add_argument(
        "--hop",
        type=_positive_float,
        metavar="SECONDS",
        help="step between windows (default: the model's window length, no overlap; the last "
        "window is aligned to the end of the file)",
    )
    group.add_argument(
        "--batch-size", type=int, default=64, help="windows per inference batch (default 64)"
    )
    group.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="where the models run (default: the GPU when there is one)",
    )
    group.add_argument(
        "--workers",
        type=int,
        help="processes decoding audio while the models run "
        f"(default {default_workers()}: every core; 1 decodes in the main process)",
    )
    group.add_argument("--no-progress", action="store_true", help="hide progress bars")


def scoring_kwargs(args: argparse.Namespace) -> dict:
    """Keyword arguments for compare_models / predict_files / evaluate_models."""
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    return {
        "threshold": getattr(args, "threshold", None),
        "hop_seconds": args.hop,
        "method": args.aggregate,
        "batch_size": args.batch_size,
        "workers": default_workers() if args.workers is None else max(1, args.workers),
        "progress": not args.no_progress,
    }


def load_detectors(paths: Sequence[str], device: str = "auto") -> list[Detector]:
    """Load every checkpoint (or run folder's final model) onto ``device`` (``auto``: the
    GPU when there is one)."""
    target = resolve_device(device)
    return [load_checkpoint(final_model_path(p), device=target) for p in paths]


def load_fusion(args: argparse.Namespace) -> Fusion | None:
    """The ``--fusion`` file, if any; warns when scoring options differ from its fit's.

    A fusion's weights and threshold suit the scores they were fitted on: scores aggregated
    with ``max`` instead of ``mean`` (or another hop) shift, so its threshold may not hold.
    """
    if not getattr(args, "fusion", None):
        return None
    fusion = Fusion.load(args.fusion)
    fitted = fusion.fitted
    for option, key, value in (
        ("--aggregate", "aggregate", args.aggregate),
        ("--hop", "hop_seconds", args.hop),
    ):
        if key in fitted and fitted[key] != value:
            print(
                f"warning: fusion {args.fusion} was fitted with {option} {fitted[key]}, "
                f"scoring now uses {value}: its weights and threshold may not suit these scores",
                file=sys.stderr,
            )
    return fusion
