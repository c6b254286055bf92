"""Dataset discovery: turn a folder, protocol or CSV into ClipRecords.

Layouts read:

* ``tree``: any folder tree whose files sit below a folder named ``fake``/``real`` (or
  ``spoof``, ``bonafide``, ``bona-fide``). The Fake-or-Real layout
  ``ROOT/<type>/<training|validation|testing>/<fake|real>/...`` is the common case: the label
  comes from the nearest label folder above the file, the split from the nearest split folder
  above that, and the dataset type from the first folder under ``ROOT`` above both (else the
  name of ``ROOT`` itself). A folder between the label folder and the file names the generator.
  Fake-or-Real's archives unpack to ``for-2seconds`` and ``for-rerecorded``: discovery reads
  them as the original design's ``for-2sec`` and ``for-rerec``
  (:func:`~deepfake_audio.data.records.canonical_dataset_type`).
* ``asvspoof2019``: ASVspoof 2019 LA/PA CM protocol files (``*.cm.train.trn.txt``,
  ``*.cm.dev.trl.txt``, ``*.cm.eval.trl.txt``) found under ``ROOT``, audio found by file id.
* ``in-the-wild``: a ``meta.csv`` with columns ``file,speaker,label`` (``spoof``/``bona-fide``).
* ``csv``: a user CSV with ``path,label`` and optionally ``split``, ``speaker``/``group``,
  ``generator``, ``dataset_type``; relative paths are relative to the CSV's folder.
* ``manifest``: a JSON Lines manifest written by this tool.

A ``ROOT/metadata.csv`` (:mod:`deepfake_audio.data.metadata`) adds generators and dataset
types to the records it lists.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deepfake_audio.audio import is_audio_path
from deepfake_audio.data.layout_hints import explain_unlabelled_tree
from deepfake_audio.data.metadata import METADATA_FILE, apply_metadata
from deepfake_audio.data.records import (
    LABEL_ALIASES,
    SPLIT_ALIASES,
    ClipRecord,
    canonical_dataset_type,
    parse_label,
    parse_split,
    read_manifest,
)

LAYOUTS = ("auto", "tree", "asvspoof2019", "in-the-wild", "csv", "manifest")


@dataclass
class Discovery:
    """What discovery found: records, the layout used, and files it had to pass over."""

    records: list[ClipRecord]
    layout: str
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


class DiscoveryError(Exception):
    """The root cannot be read as any dataset layout (the message says what was expected)."""


def iter_audio_folders(
    root: Path, errors: list[tuple[str, str]] | None = None
) -> Iterator[tuple[Path, list[str]]]:
    """``(folder, audio file names)`` of every folder under ``root`` that holds audio, in a
    stable (sorted) order; symlinked folders are not followed.

    A folder that cannot be listed (no permission, a name too long) is added to ``errors``
    as ``(path, reason)``, so it is reported rather than silently missing.
    """

    def unlisted(exc: OSError) -> None:
        if errors is not None:
            errors.append((str(exc.filename or root), f"cannot list folder ({exc.strerror})"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unlisted):
        dirnames.sort()
        names = sorted(name for name in filenames if is_audio_path(name))
        if names:
            yield Path(dirpath), names


def iter_audio_files(root: Path, errors: list[tuple[str, str]] | None = None) -> Iterator[Path]:
    """All audio files under ``root`` in a stable (sorted) order; symlinked dirs not followed
    (folders that cannot be listed go to ``errors``, see :func:`iter_audio_folders`)."""
    for folder, names in iter_audio_folders(root, errors):
        for name in names:
            yield folder / name


def label_folder_index(folders: Sequence[str]) -> int | None:
    """Index of the nearest folder naming a label (fake/real/spoof/bonafide...), else None.

    The one labelling rule of folder trees: the folder closest above the file decides.
    """
    return next(
        (i for i in range(len(folders) - 1, -1, -1) if folders[i].lower() in LABEL_ALIASES), None
    )


def label_from_folders(path: str | os.PathLike[str]) -> int | None:
    """FAKE/REAL when a folder above the file names a label (see :func:`label_folder_index`)."""
    folders = Path(path).parts[:-1]
    at = label_folder_index(folders)
    return None if at is None else LABEL_ALIASES[folders[at].lower()]


def tree_record(root: Path, path: Path) -> ClipRecord | None:
    """The record of ``path`` under ``root`` in the folder-tree layout; None when no label
    folder lies between them.

    The label comes from the nearest label folder, the split from the nearest split folder
    above it, the dataset type from the first folder under ``root`` above both (else the
    name of ``root``; ``for-2seconds`` read as ``for-2sec``, ``for-rerecorded`` as
    ``for-rerec``), the generator from a folder between the label folder and the file.
    """
    parts = path.relative_to(root).parts[:-1]  # folders between root and file
    label_at = label_folder_index(parts)
    if label_at is None:
        return None
    above = parts[:label_at]
    split_at = next(
        (i for i in range(len(above) - 1, -1, -1) if above[i].lower() in SPLIT_ALIASES), None
    )
    type_folders = above[:split_at] if split_at is not None else above
    below = parts[label_at + 1 :]
    return ClipRecord(
        path=str(path.absolute()),
        label=LABEL_ALIASES[parts[label_at].lower()],
        split=parse_split(above[split_at]) if split_at is not None else None,
        dataset_type=canonical_dataset_type(type_folders[0] if type_folders else root.name),
        generator=below[0] if below else None,
    )


#: Why discovery passed over an audio file of a folder tree.
NO_LABEL_FOLDER = "no fake/real (spoof/bonafide) folder above it"


def _discover_tree(root: Path) -> Discovery:
    records: list[ClipRecord] = []
    skipped: list[tuple[str, str]] = []
    for folder, names in iter_audio_folders(root, skipped):
        # Everything but the path depends on the folder alone: one tree_record per folder
        # (50,000 files are discovered in a fraction of a second, not seconds).
        first = tree_record(root, folder / names[0])
        if first is None:
            skipped += [(str(folder / name), NO_LABEL_FOLDER) for name in names]
            continue
        base = os.path.dirname(first.path)
        records += [first] + [
            ClipRecord(
                path=os.path.join(base, name),
                label=first.label,
                split=first.split,
                dataset_type=first.dataset_type,
                generator=first.generator,
            )
            for name in names[1:]
        ]
    if not records:  # say what was there, not only what was expected
        unlabelled = [path for path, reason in skipped if reason == NO_LABEL_FOLDER]
        raise DiscoveryError(explain_unlabelled_tree(root, unlabelled))
    return Discovery(records, "tree", skipped)


_ASV_PROTOCOL = re.compile(r"\.cm\.(train|dev|eval)\.(trn|trl)(\.txt)?$", re.IGNORECASE)
_ASV_SPLITS = {"train": "train", "dev": "validation", "eval": "test"}


def _find_asv_protocols(root: Path) -> list[Path]:
    found = []
    for dirpath, _, filenames in os.walk(root):  # only names that match are stat'ed
        for name in filenames:
            if _ASV_PROTOCOL.search(name) and os.path.isfile(os.path.join(dirpath, name)):
                found.append(Path(dirpath) / name)
    return sorted(found)


def _discover_asvspoof(root: Path) -> Discovery:
    protocols = _find_asv_protocols(root)
    if not protocols:
        raise DiscoveryError(f"no ASVspoof CM protocol files (*.cm.train.trn.txt ...) under {root}")
    by_stem: dict[str, Path] = {}
    for path in iter_audio_files(root):
        by_stem.setdefault(path.stem, path)
    records, skipped = [], []
    for protocol in protocols:
        split = _ASV_SPLITS[_ASV_PROTOCOL.search(protocol.name).group(1).lower()]  # type: ignore[union-attr]
        kind = "asvspoof2019-pa" if ".pa." in protocol.name.lower() else "asvspoof2019-la"
        for number, line in enumerate(protocol.read_text().splitlines(), 1):
            cols = line.split()
            if not cols:
                continue
            where = f"{protocol}:{number}"
            if len(cols) < 5:
                skipped.append((where, f"protocol line has {len(cols)} columns, expected 5"))
                continue
            speaker, file_id, attack, key = cols[0], cols[1], cols[3], cols[4]
            audio = by_stem.get(file_id)
            if audio is None:
                skipped.append((where, f"audio for {file_id} listed in protocol but not found"))
                continue
            try:
                label = parse_label(key)
            except ValueError as exc:
                skipped.append((where, str(exc)))
                continue
            records.append(
                ClipRecord(
                    path=str(audio.absolute()),
                    label=label,
                    split=split,
                    dataset_type=kind,
                    group=speaker,
                    generator="bonafide" if attack == "-" else attack,
                )
            )
    return Discovery(records, "asvspoof2019", skipped)


def _read_csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Columns (lower case) and rows of a CSV; a malformed one (a field over the csv module's
    128 kB limit, bad quoting, not UTF-8) is a :class:`DiscoveryError` naming file and line."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        try:
            columns = [c.strip().lower() for c in reader.fieldnames or []]
            rows = [
                {k.strip().lower(): (v or "").strip() for k, v in row.items() if isinstance(k, str)}
                for row in reader
            ]
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DiscoveryError(f"{path}:{reader.line_num}: not a readable CSV ({exc})") from exc
    return columns, rows


def _is_in_the_wild(csv_path: Path) -> bool:
    columns, _ = _read_csv_rows(csv_path) if csv_path.is_file() else ([], [])
    return {"file", "speaker", "label"} <= set(columns)


def _discover_csv(csv_path: Path, *, in_the_wild: bool) -> Discovery:
    columns, rows = _read_csv_rows(csv_path)
    path_col = "file" if in_the_wild else "path"
    if path_col not in columns or "label" not in columns:
        raise DiscoveryError(
            f"{csv_path}: a CSV manifest needs columns '{path_col},label' "
            f"(found {', '.join(columns) or 'none'})"
        )
    base = csv_path.parent
    records, skipped = [], []
    for number, row in enumerate(rows, 2):  # line 1 is the header
        where = f"{csv_path}:{number}"
        audio = Path(row[path_col])
        audio = audio if audio.is_absolute() else base / audio
        if not audio.is_file():
            skipped.append((where, f"file {audio} not found"))
            continue
        try:
            label = parse_label(row["label"])
            split = parse_split(row["split"]) if row.get("split") else None
        except ValueError as exc:
            skipped.append((where, str(exc)))
            continue
        records.append(
            ClipRecord(
                path=str(audio.absolute()),
                label=label,
                split=split,
                dataset_type=canonical_dataset_type(
                    row.get("dataset_type") or ("in-the-wild" if in_the_wild else csv_path.stem)
                ),
                group=row.get("speaker") or row.get("group") or None,
                generator=row.get("generator") or None,
            )
        )
    return Discovery(records, "in-the-wild" if in_the_wild else "csv", skipped)


def detect_layout(root: Path) -> str:
    """Guess the layout of ``root`` (see the module docstring for the rules)."""
    if root.is_file():
        if root.suffix.lower() == ".jsonl":
            return "manifest"
        if root.suffix.lower() == ".csv":
            return "in-the-wild" if _is_in_the_wild(root) else "csv"
        raise DiscoveryError(f"{root} is a file but not a .csv or .jsonl manifest")
    if _is_in_the_wild(root / "meta.csv"):
        return "in-the-wild"
    if _find_asv_protocols(root):
        return "asvspoof2019"
    return "tree"


def discover(
    root: str | os.PathLike[str],
    layout: str = "auto",
    dataset_types: Sequence[str] | None = None,
) -> Discovery:
    """Find every labelled audio file under ``root``.

    ``dataset_types`` keeps only those types (splits are chosen after they are assigned, see
    :mod:`deepfake_audio.data.splits`). Raises :class:`DiscoveryError` when nothing usable is found.
    """
    root = Path(root)
    if not root.exists():
        raise DiscoveryError(f"{root} does not exist")
    if layout not in LAYOUTS:
        raise DiscoveryError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "manifest":
        found = Discovery(read_manifest(root), "manifest")
    elif layout == "asvspoof2019":
        found = _discover_asvspoof(root)
    elif layout in ("in-the-wild", "csv"):
        csv_path = root / "meta.csv" if root.is_dir() else root
        found = _discover_csv(csv_path, in_the_wild=layout == "in-the-wild")
    else:
        found = _discover_tree(root)
    if dataset_types:
        available = Counter(r.dataset_type for r in found.records)
        wanted = {canonical_dataset_type(name) for name in dataset_types}
        found.records = [
            r for r in found.records if canonical_dataset_type(r.dataset_type) in wanted
        ]
        if not found.records:
            has = ", ".join(f"{name} ({n} files)" for name, n in sorted(available.items()))
            raise DiscoveryError(
                f"no records of dataset types {', '.join(dataset_types)} under {root}: "
                f"found {has or 'none'}"
            )
    if not found.records:
        example = f", e.g. {found.skipped[0][0]}: {found.skipped[0][1]}" if found.skipped else ""
        raise DiscoveryError(
            f"no records under {root} ({found.layout} layout): "
            f"{len(found.skipped)} entries passed over{example}"
        )
    if (root / METADATA_FILE).is_file():  # e.g. the demo corpus's generators
        found.records = apply_metadata(found.records, root / METADATA_FILE)
    return found
