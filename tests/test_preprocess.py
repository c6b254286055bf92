"""Windows: repeat padding, exact lengths, silence, random vs deterministic position."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepfake_audio.preprocess import (
    PreprocessConfig,
    crop_window,
    make_window,
    normalize,
    repeat_pad,
    sliding_windows,
)

CONFIG = PreprocessConfig(sample_rate=1000, window_seconds=1.0)


def test_defaults_match_the_original_design() -> None:
    assert PreprocessConfig().window_samples == 32000


def test_short_clips_are_repeated_not_zero_padded() -> None:
    clip = np.arange(1, 4, dtype=np.float32)
    np.testing.assert_array_equal(repeat_pad(clip, 7), [1, 2, 3, 1, 2, 3, 1])


def test_exactly_one_window_is_returned_unchanged() -> None:
    clip = np.linspace(-1, 1, 1000, dtype=np.float32)
    window, silent = make_window(clip, CONFIG, np.random.default_rng(0))
    np.testing.assert_array_equal(window, clip)
    assert not silent


def test_silent_clip_is_flagged_not_divided() -> None:
    window, silent = normalize(np.zeros(100, dtype=np.float32), "peak")
    assert silent and np.all(window == 0) and np.all(np.isfinite(window))


@pytest.mark.parametrize("mode", ["peak", "rms", "none"])
def test_normalization_modes(mode: str) -> None:
    window, _ = normalize(np.full(100, 0.25, dtype=np.float32), mode)
    expected = {"peak": 1.0, "rms": 1.0, "none": 0.25}[mode]
    assert window[0] == pytest.approx(expected)


def test_evaluation_takes_the_first_window_and_training_moves() -> None:
    clip = np.random.default_rng(1).standard_normal(5000).astype(np.float32)
    first, _ = make_window(clip, CONFIG)
    np.testing.assert_allclose(first, clip[:1000] / np.abs(clip[:1000]).max(), rtol=1e-6)
    starts = set()
    for seed in range(20):
        window, _ = make_window(clip, CONFIG, np.random.default_rng(seed))
        starts.add(float(window[0]))
    assert len(starts) > 10
    again, _ = make_window(clip, CONFIG, np.random.default_rng(3))
    repeat, _ = make_window(clip, CONFIG, np.random.default_rng(3))
    np.testing.assert_array_equal(again, repeat)


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="normalization"):
        PreprocessConfig(normalization="loud")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window_seconds"):
        PreprocessConfig(window_seconds=0)


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(min_value=1, max_value=5000),
    offset=st.integers(min_value=0, max_value=6000),
)
def test_any_clip_gives_exactly_one_window(length: int, offset: int) -> None:
    clip = np.random.default_rng(length).standard_normal(length).astype(np.float32)
    assert crop_window(clip, 1000, offset).shape == (1000,)
    window, _ = make_window(clip, CONFIG, np.random.default_rng(offset))
    assert window.shape == (1000,) and window.dtype == np.float32


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(min_value=1, max_value=7000),
    hop=st.sampled_from([None, 0.25, 0.5, 1.0, 1.5]),
)
def test_sliding_windows_cover_the_whole_clip(length: int, hop: float | None) -> None:
    clip = np.ones(length, dtype=np.float32)
    windows, starts = sliding_windows(clip, CONFIG, hop)
    assert windows.shape[1:] == (1000,)
    assert starts[0] == 0
    covered_to = max(starts) * 1000 + 1000
    assert covered_to >= min(length, 1000) and (length <= 1000 or covered_to == length)
