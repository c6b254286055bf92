"""Training with augmentation and with each model's own window, end to end on tiny data.

The corpus is the one of ``test_train.py`` (0.4 s clips at 8 kHz), smaller: one epoch takes
about a second. Most runs give a short ``--window-seconds``; one run leaves the window to
the model, to check that the checkpoint (and so scoring) gets the model's own window.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepfake_audio.checkpoints import read_metadata
from deepfake_audio.cli import build_parser, main
from deepfake_audio.commands import train as command
from deepfake_audio.models.registry import model_names
from deepfake_audio.training.config import TrainConfig, resume_config
from deepfake_audio.training.run_folder import FINAL_NAME
from tests.test_train import RATE, SMALL_ARGS, make_corpus

COUNTS = {"training": {"fake": 4, "real": 4}, "validation": {"fake": 2, "real": 2}}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("train_augment")


@pytest.fixture(scope="module")
def data_args(workdir: Path) -> list[str]:
    root = make_corpus(workdir / "dataset_root", COUNTS, seed=3)
    return ["--data-root", str(root), "--cache-dir", str(workdir / "cache"), "--epochs", "1"]


@pytest.fixture(scope="module")
def augmented_run(workdir: Path, data_args: list[str]) -> Path:
    run = workdir / "augmented"
    flags = ["--augment", "noise,gain", "--noise-snr", "10,30", "--gain-db=-3,3"]
    assert main(["train", *data_args, *SMALL_ARGS, *flags, "--output-dir", str(run)]) == 0
    return run


def test_train_with_augmentation_end_to_end(augmented_run: Path) -> None:
    config = json.loads((augmented_run / "config.json").read_text())
    assert config["augment"] == {
        "rawboost": {"enabled": False},
        "noise": {"enabled": True, "min_snr_db": 10.0, "max_snr_db": 30.0},
        "codec": {"enabled": False},
        "gain": {"enabled": True, "min_db": -3.0, "max_db": 3.0},
    }
    extra = read_metadata(augmented_run / FINAL_NAME)["extra"]
    assert extra["augment"]["noise"] == {
        "enabled": True,
        "p": 1.0,
        "min_snr_db": 10.0,
        "max_snr_db": 30.0,
        "colour": "white",
    }
    assert extra["augment"]["sample_rate"] == RATE and not extra["augment"]["codec"]["enabled"]
    log = (augmented_run / "train.log").read_text()
    assert "augmenting training windows: noise, gain" in log
    assert "gain augmentation has no effect with normalization 'peak'" in log


def test_resume_refuses_a_changed_augmentation(augmented_run: Path) -> None:
    def flags(*argv: str) -> dict:
        return command.given_options(build_parser().parse_args(["train", *argv]))

    with pytest.raises(ValueError, match=r"cannot change \['augment'\]"):
        resume_config(augmented_run, flags("--augment", "noise"))
    with pytest.raises(ValueError, match=r"cannot change \['augment'\]"):
        resume_config(augmented_run, flags("--noise-snr", "5,30"))
    same = resume_config(augmented_run, flags("--augment", "gain,noise", "--epochs", "2"))
    assert same.epochs == 2 and same.augment_config.noise.max_snr_db == 30.0


def test_augment_config_round_trip_and_errors(tmp_path: Path, monkeypatch) -> None:
    file = tmp_path / "run.toml"
    file.write_text(
        'epochs = 2\n[augment.rawboost]\nalgorithm = "lnl|isd"\nn_bands = 3\n'
        '[augment.codec]\nenabled = true\ncodecs = ["mp3"]\n'
    )
    seen: dict = {}
    monkeypatch.setattr(
        "deepfake_audio.training.train.train", lambda c, resume, **_: seen.setdefault("c", c)
    )
    args = build_parser().parse_args(
        ["train", "--config", str(file), "--augment", "rawboost", "--codec-prob", "0.25"]
    )
    with pytest.raises(AttributeError):  # the stub returns the config, not a TrainResult
        command.run(args)
    config: TrainConfig = seen["c"]
    augment = config.augment_config
    assert augment.rawboost.enabled and augment.rawboost.algorithm == "lnl|isd"
    assert augment.rawboost.n_bands == 3  # the file's detail survives the flags
    assert (
        not augment.codec.enabled and augment.codec.p == 0.25 and augment.codec.codecs == ("mp3",)
    )
    # config.json -> --config gives the same configuration back
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps(config.to_dict()))
    again = TrainConfig.from_dict(json.loads(saved.read_text()))
    assert again == config and again.augment_config == augment
    for bad, message in (
        ({"nosie": {"enabled": True}}, r"unknown option\(s\) \['nosie'\] in augment"),
        ({"noise": {"snr": 3}}, r"unknown option\(s\) \['snr'\] in augment.noise"),
        ({"noise": {"enabled": "yes"}}, "augment.noise.enabled must be bool"),
        ({"noise": True}, "augment.noise must be a table"),
        ({"sample_rate": 8000}, "follows sample_rate"),
    ):
        with pytest.raises(ValueError, match=message):
            TrainConfig.from_dict({"augment": bad})
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--augment", "reverb"])


def test_model_config_may_not_set_the_window() -> None:
    with pytest.raises(ValueError, match="model_config may not set"):
        TrainConfig(model="aasist", model_config={"input_samples": 1000})


@pytest.mark.parametrize(
    ("model", "window"),
    [("seed_cnn", 2.0), ("aasist", 4.0375), ("rawnet2", 4.0375), ("lcnn_lfcc", 4.0375)],
)
def test_the_window_defaults_to_the_model_s_own(model: str, window: float) -> None:
    config = TrainConfig(model=model, sample_rate=RATE)
    assert config.window_seconds == window  # the duration is kept at another rate
    values = config.model_values()
    assert values["input_samples"] == round(window * RATE)
    assert values.get("sample_rate", RATE) == RATE
    assert TrainConfig(model=model, window_seconds=0.5).window_seconds == 0.5  # a given one wins


def test_the_checkpoint_stores_the_model_s_own_window(workdir, data_args) -> None:
    run = workdir / "lcnn_default_window"
    args = list(SMALL_ARGS)
    at = args.index("--window-seconds")
    del args[at : at + 2]  # leave the window to the model
    assert main(["train", *data_args, *args, "--model", "lcnn_lfcc", "--output-dir", str(run)]) == 0
    meta = read_metadata(run / FINAL_NAME)
    assert meta["preprocess"]["window_seconds"] == 4.0375
    assert meta["model_config"]["input_samples"] == round(4.0375 * RATE)
    assert meta["model_config"]["sample_rate"] == RATE
    assert json.loads((run / "config.json").read_text())["window_seconds"] == 4.0375


def test_every_model_trains_one_tiny_epoch(workdir, data_args) -> None:
    """``deepfake-audio train --model NAME`` for every registered model, on 0.3 s windows."""
    args = [a if a != "0.25" else "0.3" for a in SMALL_ARGS]  # aasist needs 2,316 samples
    for name in model_names():
        run = workdir / f"smoke_{name}"
        assert main(["train", *data_args, *args, "--model", name, "--output-dir", str(run)]) == 0
        meta = read_metadata(run / FINAL_NAME)
        assert meta["model"] == name and meta["preprocess"]["window_seconds"] == 0.3
