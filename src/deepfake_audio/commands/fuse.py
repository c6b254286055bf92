"""``deepfake-audio fuse``: fit a logistic-regression fusion of models on validation data."""

from __future__ import annotations

import argparse
import math
import sys

from deepfake_audio.commands.data_args import (
    add_fitting_data_options,
    check_fitting_splits,
    evaluation_records,
)
from deepfake_audio.commands.scoring_args import add_scoring_options, score_records, scoring_options


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fuse",
        help="fit a logistic-regression fusion of several models on labelled validation data",
        description="Score labelled data (the validation split by default) with every --model "
        "and fit a logistic regression on the logits of their probabilities of fake. Writes a "
        "small JSON file (members with their SHA-1, weights, intercept, the fused validation "
        "EER threshold, validation metrics, how it was fitted) to use with --fusion in "
        "evaluate, compare and predict. Fit on validation data only: a fusion fitted on the "
        "test split makes that split's metrics of the fusion optimistic.",
    )
    parser.add_argument(
        "--model", "-m", action="append", dest="models", required=True, metavar="CKPT",
        help="checkpoint (.safetensors) or run folder (its final model) to fuse; repeat for each",
    )  # fmt: skip
    add_fitting_data_options(parser)
    parser.add_argument(
        "--regularization", type=_positive_float, default=1.0, metavar="C",
        help="inverse L2 strength of the logistic regression (default 1.0; smaller with "
        "few validation clips)",
    )  # fmt: skip
    parser.add_argument(
        "--output", "-o", default="fusion.json", help="fusion file to write (default fusion.json)"
    )
    add_scoring_options(parser, verdicts=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_fitting_splits(args, "a fusion")
    from deepfake_audio.cli import UsageError
    from deepfake_audio.scoring.panel import find_panel

    for model in args.models:
        if find_panel(model) is not None:
            raise UsageError(
                f"{model} is a panel, which fuses its members already; to fuse them another "
                "way, give its members' run folders (members/<name>)"
            )
    from deepfake_audio.fileio import check_output_file
    from deepfake_audio.provenance import provenance

    check_output_file(args.output)  # a bad output path fails now, not after the scoring
    from deepfake_audio.reports.fuse import fit_on_table

    data = evaluation_records(args, args.models)
    records = data.records
    for path, reason in data.unreadable:
        print(f"unreadable {path}: {reason}", file=sys.stderr)
    print(f"fitting a fusion of {len(args.models)} model(s) on {len(records)} labelled file(s)")
    fitted = {
        "data": str(args.data or ""),
        "run": str(args.run or ""),
        "splits": list(args.splits),
        "layout": args.layout,
        "dataset_types": args.dataset_types,
    }
    table = score_records(args.models, records, scoring_options(args), description="fusing")
    fitted["provenance"] = provenance(args.command_line, table.lineup.files)
    fusion = fit_on_table(table, regularization=args.regularization, fitted=fitted)
    for path, reason in table.unreadable:
        print(f"unreadable {path}: {reason}", file=sys.stderr)
    written = fusion.save(args.output)

    def pct(value: float) -> str:
        return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}%"

    for member in fusion.members:
        print(
            f"  {member.name}: weight {member.coefficient:+.4f}  EER {pct(member.validation_eer)}"
        )
    print(f"  intercept {fusion.intercept:+.4f}")
    print(
        f"fusion: EER {pct(fusion.validation['eer'])} on {len(table.records)} file(s), "
        f"threshold {fusion.threshold:.4f}"
    )
    print(f"written: {written}")
    return 0
