"""Groups when the data has none: metadata.csv speaker/source columns, a folder level, or
per file with a warning; carving never splits a group, whatever gave it."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from deepfake_audio.data.metadata import apply_metadata
from deepfake_audio.data.pipeline import grouping_report
from deepfake_audio.data.records import FAKE, REAL, TRAIN, ClipRecord
from deepfake_audio.data.splits import assign_splits, group_by_folder

ROOT = Path("/data/corpus")

#: (speaker index, label, split or None) per file
FILES = st.lists(
    st.tuples(st.integers(0, 7), st.sampled_from([FAKE, REAL]), st.sampled_from([None, TRAIN])),
    min_size=1,
    max_size=60,
)


def _records(files, source: str) -> list[ClipRecord]:
    """Records of ``ROOT/spk<k>/<label>/f<i>.wav``; the speaker given as ``source`` says."""
    records = []
    for i, (speaker, label, split) in enumerate(files):
        path = ROOT / f"spk{speaker}" / ("fake" if label == FAKE else "real") / f"f{i}.wav"
        group = f"speaker{speaker}" if source == "metadata" else None
        records.append(ClipRecord(path=str(path), label=label, split=split, group=group))
    if source == "folder":
        records = group_by_folder(records, ROOT, 1)
    return records


@settings(max_examples=80, deadline=None)
@given(files=FILES, source=st.sampled_from(["metadata", "folder"]), seed=st.integers(0, 50))
def test_carving_never_splits_a_speaker(files, source: str, seed: int) -> None:
    carved = assign_splits(_records(files, source), seed=seed)
    splits_of: dict[str, set[str]] = defaultdict(set)
    for record in carved:
        assert record.group is not None
        splits_of[record.group].add(record.split)
    assert all(len(splits) == 1 for splits in splits_of.values())
    assert grouping_report(_records(files, source), None)["carved_one_file_at_a_time"] == 0


@settings(max_examples=40, deadline=None)
@given(files=FILES)
def test_without_groups_files_are_carved_singly_and_the_report_says_so(files) -> None:
    records = _records(files, "none")
    report = grouping_report(records, None)
    # no validation split here: unsplit files are carved, and validation from the train ones
    assert report["carved_one_file_at_a_time"] == len(records)
    assert "one speaker may appear in several splits" in report["warning"]
    assert "--group-by-folder" in report["warning"]


def test_group_by_folder_names_the_level(tmp_path: Path) -> None:
    record = ClipRecord(path=str(tmp_path / "alice" / "s1" / "fake" / "a.wav"), label=FAKE)
    assert group_by_folder([record], tmp_path, 1)[0].group == "folder:alice"
    assert group_by_folder([record], tmp_path, 2)[0].group == "folder:alice/s1"
    assert group_by_folder([record], tmp_path, 9)[0].group is None  # too few folders
    kept = record.with_(group="speaker7")
    assert group_by_folder([kept], tmp_path, 1)[0].group == "speaker7"  # a layout's group wins


def test_metadata_speaker_or_source_becomes_the_group(tmp_path: Path) -> None:
    table = tmp_path / "metadata.csv"
    table.write_text(
        "path,label,speaker,source\n"
        "real/a.wav,real,alice,rec1\n"
        "fake/b.wav,fake,,rec1\n"
        "fake/c.wav,fake,,\n"
    )
    records = [
        ClipRecord(path=str(tmp_path / "real" / "a.wav"), label=REAL),
        ClipRecord(path=str(tmp_path / "fake" / "b.wav"), label=FAKE),
        ClipRecord(path=str(tmp_path / "fake" / "c.wav"), label=FAKE),
    ]
    assert [r.group for r in apply_metadata(records, table)] == ["alice", "rec1", None]
