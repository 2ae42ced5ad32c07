"""Shared helpers of the holocron.nn tests, exposed as fixtures."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn


def _script_roundtrip(module: nn.Module) -> torch.jit.ScriptModule:
    """Script ``module``, save it to memory and load it back."""
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(module), buffer)
    buffer.seek(0)
    return torch.jit.load(buffer)


def _assert_grads_reach_params(module: nn.Module, *inputs: Tensor) -> None:
    """Backpropagate a random projection of the output and check every parameter receives a non-zero gradient.

    Runs in eval mode: with batch statistics (training mode) the bias of a convolution feeding a BatchNorm, as in
    FReLU or SlimConv2d's ``fc1``, is mathematically gradient-free and its gradient only rounding noise (or exactly 0).
    """
    was_training = module.training
    module.eval()
    module.zero_grad(set_to_none=True)
    out = module(*inputs)
    module.train(was_training)
    (out * torch.randn_like(out)).sum().backward()
    for name, param in module.named_parameters():
        assert param.grad is not None, f"no gradient reached {name}"
        assert torch.isfinite(param.grad).all(), f"non-finite gradient for {name}"
        assert param.grad.abs().sum() > 0, f"zero gradient for {name}"


def _assert_trains_and_scripts(module: nn.Module, shape: tuple[int, ...]) -> None:
    """On a random input of ``shape``: every parameter receives a gradient, then, in eval mode, the scripted module
    (saved and loaded back) matches the eager one."""
    x = torch.randn(shape)
    _assert_grads_reach_params(module, x)
    module.eval()
    torch.testing.assert_close(_script_roundtrip(module)(x), module(x))


@pytest.fixture
def script_roundtrip() -> Callable[[nn.Module], torch.jit.ScriptModule]:
    return _script_roundtrip


@pytest.fixture
def assert_grads_reach_params() -> Callable[..., None]:
    return _assert_grads_reach_params


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def pytest_collectstart(collector: pytest.Collector) -> None:
    """Seed before each test file is imported: modules built in its parametrize lists must not depend on what was
    collected before (initial weights that leave a ReLU dead would starve a parameter of gradient)."""
    if isinstance(collector, pytest.Module):
        torch.manual_seed(0)


@pytest.fixture
def assert_trains_and_scripts() -> Callable[[nn.Module, tuple[int, ...]], None]:
    return _assert_trains_and_scripts
