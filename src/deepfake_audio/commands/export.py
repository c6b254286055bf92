"""``deepfake-audio export --model M --format onnx OUT.onnx``: a detector for other runtimes."""

from __future__ import annotations

import argparse

from deepfake_audio.commands.scoring_args import _positive_float

FORMATS = ("onnx",)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a model as ONNX, to run with onnxruntime alone",
        description="Export one model (a checkpoint, run folder or built-in name) as an ONNX "
        "file: input (batch, window samples) float32 windows, each normalised as the model's "
        "preprocessing says; output (batch,) probability of fake. Its metadata_props hold the "
        "sample rate, window, hop, normalisation, threshold, calibration and the source "
        "checkpoint's SHA-1, so the file is all a deployer needs. The export is checked "
        "against torch on probe windows before it is written. Needs the onnx extra "
        "(pip install 'deepfake-audio[onnx]'). A panel is exported member by member.",
    )
    parser.add_argument("output", metavar="OUT.onnx", help="the file to write")
    parser.add_argument(
        "--model",
        "-m",
        required=True,
        metavar="CKPT",
        help="checkpoint (.safetensors), run folder (its final model) or built-in model name",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="onnx", help="output format (default onnx)"
    )
    parser.add_argument(
        "--tolerance",
        type=_positive_float,
        default=0.01,
        metavar="P",
        help="largest |P(fake)| difference from torch allowed on any probe window (default "
        "0.01; typical exports differ by under 1e-5)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deepfake_audio.cli import UsageError
    from deepfake_audio.fileio import check_output_file
    from deepfake_audio.scoring.options import ONNX_INSTALL_HINT, onnx_missing
    from deepfake_audio.scoring.panel import MEMBERS_DIR, find_panel

    missing = onnx_missing()
    if missing:
        raise UsageError(f"export needs {', '.join(missing)}, not installed: {ONNX_INSTALL_HINT}")
    panel = find_panel(args.model)
    if panel is not None:
        raise UsageError(
            f"{args.model} is a panel ({panel.name}): its fusion is not part of an ONNX file; "
            f"export its members one by one (--model {panel.parent / MEMBERS_DIR}/<name>, or "
            "the built-in names it lists) and fuse their P(fake) as the panel file says"
        )
    check_output_file(args.output)  # before the export, not after it

    from deepfake_audio.checkpoints import final_model_path, load_checkpoint
    from deepfake_audio.scoring.onnx_export import export_onnx

    detector = load_checkpoint(final_model_path(args.model), device="cpu")
    report = export_onnx(detector, args.output, tolerance=args.tolerance)
    print(report.describe())
    return 0
