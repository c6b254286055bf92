"""From a dataset root to clean, separated, balanced records and the report that proves it.

discover -> probe (hash + decode, cached, all cores) -> assign missing splits -> pick splits
-> separate (leak detectors) -> leave out excluded generators' fakes from training and
validation -> balance. ``audit`` and ``train`` both call :func:`prepare`.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from deepfake_audio.data.balance import BalanceMode, balance
from deepfake_audio.data.cache import ClipCache, default_cache_dir
from deepfake_audio.data.generators import check_generators, exclude_generators
from deepfake_audio.data.layouts import discover
from deepfake_audio.data.near_duplicates import DEFAULT_THRESHOLD as NEAR_THRESHOLD
from deepfake_audio.data.near_duplicates import NearDuplicateDetector, fingerprint_from_text
from deepfake_audio.data.records import VALIDATION, ClipRecord
from deepfake_audio.data.separation import DEFAULT_DETECTORS, Detector, separate
from deepfake_audio.data.shortcuts import SHORTCUT_THRESHOLD, audit_shortcuts
from deepfake_audio.data.splits import (
    assign_splits,
    group_by_folder,
    select_splits,
    ungrouped_carving,
)


@dataclass
class DataOptions:
    """Which data to use and how to clean it. Every field is a CLI option of audit/train."""

    layout: str = "auto"
    dataset_types: list[str] | None = None
    splits: list[str] | None = None
    strict: bool = False
    balance: BalanceMode = "undersample"
    seed: int = 0
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    cache_dir: str | None = None
    workers: int | None = None
    group_by_folder: int | None = None  # the folder level under ROOT naming each speaker
    shortcut_threshold: float = SHORTCUT_THRESHOLD  # oriented AUC that flags a shortcut cue
    # near-duplicate leaks (same recording after edits): off, report, or drop like exact ones
    near_duplicates: str = "drop"
    near_duplicate_threshold: float = NEAR_THRESHOLD
    # fakes of these generators (exact, case-sensitive names) are left out of training and
    # validation and kept in test: a leave-one-generator-out bench (data.generators)
    exclude_generators: list[str] | None = None

    def __post_init__(self) -> None:
        if self.exclude_generators is not None:
            names = [str(name).strip() for name in self.exclude_generators]
            if not all(names):
                raise ValueError(
                    f"exclude_generators holds an empty name: {self.exclude_generators!r}"
                )
            self.exclude_generators = list(dict.fromkeys(names)) or None  # once each, in order
        if self.near_duplicates not in NEAR_DUPLICATE_MODES:
            raise ValueError(
                f"near_duplicates must be one of {', '.join(NEAR_DUPLICATE_MODES)}, "
                f"got {self.near_duplicates!r}"
            )
        if not 0.0 < self.near_duplicate_threshold <= 1.0:
            raise ValueError(
                f"near_duplicate_threshold must be in (0, 1], got {self.near_duplicate_threshold}"
            )

    @classmethod
    def from_attributes(cls, source: object) -> DataOptions:
        """The options read from same-named attributes (parsed CLI arguments, a TrainConfig),
        so a new option is added here once rather than at every place that carries it; an
        attribute the source lacks (a command without ``--workers``) keeps its default."""
        return cls(
            **{f.name: getattr(source, f.name) for f in fields(cls) if hasattr(source, f.name)}
        )


@dataclass
class PreparedData:
    """The records to use, and everything found on the way (the JSON report)."""

    records: list[ClipRecord]
    unreadable: list[tuple[str, str]]  # (path, reason)
    report: dict = field(default_factory=dict)
    cache: ClipCache | None = None
    discovered: list[ClipRecord] = field(default_factory=list)  # every file found, bad included

    def split(self, name: str) -> list[ClipRecord]:
        return [r for r in self.records if r.split == name]


def _describe(values: Sequence[float]) -> dict:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "mean": round(statistics.fmean(values), 3),
        "max": round(max(values), 3),
    }


def audio_statistics(records: Sequence[ClipRecord]) -> dict:
    """Duration and sample-rate statistics per label: a model can learn either as a shortcut."""
    out = {}
    by_label: dict[str, list[ClipRecord]] = defaultdict(list)
    for record in records:
        by_label[record.label_name].append(record)
    for label, group in sorted(by_label.items()):
        rates = Counter(r.sample_rate for r in group if r.sample_rate)
        out[label] = {
            "duration_seconds": _describe([r.duration for r in group if r.duration is not None]),
            "sample_rates": {str(rate): n for rate, n in sorted(rates.items())},
        }
    return out


def _progress_bar(total: int, show: bool) -> Any:
    """The probe's progress bar; a no-op one when hidden, so tqdm is not even imported.

    The bar has no monitor thread (tqdm's ``monitor_interval``): with no other thread
    running, the probe's workers can be forked, which starts them in milliseconds instead
    of a forkserver's fraction of a second (see :func:`deepfake_audio.parallel.start_method`).
    """
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    class Bar(tqdm):  # type: ignore[misc, valid-type]
        monitor_interval = 0

    return Bar(total=total, desc="scan+hash+decode", unit="file")


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        return None


def grouping_report(records: Sequence[ClipRecord], folder_level: int | None) -> dict:
    """What carving will keep together, and a warning when it must move single files.

    Files without a group (no speaker in the layout or metadata.csv, no ``--group-by-folder``)
    are carved one at a time, so one speaker may end up in several splits.
    """
    missing_validation = not any(r.split == VALIDATION for r in records)
    single = ungrouped_carving(records, missing_validation)
    report: dict = {
        "by": f"folder level {folder_level}" if folder_level else "layout and metadata.csv",
        "groups": len({r.group for r in records if r.group is not None}),
        "carved_one_file_at_a_time": single,
    }
    if single:
        report["warning"] = (
            f"{single} file(s) have no speaker or source group and are carved into splits one "
            "file at a time, so one speaker may appear in several splits: add a speaker or "
            "source column to metadata.csv, or name the speaker folder with --group-by-folder N"
        )
    return report


NEAR_DUPLICATE_MODES = ("off", "report", "drop")


@dataclass
class SeparatingNearDuplicates(NearDuplicateDetector):
    """The near-duplicate detector as separation runs it: its leaks dropped (``drops``) or
    only reported, and each finding's similarity (the best pair's) reported with it."""

    drops: bool = True
    _similarity: dict[frozenset[str], float] = field(default_factory=dict)

    def find_pairs(self, records: Sequence[ClipRecord]) -> list:
        pairs = super().find_pairs(records)
        self._similarity = {frozenset((a.path, b.path)): round(s, 4) for a, b, s in pairs}
        return pairs

    def group_similarity(self, paths: Sequence[str]) -> float:
        scores = [
            self._similarity.get(frozenset((a, b)), 0.0)
            for i, a in enumerate(paths)
            for b in paths[i + 1 :]
        ]
        return max(scores, default=0.0)


def near_duplicate_detectors(options: DataOptions, probes: dict) -> list[Detector]:
    """The near-duplicate detector ``options`` ask for, over the probes' fingerprints."""
    if options.near_duplicates == "off":
        return []
    fingerprints = {
        path: fingerprint_from_text(result.fingerprint)
        for path, result in probes.items()
        if result.fingerprint
    }
    return [
        SeparatingNearDuplicates(
            fingerprints=fingerprints,
            threshold=options.near_duplicate_threshold,
            drops=options.near_duplicates == "drop",
        )
    ]


def prepare(
    root: str | os.PathLike[str],
    options: DataOptions | None = None,
    *,
    sample_rate: int | None = None,
    progress: bool = True,
) -> PreparedData:
    """Run the whole data pipeline on ``root`` (see the module docstring).

    With ``sample_rate`` the decoded audio is cached at that rate for training; without it
    only hashes and audio facts are cached (enough for an audit). Raises ``DiscoveryError``
    when the root holds no usable data and ``LeakError`` on a leak in strict mode.
    """
    options = options or DataOptions()
    found = discover(root, options.layout, options.dataset_types)
    check_generators(found.records, options.exclude_generators or [])  # a typo fails now
    cache = ClipCache(options.cache_dir or default_cache_dir(), sample_rate or 16000)
    paths = sorted({r.path for r in found.records})
    with _progress_bar(len(paths), progress) as bar:
        probes = cache.probe(
            paths,
            with_audio=sample_rate is not None,
            fingerprints=options.near_duplicates != "off",
            workers=options.workers,
            on_result=lambda _: bar.update(),
        )
    unreadable = sorted((p, r.error) for p, r in probes.items() if r.error)
    readable = []
    for record in found.records:
        probe = probes[record.path]
        if probe.error:
            continue
        readable.append(
            record.with_(
                duration=probe.duration,
                sample_rate=probe.sample_rate,
                num_channels=probe.num_channels,
                file_hash=probe.file_hash,
                audio_hash=probe.audio_hash,
            )
        )
    silent = sorted(p for p, r in probes.items() if r.silent)
    if options.group_by_folder:
        readable = group_by_folder(readable, root, options.group_by_folder)
    grouping = grouping_report(readable, options.group_by_folder)
    splitted = assign_splits(
        readable,
        validation_fraction=options.validation_fraction,
        test_fraction=options.test_fraction,
        seed=options.seed,
    )
    chosen = select_splits(splitted, options.splits)
    detectors = [*DEFAULT_DETECTORS, *near_duplicate_detectors(options, probes)]
    separated = separate(chosen, detectors, strict=options.strict)
    selected, exclusion = separated.records, None
    if options.exclude_generators:  # before balancing, so balance holds after the removal
        selected, exclusion = exclude_generators(selected, options.exclude_generators)
    balanced = balance(selected, options.balance, options.seed)
    report = {
        "root": str(Path(root).absolute()),
        "layout": found.layout,
        "options": asdict(options),
        "discovered": len(found.records),
        "skipped_during_discovery": [{"path": p, "reason": r} for p, r in found.skipped],
        "unreadable": [{"path": p, "reason": r} for p, r in unreadable],
        "silent": silent,
        "separation": {
            "detectors": [d.name for d in detectors],
            "near_duplicates": {
                "mode": options.near_duplicates,
                "threshold": options.near_duplicate_threshold,
            },
            **separated.summary(),
            "findings": [f.to_dict() for f in separated.findings],
        },
        "grouping": grouping,
        **({"excluded_generators": exclusion} if exclusion else {}),
        "balance": {"mode": balanced.mode, "before": balanced.before, "after": balanced.after},
        "audio_statistics": audio_statistics(selected),
        "shortcuts": audit_shortcuts(
            balanced.records,
            {p: r.features for p, r in probes.items() if r.features},
            options.shortcut_threshold,
        ),
        "final_count": len(balanced.records),
    }
    return PreparedData(balanced.records, unreadable, report, cache, found.records)
