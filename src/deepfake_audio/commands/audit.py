"""``deepfake-audio audit ROOT``: discovery, separation and balancing, without training."""

from __future__ import annotations

import argparse
import json

from deepfake_audio.commands.data_args import add_data_options, data_options_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="check a dataset: counts, leaks between splits, unreadable files, balance",
        description="Scan a dataset, hash and decode every file, find items shared between "
        "splits (by path, file bytes and decoded audio), balance fake/real, and report. "
        "Exits 0 when the audit completed, whatever it found (1 only with --strict and a leak).",
    )
    parser.add_argument("root", help="dataset folder, or a CSV/JSONL manifest")
    parser.add_argument("--json", metavar="PATH", help="write the full report as JSON here")
    parser.add_argument(
        "--examples", type=int, default=5, help="examples listed per kind of finding"
    )
    parser.add_argument(
        "--sample-rate", type=int, default=0, metavar="HZ",
        help="also cache the decoded audio at this rate (16000 is training's default), so a "
        "training run at that rate after the audit decodes nothing; costs the audio's size "
        "on disk (64 kB a second at 16 kHz) and about twice the audit's time (default 0: "
        "hashes and audio facts only)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_data_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deepfake_audio.data.pipeline import prepare
    from deepfake_audio.fileio import check_output_file, write_text_atomic
    from deepfake_audio.provenance import provenance
    from deepfake_audio.reports.audit import format_report

    if args.json:
        check_output_file(args.json)  # a bad report path fails now, not after the scan
    prepared = prepare(
        args.root,
        data_options_from_args(args),
        sample_rate=args.sample_rate or None,
        progress=not args.no_progress,
    )
    print(format_report(prepared.report, examples=args.examples))
    if args.json:
        report = prepared.report | {"provenance": provenance(args.command_line)}
        target = write_text_atomic(args.json, json.dumps(report, indent=2))
        print(f"report written to {target}")
    return 0
