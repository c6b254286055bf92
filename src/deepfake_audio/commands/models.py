"""``deepfake-audio models``: the architectures to train and the pretrained models built in."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the architectures (train --model) and the built-in pretrained models",
        description="List the architectures `train --model` accepts, with their parameter "
        "counts and windows, and the pretrained models every --model option accepts by "
        "name: parameters, window, training data, reported result, licence and file.",
    )
    parser.add_argument("--json", action="store_true", help="print the same as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deepfake_audio.models.registry import describe_models
    from deepfake_audio.pretrained import PRETRAINED

    architectures = describe_models()
    pretrained = [spec.to_dict() for spec in PRETRAINED.values()]
    if args.json:
        print(json.dumps({"architectures": architectures, "pretrained": pretrained}, indent=2))
        return 0
    print("architectures (train --model NAME):")
    for entry in architectures:
        print(
            f"  {entry['name']:<10} {entry['parameters']:>10,} parameters  "
            f"{entry['window_seconds']:g} s window  {entry['summary']}"
        )
    print("\npretrained (--model NAME in predict, compare, evaluate, fuse, calibrate; "
          "train --init-from NAME):")  # fmt: skip
    for spec in PRETRAINED.values():
        window = spec.window_samples / spec.sample_rate
        print(f"  {spec.name}  ({spec.architecture}, {spec.parameters:,} parameters, "
              f"{window:g} s window at {spec.sample_rate} Hz)")  # fmt: skip
        print(f"      trained on {spec.training_data}; reported {spec.reported}")
        print(f"      licence {spec.licence}; {spec.path}")
    return 0
