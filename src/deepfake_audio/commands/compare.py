"""``deepfake-audio compare``: every model of a run over a folder (the original test_all_models)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from deepfake_audio.commands.scoring_args import add_scoring_options, score_records, scoring_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="run every checkpoint of a training run (and their ensemble) over a folder",
        description="Score every audio file under --audio-dir with every epoch checkpoint and "
        "the final model of a run folder, plus their ensemble (mean probability of fake). "
        "Writes OUT/model_comparison_<time>.csv (one row per readable file), "
        "model_summary_<time>.csv (ranked when labelled), disagreements_<time>.csv, "
        "unreadable_<time>.csv, model_by_generator_<time>.csv when the files name their "
        "generators, and comparison_<time>.json (version, command line, model SHA-256s). "
        "Accuracy and EER are reported when fake/real folders give labels. A run's final "
        "model counts once in the ensemble beside the epoch it copies. Exits 1 only when no "
        "file could be scored.",
    )
    parser.add_argument(
        "--audio-dir", "--audio_dir", dest="audio_dir", required=True, help="folder of audio"
    )
    parser.add_argument(
        "--output-dir",
        "--output_dir",
        dest="output_dir",
        default="comparison",
        help="where the CSVs go (default ./comparison)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--models-dir",
        "--models_dir",
        dest="models_dir",
        help="run folder whose checkpoints to compare, or a panel run (the panel and its "
        "members) (default: the newest under --runs-dir)",
    )
    source.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="CKPT",
        help="a checkpoint, a run folder (its final model), a built-in model name or a panel "
        "(panel.json or its run folder: the panel and each member), to compare; repeat for "
        "several, e.g. one per architecture (instead of --models-dir)",
    )
    parser.add_argument(
        "--runs-dir", default="runs", help="where to look for the newest run (default ./runs)"
    )
    parser.add_argument(
        "--top", type=int, default=20, help="contested files to print (all are in the CSV)"
    )
    add_scoring_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deepfake_audio.audio import AUDIO_EXTENSIONS
    from deepfake_audio.data.listing import scoring_inputs
    from deepfake_audio.fileio import check_output_dir
    from deepfake_audio.provenance import provenance
    from deepfake_audio.reports.compare import (
        compare,
        find_checkpoints,
        format_report,
        newest_run,
        write_comparison,
    )
    from deepfake_audio.scoring.panel import PANEL_FILE

    check_output_dir(args.output_dir)  # a bad output path fails now, not after the scoring
    if args.models:
        checkpoints, skipped = list(args.models), []
    else:
        models_dir = args.models_dir or newest_run(args.runs_dir)
        if (Path(models_dir) / PANEL_FILE).is_file():  # a panel run: the panel is the model
            checkpoints, skipped = [Path(models_dir)], []
        else:
            checkpoints, skipped = find_checkpoints(models_dir)
        print(f"models from {models_dir}")
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if not Path(args.audio_dir).is_dir():
        raise FileNotFoundError(f"audio folder {args.audio_dir} does not exist")
    inputs = scoring_inputs([args.audio_dir])
    records = [entry.record for entry in inputs if entry.problem is None]
    unlisted = [(entry.record.path, entry.problem) for entry in inputs if entry.problem]
    if not records:
        raise FileNotFoundError(
            f"no audio files under {args.audio_dir} (searched its sub-folders for "
            f"{', '.join(sorted(AUDIO_EXTENSIONS))}"
            + (f"; {len(unlisted)} could not be listed" if unlisted else "")
            + ")"
        )
    print(f"{len(checkpoints)} model(s), {len(records)} audio file(s) under {args.audio_dir}")
    options = scoring_options(args)
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    began = time.perf_counter()
    table = score_records(
        [str(p) for p in checkpoints],
        records,
        options,
        fusion_path=args.fusion,
        description="comparing models",
    )
    elapsed = time.perf_counter() - began
    comparison = compare(table)
    comparison.unreadable += unlisted  # folders that could not be listed, named with why
    print(format_report(comparison, top=args.top))
    written = write_comparison(
        comparison, args.output_dir, stamp, provenance(args.command_line, table.lineup.files)
    )
    rate = len(records) / elapsed if elapsed > 0 else float("inf")
    print(f"\n{len(records)} files in {elapsed:.1f} s ({rate:.1f} files/s)")
    for kind, path in written.items():
        print(f"{kind:>13}: {path}")
    if not comparison.rows:
        print(f"error: no audio file under {args.audio_dir} could be scored", file=sys.stderr)
        return 1
    return 0
