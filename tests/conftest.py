"""Shared fixtures: every test makes its own audio; nothing is downloaded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.synth import write_clip


@pytest.fixture(autouse=True, scope="session")
def torch_backend() -> Iterator[None]:
    """Scoring commands default to ``--backend auto``, which exports every new model to ONNX
    and times it (seconds a model, into the user's cache): tests score with torch unless
    they ask for another backend (tests/test_onnx.py does). Session-wide, so module-scoped
    fixtures that run a command, and subprocesses, see it too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPFAKE_AUDIO_BACKEND", "torch")
        yield


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def for_tree(tmp_path: Path) -> Path:
    """A small Fake-or-Real tree: 2 types x 3 splits x 2 labels, mixed formats, distinct audio."""
    root = tmp_path / "dataset_root"
    seed = 0
    for dataset_type in ("for-2sec", "for-norm"):
        for split in ("training", "validation", "testing"):
            for label, count in (("fake", 5), ("real", 3)):
                for i in range(count):
                    ext = ("wav", "flac", "mp3", "m4a")[i % 4]
                    seed += 1
                    write_clip(
                        root / dataset_type / split / label / f"clip_{i}.{ext}",
                        seconds=0.5,
                        freq=200 + 10 * seed,
                        seed=seed,
                    )
    return root
