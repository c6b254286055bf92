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
from dataclasses import dataclass
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
from deepfake_audio.data.records import ClipRecord
from deepfake_audio.data.splits import select_splits


@dataclass
class ScoringInput:
    """One input file as its record, or a path that could not be listed and why."""

    record: ClipRecord
    problem: str | None = None


def _folder_records(folder: Path) -> list[ClipRecord]:
    """Every audio file under ``folder`` as a record (``path`` as listed, label or None)."""
    files = list(iter_audio_files(folder))
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

    A file named explicitly is taken whatever its extension; a path that does not exist is
    kept with its problem, so the caller reports it where the user named it.
    """
    inputs: list[ScoringInput] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inputs += [ScoringInput(r) for r in _folder_records(path)]
        elif path.is_file():
            record = ClipRecord(path=str(path), label=label_from_folders(path))
            table = find_metadata(path.parent)
            inputs.append(ScoringInput(apply_metadata([record], table)[0] if table else record))
        else:
            inputs.append(
                ScoringInput(ClipRecord(path=str(path), label=None), "no such file or folder")
            )
    return inputs


def dataset_records(
    data: str | os.PathLike[str],
    *,
    layout: str = "auto",
    dataset_types: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
) -> list[ClipRecord]:
    """Labelled records of a dataset root or manifest (``evaluate``, ``fuse``), chosen splits only.

    Raises ``ValueError`` when the split selection leaves nothing (e.g. ``--splits testing``
    on data without split folders).
    """
    records = discover(data, layout, dataset_types).records
    chosen = select_splits(records, splits)
    if not chosen:
        found = sorted({str(r.split) for r in records})
        raise ValueError(f"no records in splits {list(splits or [])} (splits found: {found})")
    return chosen
