"""The AASIST authors' published models, converted, give the authors' own outputs.

The converted weights are the package's built-in models (``deepfake_audio/pretrained``); the
fixtures (``tests/fixtures/clovaai``, see its README) hold the original code's logits and
read-outs on six inputs and the published configs, so these tests need nothing outside the
repository. Where the published ``.pth`` files are at hand (``CLOVAAI_DIR``) the conversion is
also checked from them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from deepfake_audio.models.clovaai import convert_clovaai_aasist
from deepfake_audio.models.registry import build_model
from deepfake_audio.pretrained import PRETRAINED

FIXTURES = Path(__file__).parent / "fixtures" / "clovaai"
CLOVAAI_DIR = Path("/work/shared/pretrained/clovaai-aasist")  # the published files, if present
PUBLISHED = ("AASIST", "AASIST-L")
TOLERANCE = 1e-4  # on logits and read-outs; measured: about 2e-6 (CPU, float32)

# Our names -> the released code's, for rebuilding a source state dict from the fixtures.
_SOURCE_MODULES = {
    "front_bn": "first_bn",
    "gat_s": "GAT_layer_S",
    "gat_t": "GAT_layer_T",
    "pool_s": "pool_S",
    "pool_t": "pool_T",
    "branches.0.layer1": "HtrgGAT_layer_ST11",
    "branches.0.layer2": "HtrgGAT_layer_ST12",
    "branches.1.layer1": "HtrgGAT_layer_ST21",
    "branches.1.layer2": "HtrgGAT_layer_ST22",
    "branches.0.pool_s": "pool_hS1",
    "branches.0.pool_t": "pool_hT1",
    "branches.1.pool_s": "pool_hS2",
    "branches.1.pool_t": "pool_hT2",
    "out": "out_layer",
}
_SOURCE_PARAMETERS = {
    "position": "pos_S",
    "branches.0.stack": "master1",
    "branches.1.stack": "master2",
}
_SOURCE_INNER = {
    "unused_bn": "bn1",
    "bn": "bn2",  # inside residual blocks only
    "skip": "conv_downsample",
    "with_att": "proj_with_att",
    "without_att": "proj_without_att",
    "proj_t": "proj_type1",
    "proj_s": "proj_type2",
    "att_proj_stack": "att_projM",
    "with_att_stack": "proj_with_attM",
    "without_att_stack": "proj_without_attM",
    "att_weight_stack": "att_weightM",
    "score": "proj",
}


def to_source(ours: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of the conversion: our tensors under the released code's names."""
    source: dict[str, torch.Tensor] = {}
    for key, tensor in ours.items():
        if key in _SOURCE_PARAMETERS:
            source[_SOURCE_PARAMETERS[key]] = tensor
            continue
        if key.startswith("encoder."):
            _, block, head, *rest = key.split(".")
            inner = _SOURCE_INNER.get(head, head)
            source[".".join(["encoder", block, "0", inner, *rest])] = tensor
            continue
        module = next(
            m for m in sorted(_SOURCE_MODULES, key=len, reverse=True) if key.startswith(m + ".")
        )
        head, _, tail = key[len(module) + 1 :].partition(".")
        prefix = _SOURCE_MODULES[module]
        if head == "att_weights":  # rows T-T, S-S, mixed -> three (out_dim, 1) columns
            for row, leaf in zip(
                tensor, ("att_weight11", "att_weight22", "att_weight12"), strict=True
            ):
                source[f"{prefix}.{leaf}"] = row.reshape(-1, 1).clone()
            continue
        inner = head if head == "bn" else _SOURCE_INNER.get(head, head)
        source[f"{prefix}.{inner}" + (f".{tail}" if tail else "")] = tensor
    return source


@pytest.fixture(scope="module")
def configs() -> dict[str, Any]:
    return json.loads((FIXTURES / "configs.json").read_text())


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "reference_outputs.npz") as data:
        return {key: data[key] for key in data.files}


def fixture_tensors(name: str) -> dict[str, torch.Tensor]:
    """The built-in converted weights of our architecture ``name``."""
    return load_file(PRETRAINED[f"{name}-asvspoof2019"].path)


def source_state(published: str, configs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The published state dict: the .pth when at hand, else rebuilt from the fixture."""
    path = CLOVAAI_DIR / f"{published}.pth"
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    return to_source(fixture_tensors(configs[published]["name"]))


@pytest.mark.parametrize("published", PUBLISHED)
def test_converted_models_give_the_reference_outputs(
    published: str, configs: dict[str, Any], reference: dict[str, np.ndarray]
) -> None:
    entry = configs[published]
    model = build_model(entry["name"], entry["config"]).eval()
    model.load_state_dict(fixture_tensors(entry["name"]), strict=True)
    audio = torch.from_numpy(reference["inputs"])
    assert audio.shape == (6, 64600)
    with torch.no_grad():
        hidden, logits = model.embed(audio), model(audio)
    np.testing.assert_allclose(
        logits.numpy(), reference[f"{published}_logits"], rtol=0, atol=TOLERANCE
    )
    np.testing.assert_allclose(
        hidden.numpy(), reference[f"{published}_hidden"], rtol=0, atol=TOLERANCE
    )


@pytest.mark.parametrize("published", PUBLISHED)
def test_conversion_gives_the_fixture_tensors(published: str, configs: dict[str, Any]) -> None:
    entry = configs[published]
    name, config, tensors = convert_clovaai_aasist(
        source_state(published, configs), entry["source_config"]
    )
    assert name == entry["name"] == {"AASIST": "aasist", "AASIST-L": "aasist_l"}[published]
    # the published settings are our defaults, and the config is what build_model accepts
    assert config == {k: tuple(v) if isinstance(v, list) else v for k, v in entry["config"].items()}
    assert build_model(name).config == build_model(name, config).config
    expected = fixture_tensors(name)
    assert tensors.keys() == expected.keys()
    for key, tensor in tensors.items():
        assert tensor.dtype == expected[key].dtype, key
        assert torch.equal(tensor, expected[key]), key


def test_round_trip_of_the_inverse_mapping(configs: dict[str, Any]) -> None:
    """The test's own inverse renaming is exact, so the rebuilt source is a fair stand-in."""
    entry = configs["AASIST-L"]
    source = to_source(fixture_tensors(entry["name"]))
    assert len(source) == 229  # the released AASIST-L state dict's size
    _, _, tensors = convert_clovaai_aasist(source, entry["source_config"])
    assert all(torch.equal(t, fixture_tensors(entry["name"])[k]) for k, t in tensors.items())


def test_missing_or_extra_key_is_a_clear_error(configs: dict[str, Any]) -> None:
    entry = configs["AASIST-L"]
    source = source_state("AASIST-L", configs)
    missing = {k: v for k, v in source.items() if k != "GAT_layer_T.att_weight"}
    with pytest.raises(ValueError, match=r"unfilled key\(s\) of ours \['gat_t\.att_weight'\]"):
        convert_clovaai_aasist(missing, entry["source_config"])
    extra = dict(source) | {"master3": torch.zeros(1, 1, 24)}
    with pytest.raises(ValueError, match=r"unused source key\(s\) \['master3'\]"):
        convert_clovaai_aasist(extra, entry["source_config"])
    pair = {k: v for k, v in source.items() if k != "HtrgGAT_layer_ST12.att_weight22"}
    with pytest.raises(ValueError, match=r"HtrgGAT_layer_ST12\.att_weight11"):
        convert_clovaai_aasist(pair, entry["source_config"])
    reshaped = dict(source) | {"out_layer.weight": torch.zeros(2, 128)}
    with pytest.raises(ValueError, match=r"out_layer\.weight has shape \(2, 128\)"):
        convert_clovaai_aasist(reshaped, entry["source_config"])
    with pytest.raises(ValueError, match="unknown key"):
        convert_clovaai_aasist(source, entry["source_config"] | {"nb_layers": 3})


def test_other_settings_build_an_explicit_aasist(configs: dict[str, Any]) -> None:
    """Settings that are neither published model's: ``aasist`` with the config spelled out."""
    settings = dict(configs["AASIST-L"]["source_config"]) | {"temperatures": [1.0, 1.0, 50.0, 50.0]}
    name, config, tensors = convert_clovaai_aasist(source_state("AASIST-L", configs), settings)
    assert name == "aasist"
    assert config["temperatures"] == (1.0, 1.0, 50.0, 50.0)
    assert config["encoder_channels"] == (32, 32, 24, 24, 24, 24)
    build_model(name, config).load_state_dict(tensors, strict=True)
