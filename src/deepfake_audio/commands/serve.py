"""``deepfake-audio serve --model M``: a web page and HTTP API on this machine, offline."""

from __future__ import annotations

import argparse
import sys

from deepfake_audio.commands.scoring_args import (
    _positive_float,
    _positive_int,
    add_backend_option,
    add_device_option,
    check_backend,
)


def _queue(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="a web page and HTTP API: upload a clip, see where it sounds fake",
        description="Serve a page (/) and an HTTP API (/api/analyze, /api/models, "
        "/api/health; offline docs at /docs) that judge uploaded clips with the models given, "
        "loaded once at start. Answers are those of `predict --json`. Binds to 127.0.0.1 "
        "(this machine only) unless --host says otherwise; nothing is fetched from the "
        "network. See docs/serve.md.",
    )
    parser.add_argument(
        "--model",
        "-m",
        action="append",
        dest="models",
        required=True,
        metavar="CKPT",
        help="checkpoint (.safetensors), run folder, built-in model name, or panel; repeat "
        "for an ensemble",
    )
    parser.add_argument(
        "--fusion", metavar="FILE", help="a fusion file (`deepfake-audio fuse`) for the models"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes it to the network)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--max-upload-mb",
        type=_positive_float,
        default=50.0,
        metavar="MB",
        help="largest upload accepted; larger ones get 413 and are not read further (default 50)",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="analyses run at once, each on its own thread (default 1: torch already uses "
        "every core for one)",
    )
    parser.add_argument(
        "--queue",
        type=_queue,
        default=8,
        help="analyses that may wait for a worker; beyond, uploads get 503 with Retry-After "
        "(default 8)",
    )
    add_device_option(parser)
    add_backend_option(parser)
    parser.add_argument(
        "--max-duration",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="longest decoded audio of one upload, in seconds (default: the read limit of "
        "every command, 4 hours)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from deepfake_audio.read_limits import set_read_limits
    from deepfake_audio.scoring.options import ScoringOptions
    from deepfake_audio.serve.app import create_app
    from deepfake_audio.serve.service import Service

    check_backend(args)
    # The decoder's own caps: never more bytes than an upload, never longer than asked.
    hours = None if args.max_duration is None else args.max_duration / 3600
    set_read_limits(args.max_upload_mb, hours)
    service = Service(
        args.models,
        fusion_path=args.fusion,
        options=ScoringOptions(device=args.device, backend=args.backend),
        workers=args.workers,
        queue=args.queue,
        command_line=args.command_line,
    )
    app = create_app(service, max_upload_bytes=int(args.max_upload_mb * 2**20))
    names = ", ".join(service.lineup.models)
    print(f"serving {names} on http://{args.host}:{args.port}/ (Ctrl-C stops)", file=sys.stderr)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    finally:
        service.shutdown()
    return 0
