"""Whole modules pickled under upstream holocron (``pylocron``) unpickle into our classes and run.

A ``torch.save(model)`` made under upstream names our classes (same qualified names) with the instance state that
upstream's classes had (recorded in ``upstream_state``). Each test crafts such a pickle from one of our modules (its
``__dict__`` replaced by upstream's attribute set), loads it with ``torch.load`` and compares the forward with the
module it came from.
"""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn
from upstream_state import CASES, as_upstream

from holocron import nn as hnn

LOSS_INPUTS = {"MutualChannelLoss": (torch.randn(3, 8, 5, 5), torch.randint(0, 4, (3, 5, 5)))}


def _inputs(case_id: str) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    name = case_id.split("-")[0]
    if name in LOSS_INPUTS:
        return LOSS_INPUTS[name]
    if "Loss" in name or name == "ClassBalancedWrapper":
        return torch.randn(3, 4, 5, 5, generator=generator), torch.randint(0, 4, (3, 5, 5), generator=generator)
    return (torch.randn(2, 8 if name != "BlurPool2d" or "k5" not in case_id else 4, 8, 8, generator=generator),)


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
    crafted = as_upstream(copy.deepcopy(reference), record)
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
    loaded = _pickle_roundtrip(as_upstream(copy.deepcopy(reference), record)).eval()
    inputs = _inputs(case_id)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(loaded)(*inputs), reference(*inputs))


def test_upstream_blurpool_drops_its_filter_cache_and_moves_its_filter():
    build, record = CASES["BlurPool2d"]
    loaded = _pickle_roundtrip(as_upstream(build(), record))
    assert not {"_coeffs", "kernel"} & set(loaded.__dict__)
    assert loaded.double().filt.dtype == torch.float64


def test_own_pickles_are_unchanged():
    module = hnn.ClassBalancedWrapper(hnn.PolyLoss(weight=torch.ones(4)), torch.tensor([10, 20, 30, 40]))
    loaded = _pickle_roundtrip(module)
    assert set(loaded.criterion.__dict__) == set(module.criterion.__dict__)
    assert list(loaded.state_dict()) == ["criterion.weight"]
    torch.testing.assert_close(loaded.criterion.weight, module.criterion.weight)
