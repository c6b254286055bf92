"""``deepfake-audio make-demo-corpus OUT``: build the offline demo corpus (docs/demo_corpus.md)."""

from __future__ import annotations

import argparse
import sys

from deepfake_audio.corpus import SIZES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "make-demo-corpus",
        help="build a small Fake-or-Real-shaped corpus offline (Debian speech + local fakes)",
        description="Build OUT/demo-<lang>/{training,validation,testing}/{fake,real}/ and "
        "OUT/metadata.csv: real Dutch voice acting from the Debian package fillets-ng-data-nl "
        "(or --real-dir), fakes from espeak-ng, WORLD and Griffin-Lim, and with --neural "
        "from a neural vocoder trained here on the training split's real clips. No recording "
        "or sentence crosses splits; fake/real are balanced; the test split mixes wav, flac, "
        "mp3 and m4a. Deterministic for a seed; a rerun reuses what is built.",
    )
    parser.add_argument("out", help="output folder (new, empty, or an earlier build of it)")
    parser.add_argument(
        "--size",
        choices=tuple(SIZES),
        default="full",
        help="tiny: 40 recordings (~85 clips, seconds); small: 300; "
        "full: all ~1,600 (~3,500 clips, minutes). Default: full",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every choice (default 0)")
    parser.add_argument(
        "--real-dir",
        metavar="FOLDER",
        help="use the audio files under FOLDER as the real speech instead of the Debian "
        "package (a transcript beside a file, name.txt, is read by espeak-ng)",
    )
    parser.add_argument(
        "--language",
        help="espeak-ng language of --real-dir recordings (default: en)",
    )
    parser.add_argument(
        "--cache-dir",
        help="where the Debian package is unpacked "
        "(default: $DEEPFAKE_AUDIO_CACHE or ~/.cache/deepfake-audio)",
    )
    parser.add_argument(
        "--neural",
        action="store_true",
        help="add the neural-vocoder generator: a Vocos-style vocoder trained on the training "
        "split's real clips resynthesises real clips in every split (a quarter of the fakes); "
        "it, its loss plot and audio samples are kept in OUT/neural_vocoder/",
    )
    parser.add_argument(
        "--neural-minutes",
        type=float,
        default=20.0,
        metavar="M",
        help="with --neural: CPU time to train the vocoder (default 20; resumable; a rebuild "
        "with the same settings reuses it)",
    )
    parser.add_argument("--workers", type=int, help="processes (default: all cores)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deepfake_audio.corpus.builder import (
        GENERATORS,
        METADATA,
        NEURAL_DIR,
        NEURAL_GENERATOR,
        SPLITS,
        build_corpus,
    )
    from deepfake_audio.corpus.errors import CorpusError

    try:
        result = build_corpus(
            args.out,
            size=args.size,
            seed=args.seed,
            real_dir=args.real_dir,
            language=args.language,
            cache_dir=args.cache_dir,
            workers=args.workers,
            neural_minutes=args.neural_minutes if args.neural else None,
            progress=not args.no_progress,
        )
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"real speech: {result.speech.description}")
    print(
        f"recordings: {result.tasks} used of {len(result.speech.recordings)} "
        f"(language {result.speech.language}, size {args.size}, seed {args.seed})"
    )
    made = [*GENERATORS, NEURAL_GENERATOR] if result.vocoder else list(GENERATORS)
    print(f"fake generators: {', '.join(made)} ({result.espeak}; pyworld; Griffin-Lim)")
    if result.vocoder:
        vocoder = result.vocoder
        print(
            f"neural vocoder: {vocoder.steps} steps in {vocoder.seconds / 60:.1f} min of "
            f"training{' (reused)' if vocoder.reused else ''}; losses, samples and "
            f"spectrograms in {result.out / NEURAL_DIR}"
        )
    for recording_id, reason in result.skipped:
        print(f"skipped recording {recording_id}: {reason}")
    generators = ("bonafide", *made)
    header = f"  {'split':<11} {'real':>6} {'fake':>6}  " + "  ".join(
        f"{g:>11}" for g in generators
    )
    print(f"files in {result.out}/{result.dataset_type}:")
    print(header)
    for split in SPLITS:
        counts = result.counts()[split]
        real = sum(n for key, n in counts.items() if key.startswith("real/"))
        fake = sum(n for key, n in counts.items() if key.startswith("fake/"))
        per = "  ".join(
            f"{sum(n for key, n in counts.items() if key.endswith('/' + g)):>11}"
            for g in generators
        )
        print(f"  {split:<11} {real:>6} {fake:>6}  {per}")
    print(
        f"{len(result.rows)} files ({result.written} written, {result.reused} reused"
        f"{f', {result.removed} stale removed' if result.removed else ''}) "
        f"in {result.seconds:.1f} s; metadata: {result.out / METADATA}"
    )
    return 0
