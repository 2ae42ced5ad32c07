"""holocron.nn.init.init_module: Kaiming-normal convolutions (fan_out), unit/zero normalization layers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from holocron import nn as hnn
from holocron.nn import init
from holocron.nn.init import init_module


def _fill(module: nn.Module, value: float) -> None:
    with torch.no_grad():
        for param in module.parameters():
            param.fill_(value)


def _assert_kaiming_fan_out(weight: torch.Tensor, gain: float) -> None:
    fan_out = weight.shape[0] * weight[0, 0].numel()
    expected_std = gain / math.sqrt(fan_out)
    std = weight.std().item()
    # Enough weights (>= 4096) that the sample std is within 5% of the true one with overwhelming probability.
    assert weight.numel() >= 4096
    assert abs(std - expected_std) < 0.05 * expected_std, (std, expected_std)
    assert abs(weight.mean().item()) < 0.1 * expected_std


def test_importable_both_ways():
    assert init.init_module is init_module
    assert hnn.init.init_module is init_module


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(32, 64, 3),
        nn.Conv1d(32, 64, 5),
        nn.ConvTranspose2d(64, 32, 3),
        hnn.NormConv2d(32, 64, 3),
        hnn.Add2d(32, 64, 3),
    ],
    ids=["Conv2d", "Conv1d", "ConvTranspose2d", "NormConv2d", "Add2d"],
)
@pytest.mark.parametrize("nonlinearity", ["relu", "linear"])
def test_convolutions_get_kaiming_fan_out_and_zero_bias(conv, nonlinearity):
    _fill(conv, 7.0)
    init_module(conv, nonlinearity)
    _assert_kaiming_fan_out(conv.weight, nn.init.calculate_gain(nonlinearity))
    assert torch.equal(conv.bias, torch.zeros_like(conv.bias))


def test_conv_without_bias():
    conv = nn.Conv2d(32, 64, 3, bias=False)
    init_module(conv)
    _assert_kaiming_fan_out(conv.weight, math.sqrt(2.0))
    assert conv.bias is None


@pytest.mark.parametrize(
    "norm",
    [nn.BatchNorm1d(8), nn.BatchNorm2d(8), nn.BatchNorm3d(8), nn.SyncBatchNorm(8), nn.GroupNorm(2, 8)],
    ids=["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "GroupNorm"],
)
def test_normalizations_get_unit_weight_and_zero_bias(norm):
    _fill(norm, 3.0)
    init_module(norm)
    assert torch.equal(norm.weight, torch.ones(8))
    assert torch.equal(norm.bias, torch.zeros(8))


def test_non_affine_normalization_is_accepted():
    init_module(nn.Sequential(nn.BatchNorm2d(4, affine=False), nn.GroupNorm(2, 4, affine=False)))


def test_other_layers_are_untouched():
    linear = nn.Linear(4, 4)
    _fill(linear, 3.0)
    init_module(nn.Sequential(linear, nn.LayerNorm(4)))
    assert torch.equal(linear.weight, torch.full((4, 4), 3.0))


@pytest.mark.parametrize(
    ("module", "convs", "norms"),
    [
        (hnn.Involution2d(64, 3, padding=1), ["reduce", "span"], []),
        (hnn.LambdaLayer(64, 64, 16, r=3), ["to_q", "to_k", "to_v"], ["norm_q", "norm_v"]),
        (hnn.FReLU(64), ["conv"], ["bn"]),
        (hnn.SlimConv2d(64, 3), ["fc1", "fc2", "conv_top", "conv_bot1", "conv_bot2"], ["bn"]),
    ],
    ids=["Involution2d", "LambdaLayer", "FReLU", "SlimConv2d"],
)
def test_nested_layers_are_reached(module, convs, norms):
    _fill(module, 5.0)
    init_module(module)
    for name in convs:
        conv = getattr(module, name)
        assert not torch.all(conv.weight == 5.0), name
        if conv.bias is not None:
            assert torch.equal(conv.bias, torch.zeros_like(conv.bias)), name
    for name in norms:
        norm = getattr(module, name)
        assert torch.equal(norm.weight, torch.ones_like(norm.weight)), name
        assert torch.equal(norm.bias, torch.zeros_like(norm.bias)), name
    # Parameters of non-convolution layers, such as LambdaLayer's relative embedding, keep their value.
    if isinstance(module, hnn.LambdaLayer):
        assert torch.all(module.R == 5.0)


def test_pyconv_levels_are_reached():
    module = hnn.PyConv2d(32, 64, 3, num_levels=2)
    _fill(module, 5.0)
    init_module(module, "relu")
    for conv in module:
        assert not torch.all(conv.weight == 5.0)
        assert torch.equal(conv.bias, torch.zeros_like(conv.bias))


def test_unknown_nonlinearity_is_rejected():
    with pytest.raises(ValueError, match="nonlinearity"):
        init_module(nn.Conv2d(2, 2, 1), "not-an-activation")
