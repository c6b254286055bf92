"""Perceptual near-duplicate detection: fingerprint cost, matching scale, planted recall.

Three parts:

1. ``fingerprint`` cost per second of audio (an espeak-ng sentence at 22.05 kHz, resampling
   to 8 kHz included), median of repeats on one core, in wall-clock and in CPU time.
2. Indexing + ``find_pairs`` at ``--sizes`` files (default 5,000 and 50,000), the best of
   ``--repeats`` (5) calls each, in wall-clock and in CPU seconds (one core; the CPU time is
   steadier on a machine shared with other work). The fingerprints are *synthesized* from
   real spectral peaks: the peaks of a pool of unrelated 3 s speech-like signals (a wandering
   harmonic series under a syllable envelope, ``tests/test_near_duplicates.babble``;
   ``--pool`` clips, more if the largest size needs them: one per 20 files) are computed
   once, and each file is one clip's peaks played at one of 10 tempos (x0.8 .. x1.25, steps
   of 5 %), forward or reversed in time (each (clip, tempo, direction) used once), from a
   random start, and hashed by the real code. Hashes therefore come from real constellations
   of peaks: a tempo change keeps what makes hashes common (harmonics of one pitch, in exact
   bins), and steps of 5 % and reversal change every hash that spans more than a few
   frames, so no two files are copies. The chance-match rate this gives is about 0.65 times
   that between the real fingerprints of the pool's clips, which the bench prints first
   (files at different tempos match less); chance matches are a small part of the cost
   (under 1 M at 200,000 files, against 25 M indexed hashes). Moving the peaks to another
   *pitch* instead, by scaling their bins, breaks the exact harmonic spacing and gives 4
   times fewer chance matches than real files: too flattering. Printed per size: files,
   seconds, hash matches (votes) and per pair of files, pairs sharing a hash, pairs scored,
   pairs found, the time ratio to the smallest size (near-linear: ~10x for 10x files), and
   the process's peak memory so far (pool and fingerprints included).
3. Recall and false alarms on a planted set: ``--bases`` (default 100; 0 skips it) espeak-ng
   sentences (random words, voices, speeds, pitches), each with one copy per edit kind of
   ``tests/test_near_duplicates.py`` (gain, silence, resampling, 64 kbit/s MP3/AAC/Opus,
   30 dB noise, cuts) and per two-edit combination there, plus two hard negatives per base
   (the same text spoken again 15% faster and 8 pitch steps higher; another text in the same
   voice). Recall per edit kind counts copies paired with their base; a false alarm is any
   pair across two families.

    python bench/bench_near_duplicates.py
    python bench/bench_near_duplicates.py --sizes 5000 50000 --bases 100
    python bench/bench_near_duplicates.py --sizes 5000 50000 200000 --bases 0
"""

from __future__ import annotations

import argparse
import resource
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
    _peaks,
    fingerprint,
    hash_peaks,
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
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fingerprint(*clip)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    per_second = statistics.median(wall) / seconds * 1000
    fp = fingerprint(*clip)
    print(
        f"fingerprint: {per_second:.2f} ms per second of audio "
        f"({statistics.median(cpu) / seconds * 1000:.2f} ms of CPU; {seconds:.1f} s clip), "
        f"{len(fp) / seconds:.0f} hashes/s, {fp.nbytes / seconds * 10 / 1024:.1f} KiB per 10 s"
    )
    return per_second


#: Each pool clip gives this many synthetic files: 10 tempos (x0.8 .. x1.25, steps of 5 %),
#: each forward or reversed in time.
TEMPOS = np.geomspace(0.8, 1.25, 10)
VARIANTS = 2 * TEMPOS.size

Peaks = tuple[np.ndarray, np.ndarray, np.ndarray]


def peak_pool(size: int, seed: int) -> list[Peaks]:
    """Spectral peaks of ``size`` unrelated 3 s speech-like signals."""
    rng = np.random.default_rng(seed)
    return [_peaks(babble(rng, seconds=3.0)) for _ in range(size)]


def synthetic_fingerprints(n: int, pool: list[Peaks], seed: int) -> dict[str, np.ndarray]:
    """``n`` fingerprints, each of a pool clip's peaks at another tempo (each (clip, tempo,
    direction) used once), starting at a random frame."""
    rng = np.random.default_rng(seed)
    if n > len(pool) * VARIANTS:
        raise ValueError(f"{n:,} files need a pool of {-(-n // VARIANTS):,} clips")
    out = {}
    for i, combo in enumerate(rng.choice(len(pool) * VARIANTS, size=n, replace=False)):
        t, f, exact = pool[combo % len(pool)]
        variant = combo // len(pool)
        if variant >= TEMPOS.size and t.size:  # reversed in time
            exact = t.max() - exact[::-1]
            f = f[::-1]
        exact = exact * TEMPOS[variant % TEMPOS.size] + int(rng.integers(0, 2000))
        t = np.rint(exact).astype(np.int64)
        order = np.lexsort((f, t))
        out[f"f{i}"] = hash_peaks(t[order], f[order], exact[order])
    return out


def bench_scale(sizes: list[int], pool_size: int, repeats: int) -> None:
    start = time.perf_counter()
    pool = peak_pool(max(pool_size, -(-max(sizes) // VARIANTS)), seed=1)
    print(f"pool: peaks of {len(pool):,} clips in {time.perf_counter() - start:.1f} s")
    # The reference: chance hash matches between real fingerprints of different clips.
    reference = {f"r{i}": hash_peaks(*peaks) for i, peaks in enumerate(pool[:pool_size])}
    detector = NearDuplicateDetector(reference)
    detector.find_pairs([record(p) for p in reference])
    n = len(reference)
    print(
        f"real fingerprints of {n:,} clips: {detector.stats.votes / (n * (n - 1) / 2):.2e} "
        f"hash matches per pair of files, {detector.stats.pairs} pairs found"
    )
    first = None
    for n in sizes:
        fps = synthetic_fingerprints(n, pool, seed=n)
        records = [record(p) for p in fps]
        wall, cpu = [], []
        for _ in range(repeats):
            detector = NearDuplicateDetector(fps)
            start, start_cpu = time.perf_counter(), time.process_time()
            pairs = detector.find_pairs(records)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        seconds, cpu_seconds = min(wall), min(cpu)
        first = first or (n, seconds, cpu_seconds)
        s = detector.stats
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"files={n:>7,} seconds={seconds:7.3f} cpu={cpu_seconds:7.3f} "
            f"(of {', '.join(f'{t:.3f}' for t in wall)}) hashes={s.hashes:,} votes={s.votes:,} "
            f"({s.votes / (n * (n - 1) / 2):.2e} per pair) sharing_a_hash={s.candidate_pairs:,} "
            f"scored={s.scored_pairs:,} found={len(pairs)} "
            f"common_ignored={s.common_hashes_ignored:,} x{n / first[0]:.0f} files -> "
            f"x{seconds / first[1]:.1f} time (x{cpu_seconds / first[2]:.1f} cpu), "
            f"peak memory so far {peak_mib:,.0f} MiB",
            flush=True,
        )
        del fps, records, detector, pairs


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
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bases", type=int, default=100)
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["fingerprint", "scale", "planted"]
    )
    args = parser.parse_args()
    if "fingerprint" not in args.skip:
        bench_fingerprint()
    if "scale" not in args.skip:
        bench_scale(args.sizes, args.pool, args.repeats)
    if "planted" not in args.skip and args.bases > 0:
        bench_planted(args.bases)


if __name__ == "__main__":
    main()
