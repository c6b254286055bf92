"""The command line starts without the model stack: ``--help`` and ``audit`` import no torch.

Each case runs in a fresh interpreter, since this test process has long imported torch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deepfake_audio.audio import write_audio
from deepfake_audio.cli import COMMANDS
from deepfake_audio.models import MODEL_NAMES
from deepfake_audio.models.registry import model_names
from tests.detectors import fake_signal, real_signal

HEAVY = ("torch", "lightning", "sklearn")

PROBE = f"""
import json, sys
from deepfake_audio.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({{"code": code, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def _run(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_imports_no_model_library(command: str | None) -> None:
    result = _run(*([command] if command else []), "--help")
    assert result == {"code": 0, "heavy": []}


def test_audit_imports_no_model_library(tmp_path: Path) -> None:
    for i in range(2):
        write_audio(tmp_path / "data" / "fake" / f"f{i}.wav", fake_signal(0.5, seed=i), 16000)
        write_audio(tmp_path / "data" / "real" / f"r{i}.wav", real_signal(0.5, seed=i), 16000)
    args = ["audit", str(tmp_path / "data"), "--cache-dir", str(tmp_path / "cache")]
    assert _run(*args, "--no-progress") == {"code": 0, "heavy": []}


def test_the_torch_free_model_list_is_the_registry() -> None:
    assert list(MODEL_NAMES) == model_names()


def test_version_names_package_torch_and_device() -> None:
    """``--version`` may import torch (it reports it); ``--help`` above must not."""
    import torch

    from deepfake_audio import __version__
    from deepfake_audio.scoring.engine import resolve_device

    done = subprocess.run(
        [sys.executable, "-c", PROBE, "--version"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    *lines, probe = done.stdout.strip().splitlines()
    assert json.loads(probe)["code"] == 0
    assert lines[0] == f"deepfake-audio {__version__}"
    assert lines[1] == f"torch {torch.__version__}"
    device = resolve_device("auto")  # what every scoring command takes by default
    assert lines[2].startswith(f"device: {device.type}")
    if device.type == "cuda":
        assert torch.cuda.get_device_name(0) in lines[2]
