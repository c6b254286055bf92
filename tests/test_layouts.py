"""Discovery of every supported layout into ClipRecords."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepfake_audio.data.layouts import (
    DiscoveryError,
    detect_layout,
    discover,
    iter_audio_files,
    tree_record,
)
from deepfake_audio.data.records import (
    FAKE,
    REAL,
    ClipRecord,
    canonical_dataset_type,
    parse_label,
    parse_split,
    read_manifest,
    write_manifest,
)
from tests.synth import write_clip


def test_fake_or_real_tree(for_tree: Path) -> None:
    found = discover(for_tree)
    assert found.layout == "tree"
    assert len(found.records) == 2 * 3 * 8
    record = next(r for r in found.records if r.path.endswith("for-norm/testing/real/clip_1.flac"))
    assert (record.label, record.split, record.dataset_type) == (REAL, "test", "for-norm")
    fakes = [r for r in found.records if "/fake/" in r.path]
    assert {r.label for r in fakes} == {FAKE}
    assert {r.split for r in found.records} == {"train", "validation", "test"}


def test_dataset_type_filter(for_tree: Path) -> None:
    found = discover(for_tree, dataset_types=["for-2sec"])
    assert {r.dataset_type for r in found.records} == {"for-2sec"}
    with pytest.raises(DiscoveryError, match="for-rerec"):
        discover(for_tree, dataset_types=["for-rerec"])


def test_root_that_is_one_type_folder(for_tree: Path) -> None:
    found = discover(for_tree / "for-norm")
    assert {r.dataset_type for r in found.records} == {"for-norm"}


def test_any_tree_with_spoof_and_bonafide_folders(tmp_path: Path) -> None:
    write_clip(tmp_path / "data" / "spoof" / "tts-a" / "a.wav")
    write_clip(tmp_path / "data" / "Bona-Fide" / "b.flac", freq=300)
    write_clip(tmp_path / "data" / "notes" / "c.wav", freq=500)
    found = discover(tmp_path / "data")
    by_name = {Path(r.path).name: r for r in found.records}
    assert by_name["a.wav"].label == FAKE and by_name["a.wav"].generator == "tts-a"
    assert by_name["b.flac"].label == REAL and by_name["b.flac"].split is None
    assert [Path(p).name for p, _ in found.skipped] == ["c.wav"]


def test_asvspoof2019_protocols(tmp_path: Path) -> None:
    root = tmp_path / "LA"
    write_clip(root / "ASVspoof2019_LA_train" / "flac" / "LA_T_1.flac")
    write_clip(root / "ASVspoof2019_LA_train" / "flac" / "LA_T_2.flac", freq=300)
    write_clip(root / "ASVspoof2019_LA_dev" / "flac" / "LA_D_1.flac", freq=500)
    protocols = root / "ASVspoof2019_LA_cm_protocols"
    protocols.mkdir()
    (protocols / "ASVspoof2019.LA.cm.train.trn.txt").write_text(
        "LA_0079 LA_T_1 - - bonafide\nLA_0080 LA_T_2 - A01 spoof\nLA_0081 LA_T_9 - A02 spoof\n"
    )
    (protocols / "ASVspoof2019.LA.cm.dev.trl.txt").write_text("LA_0090 LA_D_1 - A03 spoof\n")
    assert detect_layout(root) == "asvspoof2019"
    found = discover(root)
    by_id = {Path(r.path).stem: r for r in found.records}
    assert by_id["LA_T_1"].label == REAL and by_id["LA_T_1"].generator == "bonafide"
    assert by_id["LA_T_2"].generator == "A01" and by_id["LA_T_2"].group == "LA_0080"
    assert by_id["LA_D_1"].split == "validation"
    assert len(found.skipped) == 1 and "LA_T_9" in found.skipped[0][1]


def test_in_the_wild_meta_csv(tmp_path: Path) -> None:
    write_clip(tmp_path / "0.wav")
    write_clip(tmp_path / "1.wav", freq=300)
    (tmp_path / "meta.csv").write_text(
        "file,speaker,label\n0.wav,Alec Guinness,spoof\n1.wav,Alec Guinness,bona-fide\n"
    )
    found = discover(tmp_path)
    assert found.layout == "in-the-wild"
    assert [r.label for r in found.records] == [FAKE, REAL]
    assert {r.group for r in found.records} == {"Alec Guinness"}


def test_user_csv_manifest(tmp_path: Path) -> None:
    write_clip(tmp_path / "audio" / "x.wav")
    write_clip(tmp_path / "audio" / "y.mp3", freq=300)
    manifest = tmp_path / "mine.csv"
    manifest.write_text(
        "path,label,split,speaker\naudio/x.wav,fake,training,s1\naudio/y.mp3,1,eval,s2\n"
        "audio/missing.wav,fake,training,s3\naudio/x.wav,maybe,training,s1\n"
    )
    found = discover(manifest)
    assert [(r.label, r.split, r.group) for r in found.records] == [
        (FAKE, "train", "s1"),
        (REAL, "test", "s2"),
    ]
    reasons = [reason for _, reason in found.skipped]
    assert any("not found" in r for r in reasons) and any("unknown label" in r for r in reasons)


def test_csv_without_needed_columns(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("file_name,class\n")
    with pytest.raises(DiscoveryError, match="path,label"):
        discover(bad)


def test_jsonl_manifest_round_trip(tmp_path: Path) -> None:
    records = [ClipRecord(path="/a.wav", label=FAKE, split="train", generator="x", duration=1.5)]
    path = write_manifest(records, tmp_path / "m.jsonl")
    assert read_manifest(path) == records
    assert discover(path).records == records


def test_empty_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DiscoveryError, match="fake/real"):
        discover(tmp_path)
    with pytest.raises(DiscoveryError, match="does not exist"):
        discover(tmp_path / "nope")


def test_label_and_split_aliases() -> None:
    assert parse_label("bona-fide") == REAL and parse_label("spoof") == FAKE
    assert parse_split("dev") == "validation" and parse_split("Testing") == "test"
    with pytest.raises(ValueError):
        parse_label("unsure")


def test_tree_discovery_is_the_per_file_rule(tmp_path: Path) -> None:
    """Discovery builds one record per folder and copies it to the folder's other files: the
    records must be exactly those of the rule applied to each file."""
    for relative in (
        "for-2sec/training/fake/a.wav", "for-2sec/training/fake/b.wav",
        "for-2sec/training/real/c.flac", "for-2sec/testing/fake/world/d.wav",
        "for-2sec/testing/fake/world/e.wav", "loose/x.wav", "loose/y.wav", "real/z.wav",
    ):  # fmt: skip
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"")  # discovery never reads the audio
    found = discover(tmp_path, "tree")
    expected = [tree_record(tmp_path, path) for path in iter_audio_files(tmp_path)]
    assert found.records == [r for r in expected if r is not None]
    assert [Path(p).name for p, _ in found.skipped] == ["x.wav", "y.wav"]
    assert found.records[0].generator == "world" and found.records[0].split == "test"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"path": "a.wav", "label": 7}', r":1: bad manifest line \(unknown label 7"),
        ('{"path": "a.wav", "label": "fake", "split": "holdout"}', "unknown split 'holdout'"),
        ('{"path": null, "label": "fake"}', "'path' must be a file path, got None"),
        ('{"path": "a.wav"}', "'label' is missing"),
        ("[1, 2]", "a line must be a JSON object"),
    ],
)
def test_a_bad_jsonl_manifest_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(line + "\n")
    with pytest.raises(ValueError, match=message):
        read_manifest(manifest)


def test_manifest_paths_are_relative_to_the_manifest(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "sub").mkdir()
    manifest = tmp_path / "sub" / "m.jsonl"
    manifest.write_text('{"path": "clips/a.wav", "label": "real"}\n')
    monkeypatch.chdir(tmp_path)  # not the manifest's folder
    (record,) = read_manifest(manifest)
    assert record.path == str(tmp_path / "sub" / "clips" / "a.wav")


def test_a_csv_with_a_huge_field_is_a_clear_error(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\n" + '"' + "x" * 200_000 + '",fake\n')
    with pytest.raises(DiscoveryError, match=r"m.csv:\d+: not a readable CSV"):
        discover(manifest)


def _touch(root: Path, *relatives: str) -> None:
    """Empty files: discovery reads names, never the audio."""
    for relative in relatives:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(b"")


def test_fake_or_real_archive_folders_are_the_design_types(tmp_path: Path) -> None:
    """for-2sec.tar.gz unpacks to for-2seconds, for-rerec.tar.gz to for-rerecorded: the same
    dataset types as the original design's for-2sec and for-rerec, whichever name is used."""
    _touch(
        tmp_path,
        "for-2seconds/training/fake/a.wav",
        "for-2seconds/training/real/b.wav",
        "for-rerecorded/testing/fake/c.wav",
        "For-Norm/testing/real/d.wav",
        "mine/testing/real/e.wav",
    )
    found = discover(tmp_path)
    assert {Path(r.path).name: r.dataset_type for r in found.records} == {
        "a.wav": "for-2sec", "b.wav": "for-2sec", "c.wav": "for-rerec",
        "d.wav": "for-norm", "e.wav": "mine",
    }  # fmt: skip
    for spelling in ("for-2sec", "for-2seconds", "FOR-2SECONDS"):
        chosen = discover(tmp_path, dataset_types=[spelling]).records
        assert sorted(Path(r.path).name for r in chosen) == ["a.wav", "b.wav"], spelling
    rerec = discover(tmp_path, dataset_types=["for-rerec", "mine"]).records
    assert sorted(Path(r.path).name for r in rerec) == ["c.wav", "e.wav"]


def test_archive_folder_as_root_and_kaggle_nesting(tmp_path: Path) -> None:
    _touch(
        tmp_path, "for-rerecorded/training/fake/a.wav", "k/for-2sec/for-2seconds/testing/real/b.wav"
    )
    assert {r.dataset_type for r in discover(tmp_path / "for-rerecorded").records} == {"for-rerec"}
    (record,) = discover(tmp_path / "k").records
    assert (record.dataset_type, record.split) == ("for-2sec", "test")


def test_dataset_type_spellings_in_manifests_and_metadata(tmp_path: Path) -> None:
    _touch(tmp_path, "data/fake/a.wav", "data/real/b.wav")
    (tmp_path / "data" / "metadata.csv").write_text("path,dataset_type\nfake/a.wav,for-2seconds\n")
    by_name = {Path(r.path).name: r.dataset_type for r in discover(tmp_path / "data").records}
    assert by_name == {"a.wav": "for-2sec", "b.wav": "data"}
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,dataset_type\ndata/fake/a.wav,fake,for-rerecorded\n")
    assert [r.dataset_type for r in discover(manifest).records] == ["for-rerec"]


def test_canonical_dataset_type() -> None:
    assert canonical_dataset_type("for-2seconds") == "for-2sec"
    assert canonical_dataset_type("For-Rerecorded") == "for-rerec"
    assert canonical_dataset_type("FOR-NORM") == "for-norm"
    assert canonical_dataset_type("MyData") == "MyData"  # other names are kept as they are


def test_no_dataset_types_lists_the_folders_seen(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(DiscoveryError) as error:
        discover(tmp_path)
    message = str(error.value)
    assert message.startswith(f"no dataset types found under {tmp_path}: saw folders a, b, c")
    assert "1 file(s) notes.txt" in message
    assert "for-2sec|for-2seconds|for-norm|for-original|for-rerec|for-rerecorded" in message


def test_a_split_without_label_folders_is_named(tmp_path: Path) -> None:
    _touch(tmp_path, "for-norm/training/Fake_/a.wav", "for-norm/training/Real_/b.wav")
    with pytest.raises(DiscoveryError) as error:
        discover(tmp_path)
    lines = str(error.value).splitlines()
    assert lines[0] == f"no labelled audio under {tmp_path}:"
    assert "  for-norm/training has no fake/ or real/ folder: saw folders Fake_, Real_" in lines
    assert any("2 audio file(s) have no fake/ or real/ folder above them" in x for x in lines)


def test_a_label_folder_without_audio_is_named(tmp_path: Path) -> None:
    _touch(tmp_path, "for-2sec/testing/fake/a.txt", "for-2sec/testing/real/b.m4b")
    with pytest.raises(DiscoveryError) as error:
        discover(tmp_path)
    message = str(error.value)
    assert (
        "for-2sec/testing/fake holds no audio file discovery reads: saw 1 file(s) a.txt" in message
    )
    assert (
        "for-2sec/testing/real holds no audio file discovery reads: saw 1 file(s) b.m4b" in message
    )


def test_links_and_archives_are_named(tmp_path: Path) -> None:
    _touch(tmp_path, "elsewhere/for-norm/training/fake/a.wav")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "for-norm").symlink_to(tmp_path / "elsewhere" / "for-norm")
    (tmp_path / "root" / "for-2sec.tar.gz").write_bytes(b"")
    with pytest.raises(DiscoveryError) as error:
        discover(tmp_path / "root")
    message = str(error.value)
    assert "for-norm is a symbolic link to a folder, which discovery does not follow" in message
    assert "unpack for-2sec.tar.gz first" in message


def test_an_unknown_dataset_type_lists_those_found(for_tree: Path) -> None:
    with pytest.raises(DiscoveryError) as error:
        discover(for_tree, dataset_types=["for-rerec"])
    assert str(error.value) == (
        f"no records of dataset types for-rerec under {for_tree}: "
        "found for-2sec (24 files), for-norm (24 files)"
    )
