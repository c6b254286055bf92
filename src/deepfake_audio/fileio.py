"""Atomic file output: write to a temporary name beside the target, then rename.

A crash or Ctrl-C mid-write leaves the old file (or none), never half a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def json_ready(value: Any) -> Any:
    """NaN -> None and numpy scalars -> Python, recursively, so the output is strict JSON."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


class OutputPathError(ValueError):
    """An output path that cannot be written: found before any work, not after it."""


def check_output_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` if needed and prove it writable (a probe file is written and removed).

    Called at the start of a command, so a folder that is a file, sits under a file or is
    read-only stops the command before any scoring rather than throwing the work away.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"output folder {folder} is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test.{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OutputPathError:
        raise
    except OSError as exc:
        raise OutputPathError(
            f"cannot write to output folder {folder} ({exc.strerror or exc})"
        ) from exc
    return folder


def check_output_file(path: str | os.PathLike[str]) -> Path:
    """Check, before the work, that ``path`` can be written: not a folder, in a writable one."""
    target = Path(path)
    if target.is_dir():
        raise OutputPathError(f"output file {target} is a folder: name a file")
    check_output_dir(target.parent if str(target.parent) else ".")
    return target


@contextmanager
def staged_folder(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a staging folder beside ``folder``'s files; its files replace theirs only if the
    block succeeds, so a report of several files is never left half old, half new."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    stage = target / f".staging.{os.getpid()}.tmp"
    stage.mkdir(exist_ok=True)
    try:
        yield stage
        for item in sorted(stage.iterdir()):
            os.replace(item, target / item.name)
    finally:
        for item in stage.iterdir():
            item.unlink()
        stage.rmdir()


def decode_json_values(raw: dict[str, str]) -> dict[str, Any]:
    """String metadata (safetensors' or ONNX's, both string to string) with each value that
    is JSON decoded, and the others kept as the strings they are."""
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            decoded[key] = json.loads(value)
        except json.JSONDecodeError:
            decoded[key] = value
    return decoded
