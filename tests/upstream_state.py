"""Upstream holocron's (``pylocron``) instance state of our classes, as recorded, and modules crafted with it.

A ``torch.save(model)`` made under upstream names our classes (same qualified names) with the instance state that
upstream's classes had. The attribute sets below are facts recorded from upstream's releases (pylocron 0.3.0, the last
release, unless a case names an older one, by building each class there and listing ``__dict__``, ``_buffers`` and
``_parameters``). :func:`as_upstream` crafts such a module from one of ours.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from holocron import nn as hnn


def _binomial(kernel_size: int) -> torch.Tensor:
    """Upstream's ``BlurPool2d._coeffs``: the row of Pascal's triangle over 2 ** (k - 1), in float64."""
    return torch.tensor([math.comb(kernel_size - 1, i) / 2 ** (kernel_size - 1) for i in range(kernel_size)])


def _plain_weight(module: nn.Module) -> Any:
    """Upstream's losses keep ``weight`` in a plain attribute (not a buffer) when built without one."""
    return module.weight


LOSS_ATTRS = {"ignore_index": -100, "reduction": "mean", "weight": None}

# case id: (our module, upstream's record: plain attributes -> value (or function of our module), buffers,
# parameters, records of children whose state differs too, upstream's state_dict keys)
CASES: dict[str, tuple[Callable[[], nn.Module], dict[str, Any]]] = {
    "BlurPool2d": (
        lambda: hnn.BlurPool2d(8),
        {
            "attrs": {"channels": 8, "kernel_size": 3, "stride": 2, "_coeffs": _binomial(3), "kernel": {}},
            "buffers": [],
            "state_dict": [],
        },
    ),
    "BlurPool2d-k5-s1": (
        lambda: hnn.BlurPool2d(4, kernel_size=5, stride=1),
        {
            "attrs": {"channels": 4, "kernel_size": 5, "stride": 1, "_coeffs": _binomial(5), "kernel": {}},
            "buffers": [],
            "state_dict": [],
        },
    ),
    "Involution2d-s2": (
        lambda: hnn.Involution2d(8, 3, padding=1, stride=2, reduction_ratio=2),
        {
            "attrs": {"groups": 1, "k_size": 3},
            "state_dict": ["reduce.weight", "reduce.bias", "span.weight", "span.bias"],
        },
    ),
    "Involution2d-g2-d2": (
        lambda: hnn.Involution2d(8, 3, padding=2, groups=2, dilation=2),
        {
            "attrs": {"groups": 2, "k_size": 3, "pool": None},
            "state_dict": ["reduce.weight", "reduce.bias", "span.weight", "span.bias"],
        },
    ),
    "LambdaLayer-local": (
        lambda: hnn.LambdaLayer(8, 32, 16, r=13),
        {
            "attrs": {"local_contexts": True, "num_heads": 4, "padding": 6, "u": 1},
            "parameters": ["R"],
            "state_dict": None,  # same keys as ours
        },
    ),
    "LambdaLayer-global": (
        lambda: hnn.LambdaLayer(8, 32, 16, n=64),
        {"attrs": {"local_contexts": False, "num_heads": 4, "u": 1}, "parameters": ["pos_emb"], "state_dict": None},
    ),
    "NLReLU-0.2.1": (lambda: hnn.NLReLU(), {"attrs": {"inplace": False}, "state_dict": []}),
    "FocalLoss": (lambda: hnn.FocalLoss(), {"attrs": {"gamma": 2.0, **LOSS_ATTRS}, "buffers": [], "state_dict": []}),
    "FocalLoss-weighted-0.1.3": (
        lambda: hnn.FocalLoss(weight=[0.2, 0.3, 0.1, 0.4]),
        {"attrs": {"gamma": 2.0, **LOSS_ATTRS, "weight": _plain_weight}, "buffers": [], "state_dict": []},
    ),
    "MutualChannelLoss-0.1.3": (
        lambda: hnn.MutualChannelLoss(xi=2),
        {"attrs": {"chi": 2, "alpha": 1, **LOSS_ATTRS}, "buffers": [], "state_dict": []},
    ),
    "ClassBalancedWrapper-FocalLoss": (
        lambda: hnn.ClassBalancedWrapper(hnn.FocalLoss(), torch.tensor([10, 20, 30, 40])),
        {
            "attrs": {"beta": 0.99},
            "children": {"criterion": {"attrs": {"gamma": 2.0, **LOSS_ATTRS, "weight": _plain_weight}, "buffers": []}},
            "state_dict": [],
        },
    ),
}

MODULE_INTERNALS = set(nn.Module().__dict__)


def as_upstream(module: nn.Module, record: dict[str, Any]) -> nn.Module:
    """A module of our class whose instance state is upstream's, as recorded (built without our ``__init__``)."""
    state = {key: value for key, value in module.__dict__.items() if key in MODULE_INTERNALS}
    for key, value in record["attrs"].items():
        state[key] = value(module) if callable(value) else value
    state["_buffers"] = {key: module._buffers[key] for key in record.get("buffers", module._buffers)}
    state["_parameters"] = {key: module._parameters[key] for key in record.get("parameters", module._parameters)}
    state["_non_persistent_buffers_set"] = set()
    children = record.get("children", {})
    state["_modules"] = {
        name: as_upstream(child, children[name]) if name in children else child
        for name, child in module._modules.items()
    }
    crafted = type(module).__new__(type(module))
    crafted.__dict__.update(state)  # no __setattr__, no __setstate__: exactly the recorded state
    return crafted
