"""The probe pass and its on-disk cache: parallel = serial, no second decode, safe resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepfake_audio.audio import load_audio
from deepfake_audio.data import probe as probe_module
from deepfake_audio.data.cache import ClipCache
from deepfake_audio.data.probe import probe_files
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
    assert (tmp_path / "cache" / "v2-sr8000" / "audio.f32").exists()
