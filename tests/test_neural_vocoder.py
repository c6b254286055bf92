"""The neural vocoder of the demo corpus (``make-demo-corpus --neural``): its shapes, that it
learns, that a run resumes and a finished one is reused, and that the corpus keeps its rules
with the new generator."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from deepfake_audio.corpus.builder import (
    GENERATORS,
    NEURAL_DIR,
    NEURAL_GENERATOR,
    SPLITS,
    build_corpus,
)
from deepfake_audio.corpus.errors import CorpusError
from deepfake_audio.corpus.neural import training
from deepfake_audio.corpus.neural.model import (
    Vocoder,
    VocoderConfig,
    mel_distance,
    mel_filterbank,
)
from deepfake_audio.corpus.neural.training import (
    SegmentSampler,
    SpectralLoss,
    load_vocoder,
    read_trained,
    train_vocoder,
)
from deepfake_audio.data.pipeline import DataOptions, prepare
from tests.test_corpus import UNREACHABLE, _voiced

#: A vocoder small enough to train for seconds in a test.
TINY = VocoderConfig(n_fft=256, hop=64, n_mels=32, dim=48, intermediate=96, layers=2)


def _voices(n: int = 4, seconds: float = 1.2) -> list[np.ndarray]:
    return [_voiced(seconds, 110 + 37 * i, seed=i) for i in range(n)]


def test_mel_filters_tile_the_spectrum() -> None:
    filters = mel_filterbank(16000, 1024, 80)
    assert filters.shape == (80, 513) and (filters >= 0).all()
    peaks = filters.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all() and peaks[-1] > 480  # ordered, up to Nyquist
    assert (filters.sum(axis=0)[2:-2] > 0).all()  # no bin between the edges left out


def test_shapes_and_lengths() -> None:
    vocoder = Vocoder(TINY)
    audio = torch.randn(3, 4000) * 0.1
    mel = vocoder.mel(audio)
    assert mel.shape == (3, TINY.n_mels, 4000 // TINY.hop + 1)
    assert vocoder(mel).shape == (3, (mel.shape[-1] - 1) * TINY.hop)
    assert vocoder(mel, length=4000).shape == (3, 4000)
    for length in (1000, 4321):  # a resynthesis has its source's length, whatever it is
        clip = np.random.default_rng(length).standard_normal(length).astype(np.float32) * 0.1
        out = vocoder.resynthesize(clip)
        assert out.shape == (length,) and out.dtype == np.float32


def test_the_loss_falls_when_it_overfits_one_clip() -> None:
    torch.manual_seed(0)
    vocoder = Vocoder(TINY)
    loss_fn = SpectralLoss(vocoder)
    optimizer = torch.optim.AdamW(vocoder.parameters(), lr=2e-3)
    target = torch.from_numpy(_voices(1)[0][:8000])[None]
    target_mel = vocoder.mel(target)
    losses = []
    for _ in range(60):
        loss = loss_fn(vocoder(target_mel, length=8000), target, target_mel)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses[::10]


def test_training_brings_resyntheses_closer_and_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(training, "BATCH", 4)  # a quarter of the work per step: a test, not
    monkeypatch.setattr(training, "SEGMENT_SECONDS", 0.5)  # a vocoder worth keeping
    clips = _voices()
    held_out = _voiced(1.5, 150, seed=99)
    torch.manual_seed(0)
    before = mel_distance(Vocoder(TINY).resynthesize(held_out), held_out)
    trained = train_vocoder(
        clips, tmp_path, minutes=2, max_steps=40, config=TINY, samples=[("x", held_out)],
        progress=False,
    )  # fmt: skip
    after = mel_distance(trained.load().resynthesize(held_out), held_out)
    assert after < 0.7 * before, (before, after)
    assert trained.steps == 40 and not trained.reused
    with open(tmp_path / training.LOSSES_FILE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert float(rows[-1]["mel_l1"]) < float(rows[0]["mel_l1"])
    for name in ("losses.png", "spectrograms.png", "samples/x-real.wav", "samples/x-neural.wav"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert not (tmp_path / training.STATE_FILE).exists()  # the unfinished-run state is gone

    again = train_vocoder(clips, tmp_path, minutes=2, max_steps=40, config=TINY, progress=False)
    assert again.reused and again.steps == trained.steps  # the same settings: not retrained
    other = read_trained(tmp_path / training.VOCODER_FILE)
    assert other.settings == trained.settings and other.config == TINY


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    clips = _voices()
    torch.manual_seed(0)
    vocoder = Vocoder(TINY)
    optimizer = torch.optim.AdamW(vocoder.parameters(), lr=1e-3)
    sampler = SegmentSampler(clips, 4000, seed=0)
    loss_fn = SpectralLoss(vocoder)
    for _ in range(3):
        batch = sampler.batch(4)
        mel = vocoder.mel(batch)
        loss = loss_fn(vocoder(mel, length=4000), batch, mel)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    state = tmp_path / "state.safetensors"
    training._save_state(state, "key", vocoder, optimizer, sampler, 3, 12.5)
    assert training._state_key(state) == "key"

    fresh = Vocoder(TINY)
    fresh_optimizer = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    fresh_sampler = SegmentSampler(clips, 4000, seed=123)
    assert training._load_state(state, fresh, fresh_optimizer, fresh_sampler) == (3, 12.5)
    for (name, a), b in zip(vocoder.state_dict().items(), fresh.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    for parameter, restored in zip(vocoder.parameters(), fresh.parameters(), strict=True):
        for slot in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(
                optimizer.state[parameter][slot], fresh_optimizer.state[restored][slot]
            )
    torch.testing.assert_close(sampler.batch(4), fresh_sampler.batch(4))  # the same next data


def test_a_vocoder_file_is_checked_and_loads_without_pickle(tmp_path: Path) -> None:
    trained = train_vocoder(_voices(2), tmp_path, minutes=0.02, config=TINY, progress=False)
    vocoder = load_vocoder(trained.path)
    assert not vocoder.training and vocoder.config == TINY
    foreign = tmp_path / "foreign.safetensors"
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(foreign), {"format": "something else"})
    with pytest.raises(ValueError, match="not a deepfake-audio neural vocoder"):
        read_trained(foreign)


@pytest.fixture(scope="module")
def neural_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny demo corpus with the neural generator (a vocoder trained for 3 s)."""
    out = tmp_path_factory.mktemp("neural") / "corpus"
    if shutil.which("apt-get") is None:
        pytest.skip("the Debian speech source needs apt-get")
    try:
        build_corpus(out, size="tiny", seed=0, workers=2, neural_minutes=0.05, progress=False)
    except CorpusError as exc:
        if not any(words in str(exc) for words in UNREACHABLE):
            raise
        pytest.skip(f"the Debian archive cannot be reached: {exc}")
    return out


def _rows(root: Path) -> list[dict[str, str]]:
    with open(root / "metadata.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_corpus_rules_hold_with_the_neural_generator(neural_corpus: Path) -> None:
    rows = _rows(neural_corpus)
    fakes = Counter(row["generator"] for row in rows if row["label"] == "fake")
    assert set(fakes) == {*GENERATORS, NEURAL_GENERATOR}
    for split in SPLITS:  # balance: one fake per real clip
        labels = Counter(row["label"] for row in rows if row["split"] == split)
        assert labels["fake"] == labels["real"] > 0, split
    real = {(row["split"], Path(row["path"]).stem, row["source"]) for row in rows
            if row["label"] == "real"}  # fmt: skip
    neural = [row for row in rows if row["generator"] == NEURAL_GENERATOR]
    assert {row["split"] for row in neural} == set(SPLITS)  # in every split
    for row in neural:  # made from a real clip of its own split
        assert (row["split"], Path(row["path"]).stem, row["source"]) in real, row["path"]
        assert (neural_corpus / row["path"]).is_file()
        assert int(row["vocoder_steps"]) > 0 and float(row["vocoder_seconds"]) >= 0
    assert all(row["vocoder_steps"] == "" for row in rows if row["generator"] != NEURAL_GENERATOR)
    folder = neural_corpus / NEURAL_DIR
    for name in ("vocoder.safetensors", "losses.csv", "losses.png", "spectrograms.png"):
        assert (folder / name).is_file(), name
    assert len(list((folder / "samples").glob("*-neural.wav"))) == 3


def test_the_audit_finds_no_leak_in_it(neural_corpus: Path, tmp_path: Path) -> None:
    options = DataOptions(cache_dir=str(tmp_path / "cache"), workers=2, balance="none")
    report = prepare(neural_corpus, options, progress=False).report
    assert report["separation"]["leaks"] == 0
    assert report["discovered"] == len(_rows(neural_corpus))  # the samples are not data


def test_a_rebuild_reuses_the_vocoder_and_every_file(neural_corpus: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(neural_corpus, copy)
    victim = next(p for p in sorted(copy.rglob("*.wav")) if f"/fake/{NEURAL_GENERATOR}/" in str(p))
    expected = victim.read_bytes()
    victim.unlink()
    result = build_corpus(copy, size="tiny", seed=0, workers=1, neural_minutes=0.05,
                          progress=False)  # fmt: skip
    assert result.vocoder is not None and result.vocoder.reused
    assert result.written == 1 and victim.read_bytes() == expected
    with pytest.raises(CorpusError, match=r"neural_minutes was 0\.05, now 1\.0"):
        build_corpus(copy, size="tiny", seed=0, workers=1, neural_minutes=1.0, progress=False)
