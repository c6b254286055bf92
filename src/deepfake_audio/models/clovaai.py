"""Convert the AASIST authors' published weights (github.com/clovaai/aasist) to our ``aasist``.

The authors released AASIST and AASIST-L as PyTorch state dicts of their ``models/AASIST.py``
plus a ``model_config`` (``filts``, ``gat_dims``, ``pool_ratios``, ``temperatures``,
``first_conv``, ``nb_samp``). Our :mod:`deepfake_audio.models.aasist` computes what that code
computes, under our own parameter names; this module maps their names and settings onto ours.

Why so strict: a renamed or reshaped tensor that silently kept its random initialisation
would give a model that runs but does not detect anything. So every source tensor must land
in exactly one of ours, every one of ours must be filled, and shapes must agree; anything
else is a :class:`ValueError` that names the keys. Pure tensor work, no file access: the
caller reads the ``.pth`` (``torch.load(..., weights_only=True)``) and the JSON.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import torch

from deepfake_audio.models.aasist import AASIST, AASISTConfig, AASISTLConfig

#: The source config's keys (clovaai ``model_config``); ``architecture`` must be "AASIST".
CONFIG_KEYS = frozenset(
    {"architecture", "nb_samp", "first_conv", "filts", "gat_dims", "pool_ratios", "temperatures"}
)

# Source module prefix -> ours. The four HS-GALs are ST<branch><layer>; their graph pools
# pool_h<S|T><branch>; master<branch> is the branch's stack node.
_MODULES = {
    "first_bn": "front_bn",
    "GAT_layer_S": "gat_s",
    "GAT_layer_T": "gat_t",
    "pool_S": "pool_s",
    "pool_T": "pool_t",
    "HtrgGAT_layer_ST11": "branches.0.layer1",
    "HtrgGAT_layer_ST12": "branches.0.layer2",
    "HtrgGAT_layer_ST21": "branches.1.layer1",
    "HtrgGAT_layer_ST22": "branches.1.layer2",
    "pool_hS1": "branches.0.pool_s",
    "pool_hT1": "branches.0.pool_t",
    "pool_hS2": "branches.1.pool_s",
    "pool_hT2": "branches.1.pool_t",
    "out_layer": "out",
}
_PARAMETERS = {"pos_S": "position", "master1": "branches.0.stack", "master2": "branches.1.stack"}
# Submodule / parameter names inside a module, source -> ours (absent: the same name).
_INNER = {
    # residual blocks
    "bn1": "unused_bn",
    "bn2": "bn",
    "conv_downsample": "skip",
    # graph attention layers
    "proj_with_att": "with_att",
    "proj_without_att": "without_att",
    "proj_type1": "proj_t",
    "proj_type2": "proj_s",
    "att_projM": "att_proj_stack",
    "proj_with_attM": "with_att_stack",
    "proj_without_attM": "without_att_stack",
    "att_weightM": "att_weight_stack",
    # graph pools
    "proj": "score",
}
# An HS-GAL's three pair-type weight vectors (out_dim, 1) become the rows of our
# ``att_weights`` (3, out_dim), in our order T-T, S-S, mixed.
_PAIR_WEIGHTS = ("att_weight11", "att_weight22", "att_weight12")
_SOURCE_OF = {ours: source for source, ours in _MODULES.items()}
_ENCODER = re.compile(r"encoder\.(\d+)\.0\.(.+)")


def _target_name(key: str) -> str | None:
    """Our name for source tensor ``key`` (None: not a tensor of the released model)."""
    if key in _PARAMETERS:
        return _PARAMETERS[key]
    match = _ENCODER.fullmatch(key)
    if match:
        module, rest = f"encoder.{match[1]}", match[2]
    else:
        module, _, rest = key.partition(".")
        if module not in _MODULES or not rest:
            return None
        module = _MODULES[module]
    head, dot, tail = rest.partition(".")
    return f"{module}.{_INNER.get(head, head)}{dot}{tail}"


def _convert_config(config: Mapping[str, Any]) -> AASISTConfig:
    """Our config for a clovaai ``model_config``; ValueError for what ours cannot express."""
    unknown = set(config) - CONFIG_KEYS
    missing = CONFIG_KEYS - {"architecture", "nb_samp"} - set(config)
    if unknown or missing:
        raise ValueError(
            f"clovaai model_config: unknown key(s) {sorted(unknown)}, missing {sorted(missing)}"
        )
    if config.get("architecture", "AASIST") != "AASIST":
        raise ValueError(f"clovaai model_config: architecture {config['architecture']!r}")
    filts = config["filts"]
    if len(filts) != 5 or any(len(pair) != 2 for pair in filts[1:]):
        raise ValueError(f"clovaai model_config: filts {filts!r} is not [n, [a, b] x 4]")
    pairs = [tuple(int(c) for c in pair) for pair in filts[1:]]
    # the six blocks are built from filts[1], [2], [3], [4], [4], [4]: widths must chain
    blocks = [pairs[0], pairs[1], pairs[2], pairs[3], pairs[3], pairs[3]]
    widths = [1] + [out for _, out in blocks]
    if [inp for inp, _ in blocks] != widths[:-1]:
        raise ValueError(f"clovaai model_config: filts {filts!r} do not chain from 1 channel")
    return AASISTConfig(
        input_samples=int(config.get("nb_samp", AASISTConfig.input_samples)),
        sinc_filters=int(filts[0]),
        sinc_kernel=int(config["first_conv"]),
        encoder_channels=tuple(widths[1:]),
        gat_dims=tuple(int(d) for d in config["gat_dims"]),  # type: ignore[arg-type]
        pool_ratios=tuple(float(r) for r in config["pool_ratios"]),  # type: ignore[arg-type]
        temperatures=tuple(float(t) for t in config["temperatures"]),  # type: ignore[arg-type]
    )


def _registry_choice(ours: AASISTConfig) -> tuple[str, dict[str, Any]]:
    """``aasist_l`` or ``aasist`` when the config is that model's default, else ``aasist``."""
    values = dataclasses.asdict(ours)
    if values == dataclasses.asdict(AASISTLConfig()):
        return "aasist_l", values
    return "aasist", values


def convert_clovaai_aasist(
    state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any]
) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """A clovaai/aasist state dict and model config -> our (registry name, config, tensors).

    The name is ``aasist_l`` or ``aasist`` when the settings are that model's defaults (the
    two published models are), otherwise ``aasist`` with the settings in the config. The
    config is the full dict :func:`~deepfake_audio.models.registry.config_dict` would give
    (``build_model(name, config)`` accepts it); the tensors load strictly into that model.

    Every source tensor is used exactly once (the three HS-GAL pair weights of a layer become
    the rows of one of ours) and every tensor of ours is filled with the source's shape;
    otherwise ValueError names the offending keys. Floating-point tensors are cast to our
    dtype (float32); the source is not modified.
    """
    ours = _convert_config(config)
    name, values = _registry_choice(ours)
    with torch.device("meta"):  # shapes and dtypes only, nothing allocated
        target = AASIST(ours).state_dict()

    pair_weights: dict[str, dict[str, torch.Tensor]] = {}
    mapped: dict[str, tuple[str, torch.Tensor]] = {}
    unused: list[str] = []
    for key, tensor in state_dict.items():
        module, _, leaf = key.rpartition(".")
        if leaf in _PAIR_WEIGHTS and module in _MODULES:
            pair_weights.setdefault(f"{_MODULES[module]}.att_weights", {})[leaf] = tensor
            continue
        name_ours = _target_name(key)
        # (already mapped: two source names for one of ours, not the released layout)
        if name_ours is None or name_ours not in target or name_ours in mapped:
            unused.append(key)
        else:
            mapped[name_ours] = (key, tensor)
    for name_ours, parts in pair_weights.items():
        if name_ours not in target or set(parts) != set(_PAIR_WEIGHTS):
            source_module = _SOURCE_OF[name_ours.removesuffix(".att_weights")]
            unused += [f"{source_module}.{leaf}" for leaf in sorted(parts)]
            continue
        if any(parts[leaf].dim() != 2 or parts[leaf].shape[1] != 1 for leaf in _PAIR_WEIGHTS):
            shapes = {leaf: tuple(parts[leaf].shape) for leaf in _PAIR_WEIGHTS}
            raise ValueError(f"clovaai state dict: pair weights for {name_ours}: {shapes}")
        stacked = torch.cat([parts[leaf].reshape(1, -1) for leaf in _PAIR_WEIGHTS])
        mapped[name_ours] = (f"{name_ours} <- att_weight11/22/12", stacked)

    missing = sorted(set(target) - set(mapped))
    if unused or missing:
        raise ValueError(
            f"clovaai state dict does not match {name!r}: unused source key(s) {sorted(unused)}; "
            f"unfilled key(s) of ours {missing}"
        )
    converted: dict[str, torch.Tensor] = {}
    for name_ours, (source, tensor) in mapped.items():
        want = target[name_ours]
        if tuple(tensor.shape) != tuple(want.shape):
            raise ValueError(
                f"clovaai state dict: {source} has shape {tuple(tensor.shape)}, "
                f"our {name_ours} needs {tuple(want.shape)}"
            )
        if tensor.is_floating_point() != want.is_floating_point():
            raise ValueError(f"clovaai state dict: {source} is {tensor.dtype}, not {want.dtype}")
        converted[name_ours] = tensor.detach().to("cpu", want.dtype).clone().contiguous()
    return name, values, converted
