"""The demo corpus (``make-demo-corpus``): separation, balance, metadata, determinism, reuse.

The one exception to "nothing is downloaded": the tiny corpus is built from the Debian package
``fillets-ng-data-nl`` (``apt-get download``, cached in the default cache folder, so only the
first session fetches it). Needs ``espeak-ng`` (``make system-deps``). The tests of the built
corpus skip, saying why, where the Debian archive cannot be reached (no apt-get, no network);
the unit tests of its parts never skip.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from deepfake_audio.audio import is_audio_path, write_audio
from deepfake_audio.commands import make_demo_corpus
from deepfake_audio.corpus import tts
from deepfake_audio.corpus.builder import (
    GENERATORS,
    METADATA_COLUMNS,
    SPLITS,
    TEST_FORMATS,
    build_corpus,
    plan,
)
from deepfake_audio.corpus.clips import cut_points, finish
from deepfake_audio.corpus.errors import CorpusError
from deepfake_audio.corpus.sources import RealSpeech, SourceRecording, normalize_sentence
from deepfake_audio.corpus.vocoders import griffin_lim, world_resynthesis
from deepfake_audio.data.pipeline import DataOptions, prepare

#: Words of the CorpusError raised when the Debian speech package cannot be fetched.
UNREACHABLE = ("apt-get download", "the Debian speech source needs")


def _metadata(root: Path) -> list[dict[str, str]]:
    with open(root / "metadata.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _audio_files(root: Path) -> dict[str, Path]:
    return {
        p.relative_to(root).as_posix(): p
        for p in root.rglob("*")
        if p.is_file() and is_audio_path(p.name)
    }


def _digests(root: Path) -> dict[str, str]:
    return {
        rel: hashlib.sha256(p.read_bytes()).hexdigest() for rel, p in _audio_files(root).items()
    }


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny corpus, built once per session with two workers."""
    out = tmp_path_factory.mktemp("demo") / "corpus"
    if shutil.which("apt-get") is None:
        pytest.skip("the Debian speech source needs apt-get")
    try:
        build_corpus(out, size="tiny", seed=0, workers=2, progress=False)
    except CorpusError as exc:
        if not any(words in str(exc) for words in UNREACHABLE):
            raise
        pytest.skip(f"the Debian archive cannot be reached: {exc}")
    return out


@pytest.fixture(scope="session")
def tiny_rows(tiny: Path) -> list[dict[str, str]]:
    return _metadata(tiny)


def _audit(root: Path, cache: Path) -> dict:
    options = DataOptions(cache_dir=str(cache), workers=2, balance="none")
    return prepare(root, options, progress=False).report


def test_audit_finds_no_leak_and_balanced_splits(tiny: Path, tmp_path: Path) -> None:
    report = _audit(tiny, tmp_path / "cache")
    assert report["unreadable"] == []
    assert report["separation"]["leaks"] == 0
    findings = report["separation"]["findings"]
    assert not [f for f in findings if f["detector"] != "near_duplicate"]  # no copies
    for finding in findings:  # a WORLD fake keeps its source's spectral peaks: said, kept
        fake, real = finding["paths"]
        assert "/fake/world/" in fake and "/real/" in real, finding
        assert Path(fake).name == Path(real).name and finding["kind"] == "duplicate"
    before = report["balance"]["before"]
    assert set(before) == {"train", "validation", "test"}
    for split, types in before.items():
        assert set(types) == {"demo-nl"}
        counts = types["demo-nl"]
        assert counts["fake"] == counts["real"] > 0, split
    assert report["discovered"] == len(_audio_files(tiny))


def test_metadata_accounts_for_every_file(tiny: Path, tiny_rows: list[dict[str, str]]) -> None:
    assert list(tiny_rows[0]) == list(METADATA_COLUMNS)
    paths = [row["path"] for row in tiny_rows]
    assert len(paths) == len(set(paths))
    assert set(paths) == set(_audio_files(tiny))
    assert 60 <= len(paths) <= 120
    for row in tiny_rows:
        assert row["split"] in SPLITS
        assert f"/{row['split']}/{row['label']}/" in row["path"]
        assert row["language"] == "nl" and row["source"]
        assert 0.5 <= float(row["duration"]) <= 10


def test_three_fake_generators_and_test_split_formats(tiny_rows: list[dict[str, str]]) -> None:
    fakes = Counter(row["generator"] for row in tiny_rows if row["label"] == "fake")
    assert set(fakes) == set(GENERATORS)
    assert {row["generator"] for row in tiny_rows if row["label"] == "real"} == {"bonafide"}
    test = [row for row in tiny_rows if row["split"] == "testing"]
    assert {row["format"] for row in test} == set(TEST_FORMATS)
    for fmt in TEST_FORMATS:  # a format never tells the label
        labels = Counter(row["label"] for row in test if row["format"] == fmt)
        assert labels["fake"] == labels["real"], fmt
    assert {row["format"] for row in tiny_rows if row["split"] != "testing"} == {"wav"}
    assert all(row["path"].endswith("." + row["format"]) for row in tiny_rows)


def test_no_recording_or_sentence_crosses_splits(tiny_rows: list[dict[str, str]]) -> None:
    splits_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in tiny_rows:
        splits_of[("source", row["source"])].add(row["split"])
        if row["sentence"]:
            splits_of[("sentence", row["sentence"])].add(row["split"])
    crossing = {key: splits for key, splits in splits_of.items() if len(splits) > 1}
    assert crossing == {}
    # Resyntheses and readings share speaker/words with real clips of the same split.
    real_sources = {(r["split"], r["source"]) for r in tiny_rows if r["label"] == "real"}
    for row in tiny_rows:
        if row["label"] == "fake":
            assert (row["split"], row["source"]) in real_sources


def test_same_seed_same_files_any_worker_count(tiny: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build_corpus(again, size="tiny", seed=0, workers=1, progress=False)
    assert (again / "metadata.csv").read_bytes() == (tiny / "metadata.csv").read_bytes()
    assert _digests(again) == _digests(tiny)  # every format, mp3 and m4a included


def test_rerun_writes_nothing_and_resumes_an_interrupted_build(tiny: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy)
    mtimes = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()}
    result = build_corpus(copy, size="tiny", seed=0, workers=1, progress=False)
    assert result.written == 0 and result.reused == len(result.rows)
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()} == mtimes

    # An interruption: one clip missing, one temporary left behind.
    victim = next(p for rel, p in sorted(_audio_files(copy).items()) if "/fake/world/" in rel)
    expected = victim.read_bytes()
    victim.unlink()
    stray = victim.with_name(f".{victim.stem}.999.tmp{victim.suffix}")
    stray.write_bytes(b"half a file")
    result = build_corpus(copy, size="tiny", seed=0, workers=1, progress=False)
    assert result.written == 1
    assert victim.read_bytes() == expected
    assert not stray.exists()


def test_other_options_into_the_same_folder_are_refused(tiny: Path) -> None:
    with pytest.raises(CorpusError, match="seed was 0, now 1"):
        build_corpus(tiny, size="tiny", seed=1, workers=1, progress=False)


def test_a_foreign_non_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(CorpusError, match="not empty"):
        build_corpus(tmp_path, size="tiny", workers=1, progress=False)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def _voiced(seconds: float, f0: float, seed: int, rate: int = 16000) -> np.ndarray:
    """A buzzy harmonic 'voice' with a syllable-rate envelope: speech-like enough for WORLD."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.2 * x * envelope + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def test_real_dir_replaces_the_debian_speech(tmp_path: Path) -> None:
    real = tmp_path / "my_recordings"
    for i in range(14):
        path = real / f"spk{i % 2}" / f"rec{i:02d}.{'flac' if i % 3 else 'wav'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_audio(path, _voiced(1.5 + 0.4 * i, 100 + 15 * i, seed=i), 16000)
        if i < 4:  # two transcripts share a sentence: they must land in one split
            path.with_suffix(".txt").write_text(["Hello there.", "hello, there"][i % 2])
    out = tmp_path / "corpus"
    result = build_corpus(out, size="tiny", real_dir=real, language="en", workers=2, progress=False)
    rows = _metadata(out)
    assert result.dataset_type == "demo-en" and result.tasks == 14 and not result.skipped
    assert set(_audio_files(out)) == {row["path"] for row in rows}
    assert {row["source"] for row in rows} == {f"spk{i % 2}/rec{i:02d}" for i in range(14)}
    splits_of = defaultdict(set)
    for row in rows:
        if row["sentence"]:
            splits_of[row["sentence"]].add(row["split"])
    assert all(len(s) == 1 for s in splits_of.values())
    hello = {
        row["split"]
        for row in rows
        if row["text"] == "hello, there" or row["text"] == "Hello there."
    }
    assert len(hello) == 1
    fallback = {row["text"] for row in rows if row["generator"] == "espeak-ng"}
    assert fallback & set(tts.FALLBACK_SENTENCES["en"])  # untranscribed: built-in sentences
    report = _audit(out, tmp_path / "cache")
    assert report["separation"]["leaks"] == 0
    for types in report["balance"]["before"].values():
        assert types["demo-en"]["fake"] == types["demo-en"]["real"]


def test_missing_espeak_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tts.espeak_binary.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng (nor anything else) on PATH
    try:
        with pytest.raises(CorpusError, match="apt-get install espeak-ng"):
            build_corpus(tmp_path / "out", size="tiny", workers=1, progress=False)
        parser = argparse.ArgumentParser()
        make_demo_corpus.register(parser.add_subparsers())
        args = parser.parse_args(["make-demo-corpus", str(tmp_path / "out"), "--size", "tiny"])
        code = args.func(args)
    finally:
        tts.espeak_binary.cache_clear()
    assert code == 1
    assert "espeak-ng not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_sentence_group_never_splits_across_splits() -> None:
    texts = [f"Zin nummer {i % 25}." if i % 2 else f"zin nummer {i % 25}" for i in range(200)]
    speech = RealSpeech(
        [SourceRecording(f"lvl/r{i}", f"/nowhere/r{i}.ogg", t) for i, t in enumerate(texts)],
        "nl",
        "synthetic",
    )
    for seed in range(5):
        tasks = plan(speech, "full", seed, Path("/nowhere"))
        by_sentence = defaultdict(set)
        for task in tasks:
            by_sentence[normalize_sentence(task.recording.text or "")].add(task.split)
        assert len(by_sentence) == 25
        assert all(len(splits) == 1 for splits in by_sentence.values())
        assert {task.split for task in tasks} == set(SPLITS)
    assert len(plan(speech, "tiny", 0, Path("/nowhere"))) >= 40


def test_vocoders_keep_length_and_are_deterministic() -> None:
    x = _voiced(1.3, 120, seed=1)
    for make in (
        lambda: world_resynthesis(x, 16000),
        lambda: griffin_lim(x, 16000, seed=7),
    ):
        a, b = make(), make()
        assert a.shape == x.shape and a.dtype == np.float32
        assert np.array_equal(a, b)
        assert not np.array_equal(a, x) and np.abs(a).max() > 0.01
    assert not np.array_equal(griffin_lim(x, 16000, seed=7), griffin_lim(x, 16000, seed=8))


def test_long_recordings_are_cut_into_one_to_six_second_clips() -> None:
    x = _voiced(14.2, 110, seed=3)
    spans = cut_points(x, 16000)
    assert len(spans) == 3
    assert spans[0][0] == 0 and spans[-1][1] == len(x)
    assert all(16000 <= b - a <= 6.5 * 16000 for a, b in spans)
    assert cut_points(x[:8000], 16000) == []  # half a second: too short to be a clip
    level = finish(x * 0.01, 16000)
    assert np.sqrt(np.mean(level.astype(np.float64) ** 2)) == pytest.approx(0.1, rel=0.05)
