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
    """Finds groups of records that are the same item."""

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


def _resolved_path(record: ClipRecord) -> str:
    return os.path.realpath(record.path)


PATH_DETECTOR = KeyDetector("path", _resolved_path, "same file (resolved path, symlinks too)")
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

    def to_dict(self) -> dict:
        return {
            "detector": self.detector,
            "kind": self.kind,
            "paths": self.paths,
            "splits": self.splits,
            "dropped": self.dropped,
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
    for detector in detectors:
        for group in detector.find_groups(records):
            splits = sorted({r.split or "unassigned" for r in group}, key=_rank)
            paths = sorted({r.path for r in group})
            if len(splits) == 1:
                findings.append(Finding(detector.name, "duplicate", paths, splits))
                continue
            keep = splits[0]
            leaked = [r for r in group if (r.split or "unassigned") != keep]
            drop = sorted({r.path for r in leaked})
            findings.append(Finding(detector.name, "leak", paths, splits, drop))
            dropped.update(_record_id(r) for r in leaked)
    leaks = [f for f in findings if f.kind == "leak"]
    if strict and leaks:
        raise LeakError(leaks)
    kept = [r for r in records if _record_id(r) not in dropped]
    return SeparationResult(kept, findings)


def _rank(split: str) -> int:
    return _SPLIT_RANK.get(split, len(_SPLIT_RANK))


def _record_id(record: ClipRecord) -> tuple[str, str | None]:
    return (record.path, record.split)
