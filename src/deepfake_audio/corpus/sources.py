"""Where real speech comes from: a Debian package of voice-acted dialogue, or a user folder.

The default source is the Dutch dialogue of the game Fish Fillets NG: ``fillets-ng-data-nl``
holds ~1,500 short voice-acted lines (Ogg Vorbis), and ``fillets-ng-data`` holds their Dutch
transcripts (``script/<level>/dialogs_nl.lua``). Both are fetched with ``apt-get download``
(no root, no system install) and unpacked into a cache folder once; only the files needed
are kept (~40 MB).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from deepfake_audio.audio import is_audio_path
from deepfake_audio.corpus.errors import CorpusError

AUDIO_PACKAGE = "fillets-ng-data-nl"
TRANSCRIPT_PACKAGE = "fillets-ng-data"
_GAME_ROOT = "usr/share/games/fillets-ng"
_DIALOG = re.compile(
    r'dialogId\(\s*"(?P<id>[^"]+)"[^)]*\)\s*dialogStr\(\s*"(?P<text>(?:[^"\\]|\\.)*)"\s*\)',
    re.DOTALL,
)
#: Transcript sidecars of a --real-dir recording: ``clip.wav`` + ``clip.txt`` (or ``.lab``).
TRANSCRIPT_SUFFIXES = (".txt", ".lab")


@dataclass(frozen=True)
class SourceRecording:
    """One real recording: the unit that never crosses splits (nor do its clips/resyntheses)."""

    id: str  # stable, unique, path-like (e.g. "reactor/rea-m-proboha")
    path: str
    text: str | None  # transcript, when known: espeak-ng reads it and it defines the sentence
    speaker: str | None = None


@dataclass(frozen=True)
class RealSpeech:
    """The real recordings to build from, and a line that says where they came from."""

    recordings: list[SourceRecording]
    language: str
    description: str


def normalize_sentence(text: str) -> str:
    """The sentence identity: case, punctuation and spacing do not make a new sentence."""
    words = re.findall(r"\w+", text.casefold())
    return " ".join(words)


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise CorpusError(
            f"{command[0]} not found: the Debian speech source needs a Debian/Ubuntu system "
            "(apt-get, dpkg-deb); elsewhere pass --real-dir FOLDER with real recordings"
        ) from exc


def _apt_download(package: str, folder: Path) -> Path:
    result = _run(["apt-get", "download", package], folder)
    debs = sorted(folder.glob(f"{package}_*.deb"))
    if result.returncode != 0 or not debs:
        reason = (result.stderr or result.stdout).strip().splitlines()
        detail = reason[-1] if reason else f"exit code {result.returncode}"
        hint = (
            "run 'apt-get update' (as root) once so apt knows the package, then retry"
            if re.search(
                r"unable to locate|can't select|no candidate|has no installation", detail, re.I
            )
            else "check the network/apt sources ('apt-get update'), or pass --real-dir FOLDER"
        )
        raise CorpusError(f"apt-get download {package} failed ({detail}): {hint}")
    return debs[-1]


def _extract(deb: Path, target: Path, keep: Callable[[str], bool]) -> int:
    """Stream the package's data tarball through ``dpkg-deb --fsys-tarfile``; keep some files."""
    try:
        proc = subprocess.Popen(
            ["dpkg-deb", "--fsys-tarfile", str(deb)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise CorpusError("dpkg-deb not found: apt-get install dpkg") from exc
    count = 0
    with tarfile.open(fileobj=cast(IO[bytes], proc.stdout), mode="r|*") as archive:
        for member in archive:
            name = member.name.removeprefix("./")
            if member.isfile() and keep(name):
                member.name = name
                archive.extract(member, target, filter="data")
                count += 1
    _, stderr = proc.communicate()
    if proc.returncode != 0:
        raise CorpusError(f"dpkg-deb could not unpack {deb.name}: {stderr.decode().strip()}")
    return count


def _is_dutch_dialogue(name: str) -> bool:
    return name.startswith(f"{_GAME_ROOT}/sound/") and "/nl/" in name and name.endswith(".ogg")


def _is_dutch_transcript(name: str) -> bool:
    return name.startswith(f"{_GAME_ROOT}/script/") and name.endswith("dialogs_nl.lua")


def fetch_fillets_nl(cache_dir: str | os.PathLike[str]) -> Path:
    """Download and unpack the Dutch dialogue and its transcripts once; return the folder.

    A ``.complete`` marker is written last, so an interrupted fetch is redone, never half-used.
    """
    folder = Path(cache_dir) / "demo-corpus" / "fillets-ng-nl"
    marker = folder / ".complete"
    if marker.is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".fetch-") as tmp:
        work = Path(tmp)
        unpacked = work / "unpacked"
        audio = _extract(_apt_download(AUDIO_PACKAGE, work), unpacked, _is_dutch_dialogue)
        texts = _extract(_apt_download(TRANSCRIPT_PACKAGE, work), unpacked, _is_dutch_transcript)
        if not audio or not texts:
            raise CorpusError(
                f"{AUDIO_PACKAGE}/{TRANSCRIPT_PACKAGE} held no Dutch dialogue/transcripts "
                f"({audio} audio files, {texts} transcript files): unexpected package contents"
            )
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(unpacked / _GAME_ROOT, folder)
    marker.write_text(f"{AUDIO_PACKAGE} {TRANSCRIPT_PACKAGE}\n", encoding="utf-8")
    return folder


def _read_transcripts(script_dir: Path) -> dict[tuple[str, str], str]:
    """``(level, dialog id) -> Dutch text`` from every ``dialogs_nl.lua``."""
    texts: dict[tuple[str, str], str] = {}
    for lua in sorted(script_dir.rglob("*dialogs_nl.lua")):
        level = lua.parent.relative_to(script_dir).as_posix()
        for match in _DIALOG.finditer(lua.read_text(encoding="utf-8", errors="replace")):
            text = re.sub(r"\\(.)", r"\1", match["text"]).strip()
            if text:
                texts.setdefault((level, match["id"]), text)
    return texts


def fillets_nl_speech(cache_dir: str | os.PathLike[str]) -> RealSpeech:
    """The Fish Fillets NG Dutch dialogue with transcripts (recordings without one are left out).

    A recording's id is ``<level>/<dialog id>``; the speaker is the dialog id's second field
    (``m``: the small fish, ``v``: the big fish, others: minor characters).
    """
    folder = fetch_fillets_nl(cache_dir)
    texts = _read_transcripts(folder / "script")
    by_id = {dialog: text for (_, dialog), text in sorted(texts.items())}
    recordings = []
    for path in sorted((folder / "sound").rglob("*.ogg")):
        level = path.parent.parent.relative_to(folder / "sound").as_posix()
        dialog = path.stem
        text = texts.get((level.rsplit("/", 1)[-1], dialog)) or by_id.get(dialog)
        if not text:
            continue
        fields = re.split(r"[-_]", dialog)  # "rea-m-proboha", "bar_v_fotka", "v-zadne"
        fish = [f for f in fields[:2] if f in ("m", "v")]
        speaker = fish[0] if fish else (fields[1] if len(fields) > 2 else None)
        recordings.append(SourceRecording(f"{level}/{dialog}", str(path), text, speaker))
    if not recordings:
        raise CorpusError(
            f"no transcribed Dutch dialogue found under {folder}: delete it and retry"
        )
    return RealSpeech(
        recordings,
        "nl",
        f"Debian packages {AUDIO_PACKAGE} + {TRANSCRIPT_PACKAGE} (Fish Fillets NG Dutch "
        f"voice acting), unpacked in {folder}",
    )


def folder_speech(real_dir: str | os.PathLike[str], language: str) -> RealSpeech:
    """Every audio file under ``real_dir`` is one real recording.

    A transcript beside it (``name.txt`` or ``name.lab``) is used when present: espeak-ng then
    reads the same sentence and the sentence is kept in one split.
    """
    root = Path(real_dir)
    if not root.is_dir():
        raise CorpusError(f"--real-dir {root} is not a folder")
    recordings = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if not is_audio_path(name):
                continue
            path = Path(dirpath) / name
            text = None
            for suffix in TRANSCRIPT_SUFFIXES:
                sidecar = path.with_suffix(suffix)
                if sidecar.is_file():
                    text = sidecar.read_text(encoding="utf-8", errors="replace").strip() or None
                    break
            rel = path.relative_to(root).with_suffix("").as_posix()
            recordings.append(SourceRecording(rel, str(path), text))
    if not recordings:
        raise CorpusError(f"--real-dir {root} holds no audio files (wav, flac, mp3, ogg, ...)")
    with_text = sum(r.text is not None for r in recordings)
    return RealSpeech(
        recordings,
        language,
        f"folder {root.absolute()} ({with_text} of {len(recordings)} recordings transcribed)",
    )
