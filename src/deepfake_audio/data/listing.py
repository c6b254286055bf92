"""Files named on a command line, or a dataset root -> the records a scoring command reports on.

``compare`` and ``predict`` take any files and folders, labelled or not. Each folder is read
with the same rules as a dataset (:mod:`deepfake_audio.data.layouts`): label, split, dataset
type and generator from a known layout where one fits, else the label from the nearest
fake/real folder above the file, the folder given and its parents included (or none). The
nearest ``metadata.csv`` adds generators. So a labelled folder gets accuracy, EER and a
per-generator breakdown in every report.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from deepfake_audio.data.layouts import (
    DiscoveryError,
    detect_layout,
    discover,
    iter_audio_files,
    label_from_folders,
    tree_record,
)
from deepfake_audio.data.metadata import apply_metadata, find_metadata
from deepfake_audio.data.pipeline import DataOptions, prepare
from deepfake_audio.data.records import TRAIN, VALIDATION, ClipRecord, read_manifest
from deepfake_audio.data.splits import select_splits

#: The records a training run used, in its run folder.
MANIFEST_FILE = "manifest.jsonl"


@dataclass
class ScoringInput:
    """One input file as its record, or a path that could not be listed and why."""

    record: ClipRecord
    problem: str | None = None


def _folder_records(folder: Path, errors: list[tuple[str, str]]) -> list[ClipRecord]:
    """Every audio file under ``folder`` as a record (``path`` as listed, label or None);
    sub-folders that cannot be listed go to ``errors``."""
    files = list(iter_audio_files(folder, errors))
    try:
        layout = detect_layout(folder)
    except DiscoveryError:
        layout = "tree"
    known: dict[str, ClipRecord] = {}
    if layout != "tree":  # a protocol or meta.csv labels the files
        try:
            known = {r.path: r for r in discover(folder, layout).records}
        except DiscoveryError:
            known = {}
    records = []
    for path in files:
        found = known.get(str(path.absolute())) or tree_record(folder, path)
        # else a label folder may be the folder given, or above it (compare .../testing/fake)
        record = found or ClipRecord(path=str(path), label=label_from_folders(path.absolute()))
        records.append(record.with_(path=str(path)))
    table = find_metadata(folder)
    return apply_metadata(records, table) if table is not None else records


def scoring_inputs(paths: Sequence[str | os.PathLike[str]]) -> list[ScoringInput]:
    """Files and folders in the order given, folders expanded (sorted, recursively).

    A file named explicitly is taken whatever its extension; a path that does not exist, a
    special file and a sub-folder that cannot be listed are kept with their problem, so the
    caller reports them.
    """
    inputs: list[ScoringInput] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            errors: list[tuple[str, str]] = []
            inputs += [ScoringInput(r) for r in _folder_records(path, errors)]
            inputs += [ScoringInput(ClipRecord(path=p, label=None), why) for p, why in errors]
        elif path.exists() and not path.is_file():  # a FIFO, a device: reading would hang
            inputs.append(
                ScoringInput(ClipRecord(path=str(path), label=None), "not a regular file")
            )
        elif path.is_file():
            record = ClipRecord(path=str(path), label=label_from_folders(path))
            table = find_metadata(path.parent)
            inputs.append(ScoringInput(apply_metadata([record], table)[0] if table else record))
        else:
            inputs.append(
                ScoringInput(ClipRecord(path=str(path), label=None), "no such file or folder")
            )
    return inputs


@dataclass
class LabelledData:
    """Records chosen for evaluation, with what preparing them found."""

    records: list[ClipRecord]
    unreadable: list[tuple[str, str]]  # (path, reason) of files of the chosen splits
    report: dict  # the preparation report (separation, balance...); empty for a run's split


def dataset_records(
    data: str | os.PathLike[str],
    options: DataOptions,
    splits: Sequence[str] | None,
    *,
    progress: bool = False,
) -> LabelledData:
    """Records of the chosen splits of a dataset, prepared exactly as training prepares them.

    Discovery, metadata, carving with the same seed and fractions, separation and balancing
    (:func:`deepfake_audio.data.pipeline.prepare`). Separation runs over *every* split before
    the chosen ones are taken, so a test copy of a training file is dropped here as training
    dropped it (the report's ``separation`` part says which). Unreadable files are those of
    the chosen splits (all of them when the data has no splits of its own). Raises
    ``ValueError`` when the chosen splits hold nothing.
    """
    prepared = prepare(data, replace(options, splits=None), progress=progress)
    chosen = select_splits(prepared.records, splits)
    if not chosen:
        found = sorted({str(r.split) for r in prepared.records})
        unusable = len(prepared.unreadable)
        why = f"; {unusable} file(s) could not be read (`audit` lists them)" if unusable else ""
        raise ValueError(
            f"no usable records in splits {list(splits or [])} (splits found: {found}{why})"
        )
    in_splits = {r.path for r in prepared.discovered if r.split is None}
    in_splits |= {r.path for r in select_splits(prepared.discovered, splits)}
    unreadable = [(p, reason) for p, reason in prepared.unreadable if p in in_splits]
    return LabelledData(chosen, unreadable, prepared.report)


def run_records(run_dir: str | os.PathLike[str], splits: Sequence[str] | None) -> list[ClipRecord]:
    """The chosen splits of a training run, exactly as it used them (its ``manifest.jsonl``)."""
    manifest = Path(run_dir) / MANIFEST_FILE
    if not manifest.is_file():
        raise FileNotFoundError(f"{run_dir} has no {MANIFEST_FILE}: is it a training run folder?")
    records = read_manifest(manifest)
    chosen = select_splits(records, splits)
    if not chosen:
        found = sorted({str(r.split) for r in records})
        raise ValueError(f"{manifest} has no records in splits {list(splits or [])} ({found})")
    return chosen


def training_overlap(
    records: Sequence[ClipRecord], manifest: str | os.PathLike[str]
) -> dict[str, int]:
    """How many of ``records`` a model was trained or validated on, by each detector.

    ``manifest`` is the model's run manifest. Counts: ``path`` (the same file), ``file_bytes``
    (a byte copy), ``decoded_audio`` (the same samples in another container), and ``any``.
    """
    seen = [r for r in read_manifest(manifest) if r.split in (TRAIN, VALIDATION)]
    paths = {os.path.realpath(r.path) for r in seen}
    file_hashes = {r.file_hash for r in seen if r.file_hash}
    audio_hashes = {r.audio_hash for r in seen if r.audio_hash}
    counts = dict.fromkeys(("path", "file_bytes", "decoded_audio", "any"), 0)
    for record in records:
        hits = {
            "path": os.path.realpath(record.path) in paths,
            "file_bytes": record.file_hash in file_hashes,
            "decoded_audio": record.audio_hash in audio_hashes,
        }
        for kind, hit in hits.items():
            counts[kind] += hit
        counts["any"] += any(hits.values())
    return counts
