"""Upstream names kept for drop-in use: ConcatDownsample2dJit, DropBlock's ``drop_prob``, float32 loss accumulation."""

from __future__ import annotations

import pytest
import torch

from holocron import nn as hnn
from holocron.nn import functional as F


class _Holder(torch.nn.Module):
    """A module that holds the TorchScript class as a value, as scripted code may."""

    def __init__(self) -> None:
        super().__init__()
        self.down = hnn.ConcatDownsample2dJit(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(x)


def test_concat_downsample_jit_matches_the_module_eager_and_scripted():
    x = torch.randn(2, 3, 6, 8)
    expected = hnn.ConcatDownsample2d(2)(x)
    assert torch.equal(hnn.ConcatDownsample2dJit(2)(x), expected)
    assert torch.equal(torch.jit.script(_Holder())(x), expected)
    with pytest.raises(AssertionError):
        hnn.ConcatDownsample2dJit(4)(x)


def test_dropblock_drop_prob_keyword_is_p():
    x = torch.randn(2, 3, 16, 16)
    torch.manual_seed(0)
    expected = F.dropblock2d(x, 0.2, 3)
    torch.manual_seed(0)
    assert torch.equal(F.dropblock2d(x, drop_prob=0.2, block_size=3), expected)
    torch.manual_seed(0)
    assert torch.equal(torch.jit.script(F.dropblock2d)(x, drop_prob=0.2, block_size=3), expected)
    with pytest.raises(ValueError, match="drop_prob"):
        F.dropblock2d(x, 0.2, 3, drop_prob=0.2)
    with pytest.raises(TypeError, match="`p`"):
        F.dropblock2d(x, block_size=3)


def test_dropblock_module_drop_prob_explains_its_removal():
    module = hnn.DropBlock2d(0.1, 7)
    with pytest.raises(AttributeError, match=r"read or set `p` instead"):
        _ = module.drop_prob
    assert not hasattr(module, "drop_prob")
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = module.missing
    torch.jit.script(module)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_dense_losses_accumulate_in_float32(dtype):
    logits = torch.randn(1, 4, 64, 64).to(dtype)
    target = torch.randint(0, 2, (1, 64, 64))
    for loss in (
        lambda x: F.focal_loss(x, target),
        lambda x: F.mutual_channel_loss(x, target, xi=2, training=False),
    ):
        out = loss(logits)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, loss(logits.float()))


@pytest.mark.parametrize("loss", [F.focal_loss, F.poly_loss])
def test_mean_over_nothing_is_zero(loss):
    logits = torch.randn(2, 3, 4, requires_grad=True)
    target = torch.full((2, 4), 255)
    out = loss(logits, target, weight=torch.tensor([0.5, 1.0, 2.0]), ignore_index=255)
    assert out.item() == 0.0
    out.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


# Recorded from pylocron 0.3.0: the public names of holocron.nn (it has no __all__) and holocron.nn.functional.__all__
UPSTREAM_NN = {
    "Add2d", "BlurPool2d", "ClassBalancedWrapper", "ComplementCrossEntropy", "ConcatDownsample2d",
    "ConcatDownsample2dJit", "DiceLoss", "DropBlock2d", "FReLU", "FocalLoss", "GlobalAvgPool2d", "GlobalMaxPool2d",
    "HardMish", "Involution2d", "LambdaLayer", "Loss", "MultiLabelCrossEntropy", "MutualChannelLoss", "NLReLU",
    "NormConv2d", "PolyLoss", "PyConv2d", "SAM", "SPP", "SlimConv2d", "TripletAttention", "ZPool",
    "functional", "init", "modules",
}  # fmt: skip
UPSTREAM_FUNCTIONAL = {
    "add2d", "complement_cross_entropy", "concat_downsample2d", "dice_loss", "dropblock2d", "focal_loss", "hard_mish",
    "multilabel_cross_entropy", "mutual_channel_loss", "nl_relu", "norm_conv2d", "poly_loss", "z_pool",
}  # fmt: skip


def test_every_upstream_name_is_here():
    assert UPSTREAM_NN - set(dir(hnn)) == set()
    assert UPSTREAM_FUNCTIONAL - set(F.__all__) == set()
    assert all(callable(getattr(F, name)) for name in UPSTREAM_FUNCTIONAL)
