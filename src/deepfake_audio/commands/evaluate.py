"""``deepfake-audio evaluate``: metrics, curves and per-file scores on labelled data."""

from __future__ import annotations

import argparse

from deepfake_audio.commands.data_args import add_evaluation_data_options, evaluation_records
from deepfake_audio.commands.scoring_args import add_scoring_options, score_records, scoring_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy, EER, AUC, confusion, ROC/DET curves of models on labelled data",
        description="Score labelled data with one or more models and report accuracy, "
        "balanced accuracy, EER, ROC-AUC and the confusion matrix at each model's threshold, "
        "overall, per dataset type and per generator (ROOT/metadata.csv is read when "
        "present). Writes metrics.json, scores.csv, roc.png, det.png and "
        "score_histogram.png to --output-dir.",
    )
    parser.add_argument(
        "--model", "-m", action="append", dest="models", metavar="CKPT",
        help="checkpoint (.safetensors), run folder (its final model), built-in model name or "
        "panel (panel.json or its run folder: the panel and each member); repeat to evaluate "
        "several and their ensemble (and, with --fusion, their fitted fusion); default with "
        "--run: that run's final model, or its panel",
    )  # fmt: skip
    parser.add_argument(
        "--output-dir", "--output_dir", dest="output_dir", default="evaluation",
        help="where the reports go (default ./evaluation)",
    )  # fmt: skip
    add_evaluation_data_options(parser, default_split="testing")
    add_scoring_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deepfake_audio.cli import UsageError
    from deepfake_audio.fileio import check_output_dir
    from deepfake_audio.provenance import provenance
    from deepfake_audio.reports.evaluate import evaluate, format_summary, write_evaluation

    check_output_dir(args.output_dir)  # a bad output path fails now, not after the scoring
    models = args.models or ([args.run] if args.run else [])
    if not models:
        raise UsageError("give --model, or --run RUN to evaluate that run's final model")
    data = evaluation_records(args, models)
    print(f"{len(models)} model(s), {len(data.records)} labelled file(s)")
    table = score_records(
        models, data.records, scoring_options(args), fusion_path=args.fusion,
        description="evaluating",
    )  # fmt: skip
    evaluation = evaluate(table, unreadable=data.unreadable)
    settings = {
        "data": str(args.data or ""),
        "run": str(args.run or ""),
        "splits": args.splits,
        "dataset_types": args.dataset_types,
        "aggregate": args.aggregate,
        "hop_seconds": args.hop,
        "threshold_override": args.threshold,
        "fusion": args.fusion,
    }
    written = write_evaluation(
        evaluation, args.output_dir, settings=settings,
        provenance=provenance(args.command_line, table.lineup.files),
    )  # fmt: skip
    print(format_summary(evaluation))
    for kind, path in written.items():
        print(f"{kind:>9}: {path}")
    return 0 if evaluation.records else 1
