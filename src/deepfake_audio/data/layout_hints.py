"""Why a folder gave no labelled audio: what discovery saw at its top levels, in words.

Discovery of a folder tree (:mod:`deepfake_audio.data.layouts`) takes a file's label from a
``fake``/``real`` folder above it; when no file has one, "nothing found" alone leaves the
user to guess. The usual causes are a level too many or too few, label folders spelt
otherwise (``Fake_``, ``spoofed_audio``), archives not yet unpacked, symbolic links (which
discovery does not follow) and files in a format it does not read. This module lists what
it saw, so the message names the folder that is wrong and what it holds.

Only runs when discovery has already failed, and lists at most :data:`MAX_FOLDERS` folders
down to :data:`MAX_DEPTH` levels: an explanation, not a second scan.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deepfake_audio.data.records import LABEL_ALIASES, SPLIT_ALIASES, dataset_type_spellings

#: Levels below ROOT looked at. Four reach the label folders of Kaggle's copy of Fake-or-Real,
#: which nests ``ROOT/for-2sec/for-2seconds/training/fake``.
MAX_DEPTH = 4
#: Folders listed at most.
MAX_FOLDERS = 2000
#: Names shown per list, and problems per message.
MAX_NAMES = 8
MAX_PROBLEMS = 6
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tar", ".zip", ".7z", ".rar")


def expected_layout() -> str:
    """What a folder tree must look like, for the end of every discovery error."""
    types = "|".join(dataset_type_spellings())
    return (
        f"expected ROOT/<type>/<training|validation|testing>/<fake|real>/<audio files>, "
        f"<type> being {types} or any other name (ROOT may also be one type's folder), or "
        "audio files below any folders named fake/real (spoof/bonafide); or an ASVspoof "
        "protocol, a meta.csv, or a CSV/JSONL manifest as ROOT"
    )


@dataclass
class Listing:
    """One folder's entries, sorted: sub-folders, symbolic links to folders, and files."""

    folders: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    error: str | None = None


def list_folder(folder: Path) -> Listing:
    """The entries of ``folder`` without following links (as discovery walks it)."""
    listing = Listing()
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        listing.folders.append(entry.name)
                    elif entry.is_symlink() and entry.is_dir():
                        listing.links.append(entry.name)
                    else:
                        listing.files.append(entry.name)
                except OSError:
                    listing.files.append(entry.name)
    except OSError as exc:
        listing.error = exc.strerror or str(exc)
    for names in (listing.folders, listing.links, listing.files):
        names.sort()
    return listing


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES])
    return shown + (f" (and {len(names) - MAX_NAMES} more)" if len(names) > MAX_NAMES else "")


def describe(listing: Listing) -> str:
    """``folders a, b; links c (not followed); files x.txt, y.zip``, or ``nothing``."""
    if listing.error:
        return f"nothing (cannot list it: {listing.error})"
    parts = []
    if listing.folders:
        parts.append(f"folders {_names(listing.folders)}")
    if listing.links:
        parts.append(f"links to folders {_names(listing.links)} (not followed)")
    if listing.files:
        parts.append(f"{len(listing.files)} file(s) {_names(listing.files)}")
    return "; ".join(parts) or "nothing (an empty folder)"


def _where(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` (``root`` itself in full), as a message shows it."""
    if path == root:
        return str(root)
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def explain_unlabelled_tree(root: Path, unlabelled_audio: Sequence[str] = ()) -> str:
    """The message of a folder tree in which no audio file has a label folder above it.

    ``unlabelled_audio`` are the audio files discovery passed over (no label folder above
    them). The first line names the root; each problem is a line of its own: a split folder
    without label folders, a label folder without audio files, a link not followed, audio
    outside label folders, an archive to unpack; when no split or label folder appears at
    all, the folders seen under ROOT. The last line says what was expected.
    """
    problems: list[str] = []
    links: list[str] = []
    structure = False  # a split or label folder was seen
    top = list_folder(root)
    queue: deque[tuple[Path, int, Listing]] = deque([(root, 0, top)])
    listed = 1
    while queue:
        folder, depth, listing = queue.popleft()
        name = folder.name.lower()
        where = _where(root, folder)
        links += [f"{where}/{link}" if folder != root else link for link in listing.links]
        if listing.error and folder != root:
            problems.append(f"{where} cannot be listed ({listing.error})")
            continue
        if name in LABEL_ALIASES:
            structure = True
            problems.append(f"{where} holds no audio file discovery reads: saw {describe(listing)}")
            continue
        if name in SPLIT_ALIASES and not any(f.lower() in LABEL_ALIASES for f in listing.folders):
            structure = True
            problems.append(f"{where} has no fake/ or real/ folder: saw {describe(listing)}")
            continue
        structure = structure or name in SPLIT_ALIASES
        if depth >= MAX_DEPTH:
            continue
        for sub in listing.folders:
            if listed >= MAX_FOLDERS:
                break
            queue.append((folder / sub, depth + 1, list_folder(folder / sub)))
            listed += 1
    problems += [
        f"{link} is a symbolic link to a folder, which discovery does not follow: give its "
        "target as ROOT, or copy the folder"
        for link in links
    ]
    archives = [f for f in top.files if f.lower().endswith(ARCHIVE_SUFFIXES)]
    if archives:
        problems.append(f"unpack {_names(archives)} first (archives are not read)")
    if unlabelled_audio:
        problems.append(
            f"{len(unlabelled_audio)} audio file(s) have no fake/ or real/ folder above them, "
            f"e.g. {_where(root, Path(unlabelled_audio[0]))}"
        )
    if not structure and not links:
        return (
            f"no dataset types found under {root}: saw {describe(top)}"
            + "".join(f"\n  {p}" for p in problems)
            + f"\n{expected_layout()}"
        )
    more = len(problems) - MAX_PROBLEMS
    lines = problems[:MAX_PROBLEMS] + ([f"... and {more} more"] if more > 0 else [])
    return (
        f"no labelled audio under {root}:"
        + "".join(f"\n  {line}" for line in lines)
        + f"\n{expected_layout()}"
    )
