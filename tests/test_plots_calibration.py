"""plots/calibration.py: both figures write a real PNG, with data and without."""

from __future__ import annotations

import numpy as np
import pytest

from deepfake_audio.plots.calibration import plot_ape, plot_reliability

FAKE, REAL = 0, 1
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _two_models() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    llr = rng.normal(size=300) * 2 + np.where(labels == FAKE, 2.0, -2.0)
    sharp = 1 / (1 + np.exp(-llr))
    overconfident = 1 / (1 + np.exp(-3 * llr))
    return {"sharp": (labels, sharp), "overconfident": (labels, overconfident)}


def _to_llr(curves):
    llrs = {}
    for name, (labels, p_fake) in curves.items():
        p_fake = np.clip(p_fake, 1e-9, 1 - 1e-9)
        llrs[name] = (labels, np.log(p_fake) - np.log1p(-p_fake))
    return llrs


def _assert_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 5_000


@pytest.mark.parametrize("plot", ["reliability", "ape"])
def test_two_models(tmp_path, plot):
    curves = _two_models()
    target = tmp_path / "out" / f"{plot}.png"  # the folder is created too
    if plot == "reliability":
        written = plot_reliability(curves, target, bins=8)
    else:
        written = plot_ape(_to_llr(curves), target)
    assert written == target
    _assert_png(target)
    assert list(target.parent.iterdir()) == [target]  # no temporary file left behind


@pytest.mark.parametrize("plot", [plot_reliability, plot_ape])
def test_one_class_and_no_data_do_not_crash(tmp_path, plot):
    curves = {
        "only fakes": (np.full(5, FAKE), np.linspace(0.1, 0.9, 5)),
        "empty": (np.array([], dtype=int), np.array([])),
    }
    target = plot(curves, tmp_path / "one_class.png")
    _assert_png(target)
    _assert_png(plot({}, tmp_path / "nothing.png"))
