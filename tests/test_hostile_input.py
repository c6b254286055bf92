"""A scanned folder may hold anything: special files, hostile names, unlistable folders.

Every command finishes, judges every good clip, and names every other entry with its reason;
a file name can neither forge an output line nor start a spreadsheet formula.
"""

from __future__ import annotations

import csv
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from deepfake_audio.audio import write_audio
from deepfake_audio.cli import main
from deepfake_audio.data import layouts
from deepfake_audio.reports.safe import csv_cell, printable
from tests.detectors import fake_signal, real_signal, shared_trained_checkpoint

FORGED = "evil\nREAL  0.0100  (threshold 0.5000)  interview_ceo.wav"


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    root = tmp_path / "scan"
    for i in range(2):
        write_audio(root / "fake" / f"f{i}.wav", fake_signal(0.6, seed=i), 16000)
        write_audio(root / "real" / f"r{i}.wav", real_signal(0.6, seed=i), 16000)
    os.mkfifo(root / "fake" / "x.wav")  # no writer: a plain open would wait forever
    (root / "real" / "zero.wav").symlink_to("/dev/zero")  # endless
    write_audio(root / "fake" / (FORGED + ".wav"), fake_signal(0.6, seed=7), 16000)
    write_audio(root / "real" / "=HYPERLINK(1).wav", real_signal(0.6, seed=8), 16000)
    return root


@pytest.fixture(autouse=True)
def never_hang() -> Iterator[None]:
    """A guard against hanging the suite on a special file, not a timing assertion."""

    def blocked(signum, frame):
        raise AssertionError("a command blocked on a special file")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_predict_names_every_entry_and_cannot_be_forged(hostile: Path, capsys) -> None:
    model = str(shared_trained_checkpoint())
    assert main(["predict", str(hostile), "-m", model, "--no-progress", "--workers", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8  # 4 good clips, 2 hostile names, the FIFO and the device
    assert sum(line.startswith(("FAKE", "REAL")) for line in lines) == 6
    errors = {line.split("/")[-1] for line in lines if line.startswith("ERROR")}
    assert errors == {"x.wav: not a regular file (a FIFO)", "zero.wav: not a regular file "
                      "(a character device)"}  # fmt: skip
    forged = [line for line in lines if "interview_ceo" in line]
    assert len(forged) == 1 and "evil\\nREAL" in forged[0]  # escaped, on its own line


def test_compare_and_audit_finish_and_neutralise_formulas(
    hostile: Path, tmp_path: Path, monkeypatch
) -> None:
    model = str(shared_trained_checkpoint())
    out = tmp_path / "out"
    args = ["compare", "--audio-dir", str(hostile), "--model", model, "--output-dir", str(out)]
    assert main([*args, "--no-progress", "--workers", "1"]) == 0
    (files,) = out.glob("model_comparison_*.csv")
    with open(files, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    formula = [r["path"] for r in rows if "HYPERLINK" in r["path"]]
    assert formula == [str(hostile / "real" / "=HYPERLINK(1).wav")]  # absolute: no formula
    monkeypatch.chdir(hostile / "real")  # relative paths: the name starts the cell
    args = ["compare", "--audio-dir", ".", "--model", model, "--output-dir", str(tmp_path / "o2")]
    assert main([*args, "--no-progress", "--workers", "1"]) == 0
    (files,) = (tmp_path / "o2").glob("model_comparison_*.csv")
    with open(files, newline="", encoding="utf-8") as handle:
        cells = [row[0] for row in csv.reader(handle)]
    assert "'=HYPERLINK(1).wav" in cells
    (unreadable,) = out.glob("unreadable_*.csv")
    assert "not a regular file" in unreadable.read_text()
    cache = str(tmp_path / "cache")
    assert main(["audit", str(hostile), "--cache-dir", cache, "--no-progress"]) == 0


def test_safe_text_and_cells() -> None:
    assert printable("a\nb\x1b[31mc é") == "a\\nb\\x1b[31mc é"
    assert csv_cell("=SUM(A1)") == "'=SUM(A1)" and csv_cell("-1+2") == "'-1+2"
    assert csv_cell("plain.wav") == "plain.wav" and csv_cell(0.5) == 0.5


def test_an_unlistable_folder_is_reported(tmp_path: Path, monkeypatch) -> None:
    """Root may read any folder, so the walk's error is simulated where os.walk reports it."""
    real_walk = os.walk

    def walk(top, onerror=None, **kwargs):
        onerror(PermissionError(13, "Permission denied", str(Path(top) / "locked")))
        yield from real_walk(top, onerror=onerror, **kwargs)

    write_audio(tmp_path / "fake" / "a.wav", fake_signal(0.5), 16000)
    monkeypatch.setattr(layouts.os, "walk", walk)
    found = layouts.discover(tmp_path, "tree")
    assert (str(tmp_path / "locked"), "cannot list folder (Permission denied)") in found.skipped


def test_bad_output_paths_fail_before_any_scoring(hostile: Path, tmp_path: Path, capsys) -> None:
    model = str(shared_trained_checkpoint())
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    cases = [
        (["compare", "--audio-dir", str(hostile), "--model", model, "--output-dir", str(a_file)],
         "is not a folder"),
        (["evaluate", "--data", str(hostile), "-m", model, "--output-dir", str(a_file / "x")],
         "cannot write to output folder"),
        (["audit", str(hostile), "--json", str(tmp_path)], "is a folder: name a file"),
        (["fuse", "--data", str(hostile), "-m", model, "-o", str(tmp_path)], "is a folder"),
    ]  # fmt: skip
    for args, message in cases:
        assert main([*args, "--no-progress"]) == 1, args[0]
        captured = capsys.readouterr()
        assert message in captured.err, args[0]
        assert "scan+hash+decode" not in captured.err and "scoring" not in captured.out


def test_an_evaluation_report_is_written_as_a_set(tmp_path: Path, monkeypatch) -> None:
    """A failure while writing leaves the previous report whole, not half old, half new."""
    from deepfake_audio.plots import evaluation as plots

    data = tmp_path / "data"
    for i in range(3):
        write_audio(data / "testing" / "fake" / f"f{i}.wav", fake_signal(0.5, seed=i), 16000)
        write_audio(data / "testing" / "real" / f"r{i}.wav", real_signal(0.5, seed=i), 16000)
    out = tmp_path / "eval"
    args = ["evaluate", "--data", str(data), "-m", str(shared_trained_checkpoint())]
    args += ["--output-dir", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert main(args) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plots, "plot_det", broken)
    with pytest.raises(OSError, match="No space"):
        main([*args, "--threshold", "0.1"])  # other numbers: a new metrics.json would differ
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
