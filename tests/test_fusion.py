"""Logistic-regression fusion: fitting, the JSON file, model checks, and the CLI end to end."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from deepfake_audio import metrics
from deepfake_audio.audio import write_audio
from deepfake_audio.cli import main
from deepfake_audio.data.records import FAKE, REAL
from deepfake_audio.scoring.fusion import FORMAT, Fusion, FusionError, fingerprint, fit_fusion
from deepfake_audio.scoring.lineup import FUSION
from tests.detectors import fake_signal, real_signal, trained_and_untrained


def synthetic_scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and three models' P(fake): two informative with independent noise, one random."""
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random(n) < 0.4, FAKE, REAL)  # unbalanced on purpose
    sign = np.where(labels == FAKE, 1.0, -1.0)
    good = 1 / (1 + np.exp(-(1.2 * sign + rng.standard_normal(n))))
    other = 1 / (1 + np.exp(-(0.8 * sign + rng.standard_normal(n))))
    noise = rng.random(n)
    return labels, np.column_stack([good, other, noise])


@pytest.fixture
def member_files(tmp_path: Path) -> list[Path]:
    """Three stand-in checkpoint files (fusion only hashes their bytes)."""
    files = []
    for i, name in enumerate(("good", "other", "noise")):
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(f"weights of {name} {i}".encode())
        files.append(path)
    return files


def fitted(files: list[Path]) -> Fusion:
    labels, scores = synthetic_scores(600, seed=1)
    return fit_fusion(
        labels, scores, names=[p.stem for p in files], paths=files, fitted={"data": "synthetic"}
    )


def test_fit_weighs_informative_models_and_beats_each_on_held_out_data(member_files) -> None:
    fusion = fitted(member_files)
    good, other, noise = fusion.coefficients
    assert good > other > abs(noise)  # the stronger model weighs most, the random one ~0
    assert good > 0  # logit of P(fake) pushes toward fake
    labels, scores = synthetic_scores(2000, seed=2)  # held out
    fused_eer, _ = metrics.equal_error_rate(labels, fusion.predict(scores))
    singles = [metrics.equal_error_rate(labels, scores[:, i])[0] for i in range(3)]
    assert fused_eer <= min(singles)
    # The stored threshold is the fused EER threshold on the fitting data.
    fit_labels, fit_scores = synthetic_scores(600, seed=1)
    expected = metrics.equal_error_rate(fit_labels, fusion.predict(fit_scores))
    assert fusion.threshold == pytest.approx(expected[1])
    assert fusion.validation["eer"] == pytest.approx(expected[0])
    assert fusion.fitted["clips"] == 600 and fusion.fitted["data"] == "synthetic"
    assert [m.sha1 for m in fusion.members] == [fingerprint(p) for p in member_files]


def test_fit_needs_both_classes(member_files) -> None:
    labels = np.full(10, FAKE)
    with pytest.raises(ValueError, match="both fake and real"):
        fit_fusion(labels, np.random.rand(10, 3), names=["a", "b", "c"], paths=member_files)


def test_json_round_trip_and_no_pickle(member_files, tmp_path: Path) -> None:
    fusion = fitted(member_files)
    path = fusion.save(tmp_path / "fusion.json")
    document = json.loads(path.read_text())  # strict JSON, readable by anyone
    assert document["format"] == FORMAT
    assert [m["file"] for m in document["members"]] == [p.name for p in member_files]
    assert {"coefficient", "sha1", "validation_eer"} <= set(document["members"][0])
    assert {"intercept", "threshold", "validation", "fitted"} <= set(document)
    assert "package_version" in document["fitted"]
    loaded = Fusion.load(path)
    scores = synthetic_scores(50, seed=3)[1]
    np.testing.assert_allclose(loaded.predict(scores), fusion.predict(scores))
    assert loaded.threshold == fusion.threshold and loaded.path == path
    pickled = tmp_path / "fusion.pkl"
    pickled.write_bytes(pickle.dumps(document))
    with pytest.raises(FusionError, match="not a JSON fusion file"):
        Fusion.load(pickled)
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    with pytest.raises(FusionError, match="not a deepfake-audio fusion file"):
        Fusion.load(tmp_path / "other.json")


def test_models_must_be_the_members(member_files, tmp_path: Path) -> None:
    fusion = fitted(member_files)

    def given(*paths: Path) -> list:
        return [SimpleNamespace(path=p, name=p.stem) for p in paths]

    good, other, noise = member_files
    assert fusion.member_order(given(good, other, noise)) == [0, 1, 2]
    assert fusion.member_order(given(noise, good, other)) == [1, 2, 0]  # mapped by hash
    with pytest.raises(FusionError, match=r"3 model\(s\) .*but 2 were given"):
        fusion.member_order(given(good, other))
    retrained = tmp_path / "retrained"
    retrained.mkdir()
    (retrained / good.name).write_bytes(b"same name, other weights")
    with pytest.raises(FusionError, match=r"needs good\.safetensors"):
        fusion.member_order(given(retrained / good.name, other, noise))
    with pytest.raises(FusionError, match=r"needs noise\.safetensors"):
        fusion.member_order(given(good, good, other))  # one given twice, one missing


# --- the CLI, end to end, with two real (tiny) checkpoints ------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ROOT/demo/{validation,testing}/{fake,real}: noise is fake, a tone is real."""
    root = tmp_path_factory.mktemp("fusion_corpus")
    seed = 100
    for split, count in (("validation", 6), ("testing", 3)):
        for label, make in (("fake", fake_signal), ("real", real_signal)):
            for i in range(count):
                seed += 1
                write_audio(
                    root / "demo" / split / label / f"c{i}.wav", make(0.5, seed=seed), 16000
                )
    return root


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return trained_and_untrained(tmp_path_factory.mktemp("fusion_models"), seed=5)


@pytest.fixture(scope="module")
def fusion_file(corpus: Path, models: list[Path], tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fusion_file") / "fusion.json"
    args = ["fuse", "--data", str(corpus), "--output", str(out), "--no-progress"]
    for model in models:
        args += ["--model", str(model)]
    assert main([*args, "--workers", "1"]) == 0
    return out


FAST = ["--no-progress", "--workers", "1"]


def with_models(models: list[Path], flag: str = "--model") -> list[str]:
    return [arg for model in models for arg in (flag, str(model))]


def test_fuse_writes_a_fusion_fitted_on_validation(fusion_file: Path, corpus: Path) -> None:
    document = json.loads(fusion_file.read_text())
    assert [m["file"] for m in document["members"]] == [
        "trained.safetensors",
        "untrained.safetensors",
    ]
    fit = document["fitted"]
    assert fit["splits"] == ["validation"] and fit["clips"] == 12
    assert fit["data"] == str(corpus) and fit["aggregate"] == "mean"
    assert document["validation"]["count"] == 12
    assert 0.0 <= document["threshold"] <= 1.0


def test_fuse_refuses_the_test_split(corpus: Path, models: list[Path], tmp_path: Path) -> None:
    args = ["fuse", "--data", str(corpus), "--splits", "testing", *with_models(models)]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--output", str(tmp_path / "f.json"), *FAST])
    assert exit_info.value.code == 2
    assert not (tmp_path / "f.json").exists()


def test_evaluate_reports_the_fusion(fusion_file, corpus, models, tmp_path: Path) -> None:
    args = ["evaluate", "--data", str(corpus), "--splits", "testing", "--fusion", str(fusion_file)]
    assert main([*args, "--output-dir", str(tmp_path), *with_models(models), *FAST]) == 0
    document = json.loads((tmp_path / "metrics.json").read_text())
    assert list(document["models"]) == ["trained", "untrained", "ensemble", FUSION]
    stored = json.loads(fusion_file.read_text())["threshold"]
    assert document["models"][FUSION]["threshold"] == pytest.approx(stored)
    assert document["models"][FUSION]["checkpoint"] == str(fusion_file)
    with open(tmp_path / "scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    fusion = Fusion.load(fusion_file)
    members = np.array([[float(r["trained_p_fake"]), float(r["untrained_p_fake"])] for r in rows])
    fused = np.array([float(r["fusion_p_fake"]) for r in rows])
    np.testing.assert_allclose(fused, fusion.predict(members), atol=2e-5)


def test_evaluate_refuses_a_fusion_of_other_models(
    fusion_file, corpus, models, tmp_path: Path, capsys
) -> None:
    args = ["evaluate", "--data", str(corpus), "--fusion", str(fusion_file)]
    code = main([*args, "--output-dir", str(tmp_path), *with_models(models[:1]), *FAST])
    assert code == 1
    assert "fitted on 2 model(s)" in capsys.readouterr().err


def test_compare_has_a_fusion_column(fusion_file, corpus, models, tmp_path: Path) -> None:
    audio = corpus / "demo" / "testing"
    args = ["compare", "--audio-dir", str(audio), "--output-dir", str(tmp_path)]
    reversed_models = with_models(models[::-1])  # order does not matter: matched by hash
    assert main([*args, "--fusion", str(fusion_file), *reversed_models, *FAST]) == 0
    (table,) = tmp_path.glob("model_comparison_*.csv")
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and all(r["fusion_p_fake"] for r in rows)
    assert {r["fusion_prediction"] for r in rows} <= {"fake", "real"}
    (summary_csv,) = tmp_path.glob("model_summary_*.csv")
    with open(summary_csv, newline="") as handle:
        summary = list(csv.DictReader(handle))
    assert sorted(r["model"] for r in summary) == sorted(
        ["untrained", "trained", "ensemble", FUSION]
    )
    # ranked best first, and the untrained model is not the best
    assert [float(r["eer"]) for r in summary] == sorted(float(r["eer"]) for r in summary)
    assert summary[0]["model"] != "untrained"


def test_predict_json_gives_the_fused_verdict(fusion_file, corpus, models, capsys) -> None:
    clip = corpus / "demo" / "testing" / "fake" / "c0.wav"
    args = ["predict", str(clip), "--fusion", str(fusion_file), "--json"]
    assert main([*args, *with_models(models, "-m"), *FAST]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["fusion"] == str(fusion_file)
    (entry,) = document["files"]
    assert entry["model"] == FUSION
    assert entry["fused"][FUSION]["p_fake"] == entry["p_fake"]
    assert set(entry["fused"]) == {"ensemble", FUSION}
    assert entry["verdict"] == ("FAKE" if entry["p_fake"] >= entry["threshold"] else "REAL")
    assert main(["predict", str(clip), "--fusion", str(fusion_file), "--threshold", "0.0",
                 *with_models(models), *FAST]) == 0  # fmt: skip
    assert capsys.readouterr().out.startswith("FAKE")


def test_scoring_another_way_than_the_fusion_was_fitted_warns(
    fusion_file, corpus, models, capsys
) -> None:
    """The fusion's weights suit the scores they were fitted on (mean of windows): scoring
    by max says so once, with or without a threshold override."""
    clip = corpus / "demo" / "testing" / "fake" / "c0.wav"
    args = ["predict", str(clip), "--fusion", str(fusion_file), *with_models(models), *FAST]
    assert main(args) == 0
    assert "was fitted on scores" not in capsys.readouterr().err
    for extra in (["--aggregate", "max"], ["--aggregate", "max", "--threshold", "0.5"]):
        assert main([*args, *extra]) == 0
        err = capsys.readouterr().err
        assert err.count(f"warning: fusion {fusion_file} was fitted on scores made with") == 1
        assert "--aggregate mean" in err and "uses --aggregate max" in err
