"""Plan the demo corpus (which recording goes where, as what) and write it.

Layout (Fake-or-Real): ``OUT/demo-<lang>/<training|validation|testing>/real/<clip>.<ext>`` and
``.../fake/<generator>/<clip>.<ext>``, plus ``OUT/metadata.csv`` with one row per file.

Separation: recordings are grouped by sentence (normalized transcript); a whole group (every
recording of the sentence, every clip cut from them, every resynthesis and every espeak-ng
reading of the sentence) goes to one split. Balance: every real clip gets exactly one fake in
its split, the generator rotating over espeak-ng / WORLD / Griffin-Lim (and, with
``neural_minutes``, a neural vocoder trained here on the training split's real clips: see
:mod:`deepfake_audio.corpus.neural`). In the test split a real clip and its fake share a
container format, rotating over wav/flac/mp3/m4a, so the format says nothing about the label.

With the neural vocoder the build has three stages: every recording is written as usual,
its neural fakes left for later (they need the vocoder, which needs the training clips);
the vocoder is trained (or reused) on the training split's real clips; then each neural fake
is made from its real clip. A neural fake's source is its real clip, so it stays in its split.

Every choice comes from a hash of ``seed`` and a stable id, never from the order work is
done in, so a seed gives the same files whatever the number of workers. Files are written to
a temporary name and renamed; a recording's rows are saved once all its files exist, so a
rerun skips finished recordings and an interrupted build resumes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from tqdm.auto import tqdm

from deepfake_audio.audio import AudioDecodeError, is_audio_path, load_audio, resample, write_audio
from deepfake_audio.corpus import SIZES, clips, tts, vocoders
from deepfake_audio.corpus.errors import CorpusError
from deepfake_audio.corpus.sources import (
    RealSpeech,
    SourceRecording,
    fillets_nl_speech,
    folder_speech,
    normalize_sentence,
)
from deepfake_audio.data.cache import default_cache_dir
from deepfake_audio.fileio import write_text_atomic

if TYPE_CHECKING:  # torch loads only for a build with the neural vocoder
    from deepfake_audio.corpus.neural.training import TrainedVocoder

Size = Literal["tiny", "small", "full"]
#: Recordings used per size (None: all). Each gives ~1.1 real clips and as many fakes.
SPLITS = ("training", "validation", "testing")
_SPLIT_SHARES = {"validation": 0.15, "testing": 0.15}  # training gets the rest
GENERATORS = ("espeak-ng", "world", "griffin-lim")
NEURAL_GENERATOR = "neural-vocoder"
#: Where the neural vocoder, its losses, plots and samples live, beside the corpus.
NEURAL_DIR = "neural_vocoder"
#: Held-out (validation) real clips resynthesised into ``neural_vocoder/samples``.
NEURAL_SAMPLES = 3
REAL_GENERATOR = "bonafide"
TEST_FORMATS = ("wav", "flac", "mp3", "m4a")
SAMPLE_RATE = 16000
METADATA = "metadata.csv"
METADATA_COLUMNS = (
    "path",
    "split",
    "label",
    "generator",
    "language",
    "source",
    "dataset_type",
    "sentence",
    "speaker",
    "duration",
    "format",
    "text",
    "vocoder_steps",  # neural-vocoder fakes: how long the vocoder trained
    "vocoder_seconds",
)
_STATE_DIR = ".demo-corpus"
_MIN_WPM, _MAX_WPM = 90, 320  # espeak-ng speeds still intelligible
_STAMP_VERSION = 1


def stable_int(*parts: object) -> int:
    """A 63-bit integer from a SHA-256 of ``parts``: the same on every machine and run."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def sentence_id(text: str | None) -> str | None:
    """``s<12 hex>`` from the normalized sentence; None when there are no words."""
    normalized = normalize_sentence(text or "")
    if not normalized:
        return None
    return "s" + hashlib.sha1(normalized.encode("utf-8")).hexdigest()[:12]


def _slug(recording_id: str) -> str:
    return re.sub(r"[^\w.-]+", "_", recording_id.replace("/", "--")).strip("_") or "clip"


@dataclass(frozen=True)
class RecordingTask:
    """Everything one worker needs to write the clips of one recording (picklable)."""

    recording: SourceRecording
    split: str
    index: int  # position of the recording within its split: drives the rotations
    sentence: str | None
    language: str
    dataset_type: str
    seed: int
    out: str
    fallback: tuple[tuple[str, str], ...]  # (sentence id, text) this split may read instead
    generators: tuple[str, ...] = GENERATORS  # the rotation of fake generators

    def fingerprint(self) -> str:
        """Everything that decides this recording's files: saved rows are reused only if equal."""
        rec = self.recording  # not its path: moving the cache folder changes no file
        fields = (_STAMP_VERSION, rec.id, rec.text, rec.speaker, self.split, self.index)
        extra = (self.sentence, self.language, self.dataset_type, self.seed, self.fallback)
        if self.generators != GENERATORS:  # the fingerprints of earlier builds stay valid
            extra = (*extra, self.generators)
        return hashlib.sha256(repr((*fields, *extra)).encode("utf-8")).hexdigest()[:16]


@dataclass
class BuildResult:
    """What a build used and wrote; the command prints it."""

    out: Path
    dataset_type: str
    speech: RealSpeech
    espeak: str
    tasks: int
    rows: list[dict[str, str]]
    written: int = 0
    reused: int = 0
    removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (recording id, reason)
    seconds: float = 0.0
    vocoder: TrainedVocoder | None = None  # the neural vocoder, when built with one

    def counts(self) -> dict[str, Counter[str]]:
        """Per split: files per ``label/generator``."""
        out: dict[str, Counter[str]] = {split: Counter() for split in SPLITS}
        for row in self.rows:
            out[row["split"]][f"{row['label']}/{row['generator']}"] += 1
        return out


def plan(
    speech: RealSpeech,
    size: str,
    seed: int,
    out: Path,
    generators: tuple[str, ...] = GENERATORS,
) -> list[RecordingTask]:
    """Choose recordings for ``size`` and give each sentence group a split.

    Raises :class:`CorpusError` if a recording has no transcript and the language has no
    built-in sentences for espeak-ng to read instead.
    """
    if size not in SIZES:
        raise CorpusError(f"unknown size {size!r}: choose one of {', '.join(SIZES)}")
    groups: dict[str, list[SourceRecording]] = {}
    sentences: dict[str, str | None] = {}
    for recording in speech.recordings:
        sid = sentence_id(recording.text)
        key = sid or f"r:{recording.id}"  # no transcript: the recording is its own group
        groups.setdefault(key, []).append(recording)
        sentences[recording.id] = sid
    order = sorted(groups, key=lambda k: (stable_int(seed, "select", k), k))
    limit = SIZES[size]
    chosen: list[str] = []
    total = 0
    for key in order:
        if limit is not None and total >= limit:
            break
        chosen.append(key)
        total += len(groups[key])
    targets = {s: max(1, round(share * total)) for s, share in _SPLIT_SHARES.items()}
    targets["training"] = total - sum(targets.values())
    filled = Counter[str]()
    by_split: dict[str, list[SourceRecording]] = {s: [] for s in SPLITS}
    for key in sorted(chosen, key=lambda k: (stable_int(seed, "split", k), k)):
        # The split furthest below its share takes the group: shares hold even when groups
        # (recordings of one sentence) are large, and no split is left empty.
        split = max(SPLITS, key=lambda s: (targets[s] - filled[s]) / max(targets[s], 1))
        filled[split] += len(groups[key])
        by_split[split].extend(groups[key])
    fallback = _fallback_by_split(speech, seed)
    dataset_type = f"demo-{speech.language}"
    tasks = []
    for split in SPLITS:
        for index, recording in enumerate(sorted(by_split[split], key=lambda r: r.id)):
            tasks.append(
                RecordingTask(
                    recording=recording,
                    split=split,
                    index=index,
                    sentence=sentences[recording.id],
                    language=speech.language,
                    dataset_type=dataset_type,
                    seed=seed,
                    out=str(out),
                    fallback=fallback.get(split, ()),
                    generators=generators,
                )
            )
    return tasks


def _fallback_by_split(speech: RealSpeech, seed: int) -> dict[str, tuple[tuple[str, str], ...]]:
    """Built-in sentences, partitioned over the splits, for recordings without a transcript."""
    if all(sentence_id(r.text) for r in speech.recordings):
        return {}
    texts = tts.FALLBACK_SENTENCES.get(speech.language)
    if not texts:
        raise CorpusError(
            f"some recordings have no transcript and there are no built-in "
            f"{speech.language!r} sentences for espeak-ng: put a transcript beside each "
            f"recording (clip.wav + clip.txt) or use --language "
            f"{'/'.join(tts.FALLBACK_SENTENCES)}"
        )
    ordered = sorted(texts, key=lambda t: stable_int(seed, "fallback", t))
    n_val = max(1, round(len(ordered) * _SPLIT_SHARES["validation"]))
    n_test = max(1, round(len(ordered) * _SPLIT_SHARES["testing"]))
    parts = {
        "validation": ordered[:n_val],
        "testing": ordered[n_val : n_val + n_test],
        "training": ordered[n_val + n_test :],
    }
    return {s: tuple((sentence_id(t) or "", t) for t in part) for s, part in parts.items()}


def _write(target: Path, samples: np.ndarray) -> bool:
    """Write ``samples`` unless ``target`` exists; via a temporary name. True if written."""
    if target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp{target.suffix}")
    try:
        subtype = "PCM_16" if target.suffix in (".wav", ".flac") else None
        write_audio(tmp, samples, SAMPLE_RATE, subtype=subtype)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _fake(
    generator: str,
    clip: np.ndarray,
    task: RecordingTask,
    clip_id: str,
    rotation: int,
    target_seconds: float,
) -> tuple[np.ndarray, dict[str, str]]:
    """Make the fake paired with one real clip; returns samples and its metadata fields."""
    rec = task.recording
    if generator == "world":
        return vocoders.world_resynthesis(clip, SAMPLE_RATE), {}
    if generator == "griffin-lim":
        seed = stable_int(task.seed, "griffin-lim", clip_id)
        return vocoders.griffin_lim(clip, SAMPLE_RATE, seed=seed), {}
    if task.sentence and rec.text:
        sentence, text = task.sentence, rec.text
    else:
        sentence, text = task.fallback[rotation % len(task.fallback)]
    voice = tts.Voice.from_seed(stable_int(task.seed, "voice", clip_id))
    samples, rate = tts.speak(text, task.language, voice)
    if task.sentence and rec.text:
        # Speak at the pace of the real recording, so duration is no cue to the label.
        target = max(target_seconds, clips.MIN_SECONDS)
        speed = round(voice.speed * len(samples) / rate / target)
        voice = replace(voice, speed=min(max(speed, _MIN_WPM), _MAX_WPM))
        samples, rate = tts.speak(text, task.language, voice)
    fields = {"sentence": sentence, "text": text, "speaker": f"espeak-ng:{voice.label()}"}
    return resample(samples, rate, SAMPLE_RATE), fields


def build_recording(task: RecordingTask) -> tuple[list[dict[str, str]], int, str | None]:
    """Write the real clips of one recording and one fake per clip.

    Returns (metadata rows, files written, reason the recording was skipped or None).
    """
    rec = task.recording
    out = Path(task.out)
    state = out / _STATE_DIR / "rows" / f"{_slug(rec.id)}.json"
    fingerprint = task.fingerprint()
    if state.is_file():
        saved = json.loads(state.read_text(encoding="utf-8"))
        rows = saved.get("rows", [])
        if saved.get("task") == fingerprint and all((out / r["path"]).is_file() for r in rows):
            return rows, 0, None
    try:
        audio = clips.trim_silence(load_audio(rec.path, SAMPLE_RATE), SAMPLE_RATE)
    except AudioDecodeError as exc:
        return [], 0, str(exc)
    spans = clips.cut_points(audio, SAMPLE_RATE)
    if not spans:
        return [], 0, f"shorter than {clips.MIN_SECONDS:g} s of sound"
    rows, written = [], 0
    base = f"{task.dataset_type}/{task.split}"
    common = {
        "split": task.split,
        "language": task.language,
        "source": rec.id,
        "dataset_type": task.dataset_type,
    }
    for k, (start, end) in enumerate(spans):
        clip_id = f"{_slug(rec.id)}_{k}"
        rotation = task.index + k
        ext = TEST_FORMATS[rotation % len(TEST_FORMATS)] if task.split == "testing" else "wav"
        generator = task.generators[(rotation + task.seed) % len(task.generators)]
        real = clips.finish(audio[start:end], SAMPLE_RATE)
        fake_path = f"{base}/fake/{generator}/{clip_id}.{ext}"
        real_path = f"{base}/real/{clip_id}.{ext}"
        fake_fields: dict[str, str] = {}
        if generator == NEURAL_GENERATOR:
            fake = real  # made later from the real clip (see neural_fakes); as long as it
        elif not (out / fake_path).exists() or generator == "espeak-ng":
            fake, fake_fields = _fake(
                generator, audio[start:end], task, clip_id, rotation, len(audio) / SAMPLE_RATE
            )
            fake = clips.finish(fake, SAMPLE_RATE)
            written += _write(out / fake_path, fake)
        else:
            fake = load_audio(out / fake_path, SAMPLE_RATE)
        written += _write(out / real_path, real)
        for path, label, gen, samples, extra in (
            (real_path, "real", REAL_GENERATOR, real, {}),
            (fake_path, "fake", generator, fake, fake_fields),
        ):
            rows.append(
                {
                    **common,
                    "path": path,
                    "label": label,
                    "generator": gen,
                    "sentence": task.sentence or "",
                    "speaker": rec.speaker or "",
                    "text": rec.text or "",
                    "duration": f"{len(samples) / SAMPLE_RATE:.3f}",
                    "format": ext,
                    **extra,
                }
            )
    saved = {"task": fingerprint, "rows": rows}
    write_text_atomic(state, json.dumps(saved, ensure_ascii=False, indent=1))
    return rows, written, None


def _refuse_foreign(out: Path) -> None:
    """OUT must be new, empty or a demo corpus: checked before any download or synthesis."""
    if out.exists() and not (out / _STATE_DIR / "build.json").is_file() and any(out.iterdir()):
        raise CorpusError(
            f"{out} is not empty and holds no demo corpus: choose a new or empty folder"
        )


def _check_output(out: Path, stamp: dict) -> None:
    """Refuse to mix builds: OUT must be new/empty or built with the same options."""
    path = out / _STATE_DIR / "build.json"
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous != stamp:
            changed = sorted(k for k in stamp if previous.get(k) != stamp[k])
            raise CorpusError(
                f"{out} holds a demo corpus built with other options ("
                + ", ".join(f"{k} was {previous.get(k)!r}, now {stamp[k]!r}" for k in changed)
                + "): build into another folder or delete it"
            )
        return
    _refuse_foreign(out)
    write_text_atomic(path, json.dumps(stamp, indent=1))


def _tidy(out: Path, dataset_type: str, keep: set[str]) -> int:
    """Remove temporaries of an interrupted build and audio no row lists; returns the count."""
    removed = 0
    folder = out / dataset_type
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(out).as_posix()
            if ".tmp" in name or (is_audio_path(name) and rel not in keep):
                path.unlink()
                removed += 1
    return removed


def _metadata_text(rows: Sequence[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METADATA_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def build_corpus(
    out: str | os.PathLike[str],
    *,
    size: str = "full",
    seed: int = 0,
    real_dir: str | os.PathLike[str] | None = None,
    language: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    neural_minutes: float | None = None,
    progress: bool = True,
) -> BuildResult:
    """Build (or finish, or verify) the demo corpus in ``out``; see the module docstring.

    ``real_dir`` replaces the Debian dialogue with the user's recordings (``language``,
    default ``en``, is then the language espeak-ng speaks). ``neural_minutes`` adds the
    ``neural-vocoder`` generator, trained for that long (see :func:`neural_fakes`). Raises
    :class:`CorpusError` with what to install or do when a source or tool is missing.
    """
    if neural_minutes is not None and not neural_minutes > 0:
        raise CorpusError(f"--neural-minutes must be positive, got {neural_minutes}")
    started = time.monotonic()
    out = Path(out)
    espeak = tts.espeak_version()  # fails first, and clearly, without espeak-ng
    _refuse_foreign(out)
    if real_dir is None:
        if language not in (None, "nl"):
            raise CorpusError("--language only applies with --real-dir (the default is Dutch)")
        speech = fillets_nl_speech(cache_dir or default_cache_dir())
        source_key = "debian:fillets-ng-data-nl"
    else:
        speech = folder_speech(real_dir, language or "en")
        source_key = f"folder:{Path(real_dir).absolute()}"
    tts.check_language(speech.language)
    stamp = {
        "version": _STAMP_VERSION,
        "size": size,
        "seed": seed,
        "source": source_key,
        "language": speech.language,
    }
    generators = GENERATORS
    if neural_minutes is not None:  # only then: earlier builds' stamps stay valid
        stamp["neural_minutes"] = neural_minutes
        generators = (*GENERATORS, NEURAL_GENERATOR)
    tasks = plan(speech, size, seed, out, generators)
    _check_output(out, stamp)
    workers = max(1, workers or os.cpu_count() or 1)
    result = BuildResult(out, f"demo-{speech.language}", speech, espeak, len(tasks), [])
    bar = tqdm(total=len(tasks), desc="demo corpus", unit="recording", disable=not progress)
    with bar:
        if workers == 1:
            outcomes = (build_recording(task) for task in tasks)
            _collect(result, tasks, outcomes, bar)
        else:
            pool = ProcessPoolExecutor(workers, mp_context=get_context("fork"))
            chunksize = max(1, min(8, math.ceil(len(tasks) / (workers * 8))))
            try:
                _collect(result, tasks, pool.map(build_recording, tasks, chunksize=chunksize), bar)
            except BaseException:  # Ctrl-C or a failure: drop queued work, do not wait for it
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown()
    result.rows.sort(key=lambda row: row["path"])
    if neural_minutes is not None:
        result.vocoder = neural_fakes(result, neural_minutes, seed, progress)
    result.reused = len(result.rows) - result.written
    result.removed = _tidy(out, result.dataset_type, {row["path"] for row in result.rows})
    metadata = out / METADATA
    text = _metadata_text(result.rows)
    if not metadata.is_file() or metadata.read_text(encoding="utf-8") != text:
        write_text_atomic(metadata, text)
    result.seconds = time.monotonic() - started
    return result


def neural_fakes(
    result: BuildResult, minutes: float, seed: int, progress: bool = True
) -> TrainedVocoder:
    """Train (or reuse) the neural vocoder on the training split's real clips, then write
    every ``neural-vocoder`` fake missing from ``result.rows`` as the resynthesis of its real
    clip; fills in the rows' durations and the vocoder's steps and seconds."""
    from deepfake_audio.corpus.neural.training import train_vocoder

    out = result.out
    real = {row["path"]: row for row in result.rows if row["label"] == "real"}
    training = [load_audio(out / path, SAMPLE_RATE) for path, row in sorted(real.items())
                if row["split"] == "training"]  # fmt: skip
    if not training:
        raise CorpusError("no real training clip to train the neural vocoder on")
    held_out = sorted(path for path, row in real.items() if row["split"] == "validation")
    samples = [
        (Path(path).stem, load_audio(out / path, SAMPLE_RATE)) for path in held_out[:NEURAL_SAMPLES]
    ]
    trained = train_vocoder(
        training, out / NEURAL_DIR, minutes=minutes, seed=seed, samples=samples, progress=progress
    )
    vocoder = trained.load()
    marker = f"/fake/{NEURAL_GENERATOR}/"
    rows = [row for row in result.rows if marker in row["path"]]
    for row in tqdm(rows, desc="neural fakes", unit="clip", disable=not progress):
        target = out / row["path"]
        if target.exists():
            samples_out = load_audio(target, SAMPLE_RATE)
        else:
            source = load_audio(out / row["path"].replace(marker, "/real/"), SAMPLE_RATE)
            samples_out = clips.finish(vocoder.resynthesize(source), SAMPLE_RATE)
            result.written += _write(target, samples_out)
        row["duration"] = f"{len(samples_out) / SAMPLE_RATE:.3f}"
        row["vocoder_steps"] = str(trained.steps)
        row["vocoder_seconds"] = f"{trained.seconds:.0f}"
    return trained


def _collect(result: BuildResult, tasks: Sequence[RecordingTask], outcomes, bar: tqdm) -> None:
    for task, (rows, written, skipped) in zip(tasks, outcomes, strict=True):
        result.rows.extend(rows)
        result.written += written
        if skipped:
            result.skipped.append((task.recording.id, skipped))
        bar.update()
