"""Perceptual near-duplicate detection: the same recording after gain, resampling, re-encoding...

A landmark ("constellation") fingerprint in the spirit of Wang's Shazam paper: the audio is
resampled to :data:`FINGERPRINT_RATE`, turned into a log-magnitude spectrogram, and its
prominent local maxima (*peaks*) are kept, a bounded number per second. Each peak (the
*anchor*) is paired with a few later peaks near it in time and frequency, and each pair
becomes a 32-bit hash of ``(anchor frequency, frequency step, time step)`` stored with the
anchor's frame index. Peaks are local maxima of a *log* spectrum, so a gain change does not
move them; silence has no peaks; resampling and a lossy codec keep the strong spectral
peaks; a cut or added silence only shifts every time by the same amount.

:class:`NearDuplicateDetector` indexes every file's hashes (hash -> (file, time)), and for
every two files sharing a hash votes on the *time offset* between the two occurrences. The
same recording produces many votes at one offset (plus or minus a frame); two unrelated
clips produce a few scattered votes. Only pairs of files with at least ``min_votes``
aligned votes are scored, so the work grows with the number of hash collisions, not with the
number of pairs of files; a hash found in more than ``max_files_per_hash`` files (silence
edges, steady tones, hum) is ignored, which bounds the work per hash.

A vote is one *anchor peak* of the first file whose hash (any of its fan-out pairs) recurs in
the second at the offset voted for; a pair is scored only with ``min_votes`` such peaks spread
over ``min_frames`` distinct frames (a chord of harmonics lining up once is a coincidence).
The similarity of two files is their best aligned vote count (offsets within +-1 frame pooled)
divided by the smaller number of anchor peaks of the two, clipped to 1. The default
:data:`DEFAULT_THRESHOLD` of 0.25 sits between the lowest similarity measured for a real
near-duplicate (0.41: a 0.3 s cut at both ends, over 100 espeak-ng sentences; 0.48 for a cut
plus 64 kbit/s MP3, 0.49 for 64 kbit/s AAC) and the highest between different recordings
(about 0.06: the same sentence spoken again at another speed or pitch by the same voice).
Clips under about 1.5 s give few peaks and are matched less reliably.

Cost: about 1.2 ms per second of audio on one core (resampling included), ~52 hashes a second
stored as ``(n, 2)`` uint32 (about 4 KiB per 10 s).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.fft

from deepfake_audio.audio import resample
from deepfake_audio.data.records import ClipRecord

#: The rate every signal is resampled to before fingerprinting (all content above 4 kHz is
#: ignored: it is the part lossy codecs and low sample rates remove).
FINGERPRINT_RATE = 8000
#: Default similarity (aligned hash matches / the smaller hash count) for a near-duplicate.
DEFAULT_THRESHOLD = 0.25

_N_FFT = 1024  # 128 ms window at 8 kHz: 7.8 Hz bins
_HOP = 64  # 8 ms: a long, much overlapped window keeps peak times stable under any shift
_MAX_BIN = 511  # bins 1..511 (8 Hz .. 3.99 kHz): 9 bits
_PEAK_FREQ_RADIUS = 12  # a peak is the maximum of +-12 bins (94 Hz) ...
_PEAK_TIME_RADIUS = 8  # ... and +-8 frames (64 ms) around it
_DYNAMIC_RANGE_DB = 50.0  # peaks more than this below the loudest are ignored
_FLOOR = 1e-4  # magnitude (a full-scale sine peaks near 256 here) below which all is silence
_PEAKS_PER_BLOCK = 12  # at most this many peaks per block of frames ...
_BLOCK_FRAMES = 62  # ... of about 0.5 s: ~24 peaks a second
_FAN_OUT = 3  # hashes per anchor peak
_MAX_DT = 63  # frames (6 bits): a target peak at most ~0.5 s later
_MAX_DF = 63  # bins (7 bits, signed): +-490 Hz
_LOOK_AHEAD = 24  # peaks after an anchor considered as targets

_WINDOW = np.hanning(_N_FFT).astype(np.float32)


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


def _peaks(mono: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame and bin of the spectrogram's prominent local maxima, sorted by frame then bin."""
    if mono.size < _N_FFT:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    frames = np.lib.stride_tricks.sliding_window_view(mono, _N_FFT)[::_HOP]
    mag = np.abs(scipy.fft.rfft(frames * _WINDOW, axis=1))[:, 1 : _MAX_BIN + 1]
    spec = np.log(np.maximum(mag, _FLOOR))
    loudest = float(spec.max())
    if loudest <= np.log(_FLOOR) + 1e-3:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    floor = max(loudest - _DYNAMIC_RANGE_DB / 20 * np.log(10), np.log(_FLOOR) + 1e-3)
    # A peak is the maximum of its (2 x 8 + 1) x (2 x 12 + 1) neighbourhood (zero outside the
    # spectrogram, as scipy's maximum_filter with mode="constant"). Separably: the maximum over
    # frequency of every cell, then over time only at the few cells that are the maximum of
    # their frequency neighbourhood (about 2 %): ~1.5x faster than the 2-D filter.
    across = _max_across_frequency(spec, _PEAK_FREQ_RADIUS)
    t, f = np.nonzero((spec == across) & (spec > floor))
    if t.size:
        padded = np.zeros((spec.shape[0] + 2 * _PEAK_TIME_RADIUS, spec.shape[1]), np.float32)
        padded[_PEAK_TIME_RADIUS : _PEAK_TIME_RADIUS + spec.shape[0]] = across
        rows = t[:, None] + np.arange(2 * _PEAK_TIME_RADIUS + 1)[None, :]
        peak = spec[t, f] >= padded[rows, f[:, None]].max(axis=1)
        t, f = t[peak], f[peak]
    if t.size == 0:
        return t, f
    values = spec[t, f]
    # Keep the strongest few per block of frames: bounded density in loud and quiet parts.
    block = t // _BLOCK_FRAMES
    order = np.lexsort((-values, block))
    block_sorted = block[order]
    starts = np.searchsorted(block_sorted, block_sorted, side="left")
    rank = np.arange(order.size) - starts
    keep = order[rank < _PEAKS_PER_BLOCK]
    keep = keep[np.lexsort((f[keep], t[keep]))]
    return t[keep].astype(np.int64), f[keep].astype(np.int64) + 1


def fingerprint(mono: np.ndarray, sample_rate: int) -> np.ndarray:
    """Landmark hashes of a mono float signal: ``(n, 2)`` uint32, columns ``hash``, ``frame``.

    ``frame`` counts hops of 8 ms at :data:`FINGERPRINT_RATE`. About 70 hashes a second
    (under 600 bytes a second of audio); an empty array for silence or a clip under 64 ms.
    """
    mono = np.asarray(mono, dtype=np.float32).reshape(-1)
    if sample_rate != FINGERPRINT_RATE:
        mono = resample(mono, sample_rate, FINGERPRINT_RATE)
    t, f = _peaks(mono)
    n = t.size
    if n < 2:
        return np.empty((0, 2), np.uint32)
    ahead = np.arange(1, _LOOK_AHEAD + 1)
    j = np.arange(n)[:, None] + ahead[None, :]
    inside = j < n
    j = np.minimum(j, n - 1)
    dt = t[j] - t[:, None]
    df = f[j] - f[:, None]
    ok = inside & (dt >= 1) & (dt <= _MAX_DT) & (np.abs(df) <= _MAX_DF)
    ok &= np.cumsum(ok, axis=1) <= _FAN_OUT  # the nearest _FAN_OUT targets in time
    anchor, slot = np.nonzero(ok)
    hashes = (
        (f[anchor].astype(np.uint32) << 13)
        | ((df[anchor, slot] + _MAX_DF).astype(np.uint32) << 6)
        | dt[anchor, slot].astype(np.uint32)
    )
    return np.stack([hashes, t[anchor].astype(np.uint32)], axis=1)


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
    hashes: int = 0  # indexed (file, hash, frame) entries
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
    one are skipped. ``threshold`` is the similarity (aligned matching hashes over the smaller
    hash count of the two, in [0, 1]) from which two files are near-duplicates; see the module
    docstring for how :data:`DEFAULT_THRESHOLD` was chosen. ``min_votes``: aligned matches a
    pair needs before it is scored at all. ``max_files_per_hash``: a hash in more files than
    this is ignored (a group of more copies than this is still found through rarer hashes).
    """

    fingerprints: Mapping[str, np.ndarray]
    threshold: float = DEFAULT_THRESHOLD
    min_votes: int = 5
    min_frames: int = 6
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
        stats = self.stats = MatchStats(files=len(records))
        fps, sizes = [], np.zeros(len(records), np.int64)
        for i, record in enumerate(records):
            fp = self.fingerprints.get(record.path)
            if fp is not None and len(fp):
                fps.append(np.asarray(fp, dtype=np.uint32).reshape(-1, 2))
                sizes[i] = len(fps[-1])
        if not fps:
            return []
        table = np.concatenate(fps)
        hashes = table[:, 0].astype(np.int64)
        times = table[:, 1].astype(np.int64)
        files = np.repeat(np.arange(len(records), dtype=np.int64), sizes)
        # Distinct anchor peaks (frame, bin) per file: the unit of a vote and of the similarity.
        anchors = np.sort((files << 40) | (times << 9) | (hashes >> 13))
        anchors = anchors[np.r_[True, anchors[1:] != anchors[:-1]]] >> 40
        counts = np.bincount(anchors, minlength=len(records))
        votes = self._aligned_votes(hashes, files, times)
        if votes is None:
            return []
        # votes: sorted unique (a, b, offset) keys with their anchor peak and frame counts;
        # fold the +-tolerance offsets together.
        keys, n, n_frames = votes
        pair = keys >> _OFFSET_BITS
        stats.candidate_pairs = int(np.count_nonzero(pair[1:] != pair[:-1]) + 1)  # sorted
        total, total_frames = n.copy(), n_frames.copy()
        for delta in range(1, self.offset_tolerance + 1):
            for sign in (-1, 1):
                neighbour = keys + sign * delta
                at = np.minimum(np.searchsorted(keys, neighbour), keys.size - 1)
                hit = (keys[at] == neighbour) & ((neighbour >> _OFFSET_BITS) == pair)
                total += np.where(hit, n[at], 0)
                total_frames += np.where(hit, n_frames[at], 0)
        # Enough aligned anchor peaks, spread over enough moments (a chord of harmonics
        # lining up once is a coincidence); then the best offset of each pair of files.
        enough = (total >= self.min_votes) & (total_frames >= self.min_frames)
        pair, total = pair[enough], total[enough]
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

    def _aligned_votes(
        self, hashes: np.ndarray, files: np.ndarray, times: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Self-join of the index on hash: counts per (file a < file b, offset) key, sorted."""
        stats = self.stats
        order = np.lexsort((times, files, hashes))
        hashes, files, times = hashes[order], files[order], times[order]
        repeat = np.r_[False, (hashes[1:] == hashes[:-1]) & (files[1:] == files[:-1])]
        repeat[1:] &= times[1:] == times[:-1]
        hashes, files, times = hashes[~repeat], files[~repeat], times[~repeat]
        stats.hashes = int(hashes.size)
        starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]])
        sizes = np.diff(np.r_[starts, hashes.size])
        # Distinct files per hash (entries are sorted by file inside each hash).
        new_file = np.r_[True, (hashes[1:] != hashes[:-1]) | (files[1:] != files[:-1])]
        n_files = np.add.reduceat(new_file.astype(np.int64), starts)
        common = n_files > self.max_files_per_hash
        stats.common_hashes_ignored = int(common.sum())
        usable = (n_files >= 2) & ~common
        starts, sizes = starts[usable], sizes[usable]
        if starts.size == 0:
            return None
        # Each entry of a usable group pairs with every later entry of its group.
        group_end = np.repeat(starts + sizes, sizes)
        entry = np.repeat(starts - np.cumsum(np.r_[0, sizes[:-1]]), sizes) + np.arange(sizes.sum())
        later = group_end - entry - 1
        keys_parts, time_parts = [], []
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
            step = np.arange(total) - np.repeat(np.cumsum(k) - k, k) + 1
            second = first + step
            fa, fb = files[first], files[second]
            differ = fa != fb
            fa, fb = fa[differ], fb[differ]
            ta, tb = times[first[differ]], times[second[differ]]
            swap = fa > fb
            lo_f = np.where(swap, fb, fa)
            hi_f = np.where(swap, fa, fb)
            offset = np.clip(np.where(swap, ta - tb, tb - ta), 1 - _OFFSET_BIAS, _OFFSET_BIAS - 2)
            stats.votes += int(lo_f.size)
            key = (((lo_f << _FILE_BITS) | hi_f) << _OFFSET_BITS) | (offset + _OFFSET_BIAS)
            # The anchor peak (frame, bin) in the lower-numbered file.
            anchor = (np.where(swap, tb, ta) << 9) | (hashes[first[differ]] >> 13)
            key, anchor = _distinct(key, anchor)
            keys_parts.append(key)
            time_parts.append(anchor)
        if not keys_parts:
            return None
        keys, anchors = np.concatenate(keys_parts), np.concatenate(time_parts)
        if len(keys_parts) > 1:
            keys, anchors = _distinct(keys, anchors)
        # One vote per anchor peak: a peak matching with all its fan-out targets is one
        # piece of evidence, not several.
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])  # keys are sorted
        counts = np.diff(np.r_[starts, keys.size])
        frames = anchors >> 9
        new_frame = np.r_[True, (keys[1:] != keys[:-1]) | (frames[1:] != frames[:-1])]
        frame_counts = np.add.reduceat(new_frame.astype(np.int64), starts)
        return keys[starts], counts, frame_counts


def _distinct(keys: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (key, time) pairs, sorted."""
    order = np.lexsort((times, keys))
    keys, times = keys[order], times[order]
    new = np.ones(keys.size, bool)
    new[1:] = (keys[1:] != keys[:-1]) | (times[1:] != times[:-1])
    return keys[new], times[new]
