"""``deepfake-audio predict PATH...``: FAKE or REAL per file, with the probability and threshold."""

from __future__ import annotations

import argparse
import json

from deepfake_audio.commands.scoring_args import add_scoring_options, score_records, scoring_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="say whether audio files are fake or real",
        description="Print one verdict per file: FAKE or REAL, the probability of fake and "
        "the threshold used (the model's stored validation-EER threshold unless --threshold). "
        "Long files are scored over all of their windows. With several --model the verdict "
        "is their ensemble's (mean probability at the mean threshold), with --fusion the "
        "fitted fusion's, and for a panel (train --recipe panel) the panel's. Files that "
        "cannot be read are listed with the reason; exits 1 only "
        "when no file could be judged.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    parser.add_argument(
        "--model",
        "-m",
        action="append",
        dest="models",
        required=True,
        metavar="CKPT",
        help="checkpoint (.safetensors), run folder (its final model), built-in model name, "
        "or panel (panel.json or its run folder); repeat for an ensemble",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON document with per-model and per-window scores (start/end seconds)",
    )
    add_scoring_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deepfake_audio.data.listing import scoring_inputs
    from deepfake_audio.provenance import provenance
    from deepfake_audio.reports.predict import format_line, predict_document, predictions

    inputs = scoring_inputs(args.paths)
    if not inputs:
        raise FileNotFoundError(f"no audio files under {', '.join(args.paths)}")
    table = score_records(
        args.models,
        [i.record for i in inputs if i.problem is None],
        scoring_options(args, progress=not args.json),
        fusion_path=args.fusion,
        description="predicting",
    )
    verdicts = predictions(table, inputs)
    if args.json:
        document = predict_document(
            table, verdicts, provenance(args.command_line, table.lineup.files)
        )
        print(json.dumps(document, indent=2))
    else:
        for prediction in verdicts:
            print(format_line(prediction))
    # Completed when any file got a verdict; the others are listed with their reasons.
    return 0 if any(p.error is None for p in verdicts) else 1
