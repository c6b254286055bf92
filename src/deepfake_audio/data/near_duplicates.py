"""Perceptual near-duplicate detection: the same recording after gain, resampling, re-encoding...

A landmark ("constellation") fingerprint in the spirit of Wang's Shazam paper: the audio is
resampled to :data:`FINGERPRINT_RATE` and turned into a log-magnitude spectrogram (128 ms
windows every 8 ms), and its prominent local maxima (*peaks*: the maximum of +-8 frames and
+-12 bins, within 50 dB of the loudest) are kept where no more than 11 stronger peaks lie
within +-31 frames (+-0.25 s) of them: about 24 a second, in loud and quiet parts alike. That
rank is taken in a window centred on each peak, so a cut or added silence, which moves every
frame by the same amount, does not change which peaks are kept (the strongest few per *fixed*
block of frames would: the block boundaries move with the cut). Each peak's time is also
taken to a fraction of a frame (the vertex of the parabola through its bin's log magnitudes
in three frames), so that a cut a fraction of a frame off the frame grid (half a frame for
0.5 s at 22.05 kHz) leaves the time steps between peaks as they were.

Each peak (the *anchor*) is grouped with its 4 nearest later peaks in its *target zone*
(3 to 63 frames later, within +-63 bins), and every 3 of those 4 make one hash: the anchor
bin (9 bits) and, per target, the frequency step (7 bits) and the time step between the
fractional times, rounded (6 bits), 48 bits mixed into 32. Four hashes per anchor, so that a
target lost to an edit leaves one of them intact. A group whose three targets lie within one
frame of each other (a chord: harmonics of one moment, whose steps are set by the pitch
alone) is not hashed, nor is a target under 3 frames after its anchor (the same chord): such
hashes were about a third of all, and 90 % of the chance matches between unrelated voices.
Every hash is stored with its anchor peak, ``frame << 9 | bin``. Peaks are local maxima of a *log*
spectrum, so a gain change does not move them; silence has no peaks; resampling and a lossy
codec keep the strong spectral peaks; a cut or added silence only shifts every time by the
same amount.

Four peaks per hash rather than two make chance matches rare: between the fingerprints of
different 3 s speech-like clips (~125 hashes each), 9e-5 hash matches per pair of files,
against 0.46 with the earlier hash of two peaks (22 bits: anchor bin, frequency step, time
step), whose matches between unrelated files grew with the square of the number of files and
took most of the matching time from a few thousand files on.

:class:`NearDuplicateDetector` indexes every file's hashes and, for every two files sharing a
hash, votes on the *time offset* between the two occurrences. The same recording produces many
votes at one offset (plus or minus a frame); two unrelated clips produce a few scattered ones.
It never compares all pairs: the hash values are sorted once (32-bit values) to find those
that occur more than once, only the entries with such a value are sorted with their index,
and each group of entries sharing a hash gives its votes; a hash found in more than
``max_files_per_hash`` files (silence edges, steady tones, hum) is ignored, which bounds the
work per hash. The votes are counted per (pair of files, offset) with one sort of one key, and
only the pairs that could reach ``min_votes`` are counted exactly.

A vote is one *anchor peak* of the first file whose hash (any of its four) recurs in the
second at the offset voted for; a pair is scored only with ``min_votes`` such peaks spread
over ``min_frames`` distinct frames (a chord of harmonics lining up once is a coincidence).
The similarity of two files is their best aligned vote count (offsets within +-1 frame pooled)
divided by the smaller number of anchor peaks with a hash of the two, clipped to 1. The
default :data:`DEFAULT_THRESHOLD` of 0.25 sits between the lowest similarity measured for a
real near-duplicate (0.39: a 0.5 s cut at the start then 64 kbit/s MP3; 0.43 for 64 kbit/s
Opus, 0.47 for AAC, 0.54 for cuts alone) and the highest between different recordings (0.03:
the same sentence spoken again at another speed and pitch by the same voice, or another
sentence of that voice), over 100 espeak-ng sentences (``bench/bench_near_duplicates.py``).
Clips under about 1.5 s give few peaks and are matched less reliably.

Cost: about 1.3 ms per second of audio on one core (resampling included), ~40 hashes a second
of speech stored as ``(n, 2)`` uint32 (about 3 KiB per 10 s).
"""

from __future__ import annotations

import base64
import itertools
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.fft

from deepfake_audio.audio import resample
from deepfake_audio.data.records import ClipRecord

#: The rate every signal is resampled to before fingerprinting (all content above 4 kHz is
#: ignored: it is the part lossy codecs and low sample rates remove).
FINGERPRINT_RATE = 8000
#: Default similarity (aligned anchor peaks / the smaller anchor count) for a near-duplicate.
DEFAULT_THRESHOLD = 0.25

_N_FFT = 1024  # 128 ms window at 8 kHz: 7.8 Hz bins
_HOP = 64  # 8 ms: a long, much overlapped window keeps peak times stable under any shift
_MAX_BIN = 511  # bins 1..511 (8 Hz .. 3.99 kHz): 9 bits
_PEAK_FREQ_RADIUS = 12  # a peak is the maximum of +-12 bins (94 Hz) ...
_PEAK_TIME_RADIUS = 8  # ... and +-8 frames (64 ms) around it
_DYNAMIC_RANGE_DB = 50.0  # peaks more than this below the loudest are ignored
_FLOOR = 1e-4  # magnitude (a full-scale sine peaks near 256 here) below which all is silence
_PEAKS_PER_WINDOW = 12  # a peak is kept if at most 11 stronger ones lie ...
_RANK_RADIUS = 31  # ... within +-31 frames (+-0.25 s) of it: ~24 peaks a second
_TARGETS = 4  # the nearest later peaks in an anchor's target zone ...
_PER_HASH = 3  # ... every 3 of which make a hash (4 hashes per anchor)
_MIN_DT = 3  # frames: the target zone starts 24 ms after the anchor ...
_MAX_DT = 63  # ... and ends ~0.5 s after it (6 bits)
_MAX_DF = 63  # bins (7 bits, signed): +-490 Hz
_CHORD_FRAMES = 1  # a group whose targets' time steps differ by at most this is not hashed
_LOOK_AHEAD = 24  # peaks after an anchor considered as targets
_DT_BITS = _MAX_DT.bit_length()
_DF_BITS = (2 * _MAX_DF).bit_length()
_BIN_BITS = 9  # the anchor column: frame << 9 | bin
_MAX_FRAMES = 1 << (32 - _BIN_BITS)  # 2^23 frames of 8 ms: 18 hours

_WINDOW = np.hanning(_N_FFT).astype(np.float32)
_BIT = (1 << np.arange(8)).astype(np.uint8)


def _max_across_frequency(spec: np.ndarray, radius: int) -> np.ndarray:
    """Each cell's maximum over +-radius bins of its frame (zero beyond the edges)."""
    n_frames, n_bins = spec.shape
    m = np.zeros((n_bins + 2 * radius, n_frames), np.float32)
    m[radius : radius + n_bins] = spec.T
    width = 1  # m[i] is the maximum of the padded rows i .. i + width - 1
    while 2 * width <= 2 * radius + 1:
        m = np.maximum(m[:-width], m[width:])
        width *= 2
    rest = 2 * radius + 1 - width
    return np.maximum(m[:n_bins], m[rest : rest + n_bins]).T


def _strongest_nearby(t: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mask of the peaks with fewer than ``_PEAKS_PER_WINDOW`` stronger peaks within
    +-``_RANK_RADIUS`` frames (``t`` sorted; ties go to the earlier peak).

    A sliding rank rather than the strongest few per fixed block: a cut or added silence
    moves every frame by the same amount and leaves this choice unchanged, except within
    ``_RANK_RADIUS`` frames of the new edges.
    """
    n = t.size
    lo = np.searchsorted(t, t - _RANK_RADIUS, side="left")
    hi = np.searchsorted(t, t + _RANK_RADIUS, side="right")
    width = int((hi - lo).max())
    if width <= _PEAKS_PER_WINDOW:
        return np.ones(n, bool)
    # Peak i against its neighbours lo[i] .. hi[i] - 1 (local maxima of +-8 frames and
    # +-12 bins: about 80 in 63 frames of white noise, fewer in speech).
    j = lo[:, None] + np.arange(width)[None, :]
    inside = j < hi[:, None]
    j = np.minimum(j, n - 1)
    other, own = values[j], values[:, None]
    i = np.arange(n)[:, None]
    stronger = inside & ((other > own) | ((other == own) & (j < i)))
    return np.count_nonzero(stronger, axis=1) < _PEAKS_PER_WINDOW


def _spectrogram(mono: np.ndarray) -> np.ndarray | None:
    """Log magnitudes ``(frames, bins 1..511)`` of a signal at :data:`FINGERPRINT_RATE`;
    None for silence or a clip under one window."""
    if mono.size < _N_FFT:
        return None
    frames = np.lib.stride_tricks.sliding_window_view(mono, _N_FFT)[::_HOP]
    mag = np.abs(scipy.fft.rfft(frames * _WINDOW, axis=1))[:, 1 : _MAX_BIN + 1]
    spec = np.log(np.maximum(mag, _FLOOR))
    return spec if float(spec.max()) > np.log(_FLOOR) + 1e-3 else None


def _vertex(before: np.ndarray, centre: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Where the parabola through three equally spaced values peaks, from the middle one
    (-0.5 .. 0.5; 0 where it does not curve down)."""
    curve = before - 2 * centre + after
    safe = np.where(curve < 0, curve, -1.0)
    return np.clip(np.where(curve < 0, 0.5 * (before - after) / safe, 0.0), -0.5, 0.5)


def _peaks(mono: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame, bin and fractional frame of the spectrogram's prominent local maxima, sorted by
    frame then bin."""
    spec = _spectrogram(mono)
    if spec is None:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    return _spectrogram_peaks(spec)


def _spectrogram_peaks(spec: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_peaks` of a :func:`_spectrogram`."""
    floor = max(float(spec.max()) - _DYNAMIC_RANGE_DB / 20 * np.log(10), np.log(_FLOOR) + 1e-3)
    # A peak is the maximum of its (2 x 8 + 1) x (2 x 12 + 1) neighbourhood (zero outside the
    # spectrogram, as scipy's maximum_filter with mode="constant"). Separably: the maximum over
    # frequency of every cell, then over time only at the few cells that are the maximum of
    # their frequency neighbourhood (about 2 %): ~1.5x faster than the 2-D filter.
    across = _max_across_frequency(spec, _PEAK_FREQ_RADIUS)
    t, f = np.nonzero((spec == across) & (spec > floor))  # sorted by frame, then bin
    if t.size:
        padded = np.zeros((spec.shape[0] + 2 * _PEAK_TIME_RADIUS, spec.shape[1]), np.float32)
        padded[_PEAK_TIME_RADIUS : _PEAK_TIME_RADIUS + spec.shape[0]] = across
        rows = t[:, None] + np.arange(2 * _PEAK_TIME_RADIUS + 1)[None, :]
        peak = spec[t, f] >= padded[rows, f[:, None]].max(axis=1)
        t, f = t[peak], f[peak]
    if t.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    # Bounded density in loud and quiet parts alike: the strongest few around each moment.
    keep = _strongest_nearby(t, spec[t, f])
    t, f = t[keep], f[keep]
    # The peak's time to a fraction of a frame: the vertex of the parabola through the log
    # magnitudes of frames t - 1, t, t + 1 of its bin. Any other start of the frame grid
    # (a cut, added silence) moves every peak by the same fraction of a frame; their time
    # steps, rounded, then stay the same.
    last = spec.shape[0] - 1
    centre = spec[t, f].astype(np.float64)
    exact = t + _vertex(spec[np.maximum(t - 1, 0), f], centre, spec[np.minimum(t + 1, last), f])
    return t.astype(np.int64), f.astype(np.int64) + 1, exact


def _landmarks(
    t: np.ndarray, f: np.ndarray, exact: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The groups of peaks hashed: anchor index ``(m,)``, frequency and time steps from the
    anchor to each of its targets ``(m, _PER_HASH)``.

    Each peak (the anchor) with every ``_PER_HASH`` of its ``_TARGETS`` nearest later peaks
    in its target zone (``_MIN_DT`` .. ``_MAX_DT`` frames later, within +-``_MAX_DF`` bins),
    in time order; the time steps are between fractional times, rounded. Chords (targets
    within ``_CHORD_FRAMES`` of each other) are left out.
    """
    n = t.size
    combos = list(itertools.combinations(range(_TARGETS), _PER_HASH))
    empty = np.empty((0, _PER_HASH), np.int64)
    if n <= _PER_HASH:
        return np.empty(0, np.int64), empty, empty
    ahead = np.arange(1, _LOOK_AHEAD + 1)
    j = np.arange(n)[:, None] + ahead[None, :]
    inside = j < n
    j = np.minimum(j, n - 1)
    dt = t[j] - t[:, None]
    df = f[j] - f[:, None]
    ok = inside & (dt >= _MIN_DT) & (dt <= _MAX_DT) & (np.abs(df) <= _MAX_DF)
    # The hashed time step: between the fractional peak times, rounded.
    dt = np.clip(np.rint(exact[j] - exact[:, None]).astype(np.int64), 0, _MAX_DT)
    rank = np.cumsum(ok, axis=1)
    ok &= rank <= _TARGETS  # the nearest _TARGETS targets in time
    # Slot k of each anchor: the column of its k-th target (or -1).
    slots = np.full((n, _TARGETS), -1, np.int64)
    anchor, column = np.nonzero(ok)
    slots[anchor, rank[anchor, column] - 1] = column
    anchors, dfs, dts = [], [], []
    for combo in combos:
        has = np.flatnonzero(slots[:, combo[-1]] >= 0)
        cols = slots[has][:, combo]
        anchors.append(has)
        dfs.append(df[has[:, None], cols])
        dts.append(dt[has[:, None], cols])
    anchors, dfs, dts = np.concatenate(anchors), np.concatenate(dfs), np.concatenate(dts)
    keep = dts.max(axis=1) - dts.min(axis=1) > _CHORD_FRAMES  # not a chord
    return anchors[keep], dfs[keep], dts[keep]


def _hash(fa: np.ndarray, df: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """The fields of a group (anchor bin 9 bits, then per target a frequency step of 7 bits
    and a time step of 6: 48 bits) mixed into 32 (the top half of their product with an odd
    64-bit constant, Fibonacci hashing)."""
    packed = fa.astype(np.uint64)
    for k in range(df.shape[1]):
        packed = (packed << np.uint64(_DF_BITS)) | (df[:, k] + _MAX_DF).astype(np.uint64)
        packed = (packed << np.uint64(_DT_BITS)) | dt[:, k].astype(np.uint64)
    return ((packed * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)).astype(np.uint32)


def fingerprint(mono: np.ndarray, sample_rate: int) -> np.ndarray:
    """Landmark hashes of a mono float signal: ``(n, 2)`` uint32, columns ``hash``, ``anchor``.

    ``anchor`` is the anchor peak, ``frame << 9 | bin``: ``frame`` counts hops of 8 ms at
    :data:`FINGERPRINT_RATE` (up to 18 hours), ``bin`` (1..511) steps of 7.8 Hz. Rows sorted
    by anchor, then hash. About 45 hashes a second of speech (under 400 bytes a second of
    audio); an empty array for silence or a clip under 128 ms.
    """
    mono = np.asarray(mono, dtype=np.float32).reshape(-1)
    if sample_rate != FINGERPRINT_RATE:
        mono = resample(mono, sample_rate, FINGERPRINT_RATE)
    return hash_peaks(*_peaks(mono))


def hash_peaks(t: np.ndarray, f: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """:func:`fingerprint` of a list of peaks: frame, bin (1..511) and fractional frame,
    sorted by frame then bin (``bench/`` builds synthetic fingerprints with it)."""
    anchor, df, dt = _landmarks(t, f, exact)
    if anchor.size == 0:
        return np.empty((0, 2), np.uint32)
    if t[anchor].max() >= _MAX_FRAMES:
        raise ValueError(f"fingerprints cover at most {_MAX_FRAMES:,} frames (18 hours)")
    hashes = _hash(f[anchor], df, dt)
    anchors = ((t[anchor] << _BIN_BITS) | f[anchor]).astype(np.uint32)
    rows = np.unique((anchors.astype(np.uint64) << np.uint64(32)) | hashes)
    return np.stack([rows.astype(np.uint32), (rows >> np.uint64(32)).astype(np.uint32)], axis=1)


def fingerprint_to_text(fp: np.ndarray) -> str:
    """Base64 of the fingerprint's little-endian uint32 pairs (for a JSON cache)."""
    data = np.ascontiguousarray(np.asarray(fp, dtype="<u4").reshape(-1, 2)).tobytes()
    return base64.b64encode(data).decode("ascii")


def fingerprint_from_text(text: str) -> np.ndarray:
    """Inverse of :func:`fingerprint_to_text`: an ``(n, 2)`` uint32 array."""
    data = base64.b64decode(text.encode("ascii"), validate=True)
    if len(data) % 8:
        raise ValueError("not a fingerprint: byte count is not a multiple of 8")
    return np.frombuffer(data, dtype="<u4").astype(np.uint32).reshape(-1, 2)


@dataclass
class MatchStats:
    """What the last :meth:`NearDuplicateDetector.find_pairs` did (to check that it scales)."""

    files: int = 0
    hashes: int = 0  # indexed (file, hash, anchor peak) entries
    common_hashes_ignored: int = 0  # distinct hashes found in more than max_files_per_hash files
    votes: int = 0  # (entry, entry) hash matches between two files
    candidate_pairs: int = 0  # pairs of files sharing at least one hash
    scored_pairs: int = 0  # pairs with at least min_votes aligned votes, whose similarity was taken
    pairs: int = 0  # pairs at or above the threshold


_FILE_BITS = 21  # up to 2 M files per call (2 x 21 + 20 bits in an int64 key)
_OFFSET_BITS = 20
_OFFSET_BIAS = 1 << (_OFFSET_BITS - 1)  # offsets in frames, +- 524,288 (~70 minutes)


@dataclass
class NearDuplicateDetector:
    """Records whose fingerprints share enough time-aligned hashes are the same item.

    ``fingerprints`` maps a record's ``path`` to :func:`fingerprint`'s output; records without
    one are skipped. ``threshold`` is the similarity (aligned matching anchor peaks over the
    smaller anchor count of the two, in [0, 1]) from which two files are near-duplicates; see
    the module docstring for how :data:`DEFAULT_THRESHOLD` was chosen. ``min_votes``: aligned
    anchor peaks a pair needs before it is scored at all. ``max_files_per_hash``: a hash in
    more files than this is ignored (a group of more copies than this is still found through
    rarer hashes).
    """

    fingerprints: Mapping[str, np.ndarray]
    threshold: float = DEFAULT_THRESHOLD
    min_votes: int = 5
    min_frames: int = 4
    max_files_per_hash: int = 64
    offset_tolerance: int = 1  # frames: votes at offset d +- this count together
    name: str = "near_duplicate"
    description: str = "same recording after gain, resampling, re-encoding, noise or trimming"
    stats: MatchStats = field(default_factory=MatchStats)
    _chunk_votes: int = 4_000_000  # pair votes materialised at once

    def find_groups(self, records: Sequence[ClipRecord]) -> list[list[ClipRecord]]:
        """Connected components of :meth:`find_pairs` (each a list of 2+ records)."""
        records = list(records)
        index = {id(r): i for i, r in enumerate(records)}
        parent = list(range(len(records)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for a, b, _ in self.find_pairs(records):
            ra, rb = root(index[id(a)]), root(index[id(b)])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        groups: dict[int, list[ClipRecord]] = {}
        for i, record in enumerate(records):
            groups.setdefault(root(i), []).append(record)
        return [g for g in groups.values() if len(g) > 1]

    def find_pairs(
        self, records: Sequence[ClipRecord]
    ) -> list[tuple[ClipRecord, ClipRecord, float]]:
        """Pairs of near-duplicate records with their similarity, most similar first."""
        records = list(records)
        if len(records) >= 1 << _FILE_BITS:
            raise ValueError(f"at most {(1 << _FILE_BITS) - 1:,} records per call")
        stats = self.stats = MatchStats(files=len(records))
        fps = [self.fingerprints.get(record.path) for record in records]
        fps = [np.empty((0, 2), np.uint32) if fp is None else fp for fp in fps]
        sizes = np.fromiter((len(fp) for fp in fps), np.int64, len(fps))
        if not sizes.any():
            return []
        table = np.concatenate(fps).astype(np.uint32, copy=False).reshape(-1, 2)
        del fps
        # Distinct anchor peaks per file: the unit of a vote and of the similarity.
        counts = _anchor_counts(table[:, 1], sizes)
        votes = self._hash_matches(table[:, 0], np.cumsum(sizes), table[:, 1])
        del table
        if votes is None:
            return []
        keys, anchors = votes
        stats.votes = int(keys.size)
        # First, hash matches per (a, b, offset) key counted as they come (an anchor peak
        # matching through several of its hashes counts several times): a pair of files that
        # does not reach min_votes even so is dropped before the exact count. Nearly all
        # chance matches go here, with one sort of one key.
        unique, n = _run_lengths(np.sort(keys))
        pair = unique >> _OFFSET_BITS
        stats.candidate_pairs = int(np.count_nonzero(pair[1:] != pair[:-1]) + 1)
        live = np.unique(pair[_pooled(unique, n, self.offset_tolerance) >= self.min_votes])
        if live.size == 0:
            return []
        pair = keys >> _OFFSET_BITS
        keep = live[np.minimum(np.searchsorted(live, pair), live.size - 1)] == pair
        keys, anchors = keys[keep], anchors[keep]
        # Then, for the pairs left, one vote per anchor peak (a peak matching through several
        # of its hashes is one piece of evidence, not several) and the number of distinct
        # frames those peaks are at; offsets within +-tolerance pooled.
        keys, anchors = _distinct(keys, anchors)
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        frames = anchors >> _BIN_BITS
        new_frame = np.r_[True, (keys[1:] != keys[:-1]) | (frames[1:] != frames[:-1])]
        keys, n, n_frames = (
            keys[starts],
            np.diff(np.r_[starts, keys.size]),
            np.add.reduceat(new_frame.astype(np.int64), starts),
        )
        total = _pooled(keys, n, self.offset_tolerance)
        total_frames = _pooled(keys, n_frames, self.offset_tolerance)
        # Enough aligned anchor peaks, spread over enough moments (a chord of harmonics
        # lining up once is a coincidence); then the best offset of each pair of files.
        enough = (total >= self.min_votes) & (total_frames >= self.min_frames)
        pair, total = keys[enough] >> _OFFSET_BITS, total[enough]
        order = np.lexsort((-total, pair))
        pair_sorted = pair[order]
        first = np.ones(order.size, bool)
        first[1:] = pair_sorted[1:] != pair_sorted[:-1]
        best_pair = pair_sorted[first]
        best = total[order][first]
        stats.scored_pairs = int(best_pair.size)
        a = best_pair >> _FILE_BITS
        b = best_pair & ((1 << _FILE_BITS) - 1)
        similarity = np.minimum(best / np.minimum(counts[a], counts[b]), 1.0)
        found = similarity >= self.threshold
        out = [
            (records[i], records[j], float(s))
            for i, j, s in zip(a[found], b[found], similarity[found], strict=True)
        ]
        out.sort(key=lambda item: -item[2])
        stats.pairs = len(out)
        return out

    def _hash_matches(
        self, hashes: np.ndarray, ends: np.ndarray, anchors: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Self-join of the index on hash: for every two entries of two files with the same
        hash, the key ``(file a < file b, offset)`` and the anchor peak in file a. File ``i``
        holds the entries ``ends[i - 1]`` .. ``ends[i] - 1``."""
        stats = self.stats
        stats.hashes = n = int(hashes.size)
        if n >= 1 << 32:
            raise ValueError("more than 2^32 hashes in one call")
        # Most hashes occur once. Their values, sorted (one sort of 32-bit values), give the
        # values found more than once; a table of those (a bit per value of their top bits,
        # at most 2 MiB, so that it stays in cache) picks out the entries that may share a
        # hash, and only these are sorted with their index.
        ordered = np.sort(hashes)
        repeated = ordered[1:][ordered[1:] == ordered[:-1]]
        del ordered
        if repeated.size == 0:
            return None
        # ~3 % false hits (more from 500,000 repeated values on, where the table is full size)
        bits = min(24, max(16, int(repeated.size * 32).bit_length()))
        shift = np.uint32(32 - bits)
        table = np.zeros(1 << (bits - 3), np.uint8)
        slot = repeated >> shift
        np.bitwise_or.at(table, slot >> np.uint32(3), _BIT[slot & np.uint32(7)])
        del repeated
        slot = hashes >> shift
        byte = table[slot >> np.uint32(3)]
        maybe = np.flatnonzero((byte >> (slot & np.uint32(7)).astype(np.uint8)) & np.uint8(1))
        del table, slot, byte
        # Then one sort of one uint64 key, hash << 32 | entry: entries by hash, and inside a
        # hash in their input order (by file, then anchor), its two halves read as views.
        key = (hashes[maybe].astype(np.uint64) << np.uint64(32)) | maybe.astype(np.uint64)
        del maybe
        key.sort()
        halves = key.view(np.uint32).reshape(-1, 2)
        low, high = (0, 1) if sys.byteorder == "little" else (1, 0)
        same = halves[1:, high] == halves[:-1, high]
        shared = np.zeros(key.size, bool)  # entries whose hash some other entry has too
        shared[1:] = same
        shared[:-1] |= same
        hashes = halves[shared, high]
        entry = halves[shared, low].astype(np.int64)
        del key, halves, same, shared
        files = np.searchsorted(ends, entry, side="right")
        anchors = anchors[entry].astype(np.int64)
        del entry
        repeat = np.r_[False, (hashes[1:] == hashes[:-1]) & (files[1:] == files[:-1])]
        repeat[1:] &= anchors[1:] == anchors[:-1]
        if repeat.any():
            hashes, files, anchors = hashes[~repeat], files[~repeat], anchors[~repeat]
        if hashes.size == 0:
            return None
        starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]])
        sizes = np.diff(np.r_[starts, hashes.size])
        # Distinct files per hash (entries are sorted by file inside each hash).
        new_file = np.r_[True, (hashes[1:] != hashes[:-1]) | (files[1:] != files[:-1])]
        n_files = np.add.reduceat(new_file.astype(np.int64), starts)
        del hashes, new_file
        common = n_files > self.max_files_per_hash
        stats.common_hashes_ignored = int(common.sum())
        usable = (n_files >= 2) & ~common
        starts, sizes = starts[usable], sizes[usable]
        if starts.size == 0:
            return None
        times = anchors >> _BIN_BITS
        # Each entry of a usable group pairs with every later entry of its group.
        group_end = np.repeat(starts + sizes, sizes)
        entry = np.repeat(starts - np.cumsum(np.r_[0, sizes[:-1]]), sizes) + np.arange(sizes.sum())
        later = group_end - entry - 1
        keys_parts, anchor_parts = [], []
        cum = np.cumsum(later)
        bounds = np.searchsorted(cum, np.arange(0, int(cum[-1]) + 1, self._chunk_votes)[1:])
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, entry.size], strict=True):
            if hi <= lo:
                continue
            e, k = entry[lo:hi], later[lo:hi]
            total = int(k.sum())
            if total == 0:
                continue
            first = np.repeat(e, k)
            second = first + np.arange(total) - np.repeat(np.cumsum(k) - k, k) + 1
            fa, fb = files[first], files[second]
            differ = fa != fb
            first, second = first[differ], second[differ]
            fa, fb = fa[differ], fb[differ]
            ta, tb = times[first], times[second]
            swap = fa > fb
            lo_f = np.where(swap, fb, fa)
            hi_f = np.where(swap, fa, fb)
            offset = np.clip(np.where(swap, ta - tb, tb - ta), 1 - _OFFSET_BIAS, _OFFSET_BIAS - 2)
            keys_parts.append(
                (((lo_f << _FILE_BITS) | hi_f) << _OFFSET_BITS) | (offset + _OFFSET_BIAS)
            )
            # The anchor peak (frame, bin) in the lower-numbered file.
            anchor_parts.append(np.where(swap, anchors[second], anchors[first]).astype(np.uint32))
        if not keys_parts:
            return None
        return np.concatenate(keys_parts), np.concatenate(anchor_parts)


def _anchor_counts(anchors: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Distinct anchor peaks of each file, its ``sizes[i]`` entries in a row in ``anchors``."""
    starts = np.cumsum(sizes) - sizes
    nonempty = starts[sizes > 0]
    step = anchors[1:] >= anchors[:-1]
    step[nonempty[1:] - 1] = True  # a file's first entry follows another file's last
    if not step.all():  # a fingerprint not made by fingerprint(): rows not sorted by anchor
        files = np.repeat(np.arange(sizes.size, dtype=np.int64), sizes)
        anchors = (np.sort((files << 32) | anchors) & 0xFFFFFFFF).astype(np.uint32)
    new = np.ones(anchors.size, bool)
    new[1:] = anchors[1:] != anchors[:-1]
    new[nonempty] = True
    first = np.searchsorted(np.flatnonzero(new), starts)  # each file's first new anchor
    return np.diff(np.r_[first, np.count_nonzero(new)]).astype(np.int64)


def _run_lengths(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a sorted array and how many times each occurs."""
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    return values[starts], np.diff(np.r_[starts, values.size])


def _pooled(keys: np.ndarray, counts: np.ndarray, tolerance: int) -> np.ndarray:
    """Each key's count plus those of the keys of its pair within +-tolerance of its offset
    (``keys`` sorted and distinct, so those are its nearest ``tolerance`` on either side)."""
    total = counts.copy()
    pair = keys >> _OFFSET_BITS
    for shift in range(1, tolerance + 1):
        near = (keys[shift:] - keys[:-shift] <= tolerance) & (pair[shift:] == pair[:-shift])
        total[shift:] += np.where(near, counts[:-shift], 0)
        total[:-shift] += np.where(near, counts[shift:], 0)
    return total


def _distinct(keys: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (key, anchor) pairs, sorted."""
    order = np.lexsort((anchors, keys))
    keys, anchors = keys[order], anchors[order]
    new = np.ones(keys.size, bool)
    new[1:] = (keys[1:] != keys[:-1]) | (anchors[1:] != anchors[:-1])
    return keys[new], anchors[new]
