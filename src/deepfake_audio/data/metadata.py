"""``metadata.csv``: per-file facts (generator, dataset type) that folder names cannot carry.

The demo corpus writes one at its root (``path,label,split,generator,...``, paths relative
to the CSV's folder); users can write their own. Discovery and the scoring inputs join it onto
their records by absolute path, so only files it really lists are touched.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from deepfake_audio.data.records import ClipRecord, canonical_dataset_type, parse_label

METADATA_FILE = "metadata.csv"

#: Columns naming what must stay on one side of a split, first found wins.
GROUP_COLUMNS = ("speaker", "group", "source")


def find_metadata(folder: str | os.PathLike[str], levels: int = 3) -> Path | None:
    """The nearest ``metadata.csv`` in ``folder`` or up to ``levels`` folders above it.

    A corpus keeps it at its root, while users often score one split folder inside it.
    """
    here = Path(folder).absolute()
    for candidate in [here, *here.parents][: levels + 1]:
        table = candidate / METADATA_FILE
        if table.is_file():
            return table
    return None


def apply_metadata(
    records: Sequence[ClipRecord], table: str | os.PathLike[str]
) -> list[ClipRecord]:
    """Fill generator, dataset type and the group (a ``speaker``, ``group`` or ``source``
    column; a group the layout gave is kept) from ``table`` where it lists a record.

    Paths in the CSV are relative to its folder. A row whose label contradicts the record's
    is ignored (the folder decides, as everywhere else).
    """
    table = Path(table)
    base = table.parent
    with open(table, newline="", encoding="utf-8-sig") as handle:
        rows = {
            str((base / row["path"]).absolute()): row
            for row in csv.DictReader(handle)
            if row.get("path")
        }
    out = []
    for record in records:
        row = rows.get(str(Path(record.path).absolute()))
        if row is None or _contradicts(row, record):
            out.append(record)
            continue
        changes = {key: row[key] for key in ("generator", "dataset_type") if row.get(key)}
        if "dataset_type" in changes:  # for-2seconds is for-2sec, as in a folder name
            changes["dataset_type"] = canonical_dataset_type(changes["dataset_type"])
        group = next((row[key] for key in GROUP_COLUMNS if row.get(key)), None)
        if group and record.group is None:  # speakers or source recordings: never split
            changes["group"] = group
        out.append(record.with_(**changes) if changes else record)
    return out


def _contradicts(row: dict[str, str], record: ClipRecord) -> bool:
    if not row.get("label") or record.label is None:
        return False
    try:
        return parse_label(row["label"]) != record.label
    except ValueError:
        return False
