"""Augmentations: shape, dtype, finiteness, seeding, and that each does what it says by as much
as it says."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import signal

from deepfake_audio.augment import (
    AugmentConfig,
    CodecConfig,
    GainConfig,
    NoiseConfig,
    RawBoostConfig,
    build_augmenter,
)
from deepfake_audio.augment.codec import align, transcode
from deepfake_audio.augment.rawboost import isd, lnl, multiband_filter, parse_algorithm, ssi
from deepfake_audio.augment.simple import add_noise, apply_gain

RATE = 16000


def speechlike(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A voiced-sounding test signal: harmonics of a gliding f0, amplitude-modulated, + noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(t.size)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2))


def rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


ALL_ON = {
    "rawboost": AugmentConfig(rawboost=RawBoostConfig(enabled=True, algorithm="lnl+isd+ssi")),
    "noise": AugmentConfig(noise=NoiseConfig(enabled=True)),
    "codec": AugmentConfig(codec=CodecConfig(enabled=True, p=1.0)),
    "gain": AugmentConfig(gain=GainConfig(enabled=True)),
    "all": AugmentConfig(
        rawboost=RawBoostConfig(enabled=True),
        noise=NoiseConfig(enabled=True),
        codec=CodecConfig(enabled=True, p=1.0),
        gain=GainConfig(enabled=True),
    ),
}


@pytest.mark.parametrize("name", sorted(ALL_ON))
def test_shape_dtype_finite_and_seeded(name: str) -> None:
    augment = build_augmenter(ALL_ON[name])
    x = speechlike(0.5)
    a = augment(x, np.random.default_rng(7))
    b = augment(x, np.random.default_rng(7))
    c = augment(x, np.random.default_rng(8))
    assert a.shape == x.shape and a.dtype == np.float32
    assert np.isfinite(a).all()
    assert np.array_equal(a, b), "same generator state must give the same output"
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, x)
    assert np.array_equal(x, speechlike(0.5)), "the input must not be modified in place"


def test_off_by_default_is_identity() -> None:
    config = AugmentConfig()
    assert not config.enabled
    x = speechlike(0.25)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert np.array_equal(build_augmenter(config)(x, rng), x)
    assert build_augmenter()(x, rng).dtype == np.float32
    assert rng.bit_generator.state == state  # nothing drawn


def test_probability_zero_leaves_the_window_alone() -> None:
    config = AugmentConfig(gain=GainConfig(enabled=True, p=0.0))
    x = speechlike(0.25)
    assert np.array_equal(build_augmenter(config)(x, np.random.default_rng(0)), x)


@pytest.mark.parametrize("target", [0.0, 10.0, 25.0])
def test_additive_noise_hits_the_snr(target: float) -> None:
    x = speechlike()
    for colour in ("white", "pink", "brown"):
        y = add_noise(x, target, np.random.default_rng(1), colour)
        assert abs(snr_db(x, y) - target) < 0.5


def test_noise_snr_drawn_from_the_configured_range() -> None:
    config = AugmentConfig(noise=NoiseConfig(enabled=True, min_snr_db=12.0, max_snr_db=18.0))
    augment, x = build_augmenter(config), speechlike(0.5)
    measured = [snr_db(x, augment(x, np.random.default_rng(s))) for s in range(10)]
    assert all(11.5 < m < 18.5 for m in measured)


def test_noise_on_silence_adds_nothing() -> None:
    silent = np.zeros(1000, dtype=np.float32)
    assert np.array_equal(add_noise(silent, 10.0, np.random.default_rng(0)), silent)


@pytest.mark.parametrize("gain", [-6.0, 0.0, 3.5])
def test_gain_changes_rms_by_gain(gain: float) -> None:
    x = speechlike()
    assert abs(rms_db(apply_gain(x, gain)) - rms_db(x) - gain) < 1e-3


def test_gain_drawn_from_the_configured_range() -> None:
    augment = build_augmenter(AugmentConfig(gain=GainConfig(enabled=True, min_db=2, max_db=4)))
    x = speechlike(0.25)
    for seed in range(10):
        change = rms_db(augment(x, np.random.default_rng(seed))) - rms_db(x)
        assert 2 - 1e-3 < change < 4 + 1e-3


def test_rawboost_ssi_snr_in_range() -> None:
    config = RawBoostConfig(ssi_min_snr_db=15.0, ssi_max_snr_db=25.0)
    x = speechlike().astype(np.float64)
    for seed in range(8):
        assert (
            15.0 - 1e-6
            <= snr_db(x, ssi(x, config, RATE, np.random.default_rng(seed)))
            <= 25.0 + 1e-6
        )


def test_rawboost_ssi_noise_is_coloured_by_the_notches() -> None:
    config = RawBoostConfig(min_coeffs=201, max_coeffs=201, n_bands=1, min_bandwidth=800)
    rng = np.random.default_rng(3)
    _, [(low, high)] = multiband_filter(config, RATE, (0.0, 0.0), np.random.default_rng(3))
    x = np.zeros(RATE * 2)
    x[::400] = 1e-3  # a quiet click train so that the noise dominates the output
    noise = ssi(x, config, RATE, rng) - x
    freqs, psd = signal.welch(noise, RATE, nperseg=1024)
    in_band = psd[(freqs > low + 100) & (freqs < high - 100)].mean()
    assert 10 * np.log10(psd.mean() / in_band) > 10


def test_rawboost_filter_notches_its_bands() -> None:
    config = RawBoostConfig(min_coeffs=201, max_coeffs=201, min_bandwidth=600, n_bands=3)
    coeffs, bands = multiband_filter(config, RATE, (0.0, 0.0), np.random.default_rng(0))
    freqs, response = signal.freqz(coeffs, 1, worN=4096, fs=RATE)
    magnitude = np.abs(response)
    assert magnitude.max() == pytest.approx(1.0, rel=1e-3)  # unit peak gain at 0 dB
    assert len(bands) == 3
    for low, high in bands:
        centre = np.argmin(np.abs(freqs - (low + high) / 2))
        assert 20 * np.log10(magnitude[centre]) < -20


def test_rawboost_lnl_linear_is_the_filter_rescaled_to_the_input_peak() -> None:
    config = RawBoostConfig(n_orders=1)
    x = speechlike().astype(np.float64)
    y = lnl(x, config, RATE, np.random.default_rng(5))
    coeffs, _ = multiband_filter(config, RATE, (0.0, 0.0), np.random.default_rng(5))
    expected = signal.lfilter(coeffs, 1.0, x)
    expected *= np.abs(x).max() / np.abs(expected).max()
    np.testing.assert_allclose(y, expected, atol=1e-9)
    assert np.abs(y).max() == pytest.approx(np.abs(x).max())


def test_rawboost_lnl_nonlinear_terms_add_harmonics() -> None:
    t = np.arange(RATE) / RATE
    tone = 0.9 * np.sin(2 * np.pi * 500 * t)  # a pure tone: any energy at 1 or 1.5 kHz is new
    wide = {"min_coeffs": 11, "max_coeffs": 11, "n_bands": 1, "min_freq": 7000}
    linear = lnl(tone, RawBoostConfig(n_orders=1, **wide), RATE, np.random.default_rng(0))
    cubic = lnl(tone, RawBoostConfig(n_orders=3, **wide), RATE, np.random.default_rng(0))

    def level(x: np.ndarray, hz: int) -> float:
        return float(np.abs(np.fft.rfft(x * np.hanning(x.size)))[hz])  # 1 Hz bins

    assert level(cubic, 1500) > 100 * level(linear, 1500)


def test_rawboost_isd_changes_few_samples_by_bounded_amounts() -> None:
    config = RawBoostConfig(isd_max_percent=10.0, isd_gain=2.0)
    x = speechlike().astype(np.float64)
    for seed in range(5):
        y = isd(x, config, np.random.default_rng(seed))
        changed = y != x
        assert changed.mean() <= 0.10
        assert np.all(np.abs(y - x) <= 2.0 * np.abs(x) + 1e-12)
    y = isd(x, RawBoostConfig(isd_max_percent=100.0), np.random.default_rng(0))
    assert (y != x).mean() > 0.05


@pytest.mark.parametrize(
    "algorithm", ["lnl", "isd", "ssi", "lnl+isd", "lnl+isd+ssi", "lnl+ssi", "isd+ssi", "lnl|isd"]
)
def test_rawboost_combinations(algorithm: str) -> None:
    config = AugmentConfig(rawboost=RawBoostConfig(enabled=True, algorithm=algorithm))
    x = speechlike(0.5)
    y = build_augmenter(config)(x, np.random.default_rng(0))
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert not np.array_equal(x, y)


def test_rawboost_algorithm_parsing() -> None:
    assert parse_algorithm("lnl+isd|ssi") == [["lnl", "isd"], ["ssi"]]
    with pytest.raises(ValueError, match="unknown RawBoost algorithm"):
        RawBoostConfig(algorithm="lnl+reverb")


@pytest.mark.parametrize(("codec", "bitrate"), [("mp3", 32000), ("aac", 32000), ("opus", 16000)])
def test_codec_round_trip_is_aligned_and_lossy(codec: str, bitrate: int) -> None:
    x = speechlike(1.0)
    y = transcode(x, RATE, codec, bitrate)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert not np.array_equal(x, y)
    assert np.corrcoef(x, y)[0, 1] > 0.8


def test_codec_at_another_rate() -> None:
    rate = 22050
    t = np.arange(rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 2 * t)).astype(np.float32)
    for codec in ("mp3", "aac", "opus"):
        y = transcode(x, rate, codec, 64000)
        assert y.shape == x.shape and np.corrcoef(x, y)[0, 1] > 0.8


def test_align_undoes_a_known_delay() -> None:
    x = speechlike(0.5)
    for delay in (0, 37, 1024):
        delayed = np.concatenate([np.zeros(delay, np.float32), x, np.zeros(100, np.float32)])
        np.testing.assert_array_equal(align(x, delayed, 2000), x)
    early = x[50:]  # decoded signal that starts late (negative lag): zero-filled at the start
    aligned = align(x, early, 2000)
    np.testing.assert_array_equal(aligned[50:], x[50:])


def test_config_round_trip_and_unknown_keys() -> None:
    config = AugmentConfig(
        rawboost=RawBoostConfig(enabled=True, algorithm="lnl|isd"),
        codec=CodecConfig(enabled=True, codecs=("mp3", "opus")),
    )
    as_json = dataclasses.asdict(config)
    as_json["codec"]["codecs"] = list(as_json["codec"]["codecs"])
    assert AugmentConfig.from_dict(as_json) == config
    assert AugmentConfig.from_dict({}) == AugmentConfig()
    with pytest.raises(ValueError, match="unknown option"):
        AugmentConfig.from_dict({"reverb": {}})
    with pytest.raises(ValueError, match="unknown option"):
        AugmentConfig.from_dict({"noise": {"snr": 3}})
    with pytest.raises(ValueError, match="codecs"):
        CodecConfig(codecs=("flac",))


def test_augmenter_is_picklable_for_workers() -> None:
    import pickle

    augment = build_augmenter(ALL_ON["all"])
    clone = pickle.loads(pickle.dumps(augment))
    x = speechlike(0.25)
    assert np.array_equal(clone(x, np.random.default_rng(3)), augment(x, np.random.default_rng(3)))
