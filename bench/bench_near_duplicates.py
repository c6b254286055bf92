"""Perceptual near-duplicate detection: fingerprint cost, matching scale, planted recall.

Three parts:

1. ``fingerprint`` cost per second of audio (an espeak-ng sentence at 22.05 kHz, resampling
   to 8 kHz included), median of repeats on one core.
2. Indexing + ``find_pairs`` at ``--sizes`` files (default 5,000 and 50,000). The
   fingerprints are *synthesized*, not decoded: ``--pool`` (default 1,000) real fingerprints
   of unrelated 3 s speech-like signals (a wandering harmonic series under a syllable
   envelope) are computed once, and each file is a variant of one of them: every hash's
   anchor frequency is shifted by a per-file number of bins (each (clip, shift) used once),
   its time-step field remapped through a per-file random permutation, and its frames
   moved by a random offset. Variants keep the real frequency statistics, so common hashes
   stay common, but are unrelated to each other. Printed: files, seconds, hash matches
   (votes), pairs sharing a hash, pairs scored, pairs found, and the time ratio to the
   smallest run (near-linear: ~10x for 10x files).
3. Recall and false alarms on a planted set: ``--bases`` (default 100) espeak-ng sentences
   (random words, voices, speeds, pitches), each with one copy per edit kind of
   ``tests/test_near_duplicates.py`` (gain, silence, resampling, 64 kbit/s MP3/AAC/Opus,
   30 dB noise, cuts) and per two-edit combination there, plus two hard negatives per base
   (the same text spoken again 15% faster and 8 pitch steps higher; another text in the same
   voice). Recall per edit kind counts copies paired with their base; a false alarm is any
   pair across two families.

    python bench/bench_near_duplicates.py
    python bench/bench_near_duplicates.py --sizes 5000 50000 --bases 100
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parent.parent
for extra in (_ROOT / "src", _ROOT):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from deepfake_audio.data.near_duplicates import (  # noqa: E402
    DEFAULT_THRESHOLD,
    NearDuplicateDetector,
    fingerprint,
)
from tests.test_near_duplicates import (  # noqa: E402
    COMBOS,
    EDITS,
    SENTENCES,
    babble,
    edited,
    record,
    speak,
)

WORDS = (  # noqa: SIM905
    "time year people way day man thing woman life child world school state family student "
    "group country problem hand part place case week company system program question work "
    "government number night point home water room mother area money story fact month lot "
    "right study book eye job word business issue side kind head house service friend father "
    "power hour game line end member law car city community name president team minute idea "
    "kid body information back parent face others level office door health person art war "
    "history party result change morning reason research girl guy moment air teacher force"
).split()
VOICES = ("en", "en+m3", "en+f3", "en-us", "en+m1", "en+f2", "en-gb-x-rp", "en+m7")


def bench_fingerprint(repeats: int = 20) -> float:
    clip = speak(" ".join(SENTENCES))
    seconds = clip[0].size / clip[1]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fingerprint(*clip)
        times.append(time.perf_counter() - start)
    per_second = statistics.median(times) / seconds * 1000
    fp = fingerprint(*clip)
    print(
        f"fingerprint: {per_second:.2f} ms per second of audio ({seconds:.1f} s clip), "
        f"{len(fp) / seconds:.0f} hashes/s, {fp.nbytes / seconds * 10 / 1024:.1f} KiB per 10 s"
    )
    return per_second


def synthetic_fingerprints(n: int, pool: list[np.ndarray], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shifts = np.arange(-60, 61)
    shifts = shifts[shifts != 0]
    combos = rng.choice(len(pool) * shifts.size, size=n, replace=False)
    out = {}
    for i, combo in enumerate(combos):
        base = pool[combo % len(pool)].astype(np.int64)
        shift = shifts[combo // len(pool)]
        h = base[:, 0]
        f1 = np.clip((h >> 13) + shift, 1, 511)
        perm = np.r_[0, rng.permutation(63) + 1]
        new = (f1 << 13) | (h & 0x1FC0) | perm[h & 0x3F]
        frames = base[:, 1] + rng.integers(0, 2000)
        out[f"f{i}"] = np.stack([new, frames], axis=1).astype(np.uint32)
    return out


def bench_scale(sizes: list[int], pool_size: int) -> None:
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    pool = [fingerprint(babble(rng, seconds=3.0), 8000) for _ in range(pool_size)]
    print(f"pool: {pool_size} real fingerprints in {time.perf_counter() - start:.1f} s")
    first = None
    for n in sizes:
        fps = synthetic_fingerprints(n, pool, seed=n)
        records = [record(p) for p in fps]
        detector = NearDuplicateDetector(fps)
        start = time.perf_counter()
        pairs = detector.find_pairs(records)
        seconds = time.perf_counter() - start
        first = first or (n, seconds)
        s = detector.stats
        print(
            f"files={n:>7,} seconds={seconds:7.2f} hashes={s.hashes:,} votes={s.votes:,} "
            f"sharing_a_hash={s.candidate_pairs:,} scored={s.scored_pairs:,} found={len(pairs)} "
            f"common_ignored={s.common_hashes_ignored:,} "
            f"x{n / first[0]:.0f} files -> x{seconds / first[1]:.1f} time "
            f"(all pairs: {n * (n - 1) // 2:,})"
        )


def random_text(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(8, 14)))) + "."


def bench_planted(bases: int) -> None:
    rng = np.random.default_rng(7)
    variants = [(name,) for name in EDITS] + list(COMBOS)
    fps: dict[str, np.ndarray] = {}
    start = time.perf_counter()
    for b in range(bases):
        voice = VOICES[b % len(VOICES)]
        speed, pitch = int(rng.integers(140, 190)), int(rng.integers(30, 70))
        text = random_text(rng)
        clip = speak(text, voice=voice, speed=speed, pitch=pitch)
        fps[f"b{b}/base"] = fingerprint(*clip)
        for k, names in enumerate(variants):
            fps[f"b{b}/{'+'.join(names)}"] = fingerprint(*edited(clip, names, seed=b * 100 + k))
        again = speak(text, voice=voice, speed=int(speed * 1.15), pitch=pitch + 8)
        fps[f"n{b}/again"] = fingerprint(*again)
        fps[f"n{b}/other_text"] = fingerprint(
            *speak(random_text(rng), voice=voice, speed=speed, pitch=pitch)
        )
    print(f"planted set: {len(fps)} clips built in {time.perf_counter() - start:.1f} s")
    detector = NearDuplicateDetector(fps)
    start = time.perf_counter()
    pairs = detector.find_pairs([record(p) for p in fps])
    print(f"find_pairs: {time.perf_counter() - start:.2f} s, {detector.stats}")
    found = {frozenset((a.path, b.path)): s for a, b, s in pairs}
    print(f"threshold {DEFAULT_THRESHOLD}; recall per edit kind (copy paired with its base):")
    for names in variants:
        kind = "+".join(names)
        sims = [found.get(frozenset((f"b{b}/base", f"b{b}/{kind}")), 0.0) for b in range(bases)]
        hit = sum(s > 0 for s in sims)
        low = min((s for s in sims if s > 0), default=0.0)
        print(f"  {kind:28s} {hit:4d}/{bases}  lowest similarity found {low:.2f}")
    false = [(p, s) for p, s in found.items() if len({q.split("/")[0] for q in p}) > 1]
    kinds = Counter(
        "+".join(sorted(q.split("/")[1] if q.startswith("n") else "copy" for q in p))
        for p, _ in false
    )
    print(f"false alarms: {len(false)} of {len(fps) * (len(fps) - 1) // 2:,} pairs {dict(kinds)}")
    for p, s in sorted(false, key=lambda x: -x[1])[:5]:
        print(f"  {sorted(p)} {s:.3f}")
    # The highest similarity of any cross-family pair, found or not, for the margin.
    loose = NearDuplicateDetector(fps, threshold=0.0, min_votes=1, min_frames=1)
    worst = max(
        (
            s
            for a, b, s in loose.find_pairs([record(p) for p in fps])
            if a.path.split("/")[0] != b.path.split("/")[0]
        ),
        default=0.0,
    )
    print(f"highest cross-family similarity (any pair): {worst:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--bases", type=int, default=100)
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["fingerprint", "scale", "planted"]
    )
    args = parser.parse_args()
    if "fingerprint" not in args.skip:
        bench_fingerprint()
    if "scale" not in args.skip:
        bench_scale(args.sizes, args.pool)
    if "planted" not in args.skip:
        bench_planted(args.bases)


if __name__ == "__main__":
    main()
