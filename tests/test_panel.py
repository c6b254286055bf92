"""``train --recipe panel``: diverse members on one preparation of the data, fused on
validation, used as one model.

One panel is trained once for the module (seed_cnn and lcnn_lfcc for an epoch of 0.25 s
windows at 8 kHz, and a zero-shot built-in member), then every scoring command takes it as
one ``--model``. The zero-shot member is a tiny stand-in registered as a built-in model, since
the real AASIST-L scores a 4 s window in a second or two on a loaded CPU; one test fits a
panel with the real AASIST-L on two clips.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from deepfake_audio import pretrained
from deepfake_audio.checkpoints import FINAL_NAME, load_checkpoint, read_metadata
from deepfake_audio.cli import main
from deepfake_audio.commands import train as train_command
from deepfake_audio.data.listing import scoring_inputs
from deepfake_audio.data.records import FAKE, REAL, TEST, VALIDATION, read_manifest
from deepfake_audio.preprocess import PreprocessConfig
from deepfake_audio.scoring import windows
from deepfake_audio.scoring.calibration import posterior
from deepfake_audio.scoring.engine import score_table
from deepfake_audio.scoring.fusion import fingerprint
from deepfake_audio.scoring.lineup import ENSEMBLE, PANEL, make_lineup
from deepfake_audio.scoring.load import load_models
from deepfake_audio.scoring.options import ScoringOptions
from deepfake_audio.scoring.panel import FORMAT, PANEL_FILE, Panel, PanelError
from deepfake_audio.training import panel as recipe
from deepfake_audio.training.budget import validation_windows
from tests.detectors import untrained_checkpoint
from tests.test_train import RATE, SMALL_ARGS, make_corpus

STAND_IN = "tiny-builtin"
MEMBERS = ["seed_cnn", "lcnn_lfcc", STAND_IN]
FAST = ["--no-progress", "--workers", "1"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("panel")


@pytest.fixture(scope="module")
def corpus(workdir: Path) -> Path:
    counts = {"fake": 12, "real": 12}
    return make_corpus(
        workdir / "root",
        {
            "training": counts,
            "validation": {"fake": 4, "real": 4},
            "testing": {"fake": 2, "real": 2},
        },
    )


@pytest.fixture(scope="module")
def stand_in(workdir: Path):
    """A tiny untrained seed_cnn registered as a built-in model and as a panel member."""
    path = untrained_checkpoint(
        workdir / "builtin" / "tiny.safetensors", seed=3, preprocess=PreprocessConfig(RATE, 0.25)
    )
    spec = pretrained.Pretrained(
        name=STAND_IN, architecture="seed_cnn", file=str(path.absolute()), parameters=0,
        window_samples=2000, sample_rate=RATE, training_data="nothing (a test stand-in)",
        reported="-", licence="-", source="-", source_sha1="-",
    )  # fmt: skip
    member = recipe.MemberRecipe(STAND_IN, "a stand-in built-in model", builtin=STAND_IN)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(pretrained.PRETRAINED, STAND_IN, spec)
        patch.setitem(recipe.RECIPES, STAND_IN, member)
        patch.setattr(train_command, "PANEL_MEMBERS", (*train_command.PANEL_MEMBERS, STAND_IN))
        yield STAND_IN


def train_args(corpus: Path, run: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "train", "--recipe", "panel", "--data-root", str(corpus), "--output-dir", str(run),
        "--cache-dir", str(cache), *SMALL_ARGS, "--workers", "1", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def run(corpus: Path, workdir: Path, stand_in: str) -> Path:
    folder = workdir / "run"
    members = ",".join(MEMBERS)
    args = train_args(
        corpus, folder, workdir / "cache", "--epochs", "1", "--panel-members", members
    )
    assert main(args) == 0
    return folder


def test_member_lists_agree_and_are_diverse() -> None:
    """The CLI's member names (kept torch-free for --help) are the recipe's, and the default
    panel has the members the issue asks for."""
    cli_names = [n for n in train_command.PANEL_MEMBERS if n != STAND_IN]
    assert cli_names == [n for n in recipe.RECIPES if n != STAND_IN]
    assert train_command.DEFAULT_PANEL == recipe.DEFAULT_MEMBERS
    assert train_command.DEFAULT_PANEL_BUDGET == recipe.DEFAULT_BUDGET_MINUTES
    chosen = recipe.recipes_for(list(recipe.DEFAULT_MEMBERS))
    trained = {(r.values.get("model"), json.dumps(r.values.get("augment"))) for r in chosen}
    assert ("seed_cnn", "null") in trained and ("lcnn_lfcc", "null") in trained
    augmented = next(r for r in chosen if r.values.get("augment"))
    assert {"rawboost", "codec"} <= set(augmented.values["augment"])
    assert [r.builtin for r in chosen if r.builtin] == ["aasist_l-asvspoof2019"]


def test_a_second_start_of_a_recipe_trains_from_another_seed(tmp_path: Path) -> None:
    """seed_cnn_b is seed_cnn again from the panel's seed + 1 (a deep ensemble's members
    differ only in where they start), so the two never train identically."""
    configs = recipe.member_configs(
        {"seed": 7}, recipe.recipes_for(["seed_cnn", "seed_cnn_b"]), tmp_path
    )
    assert configs["seed_cnn"].model == configs["seed_cnn_b"].model == "seed_cnn"
    assert (configs["seed_cnn"].seed, configs["seed_cnn_b"].seed) == (7, 8)
    assert configs["seed_cnn"].output_dir != configs["seed_cnn_b"].output_dir


def test_run_folder_holds_members_and_one_panel(run: Path) -> None:
    document = json.loads((run / PANEL_FILE).read_text())
    assert document["format"] == FORMAT
    assert [m["name"] for m in document["members"]] == MEMBERS
    for member in document["members"][:2]:  # trained: an ordinary run, referenced relatively
        assert member["path"] == f"members/{member['name']}/{FINAL_NAME}"
        assert member["sha1"] == fingerprint(run / member["path"])
        assert member["epochs_trained"] == 1
        assert (run / "members" / member["name"] / "history.csv").is_file()
    assert document["members"][2]["builtin"] == STAND_IN
    assert document["members"][2]["zero_shot"] is True
    fused = document["fusion"]
    assert [m["name"] for m in fused["members"]] == MEMBERS
    assert fused["fitted"]["splits"] == [VALIDATION] and fused["fitted"]["clips"] == 8
    assert document["validation"]["threshold"] == fused["threshold"]
    assert document["validation"]["eer"] == fused["validation"]["eer"]
    assert document["calibration"]["fitted"]["fake"] == 4
    # one preparation of the data: every member trained on the run's records
    shared = document["data"]["manifest_fingerprint"]
    for name in MEMBERS[:2]:
        extra = read_metadata(run / "members" / name / FINAL_NAME)["extra"]
        assert extra["manifest_fingerprint"] == shared
    member_manifest = (run / "members" / "seed_cnn" / "manifest.jsonl").read_text()
    assert (run / "manifest.jsonl").read_text() == member_manifest


def _by_hand(run: Path, paths: list[str]) -> np.ndarray:
    """The panel's P(fake) of ``paths``: each member scored alone, fused and calibrated here."""
    panel = Panel.load(run)
    records = [entry.record for entry in scoring_inputs(paths)]
    raw = []
    for file in panel.member_files():
        table = score_table([load_checkpoint(file)], records, ScoringOptions())
        raw.append(table.raw[table.lineup.names[0]])
    fused = panel.fusion.predict(np.column_stack(raw))
    return posterior(panel.calibration.llr(fused), 0.5)


def test_predict_panel_equals_fusing_members_by_hand(run: Path, corpus: Path, capsys) -> None:
    folder = corpus / "tiny" / "testing"
    for model in (run, run / PANEL_FILE):  # the run folder or the file: the same model
        assert main(["predict", "--model", str(model), str(folder), "--json", *FAST]) == 0
        document = json.loads(capsys.readouterr().out)
        files = document["files"]
        assert all(f["model"] == PANEL for f in files)
        assert all(set(f["models"]) == set(MEMBERS) for f in files)  # who heard what
        assert document["panels"][PANEL]["members"] == MEMBERS
        expected = _by_hand(run, [f["path"] for f in files])
        np.testing.assert_allclose([f["p_fake"] for f in files], expected, rtol=1e-6)
        assert all(f["decision"]["calibrated"] for f in files)


def test_each_file_is_decoded_once_for_all_members(
    run: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    decoded: list[str] = []
    decode = windows.audio_lib.decode_file

    def counting(path, **options):
        decoded.append(str(path))
        return decode(path, **options)

    monkeypatch.setattr(windows.audio_lib, "decode_file", counting)
    folder = corpus / "tiny" / "testing"
    assert main(["predict", "--model", str(run), str(folder), *FAST]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert len(decoded) == len(set(decoded)) == 4  # three members, one decoding per file


def test_compare_shows_each_member_and_the_panel(run: Path, corpus: Path, tmp_path: Path) -> None:
    audio = corpus / "tiny" / "testing"
    args = ["compare", "--audio-dir", str(audio), "--output-dir", str(tmp_path), "--model"]
    assert main([*args, str(run), *FAST]) == 0
    (table,) = tmp_path.glob("model_comparison_*.csv")
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    for name in [*MEMBERS, ENSEMBLE, PANEL]:
        assert all(row[f"{name}_p_fake"] for row in rows)
    expected = _by_hand(run, [row["path"] for row in rows])
    np.testing.assert_allclose([float(r["panel_p_fake"]) for r in rows], expected, atol=2e-6)


def test_evaluate_run_evaluates_the_panel_on_its_test_split(run: Path, tmp_path: Path) -> None:
    assert main(["evaluate", "--run", str(run), "--output-dir", str(tmp_path), *FAST]) == 0
    document = json.loads((tmp_path / "metrics.json").read_text())
    assert list(document["models"]) == [*MEMBERS, ENSEMBLE, PANEL]
    panel = document["models"][PANEL]
    assert panel["checkpoint"] == str(run / PANEL_FILE)
    assert panel["overall"]["count"] == 4  # the run's test split, nothing else


def test_fusion_is_fitted_on_validation_only(run: Path) -> None:
    """Refitting on the run's records with the test split's labels flipped gives the very
    panel that was written; flipping validation labels does not (the check can fail)."""
    stored = Panel.load(run)
    members = [
        (m.name, file, m.builtin)
        for m, file in zip(stored.members, stored.member_files(), strict=True)
    ]
    records = read_manifest(run / "manifest.jsonl")
    options = ScoringOptions(workers=1, device="cpu")

    def flipped(split: str) -> list:
        return [
            r.with_(label=REAL if r.label == FAKE else FAKE) if r.split == split else r
            for r in records
        ]

    poisoned, _ = recipe.fit_panel(members, flipped(TEST), options)
    np.testing.assert_allclose(poisoned.fusion.coefficients, stored.fusion.coefficients)
    assert poisoned.fusion.intercept == pytest.approx(stored.fusion.intercept)
    assert poisoned.threshold == pytest.approx(stored.threshold)
    assert poisoned.calibration.scale == pytest.approx(stored.calibration.scale)
    assert poisoned.calibration.offset == pytest.approx(stored.calibration.offset)
    sensitive, _ = recipe.fit_panel(members, flipped(VALIDATION), options)
    assert not np.allclose(sensitive.fusion.coefficients, stored.fusion.coefficients)


def test_calibrate_writes_a_new_panel_that_finds_its_members(
    run: Path, workdir: Path, capsys
) -> None:
    before = (run / PANEL_FILE).read_bytes()
    output = workdir / "elsewhere" / "recalibrated.json"
    args = ["calibrate", "--model", str(run), "--run", str(run), "--output", str(output)]
    assert main([*args, *FAST]) == 0
    assert "panel on 8 labelled file(s)" in capsys.readouterr().out
    assert (run / PANEL_FILE).read_bytes() == before  # the input is never modified
    panel = Panel.load(output)  # members found from the new place, with their SHA-1
    assert panel.members[0].path == f"../run/members/seed_cnn/{FINAL_NAME}"
    assert panel.calibration.fitted["source"] == str(run / PANEL_FILE)
    assert len(load_models([output]).detectors) == 3
    wrong = ["calibrate", "--model", str(run), "--run", str(run), "--output", "x.safetensors"]
    with pytest.raises(SystemExit) as exit_info:
        main(wrong)
    assert exit_info.value.code == 2


def test_a_missing_or_changed_member_is_a_clear_error(run: Path, workdir: Path, capsys) -> None:
    copy = workdir / "damaged"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("model_epoch_*", "resume"))
    clip = str(next((copy.parent / "root").rglob("*.wav")))
    member = copy / "members" / "lcnn_lfcc" / FINAL_NAME
    with open(member, "ab") as handle:
        handle.write(b"\0")
    assert main(["predict", "--model", str(copy), clip, *FAST]) == 1
    err = capsys.readouterr().err
    assert "member lcnn_lfcc's checkpoint" in err and "not the file the panel was fitted" in err
    member.unlink()
    assert main(["predict", "--model", str(copy / PANEL_FILE), clip, *FAST]) == 1
    err = capsys.readouterr().err
    assert "member lcnn_lfcc's checkpoint" in err and "is missing" in err
    with pytest.raises(PanelError, match="is missing"):
        Panel.load(copy)
    not_panel = workdir / "other.json"
    not_panel.write_text('{"format": "something-else/1"}')
    assert main(["predict", "--model", str(not_panel), clip, *FAST]) == 1
    assert "not a deepfake-audio panel file" in capsys.readouterr().err
    fusion_file = workdir / "fusion.json"
    fusion_file.write_text(json.dumps(json.loads((run / PANEL_FILE).read_text())["fusion"]))
    assert main(["predict", "--model", str(fusion_file), clip, *FAST]) == 1
    assert "is a fusion file, not a panel" in capsys.readouterr().err
    document = json.loads((run / PANEL_FILE).read_text())
    document["members"] = document["members"][::-1]
    with pytest.raises(PanelError, match="not the panel's"):
        Panel.from_dict(document)


def test_commands_that_take_one_checkpoint_name_the_panel(run: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fuse", "--model", str(run), "--run", str(run), "-o", "f.json"])
    assert exit_info.value.code == 2
    assert "is a panel, which fuses its members already" in capsys.readouterr().err
    assert main(["train", "--init-from", str(run), "--epochs", "1"]) == 1
    assert "is a panel run" in capsys.readouterr().err


def test_panel_options_are_checked_before_any_data_work(tmp_path: Path, capsys) -> None:
    missing = str(tmp_path / "no-such-root")
    base = ["train", "--recipe", "panel", "--data-root", missing, "--output-dir", str(tmp_path)]
    assert main([*base, "--model", "lcnn_lfcc"]) == 1
    assert "members set these themselves" in capsys.readouterr().err
    assert main([*base, "--augment", "noise"]) == 1
    assert "augment" in capsys.readouterr().err
    assert main([*base, "--panel-members", "seed_cnn"]) == 1
    assert "at least two members" in capsys.readouterr().err
    for wrong in (["--panel-members", "seed_cnn,bogus"], ["--resume", str(tmp_path)]):
        with pytest.raises(SystemExit) as exit_info:
            main([*base, *wrong])
        assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        main(["train", "--data-root", missing, "--panel-members", "seed_cnn,lcnn_lfcc"])
    assert "add --recipe panel" in capsys.readouterr().err


def test_budget_minutes_is_respected(corpus: Path, workdir: Path) -> None:
    """Members that could train 1000 epochs stop when the budget says; the recipe ends
    within a margin of it (a member always trains a batch and validates it)."""
    budget = 0.35  # minutes: two members of a few seconds' overhead each, and the fusion
    folder = workdir / "budget"
    members = "seed_cnn,seed_cnn_rawboost_codec"
    args = train_args(corpus, folder, workdir / "cache", "--epochs", "1000")
    started = time.monotonic()
    assert main([*args, "--budget-minutes", str(budget), "--panel-members", members]) == 0
    elapsed = time.monotonic() - started
    assert elapsed <= 60 * budget + 15, elapsed
    document = json.loads((folder / PANEL_FILE).read_text())
    facts = document["members"]
    assert all(1 <= m["epochs_trained"] < 1000 for m in facts)
    assert all(m["stopped_by_budget"] for m in facts)
    assert all(0 < m["budget_minutes"] < budget for m in facts)
    assert document["budget"]["budget_minutes"] == budget
    assert document["budget"]["spent_minutes"] <= budget + 0.25


def test_validation_windows_counts_sliding_windows(corpus: Path) -> None:
    durations = (0.1, 0.25, 0.6)
    records = [r.with_(duration=d) for r, d in zip(scoring_records(corpus), durations, strict=True)]
    preprocess = PreprocessConfig(RATE, 0.25)
    assert validation_windows(records, preprocess, None) == 1 + 1 + 3
    assert validation_windows(records, preprocess, 0.125) == 1 + 1 + 4


def scoring_records(corpus: Path) -> list:
    return [entry.record for entry in scoring_inputs([corpus / "tiny" / "testing"])][:3]


def test_a_panel_with_the_real_aasist_l_zero_shot(corpus: Path, tmp_path: Path) -> None:
    """The built-in AASIST-L as a member, as shipped: fitted on one fake and one real
    validation clip, saved, and scored as one model; its scores equal fusing by hand."""
    records = [
        r.with_(split=VALIDATION)
        for r in scoring_records(corpus)[:1] + scoring_records(corpus)[-1:]
    ]
    assert {r.label for r in records} == {FAKE, REAL}
    member = untrained_checkpoint(
        tmp_path / "m.safetensors", preprocess=PreprocessConfig(RATE, 0.25)
    )
    name = "aasist_l-asvspoof2019"
    members = [("tiny", member, None), (name, pretrained.PRETRAINED[name].path, name)]
    options = ScoringOptions(workers=1, device="cpu", batch_size=2)
    panel, scores = recipe.fit_panel(members, records, options)
    panel.save(tmp_path / PANEL_FILE)
    document = json.loads((tmp_path / PANEL_FILE).read_text())
    assert document["members"][1] == {"name": name, "builtin": name, "sha1": panel.members[1].sha1}
    loaded = load_models([tmp_path])  # as every scoring command loads it
    assert [d.name for d in loaded.detectors] == ["tiny", name]
    lineup = make_lineup(loaded.detectors, panels=loaded.panels)
    assert lineup.models == ["tiny", name, ENSEMBLE, PANEL]
    fused = lineup.with_fused({n: scores[n] for n in lineup.names})[PANEL]
    np.testing.assert_allclose(fused, scores["panel"], rtol=1e-9)
