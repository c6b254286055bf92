"""``--exclude-generators G1,G2``: those generators' fakes leave training and validation, and
stay in test (a leave-one-generator-out bench trains without G and tests on G)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepfake_audio.cli import build_parser, main
from deepfake_audio.data.pipeline import DataOptions, prepare
from deepfake_audio.data.records import FAKE, REAL, TEST, TRAIN, VALIDATION, ClipRecord
from deepfake_audio.reports.audit import format_report
from deepfake_audio.training.config import RESUME_OVERRIDABLE, TrainConfig, resume_config
from deepfake_audio.training.train import check_trainable
from tests.synth import write_clip

GENERATORS = ("espeak-ng", "griffin-lim", "world")
FOLDERS = {"training": TRAIN, "validation": VALIDATION, "testing": TEST}
FAKES_PER_GENERATOR = 2  # in every split
REALS = 5  # in every split: fewer than the 6 fakes, more than the 4 left after one exclusion


def _tree(root: Path, generators: tuple[str, ...] | None = GENERATORS) -> Path:
    """``root/gen/<split>/fake/<generator>/*.wav`` and ``root/gen/<split>/real/*.wav``;
    with ``generators=None`` the fakes sit directly in ``fake/`` (no generator names)."""
    seed = 0
    for split in FOLDERS:
        for generator in generators or (None,):
            folder = root / "gen" / split / "fake"
            folder = folder / generator if generator else folder
            for i in range(FAKES_PER_GENERATOR):
                seed += 1
                write_clip(folder / f"f{i}.wav", 0.2, 8000, freq=150 + 37 * seed, seed=seed)
        for i in range(REALS):
            seed += 1
            path = root / "gen" / split / "real" / f"r{i}.wav"
            write_clip(path, 0.2, 8000, freq=150 + 37 * seed, seed=seed)
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return _tree(tmp_path_factory.mktemp("generators") / "root")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("generators_cache"))


def _prepare(root: Path, cache: str, **options):
    values = {"cache_dir": cache, "workers": 1, "near_duplicates": "off", **options}
    return prepare(root, DataOptions(**values), progress=False)


def _fakes(records: list[ClipRecord], split: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        if r.split == split and r.label == FAKE:
            counts[str(r.generator)] = counts.get(str(r.generator), 0) + 1
    return counts


def test_exactly_the_excluded_fakes_leave_training_and_validation(tree: Path, cache: str) -> None:
    everything = _prepare(tree, cache, balance="none").records
    prepared = _prepare(tree, cache, balance="none", exclude_generators=["world"])
    gone = set(everything) - set(prepared.records)
    assert gone == {
        r
        for r in everything
        if r.label == FAKE and r.generator == "world" and r.split in (TRAIN, VALIDATION)
    }
    assert len(gone) == 2 * FAKES_PER_GENERATOR
    assert set(prepared.records) <= set(everything)  # nothing else changed
    for split in (TRAIN, VALIDATION):
        assert _fakes(prepared.records, split) == {"espeak-ng": 2, "griffin-lim": 2}
    assert _fakes(prepared.records, TEST) == dict.fromkeys(GENERATORS, 2)  # test keeps them
    reals = [r for r in prepared.records if r.label == REAL]
    assert len(reals) == 3 * REALS  # real clips are never removed


def test_several_generators_at_once(tree: Path, cache: str) -> None:
    prepared = _prepare(tree, cache, balance="none", exclude_generators=["world", "griffin-lim"])
    for split in (TRAIN, VALIDATION):
        assert _fakes(prepared.records, split) == {"espeak-ng": 2}
    assert _fakes(prepared.records, TEST) == dict.fromkeys(GENERATORS, 2)


def test_balance_holds_after_the_removal(tree: Path, cache: str) -> None:
    prepared = _prepare(tree, cache, exclude_generators=["world"])  # undersample (default)
    for split in (TRAIN, VALIDATION):
        records = prepared.split(split)
        fakes = sum(r.label == FAKE for r in records)
        assert fakes == sum(r.label == REAL for r in records) == 2 * FAKES_PER_GENERATOR
        assert "world" not in _fakes(records, split)
    after = prepared.report["balance"]["after"]
    assert after[TRAIN]["gen"] == {"fake": 4, "real": 4}
    assert prepared.report["balance"]["before"][TRAIN]["gen"] == {"fake": 4, "real": REALS}


def test_the_report_counts_what_was_removed(tree: Path, cache: str) -> None:
    report = _prepare(tree, cache, exclude_generators=["world", "espeak-ng"]).report
    assert report["options"]["exclude_generators"] == ["world", "espeak-ng"]
    assert report["excluded_generators"] == {
        "generators": ["world", "espeak-ng"],
        "removed": {
            TRAIN: {"world": 2, "espeak-ng": 2},
            VALIDATION: {"world": 2, "espeak-ng": 2},
        },
        "removed_total": 8,
        "kept_in_test": {"world": 2, "espeak-ng": 2},
        "fakes_without_generator": 0,
    }
    text = format_report(report)
    lines = [line for line in text.splitlines() if line.startswith("Excluded generators")]
    assert lines == [
        "Excluded generators (world, espeak-ng): 8 fake(s) removed before balancing "
        "(train: world 2, espeak-ng 2; validation: world 2, espeak-ng 2); "
        "kept in test: world 2, espeak-ng 2"
    ]
    plain = _prepare(tree, cache).report
    assert "excluded_generators" not in plain
    assert "Excluded generators" not in format_report(plain)


def test_an_unknown_name_is_an_error_naming_the_known_ones(tree: Path, cache: str) -> None:
    with pytest.raises(ValueError, match=r"unknown generator\(s\) \['wrold'\]") as caught:
        _prepare(tree, cache, exclude_generators=["world", "wrold"])
    assert "espeak-ng (6 fakes), griffin-lim (6 fakes), world (6 fakes)" in str(caught.value)
    with pytest.raises(ValueError, match=r"case-sensitive: 'World' -> 'world'"):
        _prepare(tree, cache, exclude_generators=["World"])
    with pytest.raises(ValueError, match="unknown generator"):  # a real clip's folder is no fake
        _prepare(tree, cache, exclude_generators=["bonafide"])


def test_data_without_generator_names_says_how_to_give_them(tmp_path: Path, cache: str) -> None:
    root = _tree(tmp_path / "plain", generators=None)
    with pytest.raises(ValueError, match="no fake in this data has a generator") as caught:
        _prepare(root, cache, exclude_generators=["world"])
    assert "fake/<generator>/" in str(caught.value)
    assert "metadata.csv" in str(caught.value)


def test_fakes_without_a_generator_are_kept_and_metadata_names_count(
    tmp_path: Path, cache: str
) -> None:
    root = _tree(tmp_path / "mixed", generators=None)  # fakes in fake/ itself: no generator
    train_fakes = sorted((root / "gen" / "training" / "fake").glob("*.wav"))
    (root / "metadata.csv").write_text(  # metadata.csv names the generator of one of them
        f"path,generator\n{train_fakes[0].relative_to(root).as_posix()},world\n"
    )
    prepared = _prepare(root, cache, balance="none", exclude_generators=["world"])
    assert _fakes(prepared.records, TRAIN) == {"None": 1}
    assert prepared.report["excluded_generators"]["removed"][TRAIN] == {"world": 1}
    assert prepared.report["excluded_generators"]["fakes_without_generator"] == 5


def test_names_are_cleaned_and_empty_ones_refused() -> None:
    assert DataOptions(exclude_generators=[" world", "world", "gl"]).exclude_generators == [
        "world",
        "gl",
    ]
    assert DataOptions(exclude_generators=[]).exclude_generators is None
    with pytest.raises(ValueError, match="empty name"):
        DataOptions(exclude_generators=["world", " "])


def test_the_flag_reaches_train_config_and_audit(tree: Path, tmp_path: Path, capsys) -> None:
    from deepfake_audio.commands.train import given_options

    args = build_parser().parse_args(["train", "--exclude-generators", "world, griffin-lim"])
    flags = given_options(args)
    assert flags == {"exclude_generators": ["world", "griffin-lim"]}
    config = TrainConfig.from_dict(flags)
    assert config.exclude_generators == ["world", "griffin-lim"]
    assert config.data_options().exclude_generators == ["world", "griffin-lim"]
    for argv in (["audit", str(tree)], ["evaluate", "--data", str(tree)]):
        args = build_parser().parse_args([*argv, "--exclude-generators", "world"])
        assert DataOptions.from_attributes(args).exclude_generators == ["world"]
        assert build_parser().parse_args(argv).exclude_generators is None

    report_path = tmp_path / "report.json"
    code = main(
        ["audit", str(tree), "--exclude-generators", "world", "--json", str(report_path),
         "--no-progress", "--workers", "1", "--near-duplicates", "off",
         "--cache-dir", str(tmp_path / "cache")]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "Excluded generators (world): 4 fake(s) removed" in out
    report = json.loads(report_path.read_text())
    assert report["excluded_generators"]["removed_total"] == 4
    code = main(
        ["audit", str(tree), "--exclude-generators", "wrold", "--no-progress",
         "--cache-dir", str(tmp_path / "cache")]
    )  # fmt: skip
    assert code == 1
    assert "unknown generator(s) ['wrold']" in capsys.readouterr().err


def test_a_resume_cannot_change_the_excluded_generators(tmp_path: Path) -> None:
    assert "exclude_generators" not in RESUME_OVERRIDABLE
    run = tmp_path / "run"
    run.mkdir()
    config = TrainConfig(output_dir=str(run), exclude_generators=["world"])
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    for changed in (["griffin-lim"], None, []):
        with pytest.raises(ValueError, match=r"cannot change \['exclude_generators'\]"):
            resume_config(run, {"exclude_generators": changed})
    assert resume_config(run, {"exclude_generators": ["world"]}).exclude_generators == ["world"]
    assert resume_config(run, {"epochs": 3}).exclude_generators == ["world"]
    older = TrainConfig(output_dir=str(run)).to_dict()
    del older["exclude_generators"]  # a run from before the option resumes as it was
    (run / "config.json").write_text(json.dumps(older))
    assert resume_config(run, {}).exclude_generators is None
    with pytest.raises(ValueError, match="cannot change"):
        resume_config(run, {"exclude_generators": ["world"]})


def test_training_without_fakes_names_the_exclusion() -> None:
    real = ClipRecord(path="/r.wav", label=REAL, split=TRAIN)
    exclusion = {"removed": {TRAIN: {"world": 6}, VALIDATION: {"world": 0}}}
    with pytest.raises(ValueError, match="--exclude-generators removed 6 fake"):
        check_trainable([real], [real], None, exclusion)


def test_a_training_run_never_sees_the_excluded_fakes(tree: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    code = main(
        ["train", "--data-root", str(tree), "--output-dir", str(run), "--epochs", "1",
         "--sample-rate", "8000", "--window-seconds", "0.1", "--batch-size", "4",
         "--num-workers", "0", "--accelerator", "cpu", "--no-progress", "--workers", "1",
         "--near-duplicates", "off", "--cache-dir", str(tmp_path / "cache"),
         "--exclude-generators", "world"]
    )  # fmt: skip
    assert code == 0
    assert json.loads((run / "config.json").read_text())["exclude_generators"] == ["world"]
    report = json.loads((run / "data_report.json").read_text())
    assert report["excluded_generators"]["removed_total"] == 4
    manifest = [json.loads(line) for line in (run / "manifest.jsonl").read_text().splitlines()]
    seen = {(r["split"], r["generator"]) for r in manifest if r["label"] == FAKE}
    assert (TRAIN, "world") not in seen and (VALIDATION, "world") not in seen
    assert (TEST, "world") in seen
    argv = ["train", "--resume", str(run), "--epochs", "2", "--no-progress"]
    capsys.readouterr()
    assert main([*argv, "--exclude-generators", "griffin-lim"]) == 1
    assert "cannot change ['exclude_generators'] when resuming" in capsys.readouterr().err
