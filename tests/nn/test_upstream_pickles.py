"""Whole modules pickled under upstream holocron (``pylocron``) unpickle into our classes and run.

A ``torch.save(model)`` made under upstream names our classes (same qualified names) with the instance state that
upstream's classes had. The attribute sets below are facts recorded from upstream's releases (pylocron 0.3.0, the last
release, unless a case names an older one, by building each class there and listing ``__dict__``, ``_buffers`` and
``_parameters``). Each test crafts such a pickle from one of our modules (its ``__dict__`` replaced by upstream's
attribute set), loads it with ``torch.load`` and compares the forward with the module it came from.
"""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Callable
from typing import Any

import pytest
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

LOSS_INPUTS = {"MutualChannelLoss": (torch.randn(3, 8, 5, 5), torch.randint(0, 4, (3, 5, 5)))}


def _inputs(case_id: str) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    name = case_id.split("-")[0]
    if name in LOSS_INPUTS:
        return LOSS_INPUTS[name]
    if "Loss" in name or name == "ClassBalancedWrapper":
        return torch.randn(3, 4, 5, 5, generator=generator), torch.randint(0, 4, (3, 5, 5), generator=generator)
    return (torch.randn(2, 8 if name != "BlurPool2d" or "k5" not in case_id else 4, 8, 8, generator=generator),)


MODULE_INTERNALS = set(nn.Module().__dict__)


def _as_upstream(module: nn.Module, record: dict[str, Any]) -> nn.Module:
    """A module of our class whose instance state is upstream's, as recorded (built without our ``__init__``)."""
    state = {key: value for key, value in module.__dict__.items() if key in MODULE_INTERNALS}
    for key, value in record["attrs"].items():
        state[key] = value(module) if callable(value) else value
    state["_buffers"] = {key: module._buffers[key] for key in record.get("buffers", module._buffers)}
    state["_parameters"] = {key: module._parameters[key] for key in record.get("parameters", module._parameters)}
    state["_non_persistent_buffers_set"] = set()
    children = record.get("children", {})
    state["_modules"] = {
        name: _as_upstream(child, children[name]) if name in children else child
        for name, child in module._modules.items()
    }
    crafted = type(module).__new__(type(module))
    crafted.__dict__.update(state)  # no __setattr__, no __setstate__: exactly the recorded state
    return crafted


def _layout(module: nn.Module) -> list[tuple[str, set[str], set[str], set[str]]]:
    """Attribute, buffer and parameter names of every submodule."""
    return [(name, set(sub.__dict__), set(sub._buffers), set(sub._parameters)) for name, sub in module.named_modules()]


def _pickle_roundtrip(module: nn.Module) -> nn.Module:
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.mark.parametrize("case_id", list(CASES))
def test_upstream_pickle_loads_and_runs_like_ours(case_id):
    build, record = CASES[case_id]
    reference = build().eval()
    crafted = _as_upstream(copy.deepcopy(reference), record)
    # The crafted state really is upstream's: an attribute or registration of ours is missing from it
    assert _layout(crafted) != _layout(reference)
    loaded = _pickle_roundtrip(crafted).eval()
    inputs = _inputs(case_id)
    with torch.no_grad():
        torch.testing.assert_close(loaded(*inputs), reference(*inputs), rtol=0, atol=0)
    expected_keys = record["state_dict"] if record["state_dict"] is not None else list(reference.state_dict())
    assert list(loaded.state_dict()) == expected_keys
    # Loaded once, it is one of ours: it pickles again, and upstream's checkpoint keys load with strict=True
    again = _pickle_roundtrip(loaded).eval()
    again.load_state_dict(loaded.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(again(*inputs), reference(*inputs), rtol=0, atol=0)


@pytest.mark.parametrize("case_id", ["BlurPool2d", "Involution2d-s2", "LambdaLayer-global", "NLReLU-0.2.1"])
def test_upstream_pickle_scripts(case_id):
    build, record = CASES[case_id]
    reference = build().eval()
    loaded = _pickle_roundtrip(_as_upstream(copy.deepcopy(reference), record)).eval()
    inputs = _inputs(case_id)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(loaded)(*inputs), reference(*inputs))


def test_upstream_blurpool_drops_its_filter_cache_and_moves_its_filter():
    build, record = CASES["BlurPool2d"]
    loaded = _pickle_roundtrip(_as_upstream(build(), record))
    assert not {"_coeffs", "kernel"} & set(loaded.__dict__)
    assert loaded.double().filt.dtype == torch.float64


def test_own_pickles_are_unchanged():
    module = hnn.ClassBalancedWrapper(hnn.PolyLoss(weight=torch.ones(4)), torch.tensor([10, 20, 30, 40]))
    loaded = _pickle_roundtrip(module)
    assert set(loaded.criterion.__dict__) == set(module.criterion.__dict__)
    assert list(loaded.state_dict()) == ["criterion.weight"]
    torch.testing.assert_close(loaded.criterion.weight, module.criterion.weight)
