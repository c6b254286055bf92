"""``deepfake-audio demo``: each size in its own folder, and a finished run reused only when
it is the run asked for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepfake_audio.commands.demo import FINAL_MODEL, output_folder, training_step


def _run(folder: Path, epochs_done: int, planned: int, final: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"epochs": planned}))
    rows = ["epoch,val_eer"] + [f"{e},0.1" for e in range(1, epochs_done + 1)]
    (folder / "history.csv").write_text("\n".join(rows) + "\n")
    if final:
        (folder / FINAL_MODEL).write_bytes(b"")
    return folder


def test_each_size_has_its_own_folder() -> None:
    assert output_folder("small", None) == Path("demo")
    assert output_folder("full", None) == Path("demo-full")
    assert output_folder("tiny", None) == Path("demo-tiny")
    assert output_folder("full", "elsewhere") == Path("elsewhere")
    assert output_folder("small", None, neural=True) == Path("demo-neural")
    assert output_folder("tiny", None, neural=True) == Path("demo-tiny-neural")


def test_a_run_is_reused_resumed_or_refused(tmp_path: Path) -> None:
    assert training_step(tmp_path / "new", 6) == []  # a new run
    finished = _run(tmp_path / "finished", 6, 6)
    assert training_step(finished, 6) is None
    assert training_step(finished, 10) == ["train", "--resume", str(finished), "--epochs", "10"]
    interrupted = _run(tmp_path / "interrupted", 2, 6, final=True)
    assert training_step(interrupted, 6) == [
        "train", "--resume", str(interrupted), "--epochs", "6",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="another --output-dir"):
        training_step(finished, 3)
