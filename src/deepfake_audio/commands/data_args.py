"""Data-selection options shared by every command that reads a dataset (audit, train, ...)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from deepfake_audio.commands.read_limits import add_read_limit_options
from deepfake_audio.data.layouts import LAYOUTS

if TYPE_CHECKING:
    from deepfake_audio.data.listing import LabelledData
    from deepfake_audio.data.pipeline import DataOptions


def csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_selection_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    splits_default: list[str] | None = None,
    splits_help: str = "use only these splits, e.g. training,validation (default: all)",
) -> None:
    """``--layout``, ``--dataset-types``, ``--splits`` and ``--exclude-generators``: which part
    of a dataset to read."""
    parser.add_argument(
        "--layout", choices=LAYOUTS, default="auto", help="dataset layout (default: detect)"
    )
    parser.add_argument(
        "--dataset-types",
        type=csv_list,
        metavar="T1,T2",
        help="use only these dataset types, e.g. for-2sec,for-norm (default: all found)",
    )
    parser.add_argument(
        "--splits", type=csv_list, default=splits_default, metavar="S1,S2", help=splits_help
    )
    parser.add_argument(
        "--exclude-generators",
        type=csv_list,
        metavar="G1,G2",
        help="leave these generators' fakes out of the training and validation splits and "
        "keep them in test (a leave-one-generator-out bench: train without G, test on G); "
        "exact, case-sensitive names as the data gives them: fake/<generator>/ folders, a "
        "generator column of metadata.csv or a CSV manifest, ASVspoof attack ids "
        "(default: none left out)",
    )


def add_preparation_options(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """How a dataset is cleaned and split, as training does it: ``--strict``, ``--balance``,
    ``--seed``, the carved fractions and the cache."""
    group.add_argument(
        "--strict", action="store_true", help="any item shared between splits is an error"
    )
    group.add_argument(
        "--balance",
        choices=("undersample", "weighted", "none"),
        default="undersample",
        help="equalize fake/real by seeded undersampling (default), keep all and weight "
        "the sampler, or leave as is",
    )
    group.add_argument("--seed", type=int, default=0, help="seed for splits and sampling")
    group.add_argument(
        "--validation-fraction",
        type=float,
        default=0.1,
        help="share carved for validation when the data has no validation split",
    )
    group.add_argument(
        "--test-fraction",
        type=float,
        default=0.1,
        help="share carved for test when the data has no splits at all",
    )
    group.add_argument(
        "--group-by-folder",
        type=int,
        metavar="N",
        help="the N-th folder under ROOT names each file's speaker (or source recording), "
        "e.g. 1 for ROOT/<speaker>/fake/x.wav: carving then keeps each speaker on one side "
        "(default: groups from the layout and metadata.csv speaker/source columns only)",
    )
    group.add_argument(
        "--near-duplicates",
        choices=("off", "report", "drop"),
        default="drop",
        help="the same recording after edits (gain, silence, resampling, lossy re-encoding, "
        "noise, a cut) in two splits: drop it from the evaluation side like an exact copy "
        "(default), only report it, or do not look (off saves the fingerprinting)",
    )
    group.add_argument(
        "--near-duplicate-threshold",
        type=float,
        default=0.25,
        metavar="S",
        help="fingerprint similarity from which two files count as one recording (default "
        "0.25; measured: copies 0.41 and up, different recordings 0.10 and below)",
    )
    group.add_argument(
        "--shortcut-threshold",
        type=float,
        default=0.8,
        metavar="AUC",
        help="flag a per-file fact (silence, duration, loudness, bandwidth, format...) whose "
        "ROC-AUC at telling fake from real alone reaches this (default 0.8; 0.5 is chance)",
    )
    group.add_argument(
        "--cache-dir",
        help="where decoded audio and hashes are cached "
        "(default: $DEEPFAKE_AUDIO_CACHE or ~/.cache/deepfake-audio)",
    )


def add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    add_selection_options(group)
    add_preparation_options(group)
    group.add_argument("--workers", type=int, help="processes for decoding (default: all cores)")
    add_read_limit_options(parser)


def data_options_from_args(args: argparse.Namespace) -> DataOptions:
    from deepfake_audio.data.pipeline import DataOptions

    return DataOptions.from_attributes(args)


def add_evaluation_data_options(parser: argparse.ArgumentParser, *, default_split: str) -> None:
    """``--data ROOT`` or ``--run RUN``, which split, and how the root is prepared (as training
    prepares it): the labelled data of ``evaluate`` and ``fuse``."""
    group = parser.add_argument_group("data (prepared as training prepares it)")
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data", help="dataset folder, or a CSV/JSONL manifest: discovered, separated, carved "
        "and balanced exactly as `train` does with the same options",
    )  # fmt: skip
    source.add_argument(
        "--run", metavar="RUN", help="a training run folder: its own split of the data "
        "(manifest.jsonl), and its final model unless --model is given",
    )  # fmt: skip
    add_selection_options(
        group,
        splits_default=[default_split],
        splits_help=f"splits to use (default: {default_split})",
    )
    add_preparation_options(group)


def add_fitting_data_options(parser: argparse.ArgumentParser) -> None:
    """The labelled data something is fitted on (a fusion, a calibration): the validation
    split by default, the test split only with ``--allow-test``."""
    add_evaluation_data_options(parser, default_split="validation")
    parser.add_argument(
        "--allow-test", action="store_true",
        help="allow fitting on the test split (its later evaluation is then not honest)",
    )  # fmt: skip


def check_fitting_splits(args: argparse.Namespace, fitting: str) -> None:
    """Refuse to fit ``fitting`` (a fusion, a calibration) on no split, or on the test split
    without ``--allow-test``: its later test metrics would not be honest."""
    from deepfake_audio.cli import UsageError
    from deepfake_audio.data.records import TEST, parse_split

    if not args.splits:
        raise UsageError(f"--splits is empty: name the validation split(s) to fit {fitting} on")
    if any(parse_split(s) == TEST for s in args.splits) and not args.allow_test:
        raise UsageError(
            f"refusing to fit {fitting} on the test split: its test metrics would no longer "
            "be honest (fit on validation; --allow-test to do it anyway)"
        )


def evaluation_records(args: argparse.Namespace, models: list[str]) -> LabelledData:
    """The labelled records ``args`` name, and a word on what was left out or seen before.

    From ``--run``: the run's own split. From ``--data``: prepared as training prepares it,
    saying which copies separation dropped; and for each model whose run manifest lies beside
    it, how many of these files it was trained or validated on.
    """
    import sys

    from deepfake_audio.checkpoints import final_model_path, read_metadata
    from deepfake_audio.data.listing import (
        MANIFEST_FILE,
        LabelledData,
        dataset_records,
        run_records,
        training_overlap,
    )
    from deepfake_audio.scoring.panel import find_panel

    if args.run:
        records = run_records(args.run, args.splits)
        print(f"{len(records)} file(s) of {args.run} ({', '.join(args.splits or ['all'])})")
        return LabelledData(records, [], {})
    data = dataset_records(
        args.data, data_options_from_args(args), args.splits, progress=not args.no_progress
    )
    separation = data.report["separation"]
    if separation["leaked_items"]:
        print(
            f"separation: {separation['leaked_items']} file(s) copied across splits were left "
            f"out of the evaluation side, as training leaves them out "
            f"({separation['leaks']} leak(s); `deepfake-audio audit` lists them)"
        )
    for model in models:
        checkpoint = find_panel(model)  # a panel run keeps the manifest its members shared
        if checkpoint is not None:
            fingerprint = checkpoint.is_file()
        else:
            checkpoint = final_model_path(model)
            fingerprint = read_metadata(checkpoint).get("extra", {}).get("manifest_fingerprint")
        manifest = checkpoint.parent / MANIFEST_FILE
        if not manifest.is_file() or not fingerprint:
            continue  # a model without its run folder: nothing to compare with
        overlap = training_overlap(data.records, manifest)
        if overlap["any"]:
            print(
                f"warning: {overlap['any']} of {len(data.records)} evaluation file(s) were in "
                f"{checkpoint.name}'s training or validation data (by path {overlap['path']}, "
                f"file bytes {overlap['file_bytes']}, decoded audio {overlap['decoded_audio']}):"
                " its metrics on them are not an honest estimate",
                file=sys.stderr,
            )
    return data
