"""Per-file cache of probe results and decoded audio, so no file is decoded twice.

Layout of a cache folder (one per format version and sample rate, ``CACHE_DIR/v2-sr16000/``):

* ``audio.f32``: decoded mono float32 audio of every cached file, appended end to end and read
  back memory-mapped (the whole dataset never sits in memory);
* ``index.jsonl``: one JSON line per file: path, size and mtime (an entry is valid only while
  both match the file), the probe results (hashes, duration, rate, channels, error) and where
  its audio lies in ``audio.f32``.

Both files are append-only and every index line is written after its audio, so an interrupted
build loses at most the files in flight: the next run reads the complete lines and carries on.
Index lines go out a few dozen at a time (one write each, not one per file) and always after
the audio they point at has been flushed. Writers take an exclusive lock, so parallel jobs
(e.g. DDP ranks) can share a cache.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from deepfake_audio.data.probe import ProbeResult, probe_files

#: Bumped whenever what an entry holds changes (v2: SHA-1 hashes; v3: shortcut features; v4:
#: near-duplicate fingerprints of four-peak hashes), so old caches are not mixed in.
CACHE_FORMAT = "v4"

#: Index lines written at once: one write per this many files rather than one per file.
_INDEX_BATCH = 64

_META_FIELDS = (
    "error", "duration", "sample_rate", "num_channels", "file_hash", "audio_hash", "silent",
    "features", "fingerprint",
)  # fmt: skip


def default_cache_dir() -> Path:
    """``$DEEPFAKE_AUDIO_CACHE``, else ``$XDG_CACHE_HOME/deepfake-audio``, else ``~/.cache``."""
    if os.environ.get("DEEPFAKE_AUDIO_CACHE"):
        return Path(os.environ["DEEPFAKE_AUDIO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "deepfake-audio"


def _stat_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


@dataclass(frozen=True)
class CacheEntry:
    """A cached probe of one file; ``offset``/``length`` locate its audio (None if not stored)."""

    path: str
    size: int
    mtime_ns: int
    meta: dict
    offset: int | None = None
    length: int | None = None

    @property
    def has_audio(self) -> bool:
        return self.offset is not None

    def probe(self) -> ProbeResult:
        meta = {k: self.meta.get(k) for k in _META_FIELDS}
        return ProbeResult(path=self.path, size=self.size, mtime_ns=self.mtime_ns, **meta)


class ClipCache:
    """Probe results and decoded audio at one sample rate, on disk."""

    def __init__(self, cache_dir: str | os.PathLike[str], sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.folder = Path(cache_dir) / f"{CACHE_FORMAT}-sr{sample_rate}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.audio_path = self.folder / "audio.f32"
        self.index_path = self.folder / "index.jsonl"
        self._entries: dict[str, CacheEntry] = {}
        self._index_read = 0  # bytes of index.jsonl already parsed
        self._audio: np.memmap | None = None
        self._refresh()

    # -- reading -------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Parse index lines appended since the last read (ours or another process's)."""
        if not self.index_path.exists():
            return
        with open(self.index_path, "rb") as handle:
            handle.seek(self._index_read)
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # a line still being written (or cut by a crash): ignore for now
                self._index_read += len(line)
                try:
                    raw = json.loads(line)
                    entry = CacheEntry(**raw)
                except (ValueError, TypeError):
                    continue
                self._entries[entry.path] = entry

    def lookup(
        self, path: str, need_audio: bool = False, need_fingerprint: bool = False
    ) -> CacheEntry | None:
        """The valid entry for ``path`` (size and mtime unchanged) holding what is needed,
        else None."""
        entry = self._entries.get(path)
        if entry is None:
            return None
        usable = not entry.meta.get("error")
        if usable and need_audio and not entry.has_audio:
            return None
        if usable and need_fingerprint and entry.meta.get("fingerprint") is None:
            return None
        if _stat_key(path) != (entry.size, entry.mtime_ns):
            return None
        return entry

    def audio(self, path: str) -> np.ndarray:
        """The cached audio of ``path`` (a read-only memory-mapped view)."""
        entry = self._entries.get(path)
        if entry is None or not entry.has_audio:
            raise KeyError(f"{path} has no cached audio at {self.sample_rate} Hz")
        end = entry.offset + entry.length  # type: ignore[operator]
        if self._audio is None or self._audio.shape[0] < end:
            self._audio = np.memmap(self.audio_path, dtype=np.float32, mode="r")
        return self._audio[entry.offset : end]

    def __getstate__(self) -> dict:
        # Data-loader workers re-open the memory map themselves.
        state = self.__dict__.copy()
        state["_audio"] = None
        return state

    # -- writing -------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def probe(
        self,
        paths: Sequence[str],
        *,
        with_audio: bool,
        fingerprints: bool = False,
        workers: int | None = None,
        on_result: Callable[[ProbeResult], None] | None = None,
    ) -> dict[str, ProbeResult]:
        """Probe results for ``paths``, decoding only files the cache lacks (in parallel).

        With ``with_audio`` the decoded audio is stored too, with ``fingerprints`` the
        near-duplicate fingerprints. ``on_result`` is called once per
        path (cached or fresh), e.g. to advance a progress bar.
        """
        results: dict[str, ProbeResult] = {}
        with self._locked():
            self._refresh()
            todo = []
            for path in paths:
                entry = self.lookup(path, need_audio=with_audio, need_fingerprint=fingerprints)
                if entry is None:
                    todo.append(path)
                    continue
                results[path] = entry.probe()
                if on_result:
                    on_result(results[path])
            if not todo:
                return results
            target = self.sample_rate if with_audio else None
            with open(self.audio_path, "ab") as audio_out, open(self.index_path, "ab") as index_out:
                pending: list[CacheEntry] = []  # audio written, index line not yet
                try:
                    for result in probe_files(
                        todo, target_rate=target, fingerprints=fingerprints, workers=workers
                    ):
                        entry = self._append(result, audio_out)
                        if entry:
                            pending.append(entry)
                        results[result.path] = result
                        if on_result:
                            on_result(result)
                        if len(pending) >= _INDEX_BATCH:
                            self._write_index(pending, audio_out, index_out)
                finally:  # interrupted too: what is complete is kept
                    self._write_index(pending, audio_out, index_out)
        return results

    def _append(self, result: ProbeResult, audio_out: BinaryIO) -> CacheEntry | None:
        """Write ``result``'s audio (if any) and return its entry (None: nothing to keep).

        The entry is keyed on the size and mtime the worker saw when it read the file, so a
        file changed after being read is probed again next time.
        """
        if result.size is None or result.mtime_ns is None:
            return None  # could not be opened: nothing to remember
        offset = length = None
        if result.audio is not None:
            offset = audio_out.tell() // 4
            data = np.ascontiguousarray(result.audio, dtype="<f4")
            audio_out.write(data)  # its buffer, without a copy to bytes
            length = int(data.shape[0])
            result.audio = None  # stored on disk; don't keep it in memory
        return CacheEntry(
            path=result.path,
            size=result.size,
            mtime_ns=result.mtime_ns,
            meta={k: getattr(result, k) for k in _META_FIELDS},
            offset=offset,
            length=length,
        )

    def _write_index(
        self, pending: list[CacheEntry], audio_out: BinaryIO, index_out: BinaryIO
    ) -> None:
        """Append ``pending``'s index lines in one write, after flushing the audio they point at."""
        if not pending:
            return
        audio_out.flush()
        index_out.write("".join(json.dumps(e.__dict__) + "\n" for e in pending).encode())
        index_out.flush()
        self._index_read = index_out.tell()
        self._entries.update((e.path, e) for e in pending)
        pending.clear()
