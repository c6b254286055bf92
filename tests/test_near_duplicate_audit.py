"""`audit` catches the same recording edited into another split (issue 16's done-when, small).

A Fake-or-Real-layout tree: speech in training, and in validation/testing every edit kind
(gain, silence, resampling, lossy re-encoding, noise, cuts, pairs of them) of those clips,
an exact copy, and hard negatives (the same sentence spoken again at another speed and pitch,
and other sentences of the same voice), which must not be matched.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deepfake_audio.audio import write_audio
from deepfake_audio.cli import main
from tests.test_near_duplicates import COMBOS, EDITS, SENTENCES, edited, speak


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], set[str]]:
    """The tree, each planted copy -> its original, and the hard negatives."""
    root = tmp_path_factory.mktemp("near_audit") / "data"
    plants = [(name,) for name in EDITS] + list(COMBOS)
    copies: dict[str, str] = {}
    negatives: set[str] = set()
    bases = [speak(text) for text in SENTENCES]
    for i, (samples, rate) in enumerate(bases):
        original = root / "for-norm" / "training" / "real" / f"base{i}.wav"
        write_audio(original, samples, rate)
        other = speak(SENTENCES[i], speed=190, pitch=70)  # the same text, spoken again
        path = root / "for-norm" / "testing" / "real" / f"respoken{i}.wav"
        write_audio(path, *other)
        negatives.add(str(path))
        fake = speak(SENTENCES[(i + 1) % len(SENTENCES)], voice="en+m3", speed=150)
        write_audio(root / "for-norm" / "training" / "fake" / f"f{i}.wav", *fake)
        negatives.add(str(root / "for-norm" / "training" / "fake" / f"f{i}.wav"))
    for k, names in enumerate(plants):
        base = k % len(bases)
        samples, rate = edited(bases[base], names, seed=k)
        split = "validation" if k % 2 else "testing"
        path = root / "for-norm" / split / "real" / f"copy{k}_{'+'.join(names)}.wav"
        write_audio(path, samples, rate)
        copies[str(path)] = str(root / "for-norm" / "training" / "real" / f"base{base}.wav")
        fake = speak(SENTENCES[(base + 2) % len(SENTENCES)], voice="en+f2", speed=140 + k)
        write_audio(root / "for-norm" / split / "fake" / f"f{k}.wav", *fake)
    exact = root / "for-norm" / "testing" / "real" / "exact.wav"
    shutil.copyfile(root / "for-norm" / "training" / "real" / "base0.wav", exact)
    return root, copies, negatives


def findings(report: dict, detector: str) -> list[dict]:
    return [f for f in report["separation"]["findings"] if f["detector"] == detector]


def test_audit_finds_the_edited_copies_and_no_other_recording(tree, tmp_path: Path) -> None:
    root, copies, negatives = tree
    out = tmp_path / "report.json"
    args = ["audit", str(root), "--json", str(out), "--cache-dir", str(tmp_path / "c")]
    assert main([*args, "--no-progress", "--workers", "1"]) == 0
    report = json.loads(out.read_text())
    separation = report["separation"]
    assert separation["near_duplicates"] == {"mode": "drop", "threshold": 0.25}
    near = findings(report, "near_duplicate")
    found = {p for f in near if f["kind"] == "leak" for p in f["paths"]}
    caught = [copy for copy, original in copies.items() if {copy, original} <= found]
    assert len(caught) >= 0.9 * len(copies), sorted(set(copies) - set(caught))
    assert not (found & negatives)
    assert all(f["similarity"] >= 0.25 for f in near)
    dropped = {p for f in near for p in f["dropped"]}
    assert set(caught) <= dropped  # the evaluation side loses them, the training side keeps
    assert not any("training" in p for p in dropped)
    exact = [f for f in findings(report, "file_bytes") if f["kind"] == "leak"]
    assert any(
        str(root / "for-norm" / "testing" / "real" / "exact.wav") in f["paths"] for f in exact
    )


def test_report_mode_keeps_the_copies_and_off_does_not_look(tree, tmp_path: Path) -> None:
    root, _, _ = tree
    out = tmp_path / "report.json"
    args = ["audit", str(root), "--json", str(out), "--cache-dir", str(tmp_path / "c")]
    assert main([*args, "--near-duplicates", "report", "--no-progress", "--workers", "1"]) == 0
    near = findings(json.loads(out.read_text()), "near_duplicate")
    assert near and not any(f["dropped"] for f in near)
    assert main([*args, "--near-duplicates", "off", "--no-progress", "--workers", "1"]) == 0
    report = json.loads(out.read_text())
    assert "near_duplicate" not in report["separation"]["detectors"]
