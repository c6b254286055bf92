"""``deepfake-audio predict PATH...``: FAKE or REAL per file, with the probability and threshold."""

from __future__ import annotations

import argparse
import json

from deepfake_audio.commands.scoring_args import (
    add_scoring_options,
    load_detectors,
    load_fusion,
    scoring_kwargs,
)
from deepfake_audio.reports.predict import format_line, predict_files


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="say whether audio files are fake or real",
        description="Print one verdict per file: FAKE or REAL, the probability of fake and "
        "the threshold used (the model's stored validation-EER threshold unless --threshold). "
        "Long files are scored over all of their windows. With several --model the verdict "
        "is their ensemble's (mean probability at the mean threshold), or with --fusion the "
        "fitted fusion's. Exits 1 when any file could not be read.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    parser.add_argument(
        "--model",
        "-m",
        action="append",
        dest="models",
        required=True,
        metavar="CKPT",
        help="checkpoint (.safetensors) or run folder (its final model); repeat for an ensemble",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON document with per-model and per-window scores (start/end seconds)",
    )
    add_scoring_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    detectors = load_detectors(args.models, args.device)
    fusion = load_fusion(args)
    options = scoring_kwargs(args)
    options["progress"] = options["progress"] and not args.json
    predictions = predict_files(detectors, args.paths, **options, fusion=fusion)
    if args.json:
        document = {
            "models": {d.name: str(d.path) for d in detectors},
            **({"fusion": str(fusion.path)} if fusion is not None else {}),
            "aggregate": args.aggregate,
            "files": [p.to_dict() for p in predictions],
        }
        print(json.dumps(document, indent=2))
    else:
        for prediction in predictions:
            print(format_line(prediction))
    return 1 if any(p.error for p in predictions) else 0
