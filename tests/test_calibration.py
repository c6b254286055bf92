"""Calibrated scores: fitting, stored calibrations, decision rules, `calibrate`, the reports."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from deepfake_audio import metrics
from deepfake_audio.audio import write_audio
from deepfake_audio.checkpoints import (
    CheckpointError,
    check_checkpoint,
    copy_with_metadata,
    load_checkpoint,
    read_metadata,
)
from deepfake_audio.cli import main
from deepfake_audio.data.records import FAKE, REAL, ClipRecord
from deepfake_audio.scoring.calibration import (
    Calibration,
    CalibrationError,
    fit_calibration,
    logit,
    posterior,
)
from deepfake_audio.scoring.engine import score_table
from deepfake_audio.scoring.lineup import make_lineup
from deepfake_audio.scoring.options import ScoringOptions
from tests.detectors import fake_signal, real_signal, shared_trained_checkpoint


def overconfident(seed: int = 0, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Labels and raw probabilities of a detector that ranks well but is far too sure."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([FAKE, REAL], n // 2)
    evidence = np.where(labels == FAKE, 1.0, -1.0) + rng.standard_normal(n)  # true llr-ish
    return labels, 1.0 / (1.0 + np.exp(-6.0 * evidence + 2.0))  # 6x too steep, shifted


def test_fitting_improves_cllr_and_keeps_the_ranking() -> None:
    labels, raw = overconfident()
    identity = Calibration()
    fitted = fit_calibration(labels, raw)
    before, after = identity.llr(raw), fitted.llr(raw)
    assert metrics.cllr(labels, after) < metrics.cllr(labels, before) - 0.1
    assert metrics.cllr(labels, after) >= metrics.min_cllr(labels, raw) - 1e-9
    assert metrics.equal_error_rate(labels, after)[0] == metrics.equal_error_rate(labels, raw)[0]
    assert metrics.min_dcf(labels, after) == pytest.approx(metrics.min_dcf(labels, raw))
    assert 0 < fitted.scale < 0.5  # it tempers the overconfidence
    assert fitted.fitted == {"fake": 100, "real": 100, "prior": 0.5, "data": ""}


def test_fitting_does_not_depend_on_class_counts() -> None:
    """Prior-weighted: duplicating every fake changes nothing."""
    labels, raw = overconfident(seed=1)
    once = fit_calibration(labels, raw)
    fakes = labels == FAKE
    twice = fit_calibration(
        np.concatenate([labels, labels[fakes]]), np.concatenate([raw, raw[fakes]])
    )
    assert twice.scale == pytest.approx(once.scale, rel=1e-3)
    assert twice.offset == pytest.approx(once.offset, abs=1e-3)


def test_one_class_or_backward_scores_are_clear_errors() -> None:
    with pytest.raises(CalibrationError, match=r"both fake and real.*3 fake and 0 real"):
        fit_calibration(np.full(3, FAKE), np.array([0.9, 0.8, 0.7]))
    labels, raw = overconfident()
    with pytest.raises(CalibrationError, match="right direction"):
        fit_calibration(labels, 1.0 - raw)


def test_posterior_and_identity() -> None:
    raw = np.array([1e-20, 0.2, 0.5, 0.9, 1.0])
    np.testing.assert_allclose(posterior(Calibration().llr(raw)), np.clip(raw, 1e-15, 1 - 1e-15))
    assert posterior(0.0, prior_fake=0.2) == pytest.approx(0.2)  # no evidence: the prior
    assert posterior(math.log(4), prior_fake=0.2) == pytest.approx(0.5)  # 4:1 evidence vs 1:4
    assert np.isfinite(logit(np.array([0.0, 1.0]))).all()
    fitted = Calibration(2.0, -1.0, {"fake": 1})
    assert fitted.llr(0.5) == pytest.approx(-1.0) and not fitted.is_identity


@pytest.mark.parametrize(
    "stored",
    [[1, 2], {"scale": -1.0, "offset": 0.0}, {"scale": 1.0, "offset": float("nan")},
     {"scale": "1", "offset": 0}, {"scale": 1.0, "offset": 0.0, "fitted": [1]}],
)  # fmt: skip
def test_a_tampered_calibration_is_a_one_line_error(tmp_path: Path, stored) -> None:
    bad = copy_with_metadata(shared_trained_checkpoint(), tmp_path / "bad.safetensors", {})
    # json.dumps writes nan as NaN, which the reader decodes back to a float nan
    copy_with_metadata(bad, bad, {"calibration": stored})
    with pytest.raises(CheckpointError, match=r"bad.safetensors: metadata field 'calibration'"):
        check_checkpoint(bad)


def test_old_checkpoints_load_with_the_identity_and_the_eer_rule() -> None:
    detector = load_checkpoint(shared_trained_checkpoint())  # written without a calibration
    assert "calibration" not in detector.metadata and detector.calibration.is_identity
    lineup = make_lineup([detector])
    name = lineup.names[0]
    assert lineup.rules[name] == "eer"
    assert lineup.thresholds[name] == pytest.approx(detector.threshold)
    assert lineup.decision(name)["calibrated"] is False


def test_decision_rules(tmp_path: Path) -> None:
    calibrated = tmp_path / "calibrated.safetensors"
    copy_with_metadata(
        shared_trained_checkpoint(),
        calibrated,
        {"calibration": Calibration(0.5, 1.0, {"x": 1}).to_dict()},
    )
    detector = load_checkpoint(calibrated)
    name = make_lineup([detector]).names[0]

    def lineup(**options):
        return make_lineup([detector], options=ScoringOptions(**options))

    assert lineup().rules[name] == "bayes" and lineup().thresholds[name] == 0.5
    assert lineup(cost_fa=3.0).thresholds[name] == pytest.approx(0.25)  # fakes cost more
    eer = lineup(decision="eer")
    expected = posterior(0.5 * logit(detector.threshold) + 1.0)
    assert eer.rules[name] == "eer" and eer.thresholds[name] == pytest.approx(expected)
    assert lineup(threshold=0.7).rules[name] == "threshold"
    assert lineup(threshold=0.7).thresholds[name] == 0.7
    assert lineup(prior_fake=0.1).decision(name) == {
        "rule": "bayes", "threshold": 0.5, "prior_fake": 0.1, "calibrated": True,
        "cost_miss": 1.0, "cost_fa": 1.0,
    }  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Validation and testing splits of noise (fake) and tones (real), some quiet and short."""
    root = tmp_path_factory.mktemp("calibration_corpus")
    seed = 0
    for split in ("validation", "testing"):
        for label, make in (("fake", fake_signal), ("real", real_signal)):
            for i in range(10):
                seed += 1
                clip = make(0.4 + 0.05 * i, 16000, seed=seed) * (0.3 + 0.07 * i)
                if i % 3 == 0:  # a harder case: the other class mixed in
                    other = real_signal if label == "fake" else fake_signal
                    clip = clip + 0.8 * other(len(clip) / 16000, 16000, seed=seed + 500)
                write_audio(root / "demo" / split / label / f"c{i}.wav", clip, 16000)
    return root


def test_calibrate_writes_a_new_model_and_keeps_the_input(
    corpus: Path, tmp_path: Path, capsys
) -> None:
    source = shared_trained_checkpoint()
    before_bytes = hashlib.sha1(source.read_bytes()).hexdigest()
    output = tmp_path / "calibrated.safetensors"
    args = ["calibrate", "--model", str(source), "--data", str(corpus), "-o", str(output)]
    assert main([*args, "--no-progress", "--workers", "1"]) == 0
    assert hashlib.sha1(source.read_bytes()).hexdigest() == before_bytes  # untouched
    stored = read_metadata(output)["calibration"]
    assert stored["fitted"]["fake"] == stored["fitted"]["real"] == 10
    assert stored["fitted"]["source_sha1"] == before_bytes
    # in-sample: Cllr no worse, EER unchanged
    records = [
        ClipRecord(path=str(p), label=FAKE if p.parent.name == "fake" else REAL)
        for p in sorted((corpus / "demo" / "validation").rglob("*.wav"))
    ]
    options = ScoringOptions(workers=1)
    old = score_table([load_checkpoint(source)], records, options)
    new = score_table([load_checkpoint(output)], records, options)
    labels = old.labels()
    old_llr, new_llr = old.llr[old.lineup.names[0]], new.llr[new.lineup.names[0]]
    assert metrics.cllr(labels, new_llr) <= metrics.cllr(labels, old_llr) + 1e-6
    assert (
        metrics.equal_error_rate(labels, new_llr)[0] == metrics.equal_error_rate(labels, old_llr)[0]
    )
    assert metrics.min_dcf(labels, new_llr) == pytest.approx(metrics.min_dcf(labels, old_llr))
    out = capsys.readouterr().out
    assert "Cllr" in out and "unchanged" in out and str(output) in out
    with pytest.raises(SystemExit):  # a usage error: never overwrite the input
        main([*args[:-2], "-o", str(source), "--no-progress"])
    with pytest.raises(SystemExit):  # nor fit on the test split without saying so
        main([*args, "--splits", "testing", "--no-progress"])


def test_evaluate_metrics_are_reproduced_from_its_scores_csv(corpus: Path, tmp_path: Path) -> None:
    """The done-when: an independent recomputation from scores.csv gives metrics.json."""
    model = tmp_path / "calibrated.safetensors"
    assert main(["calibrate", "-m", str(shared_trained_checkpoint()), "--data", str(corpus),
                 "-o", str(model), "--no-progress", "--workers", "1"]) == 0  # fmt: skip
    out = tmp_path / "report"
    assert main(["evaluate", "--model", str(model), "--data", str(corpus), "--output-dir",
                 str(out), "--no-progress", "--workers", "1"]) == 0  # fmt: skip
    with open(out / "scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    labels = np.array([FAKE if r["label"] == "fake" else REAL for r in rows])
    p_fake = np.array([float(r["p_fake"]) for r in rows])
    llr = np.array([float(r["llr"]) for r in rows])
    document = json.loads((out / "metrics.json").read_text())
    (name,) = document["models"]
    overall = document["models"][name]["overall"]
    costs = document["cost_parameters"]
    assert costs == {"p_spoof": 0.05, "c_miss": 1.0, "c_fa": 10.0}
    assert overall["eer"] == pytest.approx(metrics.equal_error_rate(labels, p_fake)[0])
    assert overall["min_dcf"] == pytest.approx(metrics.min_dcf(labels, llr, **costs))
    assert overall["act_dcf"] == pytest.approx(metrics.act_dcf(labels, llr, **costs))
    assert overall["cllr"] == pytest.approx(metrics.cllr(labels, llr))
    assert overall["min_cllr"] == pytest.approx(metrics.min_cllr(labels, llr))
    np.testing.assert_allclose(p_fake, posterior(llr))  # P(fake) at the stated prior 0.5
    decision = document["models"][name]["decision"]
    assert decision["rule"] == "bayes" and decision["calibrated"] is True
    assert {"calibration.png", "ape.png"} <= {p.name for p in out.iterdir()}
    assert all("min_dcf" in g for g in document["models"][name]["by_dataset_type"].values())


def test_predict_json_states_each_decision(tmp_path: Path, capsys) -> None:
    clip = write_audio(tmp_path / "a.wav", fake_signal(0.6, 16000), 16000)
    model = str(shared_trained_checkpoint())
    args = ["predict", str(clip), "-m", model, "--json", "--prior-fake", "0.2"]
    assert main([*args, "--no-progress"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["files"]
    assert set(entry) >= {"p_fake", "llr", "threshold", "decision"}
    assert entry["decision"]["prior_fake"] == 0.2 and entry["decision"]["rule"] == "eer"
    assert entry["p_fake"] == pytest.approx(float(posterior(entry["llr"], 0.2)))
    assert entry["decision"]["threshold"] == entry["threshold"]
