"""Drop-in behaviour documented by the reference holocron.nn: shapes, dense targets, stored weights, error types."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

from holocron import nn as hnn
from holocron.nn import functional as F

HARD_TARGET_LOSSES = [
    ("FocalLoss", lambda **kw: hnn.FocalLoss(**kw)),
    ("ComplementCrossEntropy", lambda **kw: hnn.ComplementCrossEntropy(**kw)),
    ("PolyLoss", lambda **kw: hnn.PolyLoss(**kw)),
    ("MutualChannelLoss", lambda **kw: hnn.MutualChannelLoss(xi=2, **kw)),
]


@pytest.mark.parametrize(("name", "build"), HARD_TARGET_LOSSES, ids=[name for name, _ in HARD_TARGET_LOSSES])
@pytest.mark.parametrize("spatial", [(), (3,), (3, 5)], ids=["2D", "3D", "4D"])
def test_reduction_none_keeps_the_target_shape(name, build, spatial):
    channels = 8 if name == "MutualChannelLoss" else 4
    x = torch.randn(2, channels, *spatial)
    target = torch.randint(0, 4, (2, *spatial))
    criterion = build(reduction="none").eval()
    out = criterion(x, target)
    assert out.shape == target.shape
    torch.testing.assert_close(build(reduction="sum").eval()(x, target), out.sum())


@pytest.mark.parametrize("spatial", [(), (3, 5)], ids=["2D", "4D"])
def test_soft_target_losses_reduction_none_keeps_the_position_shape(spatial):
    x = torch.randn(2, 4, *spatial)
    target = torch.softmax(torch.randn(2, 4, *spatial), dim=1)
    expected = (2, *spatial)
    assert hnn.PolyLoss(reduction="none")(x, target).shape == expected
    assert hnn.MultiLabelCrossEntropy(reduction="none")(x, target).shape == expected


def test_poly_loss_soft_mean_is_sum_over_batch_size():
    x = torch.randn(6, 5, dtype=torch.float64)
    target = torch.softmax(torch.randn(6, 5, dtype=torch.float64), dim=1)
    weight = torch.rand(5, dtype=torch.float64) + 0.5
    mean = hnn.PolyLoss(weight, reduction="mean")(x, target)
    torch.testing.assert_close(mean, hnn.PolyLoss(weight, reduction="sum")(x, target) / 6)


def _mutual_channel_dense_reference(x, target, ignore_index, xi, alpha):
    """Per-position loss written from the definition, eval mode (no channel dropping), loops over everything."""
    n, channels, h, w = x.shape
    num_classes = channels // xi
    out = torch.zeros(n, h, w, dtype=x.dtype)
    for b in range(n):
        valid = target[b] != ignore_index
        for i in range(h):
            for j in range(w):
                if not valid[i, j]:
                    continue
                logits = x[b, :, i, j].reshape(num_classes, xi).max(dim=1).values
                out[b, i, j] = -torch.log_softmax(logits, 0)[target[b, i, j]]
        for k in range(num_classes):
            group = x[b, k * xi : (k + 1) * xi][:, valid]  # (xi, valid positions)
            share = torch.softmax(group, dim=1).max(dim=0).values / num_classes
            out[b][valid] -= alpha * share
    return out


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_mutual_channel_loss_accepts_dense_targets(reduction):
    x = torch.randn(2, 6, 3, 4, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 3, (2, 3, 4))
    target[0, 0] = 255
    criterion = hnn.MutualChannelLoss(ignore_index=255, reduction=reduction, xi=2, alpha=0.5).eval()
    out = criterion(x, target)
    per_position = _mutual_channel_dense_reference(x.detach(), target, 255, 2, 0.5)
    valid = target != 255
    expected = {
        "none": per_position,
        "sum": per_position.sum(),
        # cross-entropy averaged over the positions that count, diversity averaged over the samples
        "mean": None,
    }[reduction]
    if reduction == "mean":
        ce = per_position + 0.5 * _diversity_share(x.detach(), target, 255, 2)
        expected = ce.sum() / valid.sum() - (ce - per_position).sum() / 2
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad.permute(0, 2, 3, 1)[~valid] == 0).all()


def _diversity_share(x, target, ignore_index, xi):
    return _mutual_channel_dense_reference(x, target, ignore_index, xi, 0.0) - _mutual_channel_dense_reference(
        x, target, ignore_index, xi, 1.0
    )


def test_mutual_channel_loss_dense_all_ignored_is_zero():
    x = torch.randn(1, 4, 2, 2, requires_grad=True)
    target = torch.full((1, 2, 2), 255)
    for reduction in ("none", "sum", "mean"):
        out = F.mutual_channel_loss(x, target, ignore_index=255, reduction=reduction)
        assert (out == 0).all()
        out.sum().backward()
        assert (x.grad == 0).all()


def test_mutual_channel_loss_dense_target_shape_is_checked():
    with pytest.raises(ValueError, match="target"):
        F.mutual_channel_loss(torch.randn(2, 4, 3, 3), torch.randint(0, 2, (2, 3, 4)))


def test_class_balanced_wrapper_weight_is_a_state_dict_buffer():
    beta = 0.999
    counts = torch.tensor([1, 30, 500, 2])
    wrapped = hnn.ClassBalancedWrapper(nn.CrossEntropyLoss(), counts, beta)
    # Cui et al., effective number of samples: (1 - beta) / (1 - beta ** n_c), no normalization
    expected = torch.tensor([(1 - beta) / (1 - beta**n) for n in (1, 30, 500, 2)], dtype=torch.float32)
    assert list(wrapped.state_dict()) == ["criterion.weight"]
    torch.testing.assert_close(wrapped.state_dict()["criterion.weight"], expected)
    assert dict(wrapped.named_buffers()).keys() == {"criterion.weight"}
    # ... so it loads back into a fresh wrapper and follows dtype moves
    fresh = hnn.ClassBalancedWrapper(nn.CrossEntropyLoss(), torch.ones(4, dtype=torch.long), beta)
    fresh.load_state_dict(wrapped.state_dict())
    torch.testing.assert_close(fresh.criterion.weight, expected)
    assert fresh.double().criterion.weight.dtype == torch.float64
    x, target = torch.randn(5, 4), torch.randint(0, 4, (5,))
    torch.testing.assert_close(wrapped(x, target), TF.cross_entropy(x, target, weight=expected))


def test_class_balanced_wrapper_multiplies_existing_weights():
    base = torch.tensor([2.0, 0.5])
    wrapped = hnn.ClassBalancedWrapper(hnn.FocalLoss(weight=base.clone()), torch.tensor([10, 100]), 0.9)
    expected = base * torch.tensor([(1 - 0.9) / (1 - 0.9**10), (1 - 0.9) / (1 - 0.9**100)])
    torch.testing.assert_close(wrapped.criterion.weight, expected)
    assert list(wrapped.state_dict()) == ["criterion.weight"]


@pytest.mark.parametrize(
    "call",
    [
        lambda: F.concat_downsample2d(torch.randn(1, 2, 4, 4), 3),
        lambda: hnn.ConcatDownsample2d(3)(torch.randn(1, 2, 6, 4)),
    ],
    ids=["functional", "module"],
)
def test_concat_downsample_size_error_is_an_assertion_error(call):
    with pytest.raises(AssertionError, match="scale_factor") as info:
        call()
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("cls", [hnn.NormConv2d, hnn.Add2d])
def test_conv_layers_take_pairs(cls):
    module = cls(4, 6, (3, 1), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    assert module.kernel_size == (3, 1)
    assert module.stride == (2, 1)
    assert module.padding == (1, 0)
    assert module.dilation == (1, 2)
    assert module.weight.shape == (6, 2, 3, 1)
    x = torch.randn(2, 4, 9, 8)
    # Same output size as torch's convolution with those arguments
    reference = nn.Conv2d(4, 6, (3, 1), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    assert module(x).shape == reference(x).shape == (2, 6, 5, 8)


@pytest.mark.parametrize("bad", [(3,), (3, 0), (3, 1, 1), (3.0, 1)])
def test_conv_layers_reject_bad_pairs(bad):
    with pytest.raises(ValueError, match="kernel_size"):
        hnn.NormConv2d(2, 2, bad)
