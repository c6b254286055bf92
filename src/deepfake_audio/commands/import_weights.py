"""``deepfake-audio import-weights``: a published model's weights -> a checkpoint of ours.

Reads the published state dict without unpickling anything but tensors
(``torch.load(..., weights_only=True)``), maps its names onto our implementation of the
architecture, and writes an ordinary checkpoint: safetensors weights, the architecture config,
the preprocessing the original was trained with, the label map and the provenance (source
file and its SHA-1, licence, training data, reported result) in its metadata.
"""

from __future__ import annotations

import argparse

FORMATS = ("clovaai-aasist",)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import-weights",
        help="convert a published model's weights into a checkpoint of ours",
        description="Convert published weights into a deepfake-audio checkpoint. "
        "--format clovaai-aasist takes the AASIST / AASIST-L .pth files and their "
        "model_config JSON from github.com/clovaai/aasist (16 kHz, 64,600-sample window, "
        "repeat-padding, no normalisation). The .pth is read with weights_only=True: "
        "nothing but tensors is unpickled.",
    )
    parser.add_argument("weights", metavar="PATH.pth", help="the published state dict")
    parser.add_argument("--format", choices=FORMATS, required=True, help="whose weights these are")
    parser.add_argument(
        "--config", required=True, metavar="CONFIG.json", help="the published model config"
    )
    parser.add_argument("--output", "-o", required=True, metavar="OUT.safetensors")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deepfake_audio.fileio import check_output_file

    check_output_file(args.output)
    from deepfake_audio.pretrained.convert import import_clovaai_aasist

    written, facts = import_clovaai_aasist(args.weights, args.config, args.output)
    print(f"{facts['architecture']}: {facts['parameters']:,} parameters from {args.weights}")
    print(f"written: {written}")
    return 0
