"""Leak detectors: path, file bytes, decoded audio; duplicates; strict mode; split carving."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfake_audio.audio import load_audio, write_audio
from deepfake_audio.data.pipeline import DataOptions, prepare
from deepfake_audio.data.records import FAKE, REAL, ClipRecord
from deepfake_audio.data.separation import PATH_DETECTOR, KeyDetector, LeakError, separate
from deepfake_audio.data.splits import assign_splits, group_key


def _record(path: str, split: str, label: int = FAKE, **kw) -> ClipRecord:
    return ClipRecord(path=path, label=label, split=split, **kw)


def test_leak_is_dropped_from_the_evaluation_side() -> None:
    records = [
        _record("/a.wav", "train", file_hash="h1"),
        _record("/b.wav", "validation", file_hash="h1"),
        _record("/c.wav", "test", file_hash="h1"),
        _record("/d.wav", "test", file_hash="h2"),
    ]
    result = separate(records)
    assert [r.path for r in result.records] == ["/a.wav", "/d.wav"]
    (leak,) = result.leaks
    assert leak.detector == "file_bytes" and leak.dropped == ["/b.wav", "/c.wav"]


def test_validation_keeps_its_copy_when_train_has_none() -> None:
    records = [
        _record("/b.wav", "validation", audio_hash="x"),
        _record("/c.flac", "test", audio_hash="x"),
    ]
    assert [r.path for r in separate(records).records] == ["/b.wav"]


def test_duplicates_inside_a_split_are_reported_and_kept() -> None:
    records = [_record("/a.wav", "train", file_hash="h"), _record("/b.wav", "train", file_hash="h")]
    result = separate(records)
    assert len(result.records) == 2 and not result.leaks
    assert result.duplicates[0].paths == ["/a.wav", "/b.wav"]


def test_same_path_in_two_splits() -> None:
    records = [_record("/a.wav", "train"), _record("/a.wav", "test")]
    result = separate(records)
    assert [(r.path, r.split) for r in result.records] == [("/a.wav", "train")]
    assert result.leaks[0].detector == "path"


def test_symlink_is_the_same_file(tmp_path: Path) -> None:
    target = tmp_path / "a.wav"
    target.write_bytes(b"x")
    link = tmp_path / "link.wav"
    link.symlink_to(target)
    result = separate([_record(str(target), "train"), _record(str(link), "test")])
    assert [f.detector for f in result.leaks] == ["path"]


def test_path_detector_resolves_as_realpath_does(tmp_path: Path, monkeypatch) -> None:
    """Folders are resolved once and reused; the groups must be those of plain realpath."""
    real = tmp_path / "data" / "train"
    real.mkdir(parents=True)
    for name in ("a.wav", "b.wav", "c.wav"):
        (real / name).write_bytes(b"x")
    (tmp_path / "linked").symlink_to(tmp_path / "data")  # a symlinked folder
    (real / "to_b.wav").symlink_to(real / "b.wav")  # a symlinked file
    (real / "dangling.wav").symlink_to(real / "gone.wav")
    monkeypatch.chdir(tmp_path)
    paths = [
        str(real / "a.wav"), str(tmp_path / "linked" / "train" / "a.wav"),
        "data/train/b.wav", str(real / "to_b.wav"), str(real / ".." / "train" / "c.wav"),
        "linked//train/c.wav", str(real / "dangling.wav"), str(real / "gone.wav"),
        str(real / "missing.wav"),
    ]  # fmt: skip
    records = [_record(p, ("train", "validation", "test")[i % 3]) for i, p in enumerate(paths)]
    plain = KeyDetector("path", lambda r: os.path.realpath(r.path), "plain realpath")

    def groups(found: list[list[ClipRecord]]) -> set[frozenset[str]]:
        return {frozenset(r.path for r in group) for group in found}

    assert groups(PATH_DETECTOR.find_groups(records)) == groups(plain.find_groups(records))
    assert len(groups(plain.find_groups(records))) == 4  # a, b, c and the dangling link


def test_strict_mode_raises() -> None:
    records = [_record("/a.wav", "train", file_hash="h"), _record("/b.wav", "test", file_hash="h")]
    with pytest.raises(LeakError, match=r"/a\.wav"):
        separate(records, strict=True)


def test_a_new_detector_plugs_in() -> None:
    same_stem = KeyDetector("stem", lambda r: Path(r.path).stem, "same file name")
    records = [_record("/x/a.wav", "train"), _record("/y/a.mp3", "test")]
    result = separate(records, [same_stem])
    assert result.leaks[0].detector == "stem" and len(result.records) == 1


def test_reencoded_copy_is_caught_end_to_end(tmp_path: Path, cache_dir: Path) -> None:
    root = tmp_path / "root" / "for-norm"
    for split, freq in (("training", 300), ("testing", 500)):
        for label in ("fake", "real"):
            write_audio(root / split / label / "a.wav", _tone(freq + (label == "real")), 16000)
    # The same recording as FLAC in testing, and a byte copy in testing.
    source = root / "training" / "real" / "a.wav"
    write_audio(root / "testing" / "real" / "again.flac", load_audio(source), 16000)
    shutil.copy(root / "training" / "fake" / "a.wav", root / "testing" / "fake" / "copy.wav")
    prepared = prepare(
        tmp_path / "root", DataOptions(cache_dir=str(cache_dir), workers=1), progress=False
    )
    findings = prepared.report["separation"]["findings"]
    leaks = {(f["detector"], tuple(sorted(Path(p).name for p in f["dropped"]))) for f in findings}
    assert ("decoded_audio", ("again.flac",)) in leaks
    assert ("file_bytes", ("copy.wav",)) in leaks
    paths = {Path(r.path).name for r in prepared.records if r.split == "test"}
    assert "again.flac" not in paths and "copy.wav" not in paths


def _tone(freq: float):
    from tests.synth import tone

    return tone(0.3, freq=freq)


def test_carving_validation_keeps_groups_together() -> None:
    records = [
        _record(f"/{s}_{i}.wav", "train", label=i % 2, group=f"spk{s}")
        for s in range(10)
        for i in range(4)
    ]
    split = assign_splits(records, validation_fraction=0.2, seed=1)
    assert {r.split for r in split} == {"train", "validation"}
    for group in {r.group for r in split}:
        assert len({r.split for r in split if r.group == group}) == 1


@settings(max_examples=40, deadline=None)
@given(
    groups=st.lists(st.sampled_from("abcdefgh") | st.none(), min_size=1, max_size=60),
    seed=st.integers(0, 1000),
    has_train=st.booleans(),
)
def test_no_group_ever_spans_two_splits(
    groups: list[str | None], seed: int, has_train: bool
) -> None:
    records = [
        _record(f"/{i}.wav", "train" if has_train else None, label=i % 2, group=g)  # type: ignore[arg-type]
        for i, g in enumerate(groups)
    ]
    out = assign_splits(records, seed=seed)
    assert len(out) == len(records)
    seen: dict[str, str] = {}
    for record in out:
        key = group_key(record)
        assert seen.setdefault(key, record.split) == record.split  # type: ignore[arg-type]


def test_carving_is_seeded() -> None:
    records = [_record(f"/{i}.wav", None, label=i % 2) for i in range(50)]  # type: ignore[arg-type]
    first = assign_splits(records, seed=3)
    assert first == assign_splits(records, seed=3)
    assert first != assign_splits(records, seed=4)
    assert {r.split for r in first} == {"train", "validation", "test"}
    assert REAL in {r.label for r in first}
