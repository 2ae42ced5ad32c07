"""HardMish, NLReLU and FReLU against their formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from holocron import nn as hnn
from holocron.nn import functional as F


def _hard_mish_reference(value: float) -> float:
    return value / 2 * min(2.0, max(0.0, value + 2))


def _nl_relu_reference(value: float, beta: float) -> float:
    return math.log(1 + beta * max(0.0, value))


@pytest.mark.parametrize("shape", [(1, 3), (2, 3, 5, 7)])
def test_hard_mish_formula(shape):
    x = torch.randn(shape, dtype=torch.float64) * 3
    out = hnn.HardMish()(x)
    expected = torch.tensor([_hard_mish_reference(v) for v in x.flatten().tolist()], dtype=torch.float64)
    assert out.shape == x.shape
    torch.testing.assert_close(out.flatten(), expected)


@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_nl_relu_formula(beta):
    x = torch.randn(2, 4, 3, dtype=torch.float64) * 3
    out = hnn.NLReLU(beta)(x)
    expected = torch.tensor([_nl_relu_reference(v, beta) for v in x.flatten().tolist()], dtype=torch.float64)
    torch.testing.assert_close(out.flatten(), expected)


@pytest.mark.parametrize("module", [hnn.HardMish(inplace=True), hnn.NLReLU(2.0, inplace=True)])
def test_inplace_activations_overwrite_their_input(module):
    x = torch.randn(2, 3, 4, 4)
    expected = type(module)(**({"beta": module.beta} if isinstance(module, hnn.NLReLU) else {}))(x.clone())
    out = module(x)
    assert out.data_ptr() == x.data_ptr()
    torch.testing.assert_close(x, expected)


def test_functional_forms_match_modules():
    x = torch.randn(3, 5)
    torch.testing.assert_close(F.hard_mish(x), hnn.HardMish()(x))
    torch.testing.assert_close(F.nl_relu(x, 0.7), hnn.NLReLU(0.7)(x))


@pytest.mark.parametrize(("in_channels", "kernel_size", "shape"), [(3, 3, (2, 3, 7, 5)), (4, 5, (1, 4, 6, 6))])
def test_frelu_is_max_of_input_and_depthwise_context(in_channels, kernel_size, shape):
    module = hnn.FReLU(in_channels, kernel_size).eval()
    with torch.no_grad():
        module.bn.running_mean.uniform_(-1, 1)
        module.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(shape)
    out = module(x)
    # Depthwise correlation, written out tap by tap
    pad = kernel_size // 2
    padded = nn.functional.pad(x, [pad, pad, pad, pad])
    context = torch.zeros_like(x)
    for i in range(kernel_size):
        for j in range(kernel_size):
            tap = module.conv.weight[:, 0, i, j].view(1, -1, 1, 1)
            context += tap * padded[:, :, i : i + shape[2], j : j + shape[3]]
    context += module.conv.bias.view(1, -1, 1, 1)
    bn = module.bn
    context = (context - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1) + bn.eps)
    context = context * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    assert out.shape == x.shape
    torch.testing.assert_close(out, torch.maximum(x, context))


def test_activations_script_roundtrip(script_roundtrip):
    x = torch.randn(2, 3, 5, 5)
    for module in (hnn.HardMish(), hnn.NLReLU(0.5), hnn.FReLU(3).eval()):
        torch.testing.assert_close(script_roundtrip(module)(x), module(x))
    for module in (hnn.HardMish(inplace=True), hnn.NLReLU(inplace=True)):
        expected = module(x.clone())
        torch.testing.assert_close(script_roundtrip(module)(x.clone()), expected)


def test_frelu_gradients_and_state_dict(assert_grads_reach_params):
    module = hnn.FReLU(3)
    assert_grads_reach_params(module, torch.randn(2, 3, 6, 6))
    assert list(module.state_dict()) == [
        "conv.weight",
        "conv.bias",
        "bn.weight",
        "bn.bias",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
    ]
    assert module.conv.weight.shape == (3, 1, 3, 3)
    assert list(hnn.HardMish().state_dict()) == []
    assert list(hnn.NLReLU().state_dict()) == []


def test_activation_bases():
    from holocron.nn.modules.activation import _Activation

    assert isinstance(hnn.HardMish(), _Activation)
    assert isinstance(hnn.NLReLU(), _Activation)
    assert type(hnn.FReLU(2)).__bases__ == (nn.Module,)


@pytest.mark.parametrize(
    ("factory", "argument"),
    [
        (lambda: hnn.NLReLU(beta=0.0), "beta"),
        (lambda: hnn.NLReLU(beta=-1.0), "beta"),
        (lambda: hnn.FReLU(0), "in_channels"),
        (lambda: hnn.FReLU(3, kernel_size=4), "kernel_size"),
    ],
)
def test_construction_errors_name_the_argument(factory, argument):
    with pytest.raises(ValueError, match=argument):
        factory()
