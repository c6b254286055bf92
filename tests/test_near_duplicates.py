"""Perceptual near-duplicate detection (``deepfake_audio.data.near_duplicates``).

Every clip is made here: sentences spoken by espeak-ng (``make system-deps``) and seeded
synthetic signals. Each edit kind the detector must survive is planted on a few base clips,
alone and two at a time, next to hard negatives that must not match: another sentence of the
same voice, the same sentence spoken again at another speed or pitch, clips of one TTS voice.
"""

from __future__ import annotations

import io
import itertools
import subprocess
from collections.abc import Callable

import numpy as np
import pytest
import soundfile as sf

from deepfake_audio.audio import decode_bytes, encode_ffmpeg, resample
from deepfake_audio.data.near_duplicates import (
    _PEAK_TIME_RADIUS,
    _RANK_RADIUS,
    DEFAULT_THRESHOLD,
    NearDuplicateDetector,
    _peaks,
    fingerprint,
    fingerprint_from_text,
    fingerprint_to_text,
    hash_peaks,
)
from deepfake_audio.data.records import ClipRecord
from deepfake_audio.data.separation import separate

# espeak-ng is installed by `make test` (APT_PACKAGES): these tests run, never skip.

SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please call Stella and ask her to bring these things from the store.",
    "A large cloud of smoke rose slowly above the old railway station.",
    "We will meet again tomorrow morning at half past seven.",
    "Nobody expected the small team to win the final match this year.",
    "The museum opens its new exhibition of ancient maps next week.",
)

Clip = tuple[np.ndarray, int]  # mono float32, sample rate


def speak(text: str, voice: str = "en", speed: int = 165, pitch: int = 50) -> Clip:
    """espeak-ng's rendering of ``text`` (22.05 kHz), peak-normalised to -14 dBFS."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return (0.2 * samples / np.max(np.abs(samples))).astype(np.float32), rate


# --- edits: each maps a clip to the same recording, changed --------------------------------


def gain(db: float) -> Callable[[Clip, np.random.Generator], Clip]:
    return lambda clip, rng: ((clip[0] * 10 ** (db / 20)).astype(np.float32), clip[1])


def pad(lead: float, trail: float) -> Callable[[Clip, np.random.Generator], Clip]:
    def edit(clip: Clip, rng: np.random.Generator) -> Clip:
        x, rate = clip
        z = np.zeros
        return np.concatenate([z(int(lead * rate)), x, z(int(trail * rate))]).astype(
            np.float32
        ), rate

    return edit


def rate_change(to_rate: int) -> Callable[[Clip, np.random.Generator], Clip]:
    return lambda clip, rng: (resample(clip[0], clip[1], to_rate), to_rate)


def codec(suffix: str, bitrate: int = 64000) -> Callable[[Clip, np.random.Generator], Clip]:
    def edit(clip: Clip, rng: np.random.Generator) -> Clip:
        decoded = decode_bytes(encode_ffmpeg(clip[0], clip[1], suffix, bitrate=bitrate))
        return decoded.mono(), decoded.sample_rate

    return edit


def noise(snr_db: float) -> Callable[[Clip, np.random.Generator], Clip]:
    def edit(clip: Clip, rng: np.random.Generator) -> Clip:
        x, rate = clip
        power = float(np.mean(x.astype(np.float64) ** 2))
        n = rng.standard_normal(x.size) * np.sqrt(power / 10 ** (snr_db / 10))
        return (x + n).astype(np.float32), rate

    return edit


def cut(lead: float, trail: float) -> Callable[[Clip, np.random.Generator], Clip]:
    def edit(clip: Clip, rng: np.random.Generator) -> Clip:
        x, rate = clip
        return x[int(lead * rate) : x.size - int(trail * rate)], rate

    return edit


EDITS: dict[str, Callable[[Clip, np.random.Generator], Clip]] = {
    "gain+12dB": gain(12),
    "gain-12dB": gain(-12),
    "silence2s": pad(2.0, 2.0),
    "resample8k": rate_change(8000),
    "resample11k": rate_change(11025),
    "resample44k": rate_change(44100),
    "resample48k": rate_change(48000),
    "mp3_64k": codec(".mp3"),
    "aac_64k": codec(".m4a"),
    "opus_64k": codec(".opus"),
    "noise30dB": noise(30),
    "cut_start0.5s": cut(0.5, 0.0),
    "cut_end0.5s": cut(0.0, 0.5),
    "cut_both0.3s": cut(0.3, 0.3),
}

#: Two-edit combinations planted by the tests (the first edit, then the second).
COMBOS = (
    ("mp3_64k", "noise30dB"),
    ("cut_start0.5s", "mp3_64k"),
    ("gain-12dB", "opus_64k"),
    ("silence2s", "noise30dB"),
    ("resample8k", "cut_end0.5s"),
    ("aac_64k", "resample48k"),
    ("gain+12dB", "cut_both0.3s"),
    ("noise30dB", "resample11k"),
)


def edited(clip: Clip, names: tuple[str, ...], seed: int) -> Clip:
    rng = np.random.default_rng(seed)
    for name in names:
        clip = EDITS[name](clip, rng)
    return clip


def record(path: str, split: str = "train") -> ClipRecord:
    return ClipRecord(path=path, label=1, split=split)


# --- the planted set ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted() -> tuple[dict[str, np.ndarray], set[frozenset[str]], list[str]]:
    """Fingerprints of base clips, their edited copies and hard negatives.

    Returns ``(fingerprints, expected pairs, paths)``: every edited copy must pair with its
    base (and copies of one base with each other); no other pair may be found.
    """
    fps: dict[str, np.ndarray] = {}
    families: dict[str, list[str]] = {}
    bases = {
        "s0": speak(SENTENCES[0]),
        "s1": speak(SENTENCES[1], voice="en+m3", speed=150),
        "s2": speak(SENTENCES[2], voice="en+f3", pitch=70),
        "s3": speak(SENTENCES[3], voice="en-us", speed=180),
    }
    variants = [(name,) for name in EDITS] + list(COMBOS)
    for base, clip in bases.items():
        family = families.setdefault(base, [base])
        fps[base] = fingerprint(*clip)
        for k, names in enumerate(variants):
            path = f"{base}/{'+'.join(names)}"
            fps[path] = fingerprint(*edited(clip, names, seed=k))
            family.append(path)
    # Hard negatives: none of these is a near-duplicate of anything.
    negatives = {
        # The same sentence as s0, spoken again: another speed, another pitch, another voice.
        "neg/s0_fast": speak(SENTENCES[0], speed=185),
        "neg/s0_slow": speak(SENTENCES[0], speed=150),
        "neg/s0_high": speak(SENTENCES[0], pitch=60),
        "neg/s0_m3": speak(SENTENCES[0], voice="en+m3"),
        # The voice of s0 (and of s1) saying other sentences.
        "neg/v0_4": speak(SENTENCES[4]),
        "neg/v0_5": speak(SENTENCES[5]),
        "neg/m3_4": speak(SENTENCES[4], voice="en+m3", speed=150),
        "neg/m3_5": speak(SENTENCES[5], voice="en+m3", speed=150),
        # The same sentence as s1 with the same voice, a little faster.
        "neg/s1_faster": speak(SENTENCES[1], voice="en+m3", speed=160),
    }
    for path, clip in negatives.items():
        fps[path] = fingerprint(*clip)
    expected = {
        frozenset(p) for family in families.values() for p in itertools.combinations(family, 2)
    }
    return fps, expected, sorted(fps)


def test_every_planted_pair_is_found_and_no_other(planted) -> None:
    fps, expected, paths = planted
    detector = NearDuplicateDetector(fps)
    records = [record(p) for p in paths]
    pairs = detector.find_pairs(records)
    found = {frozenset((a.path, b.path)): s for a, b, s in pairs}
    # Each copy against its own base: the pairs the detector exists for.
    base_pairs = {p for p in expected if any("/" not in q for q in p)}
    missed = sorted(tuple(sorted(p)) for p in base_pairs if p not in found)
    assert not missed, f"missed {len(missed)} planted pairs, e.g. {missed[:5]}"
    false = sorted((tuple(sorted(p)), round(s, 3)) for p, s in found.items() if p not in expected)
    assert not false, f"false pairs: {false[:5]}"
    for s in found.values():
        assert DEFAULT_THRESHOLD <= s <= 1.0
    # Two edited copies of one base (e.g. MP3 and a cut) mostly match each other too.
    copy_pairs = expected - base_pairs
    assert sum(p in found for p in copy_pairs) >= 0.9 * len(copy_pairs)


def test_groups_are_connected_components(planted) -> None:
    fps, _, paths = planted
    records = [record(p, split=("train", "validation", "test")[i % 3]) for i, p in enumerate(paths)]
    groups = NearDuplicateDetector(fps).find_groups(records)
    as_sets = sorted(sorted({r.path.split("/")[0] for r in g}) for g in groups)
    assert as_sets == [["s0"], ["s1"], ["s2"], ["s3"]]
    assert all(len(g) == 1 + len(EDITS) + len(COMBOS) for g in groups)
    # It plugs into separate() like the exact detectors: leaks kept in train only.
    result = separate(records, [NearDuplicateDetector(fps)])
    assert len(result.leaks) == 4
    kept = {r.path for r in result.records}
    assert all(p in kept for p in paths if p.startswith("neg/"))
    for group in groups:
        assert {r.split for r in group if r.path in kept} == {"train"}


def test_identical_and_unrelated_signals() -> None:
    clip = speak(SENTENCES[2])
    fp = fingerprint(*clip)
    rng = np.random.default_rng(3)
    fps = {
        "a": fp,
        "a_copy": fp.copy(),
        "noise": fingerprint(rng.standard_normal(32000).astype(np.float32) * 0.1, 16000),
        "silence": fingerprint(np.zeros(32000, np.float32), 16000),
        "tiny": fingerprint(np.ones(100, np.float32), 16000),
    }
    assert fps["silence"].shape == (0, 2) and fps["tiny"].shape == (0, 2)
    pairs = NearDuplicateDetector(fps).find_pairs([record(p) for p in fps] + [record("missing")])
    assert [(a.path, b.path, round(s, 6)) for a, b, s in pairs] == [("a", "a_copy", 1.0)]


def test_fingerprint_is_compact_and_fast_enough() -> None:
    clip = speak(" ".join(SENTENCES[:3]))  # ~12 s
    seconds = clip[0].size / clip[1]
    fp = fingerprint(*clip)
    assert fp.dtype == np.uint32 and fp.ndim == 2 and fp.shape[1] == 2
    assert 20 * seconds < len(fp) < 120 * seconds
    assert fp.nbytes / seconds < 1000  # under 10 KB for 10 s
    import time

    start = time.perf_counter()
    for _ in range(5):
        fingerprint(*clip)
    per_second = (time.perf_counter() - start) / 5 / seconds
    assert per_second < 0.005  # generous: measured ~1 ms per second of audio


def test_text_round_trip() -> None:
    fp = fingerprint(*speak(SENTENCES[5]))
    text = fingerprint_to_text(fp)
    assert isinstance(text, str) and text.isascii()
    back = fingerprint_from_text(text)
    assert back.dtype == np.uint32 and np.array_equal(back, fp)
    assert fingerprint_from_text(fingerprint_to_text(np.empty((0, 2), np.uint32))).shape == (0, 2)
    with pytest.raises(ValueError):
        fingerprint_from_text("AAAA")  # 3 bytes


def babble(rng: np.random.Generator, seconds: float = 1.0, rate: int = 8000) -> np.ndarray:
    """A cheap speech-like signal: harmonics of a wandering pitch under a syllable envelope."""
    n = int(seconds * rate)
    f0 = rng.uniform(90, 250) * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    weights = rng.uniform(0.1, 1.0, 12) / np.arange(1, 13)
    voiced = sum(w * np.sin(k * phase) for k, w in enumerate(weights, 1))
    knots = int(seconds * 8) + 2
    env = np.abs(np.interp(np.arange(n), np.linspace(0, n, knots), rng.normal(size=knots)))
    return (env * voiced + 0.02 * rng.standard_normal(n)).astype(np.float32)


def test_candidates_are_limited_on_many_unrelated_clips() -> None:
    """2,000 unrelated clips: scored pairs stay far below the n^2/2 possible; none matches."""
    rng = np.random.default_rng(0)
    fps = {f"c{i}": fingerprint(babble(rng), 8000) for i in range(2000)}
    detector = NearDuplicateDetector(fps)
    pairs = detector.find_pairs([record(p) for p in fps])
    n = len(fps)
    stats = detector.stats
    assert stats.files == n and stats.hashes > 20 * n
    assert stats.scored_pairs < 0.001 * n * n / 2, stats
    assert stats.candidate_pairs < 0.2 * n * n / 2, stats
    assert pairs == []


def test_chance_hash_matches_are_rare() -> None:
    """Four peaks a hash: unrelated clips share almost no hash (a two-peak hash of 22 bits
    matched ~0.5 times per pair of 3 s clips, and the matching time grew with its square)."""
    rng = np.random.default_rng(5)
    fps = {f"c{i}": fingerprint(babble(rng, seconds=3.0), 8000) for i in range(400)}
    detector = NearDuplicateDetector(fps)
    assert detector.find_pairs([record(p) for p in fps]) == []
    n = len(fps)
    assert detector.stats.hashes > 100 * n
    assert detector.stats.votes < 0.001 * n * (n - 1) / 2, detector.stats  # measured 5e-5


def test_peaks_do_not_move_with_a_cut() -> None:
    """Peak selection is a sliding rank: cutting the start keeps every later peak, and the
    fractional times keep the time steps when the cut is half a frame off the frame grid."""
    samples, rate = speak(SENTENCES[1])
    x = resample(samples, rate, 8000)
    t, f, exact = _peaks(x)
    edge = _RANK_RADIUS + _PEAK_TIME_RADIUS + 2  # frames near a new edge may change
    for hops in (37, 62):
        t2, f2, _ = _peaks(x[hops * 64 :])
        before = {(a - hops, b) for a, b in zip(t, f, strict=True) if a - hops > edge}
        after = {(a, b) for a, b in zip(t2, f2, strict=True) if a > edge}
        assert before == after
    # Half a frame off the grid: nearly every peak is found again, at its fractional time
    # less 62.5 frames.
    t2, f2, exact2 = _peaks(x[62 * 64 + 32 :])
    where = {(round(e * 2), b): e for e, b in zip(exact2, f2, strict=True)}
    moved = [
        e - 62.5 - where[key]
        for e, b in zip(exact, f, strict=True)
        if (key := (round((e - 62.5) * 2), b)) in where and e - 62.5 > edge
    ]
    assert len(moved) > 0.8 * np.count_nonzero(t - 62 > edge)
    assert np.median(np.abs(moved)) < 0.05  # measured 0.002


def test_copies_cut_off_the_frame_grid_keep_most_votes() -> None:
    """A cut of 0.5 s at 22.05 kHz starts the 8 ms frame grid half a frame later."""
    clip = speak(SENTENCES[3], voice="en-us", speed=180)
    fps = {"base": fingerprint(*clip)}
    for name in ("cut_start0.5s", "cut_both0.3s"):
        fps[name] = fingerprint(*EDITS[name](clip, np.random.default_rng(0)))
    pairs = NearDuplicateDetector(fps).find_pairs([record(p) for p in fps])
    found = {frozenset((a.path, b.path)): s for a, b, s in pairs}
    for name in ("cut_start0.5s", "cut_both0.3s"):
        assert found.get(frozenset(("base", name)), 0.0) >= 0.45, found  # measured 0.58, 0.70


def test_rows_in_any_order_and_the_frame_limit() -> None:
    fp = fingerprint(*speak(SENTENCES[4]))
    shuffled = fp[np.random.default_rng(1).permutation(len(fp))]
    pairs = NearDuplicateDetector({"a": fp, "b": shuffled}).find_pairs([record("a"), record("b")])
    assert [(a.path, b.path, round(s, 6)) for a, b, s in pairs] == [("a", "b", 1.0)]
    t = np.array([0, 10, 20, 30, 40]) + (1 << 23)
    f = np.array([50, 60, 55, 70, 65])
    with pytest.raises(ValueError):
        hash_peaks(t, f, t.astype(float))
