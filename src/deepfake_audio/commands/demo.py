"""``deepfake-audio demo``: the whole pipeline on the demo corpus, one command.

Build the corpus -> train ``seed_cnn`` -> evaluate on the test split (per generator) ->
compare every checkpoint over the test split. Each step is the same subcommand a user would
run by hand (printed before it runs), so the demo doubles as a worked example. A rerun reuses
what is built: the corpus is verified, not rebuilt; a finished run of as many epochs is not
retrained, a shorter or interrupted one is resumed. Each size has its own folder by default
(``demo`` for small, ``demo-tiny``, ``demo-full``; ``-neural`` added with ``--neural``), so
``--size full`` works after ``make demo``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

FINAL_MODEL = "fake_or_real_classifier.safetensors"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="build the demo corpus, train seed_cnn, evaluate, compare (2-3 min on 2 cores)",
        description=__doc__,
    )
    parser.add_argument(
        "--output-dir",
        help="where everything goes (default ./demo for --size small, ./demo-SIZE otherwise)",
    )
    parser.add_argument(
        "--size",
        choices=("tiny", "small", "full"),
        default="small",
        help="demo corpus size (default small: about 650 clips, trains in minutes on a CPU)",
    )
    parser.add_argument(
        "--neural",
        action="store_true",
        help="add neural-vocoder fakes to the corpus: a vocoder trained here for "
        "--neural-minutes first (about 20 min more; see make-demo-corpus --neural)",
    )
    parser.add_argument(
        "--neural-minutes",
        type=float,
        default=20.0,
        metavar="M",
        help="with --neural: vocoder training time (default 20)",
    )
    parser.add_argument("--epochs", type=int, default=6, help="training epochs (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="seed of corpus and training")
    parser.add_argument("--cache-dir", help="decode cache (default ~/.cache/deepfake-audio)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run)


def _step(title: str, argv: list[str]) -> int:
    from deepfake_audio.cli import main

    print(f"\n=== {title}\n$ deepfake-audio {' '.join(argv)}", flush=True)
    return main(argv)


def output_folder(size: str, output_dir: str | None, neural: bool = False) -> Path:
    """The demo's folder: the one given, else ``demo`` (small) or ``demo-SIZE``, with
    ``-neural`` added for a corpus with neural fakes."""
    if output_dir:
        return Path(output_dir)
    name = "demo" if size == "small" else f"demo-{size}"
    return Path(f"{name}-neural" if neural else name)


def training_step(run_dir: Path, epochs: int) -> list[str] | None:
    """How to bring ``run_dir`` to ``epochs`` epochs: None when a finished run of that many
    epochs is there; ``train --resume`` for a shorter or interrupted run; else a new run
    (the caller adds its options). A run already longer is an error, not silently reused."""
    config = run_dir / "config.json"
    done = 0
    if (run_dir / "history.csv").is_file():
        done = max(0, len((run_dir / "history.csv").read_text().splitlines()) - 1)
    if config.is_file() and done:
        planned = json.loads(config.read_text()).get("epochs")
        if done > epochs:
            raise ValueError(
                f"{run_dir} already trained {done} epochs, more than --epochs {epochs}: "
                "give another --output-dir"
            )
        if done == epochs and planned == epochs and (run_dir / FINAL_MODEL).exists():
            return None
        return ["train", "--resume", str(run_dir), "--epochs", str(epochs)]
    if (run_dir / "resume").is_dir():  # interrupted in its first epoch: config.json has the rest
        return ["train", "--resume", str(run_dir), "--epochs", str(epochs)]
    return []


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    out = output_folder(args.size, args.output_dir, args.neural)
    corpus, run_dir = out / "corpus", out / "run"
    evaluation, comparison = out / "evaluation", out / "comparison"
    common = ["--cache-dir", args.cache_dir] if args.cache_dir else []
    quiet = ["--no-progress"] if args.no_progress else []

    corpus_args = ["make-demo-corpus", str(corpus), "--size", args.size, "--seed", str(args.seed)]
    if args.neural:
        corpus_args += ["--neural", "--neural-minutes", f"{args.neural_minutes:g}"]
    code = _step("1/4 demo corpus", corpus_args + common + quiet)
    if code:
        return code

    final = run_dir / FINAL_MODEL
    train_args = training_step(run_dir, args.epochs)
    if train_args is None:
        print(f"\n=== 2/4 training: reusing the finished run {run_dir}")
    else:
        if not train_args:
            train_args = ["train", "--data-root", str(corpus), "--output-dir", str(run_dir),
                          "--model", "seed_cnn", "--seed", str(args.seed), *common,
                          "--epochs", str(args.epochs)]  # fmt: skip
        code = _step("2/4 training seed_cnn", train_args + quiet)
        if code:
            return code

    code = _step(
        "3/4 evaluation on the test split, per generator",
        ["evaluate", "--run", str(run_dir), "--output-dir", str(evaluation), *quiet],
    )  # fmt: skip
    if code:
        return code

    test_dirs = sorted(corpus.glob("*/testing"))
    code = _step(
        "4/4 every checkpoint over the test split",
        ["compare", "--models-dir", str(run_dir), "--audio-dir", str(test_dirs[0]),
         "--output-dir", str(comparison), *quiet],
    )  # fmt: skip
    if code:
        return code

    minutes = (time.monotonic() - started) / 60
    print(f"\n=== done in {minutes:.1f} min")
    print(f"corpus       {corpus}  (metadata.csv lists every clip)")
    print(f"run          {run_dir}  (checkpoints, history.csv, accuracy.png, loss.png, reports)")
    print(f"evaluation   {evaluation}  (metrics.json, scores.csv, roc.png, ape.png, ...)")
    print(f"comparison   {comparison}  (model_comparison_*.csv, model_summary_*.csv, ...)")
    print(f"try          deepfake-audio predict --model {final} SOME_AUDIO_FILE")
    return 0
