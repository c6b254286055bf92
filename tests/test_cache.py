"""The probe pass and its on-disk cache: parallel = serial, no second decode, safe resume."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import threading
import time
import types
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from deepfake_audio.audio import load_audio
from deepfake_audio.data import probe as probe_module
from deepfake_audio.data.cache import CACHE_FORMAT, ClipCache
from deepfake_audio.data.probe import probe_files
from deepfake_audio.parallel import ordered_map, start_method
from tests.synth import write_clip


@pytest.fixture
def clips(tmp_path: Path) -> list[str]:
    paths = [
        write_clip(tmp_path / f"c{i}.{ext}", seconds=0.4, rate=rate, freq=200 + 50 * i, seed=i)
        for i, (ext, rate) in enumerate(
            [("wav", 16000), ("flac", 44100), ("mp3", 22050), ("m4a", 48000)] * 5
        )
    ]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    return [str(p) for p in [*paths, bad]]


def test_parallel_probe_matches_serial(clips: list[str]) -> None:
    serial = list(probe_files(clips, target_rate=16000, workers=1))
    parallel = list(probe_files(clips, target_rate=16000, workers=2, batch_size=3))
    assert [r.path for r in parallel] == clips  # order kept
    for a, b in zip(serial, parallel, strict=True):
        assert (a.error, a.file_hash, a.audio_hash, a.duration) == (
            b.error,
            b.file_hash,
            b.audio_hash,
            b.duration,
        )
        if a.audio is not None:
            np.testing.assert_array_equal(a.audio, b.audio)
    assert serial[-1].error and "not decodable" in serial[-1].error


def test_second_pass_reads_the_cache(clips: list[str], tmp_path: Path, monkeypatch) -> None:
    cache = ClipCache(tmp_path / "cache", 16000)
    first = cache.probe(clips, with_audio=True, workers=1)
    calls = []
    monkeypatch.setattr(probe_module, "probe_file", lambda *a, **k: calls.append(a))
    again = ClipCache(tmp_path / "cache", 16000)  # a new process would start like this
    second = again.probe(clips, with_audio=True, workers=1)
    assert calls == []
    assert {p: r.audio_hash for p, r in first.items()} == {
        p: r.audio_hash for p, r in second.items()
    }
    assert second[clips[-1]].error == first[clips[-1]].error
    np.testing.assert_allclose(again.audio(clips[1]), load_audio(clips[1], 16000), atol=1e-6)


def test_changed_file_is_decoded_again(clips: list[str], tmp_path: Path) -> None:
    cache = ClipCache(tmp_path / "cache", 16000)
    before = cache.probe(clips[:1], with_audio=True, workers=1)[clips[0]]
    write_clip(Path(clips[0]), seconds=0.7, freq=999)
    after = cache.probe(clips[:1], with_audio=True, workers=1)[clips[0]]
    assert after.audio_hash != before.audio_hash
    assert cache.audio(clips[0]).size == round(0.7 * 16000)


def test_metadata_only_entries_get_audio_when_asked(clips: list[str], tmp_path: Path) -> None:
    cache = ClipCache(tmp_path / "cache", 16000)
    cache.probe(clips[:2], with_audio=False, workers=1)
    with pytest.raises(KeyError):
        cache.audio(clips[0])
    cache.probe(clips[:2], with_audio=True, workers=1)
    assert cache.audio(clips[0]).size > 0


def test_interrupted_build_resumes(clips: list[str], tmp_path: Path, monkeypatch) -> None:
    cache = ClipCache(tmp_path / "cache", 16000)
    cache.probe(clips[:5], with_audio=True, workers=1)
    # A crash mid-write leaves a partial last index line.
    with open(cache.index_path, "ab") as handle:
        handle.write(b'{"path": "/half')
    resumed = ClipCache(tmp_path / "cache", 16000)
    decoded = []
    real_probe = probe_module.probe_file
    monkeypatch.setattr(
        probe_module, "probe_file", lambda p, **kw: decoded.append(p) or real_probe(p, **kw)
    )
    results = resumed.probe(clips, with_audio=True, workers=1)
    assert decoded == clips[5:]  # only what the first run did not finish
    assert len(results) == len(clips)
    np.testing.assert_allclose(resumed.audio(clips[7]), load_audio(clips[7], 16000), atol=1e-6)


def test_cache_is_per_sample_rate(clips: list[str], tmp_path: Path) -> None:
    low = ClipCache(tmp_path / "cache", 8000)
    low.probe(clips[:1], with_audio=True, workers=1)
    assert low.audio(clips[0]).size == round(0.4 * 8000)
    assert (tmp_path / "cache" / f"{CACHE_FORMAT}-sr8000" / "audio.f32").exists()


def _same_probes(a: list, b: list) -> None:
    assert [r.path for r in a] == [r.path for r in b]
    for x, y in zip(a, b, strict=True):
        assert (x.error, x.file_hash, x.audio_hash, x.duration, x.silent, x.size) == (
            y.error, y.file_hash, y.audio_hash, y.duration, y.silent, y.size,
        )  # fmt: skip
        if x.audio is not None:
            np.testing.assert_array_equal(x.audio, y.audio)


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_both_start_methods_give_the_serial_results(clips: list[str], method: str) -> None:
    job = partial(probe_module.probe_file, target_rate=16000)
    serial = [job(path) for path in clips]
    _same_probes(list(ordered_map(job, clips, workers=2, batch_size=3, method=method)), serial)


def test_fork_is_chosen_only_when_it_is_safe(monkeypatch) -> None:
    # A fresh interpreter with nothing else running forks (cheap: imports are inherited) ...
    fresh = subprocess.run(
        [sys.executable, "-c", "from deepfake_audio.parallel import start_method as s; print(s())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert fresh.stdout.strip() == ("fork" if sys.platform == "linux" else "forkserver")
    # ... but not with another thread running (its locks would be copied held) ...
    stop = threading.Event()
    waiter = threading.Thread(target=stop.wait)
    waiter.start()
    try:
        assert start_method() == "forkserver"
    finally:
        stop.set()
        waiter.join()
    # ... nor once torch is imported (its thread pools hang a forked child).
    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))
    assert start_method() == "forkserver"


def test_metadata_only_probe_uses_larger_batches(clips: list[str], monkeypatch) -> None:
    sizes = []
    monkeypatch.setattr(
        probe_module, "ordered_map", lambda job, items, **kw: sizes.append(kw["batch_size"]) or []
    )
    probe_files(clips, workers=2)
    probe_files(clips, target_rate=16000, workers=2)
    assert sizes == [128, 16]  # audio fills memory; facts and hashes are small


def test_entry_is_keyed_on_the_file_as_it_was_read(
    clips: list[str], tmp_path: Path, monkeypatch
) -> None:
    """A file that changes after it was read (before its entry is written) is probed again."""
    real_probe = probe_module.probe_file

    def read_then_changed(path: str, **kw) -> probe_module.ProbeResult:
        result = real_probe(path, **kw)
        write_clip(Path(path), seconds=0.9, freq=777)
        return result

    monkeypatch.setattr(probe_module, "probe_file", read_then_changed)
    first = ClipCache(tmp_path / "cache", 16000).probe(clips[:1], with_audio=True, workers=1)
    monkeypatch.setattr(probe_module, "probe_file", real_probe)
    again = ClipCache(tmp_path / "cache", 16000).probe(clips[:1], with_audio=True, workers=1)
    assert again[clips[0]].audio_hash != first[clips[0]].audio_hash
    assert again[clips[0]].duration == pytest.approx(0.9)


def test_an_interrupted_probe_keeps_every_finished_file(
    clips: list[str], tmp_path: Path, monkeypatch
) -> None:
    seen = []

    def stop_after_seven(result: probe_module.ProbeResult) -> None:
        seen.append(result.path)
        if len(seen) == 7:
            raise KeyboardInterrupt

    cache = ClipCache(tmp_path / "cache", 16000)
    with pytest.raises(KeyboardInterrupt):
        cache.probe(clips, with_audio=True, workers=1, on_result=stop_after_seven)
    decoded = []
    real_probe = probe_module.probe_file
    monkeypatch.setattr(
        probe_module, "probe_file", lambda p, **kw: decoded.append(p) or real_probe(p, **kw)
    )
    resumed = ClipCache(tmp_path / "cache", 16000)
    resumed.probe(clips, with_audio=True, workers=1)
    assert decoded == clips[7:]  # the seven finished before the interruption were indexed
    for path in clips[:7]:
        np.testing.assert_allclose(resumed.audio(path), load_audio(path, 16000), atol=1e-6)


_KILLED_RUN = """
import sys, time
from deepfake_audio.data import probe as probe_module
from deepfake_audio.data.cache import ClipCache
from deepfake_audio.parallel import start_method
real_probe = probe_module.probe_file
def slow(path, **kw):
    time.sleep(0.01)
    return real_probe(path, **kw)
probe_module.probe_file = slow
print(start_method(), flush=True)
cache = ClipCache(sys.argv[1], 16000)
report = lambda result: print("result", flush=True)
cache.probe(sys.argv[2:], with_audio=False, workers=2, on_result=report)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
def test_a_killed_run_does_not_leave_the_cache_locked(clips: list[str], tmp_path: Path) -> None:
    """Forked workers hold the parent's open files, the cache lock among them: they must not
    outlive a parent killed with SIGKILL (which runs no clean-up)."""
    paths = [p for p in clips if p.endswith(".wav")] * 50  # several batches: a real pool
    run = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN, str(tmp_path / "cache"), *paths],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert run.stdout.readline().strip() == "fork"
    assert run.stdout.readline().strip() == "result"  # the pool is at work, the lock held
    run.kill()
    run.wait()
    run.stdout.close()
    lock_path = ClipCache(tmp_path / "cache", 16000).folder / ".lock"
    deadline = time.monotonic() + 20
    with open(lock_path, "w") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "the killed run's workers still hold the lock"
                time.sleep(0.1)
        fcntl.flock(lock, fcntl.LOCK_UN)
