"""``deepfake-audio calibrate``: refit a model's score calibration on your own labelled data.

The ranking of clips (and so EER and minDCF) stays the model's; only the map from its scores
to log-likelihood ratios changes, so that P(fake) and the cost-based decision suit your
domain. Writes a new checkpoint; the input file is never modified.
"""

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


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="fit a model's score calibration on your labelled data; writes a new checkpoint",
        description="Score labelled data (the validation split by default) with --model and "
        "fit the affine map from its scores to log-likelihood ratios (prior-weighted logistic "
        "regression). Writes --output: the same weights with the new calibration (and where "
        "it was fitted) in its metadata; for a panel, a new panel file whose fused score has "
        "the new calibration (its members are referenced, not copied). EER and minDCF are "
        "unchanged (the map is monotonic); Cllr and actDCF show what calibration bought. The "
        "input file is never modified.",
    )
    parser.add_argument(
        "--model", "-m", required=True, metavar="CKPT",
        help="checkpoint (.safetensors), run folder (its final model), built-in model name, or "
        "panel (panel.json or its run folder)",
    )  # fmt: skip
    add_fitting_data_options(parser)
    parser.add_argument(
        "--output", "-o", required=True, metavar="NEW.safetensors|NEW.json",
        help="the calibrated checkpoint to write (not the input file); for a panel, the new "
        "panel file (.json)",
    )  # fmt: skip
    add_scoring_options(parser, verdicts=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from deepfake_audio.checkpoints import final_model_path
    from deepfake_audio.cli import UsageError
    from deepfake_audio.fileio import check_output_file
    from deepfake_audio.scoring.panel import Panel, find_panel

    check_fitting_splits(args, "a calibration")
    panel_file = find_panel(args.model)
    source = panel_file or final_model_path(args.model)
    if Path(args.output).resolve() == source.resolve():
        raise UsageError("--output is the input model: calibrate writes a new file")
    if panel_file is not None and Path(args.output).suffix.lower() != ".json":
        raise UsageError("--output for a panel is a new panel file: name it NEW.json")
    check_output_file(args.output)  # a bad output path fails now, not after the scoring
    panel = Panel.load(panel_file) if panel_file is not None else None  # members checked now
    from deepfake_audio import metrics
    from deepfake_audio.checkpoints import copy_with_metadata
    from deepfake_audio.provenance import provenance
    from deepfake_audio.scoring.calibration import fit_calibration
    from deepfake_audio.scoring.fusion import fingerprint

    data = evaluation_records(args, [str(source)])
    for path, reason in data.unreadable:
        print(f"unreadable {path}: {reason}", file=sys.stderr)
    table = score_records([str(source)], data.records, scoring_options(args), description="scoring")
    for path, reason in table.unreadable:
        print(f"unreadable {path}: {reason}", file=sys.stderr)
    # the panel's fused score, or the only model's
    name = table.lineup.deciding_model() if panel is not None else table.lineup.names[0]
    labels, raw = table.labels(), table.raw[name]
    where = str(args.run or args.data) + f" ({', '.join(args.splits)})"
    calibration = fit_calibration(labels, raw, data=where)
    before, after = table.llr[name], calibration.llr(raw)
    fitted = {
        **calibration.fitted,
        "aggregate": table.options.aggregation,
        "hop_seconds": table.options.hop_seconds,
        "source": str(source),
        "source_sha1": fingerprint(source),
        "provenance": provenance(args.command_line, [str(source)]),
    }
    calibration = type(calibration)(calibration.scale, calibration.offset, fitted)
    if panel is not None:
        written = panel.with_calibration(calibration).save(args.output)
    else:
        written = copy_with_metadata(source, args.output, {"calibration": calibration.to_dict()})

    def figure(value: float, unit: str = "") -> str:
        return "-" if math.isnan(value) else f"{value:.4f}{unit}"

    print(f"{name} on {len(raw)} labelled file(s) of {where}:")
    print(f"  before: {table.lineup.calibration(name).describe()}")
    print(f"  after:  {calibration.describe()}")
    lowest = figure(metrics.min_cllr(labels, raw))
    print(
        f"  Cllr {figure(metrics.cllr(labels, before), ' bits')} -> "
        f"{figure(metrics.cllr(labels, after), ' bits')} (min {lowest})"
    )
    print(
        f"  actDCF {figure(metrics.act_dcf(labels, before))} -> "
        f"{figure(metrics.act_dcf(labels, after))} (minDCF {figure(metrics.min_dcf(labels, raw))}; "
        f"EER {figure(100 * metrics.equal_error_rate(labels, raw)[0], '%')}, unchanged)"
    )
    print(f"written: {written}")
    return 0
