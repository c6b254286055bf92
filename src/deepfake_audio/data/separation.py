"""Strict split separation: find every item that is in two splits, or twice in one.

Separation is a set of detectors. Each detector groups records it considers the *same item*;
a group that spans two splits is a **leak**, a group inside one split is a **duplicate**.
The exact detectors key records by resolved path, by file bytes and by decoded audio. A
perceptual near-duplicate detector (gain change, resampling, lossy re-encode) only has to
implement :class:`Detector` (``find_groups``) to join them.

By default a leaked item is dropped from the *evaluation* side (validation/test) and the run
goes on; in strict mode any leak raises :class:`LeakError`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from deepfake_audio.data.records import SPLITS, ClipRecord

#: Which split keeps a leaked item: the earliest in this order (train beats validation beats test).
_SPLIT_RANK = {name: rank for rank, name in enumerate(SPLITS)}


class Detector(Protocol):
    """Finds groups of records that are the same item.

    Optional attributes: ``drops`` (False: its leaks are reported, never dropped or raised
    on) and ``group_similarity(paths) -> float`` (a score to report with each finding).
    """

    name: str

    def find_groups(self, records: Sequence[ClipRecord]) -> list[list[ClipRecord]]:
        """Groups of two or more records that this detector considers the same item."""
        ...


@dataclass(frozen=True)
class KeyDetector:
    """Records with equal, non-empty keys are the same item."""

    name: str
    key: Callable[[ClipRecord], str | None]
    description: str

    def find_groups(self, records: Sequence[ClipRecord]) -> list[list[ClipRecord]]:
        buckets: dict[str, list[ClipRecord]] = defaultdict(list)
        for record in records:
            value = self.key(record)
            if value:
                buckets[value].append(record)
        return [group for group in buckets.values() if len(group) > 1]


class _ResolvedPath:
    """``os.path.realpath`` of many files that share a few folders, without a syscall a file.

    ``realpath`` checks every component of every path (8 ``lstat`` calls for a typical
    dataset file: a second per 5,000 files). ``realpath(folder/name)`` is
    ``realpath(folder)/name`` whenever ``name`` is not a symlink, and the folders repeat: each
    is resolved once and listed once (the listing says which entries are symlinks). A name
    the listing lacks (a missing file, another spelling on a case-insensitive disk) or a
    folder that cannot be listed falls back to ``realpath`` itself.
    """

    def __init__(self) -> None:
        # folder -> (its realpath, names in it, names of symlinks in it; None: not listable)
        self._folders: dict[str, tuple[str, frozenset[str], frozenset[str]] | None] = {}

    def __call__(self, record: ClipRecord) -> str:
        folder, name = os.path.split(record.path)
        if folder not in self._folders:
            self._folders[folder] = self._list(folder)
        known = self._folders[folder]
        if known is None or name not in known[1] or name in known[2]:
            return os.path.realpath(record.path)
        return os.path.join(known[0], name)

    @staticmethod
    def _list(folder: str) -> tuple[str, frozenset[str], frozenset[str]] | None:
        try:
            with os.scandir(folder or os.curdir) as entries:
                listing = [(entry.name, entry.is_symlink()) for entry in entries]
        except OSError:
            return None
        names = frozenset(name for name, _ in listing)
        links = frozenset(name for name, is_link in listing if is_link)
        return os.path.realpath(folder), names, links


@dataclass(frozen=True)
class PathDetector:
    """Records whose paths resolve to the same file (through symlinks too) are the same item.

    Folders are resolved once per call (see :class:`_ResolvedPath`), so a folder renamed or
    relinked between two calls is seen afresh.
    """

    name: str = "path"
    description: str = "same file (resolved path, symlinks too)"

    def find_groups(self, records: Sequence[ClipRecord]) -> list[list[ClipRecord]]:
        return KeyDetector(self.name, _ResolvedPath(), self.description).find_groups(records)


PATH_DETECTOR = PathDetector()
BYTES_DETECTOR = KeyDetector("file_bytes", lambda r: r.file_hash, "byte-identical copies")
AUDIO_DETECTOR = KeyDetector(
    "decoded_audio", lambda r: r.audio_hash, "same audio in another file or container"
)
DEFAULT_DETECTORS: tuple[Detector, ...] = (PATH_DETECTOR, BYTES_DETECTOR, AUDIO_DETECTOR)


@dataclass
class Finding:
    """One group of same-item records found by one detector."""

    detector: str
    kind: str  # "leak" (spans splits) or "duplicate" (inside one split)
    paths: list[str]
    splits: list[str]
    dropped: list[str] = field(default_factory=list)
    similarity: float | None = None  # for detectors that measure one (near duplicates)

    def to_dict(self) -> dict:
        return {
            "detector": self.detector,
            "kind": self.kind,
            "paths": self.paths,
            "splits": self.splits,
            "dropped": self.dropped,
            **({"similarity": self.similarity} if self.similarity is not None else {}),
        }


class LeakError(Exception):
    """Strict mode found items shared between splits."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        example = findings[0]
        super().__init__(
            f"{len(findings)} item(s) appear in more than one split, e.g. "
            f"{example.paths[0]} ({example.detector}, splits {', '.join(example.splits)})"
        )


@dataclass
class SeparationResult:
    records: list[ClipRecord]  # what is left after dropping leaked items
    findings: list[Finding]

    @property
    def leaks(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "leak"]

    @property
    def duplicates(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "duplicate"]

    def summary(self) -> dict:
        counts: dict[str, dict[str, int]] = {}
        for finding in self.findings:
            per = counts.setdefault(finding.detector, {"leak": 0, "duplicate": 0})
            per[finding.kind] += 1
        return {
            "leaks": len(self.leaks),
            "duplicates": len(self.duplicates),
            "leaked_items": len({p for f in self.leaks for p in f.dropped}),
            "dropped_records": len({p for f in self.findings for p in f.dropped}),
            "by_detector": counts,
        }


def separate(
    records: Sequence[ClipRecord],
    detectors: Sequence[Detector] = DEFAULT_DETECTORS,
    *,
    strict: bool = False,
) -> SeparationResult:
    """Run every detector; drop leaked items from the later split (or raise if ``strict``).

    Within a leak group the copies in the earliest split (train, then validation, then test)
    are kept and the rest dropped, so evaluation never sees an item trained on. Duplicates
    inside one split are reported but kept.
    """
    findings: list[Finding] = []
    dropped: set[str] = set()
    enforced: list[Finding] = []  # leaks of detectors that drop (the others only report)
    for detector in detectors:
        drops = getattr(detector, "drops", True)
        similarity = getattr(detector, "group_similarity", None)
        for group in detector.find_groups(records):
            splits = sorted({r.split or "unassigned" for r in group}, key=_rank)
            paths = sorted({r.path for r in group})
            score = similarity(paths) if similarity else None
            if len(splits) == 1:
                findings.append(Finding(detector.name, "duplicate", paths, splits, [], score))
                continue
            keep = splits[0]
            leaked = [r for r in group if (r.split or "unassigned") != keep]
            drop = sorted({r.path for r in leaked}) if drops else []
            findings.append(Finding(detector.name, "leak", paths, splits, drop, score))
            if drops:
                enforced.append(findings[-1])
                dropped.update(_record_id(r) for r in leaked)
    leaks = enforced
    if strict and leaks:
        raise LeakError(leaks)
    kept = [r for r in records if _record_id(r) not in dropped]
    return SeparationResult(kept, findings)


def _rank(split: str) -> int:
    return _SPLIT_RANK.get(split, len(_SPLIT_RANK))


def _record_id(record: ClipRecord) -> tuple[str, str | None]:
    return (record.path, record.split)
