"""Data-selection options shared by every command that reads a dataset (audit, train, ...)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from deepfake_audio.data.layouts import LAYOUTS

if TYPE_CHECKING:
    from deepfake_audio.data.pipeline import DataOptions


def csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_selection_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    splits_default: list[str] | None = None,
    splits_help: str = "use only these splits, e.g. training,validation (default: all)",
) -> None:
    """``--layout``, ``--dataset-types`` and ``--splits``: which part of a dataset to read."""
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


def add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    add_selection_options(group)
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
        "--cache-dir",
        help="where decoded audio and hashes are cached "
        "(default: $DEEPFAKE_AUDIO_CACHE or ~/.cache/deepfake-audio)",
    )
    group.add_argument("--workers", type=int, help="processes for decoding (default: all cores)")


def data_options_from_args(args: argparse.Namespace) -> DataOptions:
    from deepfake_audio.data.pipeline import DataOptions

    return DataOptions.from_attributes(args)
