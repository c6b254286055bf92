"""``deepfake-audio train``: train a detector into a run folder (``train_new_dataset.py`` too).

Option values come from, in increasing priority:
:class:`~deepfake_audio.training.config.TrainConfig` defaults, ``--config FILE`` (JSON or TOML,
the same keys as ``config.json`` in a run folder), then flags given on the command line. Only
flags actually given override the file.

The augmentation flags are a short-hand for the ``augment`` table of a config file: they are
merged into it key by key, so a file can hold the detailed settings and ``--augment`` pick
which of them are on.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from deepfake_audio.commands.data_args import add_data_options
from deepfake_audio.models import MODEL_NAMES
from deepfake_audio.scoring.options import AGGREGATIONS

#: The augmentations ``--augment`` switches, in the order they are applied.
AUGMENTATIONS = ("rawboost", "noise", "codec", "gain")

#: Flag destinations that build the nested ``augment`` option instead of a top-level one.
AUGMENT_FLAGS = ("augment_list", "rawboost_algo", "noise_snr", "codec_prob", "gain_db")

#: The recipe's members unless --panel-members chooses (training.panel.DEFAULT_MEMBERS; here
#: too so that --help imports no torch).
PANEL_MEMBERS = (
    "seed_cnn", "seed_cnn_b", "seed_cnn_rawboost_codec", "lcnn_lfcc", "aasist_l-asvspoof2019",
    "aasist_l_finetuned",
)  # fmt: skip
DEFAULT_PANEL = PANEL_MEMBERS[:5]
DEFAULT_PANEL_BUDGET = 60.0

DESCRIPTION = (
    "Train a fake/real speech detector. Writes a run folder (default ./runs/YYYYmmdd_HHMMSS) "
    "with config.json, train.log, history.csv, accuracy.png, loss.png, data_report.json, "
    "manifest.jsonl, unreadable.csv, a checkpoint per epoch "
    "(model_epoch_01_valacc_0.7240.safetensors) and fake_or_real_classifier.safetensors "
    "(the epoch with the lowest validation EER). Multi-GPU/multi-node: --devices N "
    "--strategy ddp [--num-nodes M]. --recipe panel trains a panel of diverse members on one "
    "preparation of the data (RUN/members/<name>/, ordinary runs), fuses them on the "
    "validation split and writes RUN/panel.json: one model for predict, compare, evaluate "
    "and calibrate."
)


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """Every training option; defaults are left out so only given flags override a config."""
    parser.add_argument(
        "--data-root", help="dataset folder, or a CSV/JSONL manifest (default ./dataset_root)"
    )
    parser.add_argument("--output-dir", help="run folder (default ./runs/YYYYmmdd_HHMMSS)")
    parser.add_argument("--config", metavar="FILE", help="JSON or TOML file of options")
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its last completed epoch (its config.json "
        "is used; --epochs, --budget-minutes and hardware options may change)",
    )
    parser.add_argument(
        "--recipe",
        choices=("single", "panel"),
        help="single (default): one model; panel: several diverse models (--panel-members) "
        "trained on one preparation of the data, fused by logistic regression on the "
        "validation split and calibrated, written as RUN/panel.json",
    )
    parser.add_argument(
        "--panel-members",
        type=_panel_members,
        metavar="LIST",
        help=f"with --recipe panel: its members, comma-separated, from {', '.join(PANEL_MEMBERS)}"
        f" (default {','.join(DEFAULT_PANEL)}; aasist_l-asvspoof2019 is used zero-shot, "
        "aasist_l_finetuned fine-tunes it and wants a GPU or a long budget)",
    )
    parser.add_argument(
        "--budget-minutes",
        type=_positive_float,
        metavar="MIN",
        help="wall-clock minutes for the whole run, data preparation included: when spent, the "
        "epoch under way ends after its batch and is validated and written (default: none). "
        f"With --recipe panel, the whole recipe's (default {DEFAULT_PANEL_BUDGET:g}), shared "
        "among the trained members after what preparing the data took and the fusion needs",
    )
    group = parser.add_argument_group("model and optimization")
    group.add_argument("--model", choices=MODEL_NAMES, help="architecture (default seed_cnn)")
    group.add_argument("--epochs", type=int, help="epochs to train (default 10)")
    group.add_argument(
        "--batch-size",
        type=_batch_size,
        metavar="N|auto",
        help="clips per batch and device (default: the model's, which fits 16 GB: 32 for "
        "seed_cnn and lcnn_lfcc, 24 rawnet2, 8 aasist and aasist_l); auto: the largest batch "
        "up to that which fits the memory available, accumulating to keep the effective "
        "batch. A batch that cannot fit stops before training, naming one that does",
    )
    group.add_argument(
        "--accumulate",
        type=int,
        metavar="N",
        help="batches per optimizer step: effective batch = batch size x N (default 1)",
    )
    group.add_argument(
        "--lr", type=float, help="Adam learning rate (default 0.001; 0.0001 with --init-from)"
    )
    group.add_argument(
        "--init-from",
        metavar="CKPT|NAME",
        help="fine-tune: start from this checkpoint, run folder or built-in model (e.g. "
        "aasist_l-asvspoof2019, see `deepfake-audio models`); the architecture and "
        "preprocessing come from it, and the default --lr is 0.0001",
    )
    group.add_argument(
        "--freeze-front-end",
        type=int,
        metavar="N",
        help="with --init-from: keep the front end (sinc filters) and encoder frozen for the "
        "first N epochs, training only the back end (default 0)",
    )
    group.add_argument("--weight-decay", type=float, help="Adam weight decay (default 0)")
    group = parser.add_argument_group("preprocessing (stored in every checkpoint)")
    group.add_argument("--sample-rate", type=int, help="Hz (default 16000)")
    group.add_argument(
        "--window-seconds",
        type=float,
        help="model window (default: the model's own, 2.0 for seed_cnn, 4.0375 for the others)",
    )
    group.add_argument(
        "--normalization", choices=("peak", "rms", "none"), help="per window (default peak)"
    )
    group.add_argument(
        "--trim-silence",
        action="store_true",
        help="drop each clip's leading and trailing silence (20 ms frames under -50 dBFS) "
        "before windowing, here and whenever the model scores: the remedy when `audit` "
        "flags leading_silence or trailing_silence as a shortcut (default off)",
    )
    group = parser.add_argument_group(
        "validation (scores each clip as predict does; the rule is stored with the threshold)"
    )
    group.add_argument(
        "--aggregate",
        choices=AGGREGATIONS,
        help="clip score from its window scores: mean (default) or max",
    )
    group.add_argument(
        "--hop",
        dest="hop_seconds",
        type=float,
        metavar="SECONDS",
        help="step between validation windows (default: the window length, no overlap)",
    )
    group = parser.add_argument_group(
        "augmentation (training windows only, off by default; details in the config file's "
        "augment table)"
    )
    group.add_argument(
        "--augment",
        dest="augment_list",
        type=_augment_list,
        metavar="LIST",
        help=f"augmentations to switch on, comma-separated: {','.join(AUGMENTATIONS)}; the "
        "others are switched off ('none': all off)",
    )
    group.add_argument(
        "--rawboost-algo",
        metavar="SPEC",
        help="RawBoost algorithms: lnl, isd, ssi joined by + (series) or | (parallel) "
        "(default lnl+isd)",
    )
    group.add_argument(
        "--noise-snr", type=_range, metavar="MIN,MAX", help="noise SNR range in dB (default 5,40)"
    )
    group.add_argument(
        "--codec-prob", type=float, metavar="P", help="share of windows re-encoded (default 0.5)"
    )
    group.add_argument(
        "--gain-db", type=_range, metavar="MIN,MAX", help="gain range in dB (default -6,6)"
    )
    group = parser.add_argument_group("hardware")
    group.add_argument(
        "--num-workers", type=int, help="DataLoader worker processes (default: all cores)"
    )
    group.add_argument(
        "--accelerator", help="cpu, gpu, mps or auto (default auto: the GPU when there is one)"
    )
    group.add_argument("--devices", help="devices per node: a count, a list, or auto")
    group.add_argument("--num-nodes", type=int, help="machines taking part (default 1)")
    group.add_argument(
        "--strategy", help="auto, ddp, ddp_spawn, ... (default auto; use ddp for several GPUs)"
    )
    group.add_argument("--precision", help="32-true (default), 16-mixed, bf16-mixed, ...")
    group.add_argument(
        "--no-progress", dest="progress", action="store_false", help="hide progress bars"
    )
    add_data_options(parser)
    parser.add_argument(
        "--max-bad-fraction",
        type=float,
        metavar="F",
        help="stop before training when more than this share of the training or validation "
        "files cannot be used (default 0.05)",
    )


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _panel_members(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(PANEL_MEMBERS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown panel member(s) {unknown}; choose from {', '.join(PANEL_MEMBERS)}"
        )
    return names


def _augment_list(text: str) -> list[str]:
    names = [] if text.strip() == "none" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(AUGMENTATIONS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown augmentation(s) {unknown}; choose from {', '.join(AUGMENTATIONS)} or none"
        )
    return names


def _batch_size(text: str) -> int | str:
    if text == "auto":
        return text
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 or auto, got {text}")
    return value


def _range(text: str) -> list[float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX (two numbers), got {text!r}") from None
    if low > high:
        raise argparse.ArgumentTypeError(f"MIN must not exceed MAX, got {text!r}")
    return [low, high]


def augment_options(values: dict[str, Any]) -> dict[str, Any]:
    """The nested ``augment`` option that the augmentation flags in ``values`` stand for."""
    augment: dict[str, dict[str, Any]] = {}

    def put(part: str, **options: Any) -> None:
        augment.setdefault(part, {}).update(options)

    if "augment_list" in values:
        for name in AUGMENTATIONS:
            put(name, enabled=name in values["augment_list"])
    if "rawboost_algo" in values:
        put("rawboost", algorithm=values["rawboost_algo"])
    if "noise_snr" in values:
        low, high = values["noise_snr"]
        put("noise", min_snr_db=low, max_snr_db=high)
    if "codec_prob" in values:
        put("codec", p=values["codec_prob"])
    if "gain_db" in values:
        low, high = values["gain_db"]
        put("gain", min_db=low, max_db=high)
    return augment


def _without_defaults(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if action.dest != "help":
            action.default = argparse.SUPPRESS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a detector into a run folder", description=DESCRIPTION
    )
    add_train_options(parser)
    _without_defaults(parser)
    parser.set_defaults(func=run)


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The config values set by flags on the command line (not the command's own)."""
    values = dict(vars(args))
    for key in ("func", "command", "command_line", "config", "resume", "recipe", "panel_members"):
        values.pop(key, None)
    for key in ("max_file_mb", "max_duration"):  # read limits: set for the process by the CLI
        values.pop(key, None)
    augment = augment_options(values)
    for key in AUGMENT_FLAGS:
        values.pop(key, None)
    if augment:
        values["augment"] = augment
    return values


def _console_logging() -> None:
    logger = logging.getLogger("deepfake_audio")
    if not any(getattr(h, "_deepfake_console", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._deepfake_console = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def run(args: argparse.Namespace) -> int:
    # torch and lightning load only when training
    from deepfake_audio.training.config import (
        TrainConfig,
        init_from_values,
        load_config_file,
        merge_nested,
        resume_config,
    )
    from deepfake_audio.training.train import _env_rank, train

    flags = given_options(args)
    resume = getattr(args, "resume", None)
    if getattr(args, "recipe", "single") == "panel":
        return run_panel(args, flags)
    if getattr(args, "panel_members", None) is not None:
        from deepfake_audio.cli import UsageError

        raise UsageError("--panel-members chooses a panel's members: add --recipe panel")
    if resume:
        config = resume_config(resume, flags)
    else:
        values = load_config_file(args.config) if getattr(args, "config", None) else {}
        if "augment" in flags and isinstance(values.get("augment"), dict):
            flags["augment"] = merge_nested(values["augment"], flags["augment"])
        source = getattr(args, "config", None) or "command line"
        merged = {**values, **flags}
        if merged.get("init_from"):
            merged = init_from_values(merged)
        config = TrainConfig.from_dict(merged, source=source)
    if _env_rank() == 0:
        _console_logging()
    result = train(config, resume=bool(resume), command_line=args.command_line)
    if result.is_global_zero:
        best = result.history[result.best_epoch - 1] if result.best_epoch else {}
        print(
            f"run folder: {result.run_dir}\n"
            f"final model: {result.final_model} (epoch {result.best_epoch}: validation "
            f"accuracy {best.get('val_accuracy', float('nan')):.4f}, "
            f"EER {best.get('val_eer', float('nan')):.4f})"
        )
        if result.unreadable:
            print(f"{len(result.unreadable)} file(s) left out: see {result.run_dir}/unreadable.csv")
    return 0


def run_panel(args: argparse.Namespace, flags: dict[str, Any]) -> int:
    """``train --recipe panel``: the options of ``train``, less those each member sets."""
    from deepfake_audio.cli import UsageError

    if getattr(args, "resume", None):
        raise UsageError(
            "--resume continues one run: resume a panel's member with --resume "
            "RUN/members/<name>, or train the panel again"
        )
    from deepfake_audio.training.config import load_config_file
    from deepfake_audio.training.panel import format_summary, train_panel

    values = load_config_file(args.config) if getattr(args, "config", None) else {}
    merged = {**values, **flags}
    budget = merged.pop("budget_minutes", DEFAULT_PANEL_BUDGET)
    _console_logging()
    result = train_panel(
        merged,
        members=getattr(args, "panel_members", None) or DEFAULT_PANEL,
        budget_minutes=budget,
        command_line=args.command_line,
    )
    print(format_summary(result))
    return 0
