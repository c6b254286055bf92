"""Scoring options shared by compare, predict, evaluate and fuse, and the scoring run itself.

Registering the options imports nothing heavy (``--help`` must not load torch); the models,
torch and scikit-learn are imported by :func:`score_records`, when there is work to do.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from deepfake_audio.commands.read_limits import add_read_limit_options
from deepfake_audio.parallel import default_workers
from deepfake_audio.scoring.options import (
    AGGREGATIONS,
    BACKENDS,
    DECISIONS,
    ONNX_INSTALL_HINT,
    ScoringOptions,
    onnx_missing,
)

#: Sets ``--backend``'s default (e.g. ``torch`` on a machine where exports are not wanted).
BACKEND_ENV = "DEEPFAKE_AUDIO_BACKEND"

if TYPE_CHECKING:
    from deepfake_audio.data.records import ClipRecord
    from deepfake_audio.scoring.table import ScoreTable


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _open_probability(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def add_scoring_options(parser: argparse.ArgumentParser, *, verdicts: bool = True) -> None:
    """The scoring options; ``verdicts`` adds ``--threshold`` and ``--fusion`` (not for
    ``fuse``, which fits a fusion and its threshold rather than using them)."""
    group = parser.add_argument_group("scoring")
    if verdicts:
        group.add_argument(
            "--decision",
            choices=DECISIONS,
            default="auto",
            help="how a verdict is reached: bayes calls a file fake when that costs least "
            "for --prior-fake and the costs; eer uses the model's validation equal-error "
            "threshold; auto (default): bayes for calibrated models, eer for the others "
            "(and for the ensemble and fusion)",
        )
        group.add_argument(
            "--threshold",
            type=_probability,
            help="instead of --decision: call a file fake when its P(fake) is at least this",
        )
        group.add_argument(
            "--cost-miss",
            type=_positive_float,
            default=1.0,
            metavar="COST",
            help="cost of calling a real file fake, for --decision bayes (default 1)",
        )
        group.add_argument(
            "--cost-fa",
            type=_positive_float,
            default=1.0,
            metavar="COST",
            help="cost of calling a fake file real, for --decision bayes (default 1)",
        )
        group.add_argument(
            "--fusion",
            metavar="FILE",
            help="a fusion file written by `deepfake-audio fuse` for exactly these models: "
            "adds a model named fusion (learned weights, its own stored threshold)",
        )
    group.add_argument(
        "--prior-fake",
        type=_open_probability,
        default=0.5,
        metavar="P",
        help="the share of fakes you expect: P(fake) is the posterior at this prior (default "
        "0.5: the evidence alone)",
    )
    group.add_argument(
        "--aggregate",
        choices=AGGREGATIONS,
        default="mean",
        help="file score from its window scores: mean (default, as validation scores) or max "
        "(flags a file when any part of it looks fake; the stored threshold was set for mean)",
    )
    group.add_argument(
        "--hop",
        type=_positive_float,
        metavar="SECONDS",
        help="step between windows (default: the model's window length, no overlap, as "
        "validation scores; the last window is aligned to the end of the file)",
    )
    group.add_argument(
        "--batch-size",
        type=_positive_int,
        help="windows per inference batch (default: as many as fit in 256 MB, at most 64; "
        "measured per model at start)",
    )
    add_device_option(group)
    add_backend_option(group)
    group.add_argument(
        "--workers",
        type=_positive_int,
        help="processes decoding audio while the models run "
        f"(default {default_workers()}: every core; 1 decodes in the main process)",
    )
    group.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_read_limit_options(parser)


def scoring_options(args: argparse.Namespace, *, progress: bool = True) -> ScoringOptions:
    """The :class:`ScoringOptions` the parsed arguments ask for (``progress`` False hides
    bars whatever ``--no-progress`` says, e.g. when stdout carries JSON)."""
    check_backend(args)
    return ScoringOptions(
        threshold=getattr(args, "threshold", None),
        decision=getattr(args, "decision", "auto"),
        prior_fake=args.prior_fake,
        cost_miss=getattr(args, "cost_miss", 1.0),
        cost_fa=getattr(args, "cost_fa", 1.0),
        hop_seconds=args.hop,
        aggregation=args.aggregate,
        batch_size=args.batch_size,
        workers=default_workers() if args.workers is None else args.workers,
        device=args.device,
        progress=progress and not args.no_progress,
        backend=args.backend,
    )


def score_records(
    models: Sequence[str],
    records: Sequence[ClipRecord],
    options: ScoringOptions,
    *,
    fusion_path: str | None = None,
    description: str = "scoring",
) -> ScoreTable:
    """Load ``models`` (checkpoints, run folders, built-in names or panels) and the fusion,
    and score ``records``.

    Warns on stderr when the scoring rule differs from the one a model's threshold, the
    fusion or a panel was set with: that threshold then belongs to other numbers.
    """
    from deepfake_audio.scoring.engine import resolve_device, score_table
    from deepfake_audio.scoring.lineup import rule_warnings
    from deepfake_audio.scoring.load import load_models

    device = resolve_device(options.device, options.backend)
    loaded = load_models(models, fusion_path=fusion_path, device=device)
    for line in rule_warnings(loaded.detectors, options, loaded.fusion, loaded.panel_list):
        print(line, file=sys.stderr)
    return score_table(
        loaded.detectors,
        records,
        options,
        fusion=loaded.fusion,
        panels=loaded.panels,
        description=description,
    )


def add_device_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--device``: where the models run, for every command that scores."""
    parser.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="where the models run (default: the GPU when there is one)",
    )


def add_backend_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--backend``: what runs the models' windows, for every command that scores."""
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=os.environ.get(BACKEND_ENV) or "auto",
        help="what runs the models: torch; onnx, onnxruntime on the CPU on each model "
        "exported to ONNX (cached; needs the onnx extra); auto (default, or "
        f"${BACKEND_ENV}): per model the faster of the two on this machine, measured on "
        "its first job of 200+ files and remembered; torch until then, on a GPU, or "
        "without onnxruntime",
    )


def check_backend(args: argparse.Namespace) -> None:
    """Usage errors of ``--backend`` before any model loads: an unknown value from the
    environment, onnx without onnxruntime, onnx on the GPU."""
    from deepfake_audio.cli import UsageError

    backend = args.backend
    if backend not in BACKENDS:
        raise UsageError(
            f"${BACKEND_ENV} is {backend!r}: use one of {', '.join(BACKENDS)} (or unset it)"
        )
    if backend != "onnx":
        return
    missing = onnx_missing()
    if missing:
        raise UsageError(
            f"--backend onnx needs {', '.join(missing)}, not installed: {ONNX_INSTALL_HINT}"
        )
    if str(getattr(args, "device", "auto")).startswith("cuda"):
        raise UsageError("--backend onnx runs models on the CPU: drop --device cuda")
