"""ClipRecord, the one currency between discovery, audit, training and evaluation.

A manifest is a JSON Lines file, one record per line, that a user can read and edit.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from deepfake_audio.fileio import atomic_output

FAKE, REAL = 0, 1
LABEL_NAMES = {FAKE: "fake", REAL: "real"}

#: Canonical split names and the folder / protocol names that mean them.
TRAIN, VALIDATION, TEST = "train", "validation", "test"
SPLITS = (TRAIN, VALIDATION, TEST)
SPLIT_ALIASES = {
    "training": TRAIN, "train": TRAIN, "trn": TRAIN,
    "validation": VALIDATION, "valid": VALIDATION, "val": VALIDATION, "dev": VALIDATION,
    "development": VALIDATION,
    "testing": TEST, "test": TEST, "eval": TEST, "evaluation": TEST,
}  # fmt: skip

#: Folder / protocol words that name a label.
LABEL_ALIASES = {
    "fake": FAKE, "spoof": FAKE, "spoofed": FAKE, "synthetic": FAKE, "deepfake": FAKE,
    "real": REAL, "bonafide": REAL, "bona-fide": REAL, "bona_fide": REAL, "genuine": REAL,
}  # fmt: skip

#: Fake-or-Real's dataset types, as the original design names them.
FOR_DATASET_TYPES = ("for-2sec", "for-norm", "for-original", "for-rerec")
#: The folder names Fake-or-Real's archives unpack to, where they differ from the design's:
#: the same dataset types under another spelling.
DATASET_TYPE_ALIASES = {"for-2seconds": "for-2sec", "for-rerecorded": "for-rerec"}


def canonical_dataset_type(name: str) -> str:
    """The one name of a dataset type: ``for-2seconds`` (the folder ``for-2sec.tar.gz``
    unpacks to) is ``for-2sec``, ``for-rerecorded`` is ``for-rerec``, and Fake-or-Real's names
    are matched in any case; any other name is kept as it is.

    Why: a user who unpacks the archives and one who renamed the folders as the original
    design did must get the same dataset types, so that ``--dataset-types for-2sec``
    selects both and reports count one type, not two.
    """
    lower = name.lower()
    if lower in DATASET_TYPE_ALIASES:
        return DATASET_TYPE_ALIASES[lower]
    return lower if lower in FOR_DATASET_TYPES else name


def dataset_type_spellings() -> list[str]:
    """Every spelling of Fake-or-Real's dataset types that discovery reads, sorted."""
    return sorted({*FOR_DATASET_TYPES, *DATASET_TYPE_ALIASES})


def parse_label(value: str | int) -> int:
    """Map ``fake``/``spoof``/``0`` to 0 and ``real``/``bonafide``/``1`` to 1; else ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"unknown label {value!r}: use fake/spoof/0 or real/bonafide/1")
    if isinstance(value, int) and value in (FAKE, REAL):
        return value
    text = str(value).strip().lower()
    if text in ("0", "1"):
        return int(text)
    if text in LABEL_ALIASES:
        return LABEL_ALIASES[text]
    raise ValueError(f"unknown label {value!r}: use fake/spoof/0 or real/bonafide/1")


def parse_split(value: str) -> str:
    """Map ``training``/``dev``/``eval``... to ``train``/``validation``/``test``."""
    text = str(value).strip().lower()
    if text in SPLIT_ALIASES:
        return SPLIT_ALIASES[text]
    raise ValueError(f"unknown split {value!r}: use one of {sorted(SPLIT_ALIASES)}")


@dataclass(frozen=True)
class ClipRecord:
    """Everything known about one audio file. Only ``path`` and ``label`` are always set
    (datasets are labelled; a file given to compare or predict may not be)."""

    path: str  # absolute path
    label: int | None  # FAKE (0) or REAL (1); None only for unlabelled files being scored
    split: str | None = None  # train / validation / test, None until assigned
    dataset_type: str = "default"  # e.g. for-2sec, asvspoof2019-la, in-the-wild
    group: str | None = None  # speaker or source recording: never split across sets
    generator: str | None = None  # attack / TTS system for fakes, "bonafide" for real
    duration: float | None = None  # seconds, at the file's own rate
    sample_rate: int | None = None  # the file's own rate
    num_channels: int | None = None
    file_hash: str | None = None  # of the file's bytes
    audio_hash: str | None = None  # of the decoded samples (see audio.audio_content_hash)

    @property
    def label_name(self) -> str:
        """``fake``/``real``, or an empty string for an unlabelled file."""
        return "" if self.label is None else LABEL_NAMES[self.label]

    def with_(self, **changes: object) -> ClipRecord:
        """A copy with some fields changed (records are immutable)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ClipRecord:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown manifest fields {sorted(unknown)}")
        return cls(**values)


def write_manifest(records: Iterable[ClipRecord], path: str | os.PathLike[str]) -> Path:
    """Write records as JSON Lines, atomically (temp file, then rename)."""
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
    return Path(path)


def read_manifest(path: str | os.PathLike[str]) -> list[ClipRecord]:
    """Read a JSON Lines manifest written by :func:`write_manifest` (or by hand).

    Every line is checked: a path (relative paths are relative to the manifest's folder, as
    in a CSV manifest), a label, a known split; an error names the line and the field.
    """
    base = Path(path).absolute().parent
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                values = json.loads(line)
                if not isinstance(values, dict):
                    raise ValueError("a line must be a JSON object")
                records.append(_checked_record(values, base))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: bad manifest line ({exc})") from exc
    return records


def _checked_record(values: dict, base: Path) -> ClipRecord:
    if not isinstance(values.get("path"), str) or not values["path"]:
        raise ValueError(f"'path' must be a file path, got {values.get('path')!r}")
    if values.get("label") is None:
        raise ValueError("'label' is missing")
    checked = dict(values)
    checked["label"] = parse_label(values["label"])
    if values.get("split") is not None:
        checked["split"] = parse_split(values["split"])
    checked["path"] = str(base / values["path"])  # an absolute path stays as it is
    return ClipRecord.from_dict(checked)


def manifest_fingerprint(records: Iterable[ClipRecord]) -> str:
    """A short hash of which files, labels and splits a run used (stored in checkpoints)."""
    digest = hashlib.blake2b(digest_size=12)
    for record in sorted(records, key=lambda r: r.path):
        content = record.audio_hash or record.file_hash or ""
        digest.update(f"{record.path}\t{record.label}\t{record.split}\t{content}\n".encode())
    return digest.hexdigest()
