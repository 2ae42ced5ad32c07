"""The losses of holocron.nn against per-sample references written from the papers' formulas."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

from holocron import nn as hnn
from holocron.nn import functional as F

REDUCTIONS = ["none", "mean", "sum"]


def _reduce(losses: torch.Tensor, weights: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / weights.sum()


def _per_position(x: torch.Tensor, target: torch.Tensor):
    """Iterate (logits of one position, its target index, its position in target) over (N, K, ...) inputs."""
    logits = x.movedim(1, -1).reshape(-1, x.shape[1])
    for idx, (row, label) in enumerate(zip(logits, target.flatten(), strict=True)):
        yield row, int(label), idx


def _hard_target_reference(x, target, weight, ignore_index, reduction, position_loss):
    """Reduce ``w_t * position_loss(p, t)`` over the positions, ``p`` being the softmax of a position's logits, ``t``
    its target and ``w_t`` the weight of that class; ignored positions count neither in the sum nor in the weights."""
    losses = torch.zeros(target.numel(), dtype=x.dtype)
    weights = torch.zeros(target.numel(), dtype=x.dtype)
    for row, label, idx in _per_position(x, target):
        if label == ignore_index:
            continue
        w = 1.0 if weight is None else float(weight[label])
        losses[idx] = w * position_loss(torch.softmax(row, 0), label)
        weights[idx] = w
    return _reduce(losses.view(target.shape), weights, reduction)


def _hard_target_inputs(x_shape, with_weight, first_label):
    """float64 logits, class indices (the first one set to ``first_label``) and optional class weights."""
    x = torch.randn(x_shape, dtype=torch.float64)
    target = torch.randint(0, x_shape[1], (x_shape[0], *x_shape[2:]))
    target.view(-1)[0] = first_label
    weight = torch.rand(x_shape[1], dtype=torch.float64) + 0.5 if with_weight else None
    return x, target, weight


def _focal_reference(x, target, weight, ignore_index, reduction, gamma):
    def position_loss(p, label):
        return -((1 - p[label]) ** gamma) * torch.log(p[label])

    return _hard_target_reference(x, target, weight, ignore_index, reduction, position_loss)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize(
    ("x_shape", "with_weight", "ignore_index"),
    [((5, 3), False, -100), ((4, 4, 3, 2), True, 1), ((1, 3), True, -100)],
)
def test_focal_loss_formula(reduction, gamma, x_shape, with_weight, ignore_index):
    x, target, weight = _hard_target_inputs(x_shape, with_weight, 0)
    criterion = hnn.FocalLoss(gamma=gamma, weight=weight, ignore_index=ignore_index, reduction=reduction)
    out = criterion(x, target)
    torch.testing.assert_close(out, _focal_reference(x, target, weight, ignore_index, reduction, gamma))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_focal_loss_without_focusing_is_cross_entropy(reduction):
    x = torch.randn(6, 4, 3)
    target = torch.tensor([[0, 1, 2], [3, 2, 1], [1, 1, 1], [0, 0, 3], [2, 3, 0], [1, 2, 3]])
    weight = torch.tensor([0.2, 1.0, 2.0, 0.7])
    out = hnn.FocalLoss(gamma=0, weight=weight, ignore_index=3, reduction=reduction)(x, target)
    torch.testing.assert_close(out, TF.cross_entropy(x, target, weight, ignore_index=3, reduction=reduction))


def test_loss_weight_conversions():
    assert torch.equal(hnn.FocalLoss(weight=0.3).weight, torch.tensor([0.3, 0.7]))
    assert torch.equal(hnn.FocalLoss(weight=[1.0, 2.0, 3.0]).weight, torch.tensor([1.0, 2.0, 3.0]))
    tensor = torch.tensor([0.5, 1.5])
    criterion = hnn.FocalLoss(weight=tensor)
    assert torch.equal(criterion.weight, tensor)
    assert list(criterion.state_dict()) == ["weight"]
    assert hnn.FocalLoss().weight is None
    assert list(hnn.FocalLoss().state_dict()) == []
    assert criterion.to(torch.float64).weight.dtype == torch.float64


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("x_shape", "with_weight", "ignore_index"), [((4, 3), False, -100), ((3, 4, 2, 2), True, 2)])
def test_multilabel_cross_entropy_formula(reduction, x_shape, with_weight, ignore_index):
    x = torch.randn(x_shape, dtype=torch.float64)
    target = (torch.rand(x_shape) > 0.5).to(torch.float64)
    weight = torch.rand(x_shape[1], dtype=torch.float64) + 0.5 if with_weight else None
    out = hnn.MultiLabelCrossEntropy(weight=weight, ignore_index=ignore_index, reduction=reduction)(x, target)
    expected = torch.zeros(x_shape[0], *x_shape[2:], dtype=torch.float64)
    log_p = torch.log(torch.softmax(x, dim=1))
    for k in range(x_shape[1]):
        if k == ignore_index:
            continue
        expected -= (1.0 if weight is None else weight[k]) * target[:, k] * log_p[:, k]
    expected = {"none": expected, "sum": expected.sum(), "mean": expected.mean()}[reduction]
    torch.testing.assert_close(out, expected)


def _complement_reference(x, target, weight, ignore_index, reduction, gamma):
    num_classes = x.shape[1]

    def position_loss(p, label):
        entropy = 0.0
        for j in range(num_classes):
            if j != label:
                q = p[j] / (1 - p[label])
                entropy -= q * torch.log(q)
        return -torch.log(p[label]) + gamma / (num_classes - 1) * entropy

    return _hard_target_reference(x, target, weight, ignore_index, reduction, position_loss)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("gamma", [-1.0, 0.0, 0.5])
@pytest.mark.parametrize(("x_shape", "with_weight", "ignore_index"), [((5, 4), False, -100), ((3, 3, 2, 3), True, 0)])
def test_complement_cross_entropy_formula(reduction, gamma, x_shape, with_weight, ignore_index):
    x, target, weight = _hard_target_inputs(x_shape, with_weight, 1)
    criterion = hnn.ComplementCrossEntropy(gamma=gamma, weight=weight, ignore_index=ignore_index, reduction=reduction)
    out = criterion(x, target)
    torch.testing.assert_close(out, _complement_reference(x, target, weight, ignore_index, reduction, gamma))


def test_complement_cross_entropy_stays_finite_on_confident_logits():
    x = torch.tensor([[200.0, 0.0, -50.0], [0.0, 0.0, 0.0]], requires_grad=True)
    target = torch.tensor([0, 2])
    out = hnn.ComplementCrossEntropy()(x, target)
    out.backward()
    assert torch.isfinite(out)
    assert torch.isfinite(x.grad).all()


def _mutual_channel_reference(x, target, weight, ignore_index, reduction, xi, alpha, keep):
    """keep: (K, xi) 0/1 channel mask of the channel-wise attention."""
    num_classes = x.shape[1] // xi
    n = x.shape[0]
    logits = torch.zeros(n, num_classes, dtype=x.dtype)
    diversity = torch.zeros(n, dtype=x.dtype)
    for b in range(n):
        for i in range(num_classes):
            group = x[b, i * xi : (i + 1) * xi].reshape(xi, -1)
            # Dropped channels are left out of the cross-channel max (not zeroed): negative responses survive.
            logits[b, i] = group[keep[i].bool()].max(dim=0).values.mean()
            diversity[b] += torch.softmax(group, dim=1).max(dim=0).values.sum() / num_classes
    ce = torch.zeros(n, dtype=x.dtype)
    weights = torch.zeros(n, dtype=x.dtype)
    valid = torch.zeros(n, dtype=x.dtype)
    for b in range(n):
        label = int(target[b])
        if label == ignore_index:
            continue
        w = 1.0 if weight is None else float(weight[label])
        ce[b] = -w * torch.log_softmax(logits[b], 0)[label]
        weights[b] = w
        valid[b] = 1.0
    if reduction == "none":
        return ce - alpha * diversity * valid
    if reduction == "sum":
        return ce.sum() - alpha * (diversity * valid).sum()
    return ce.sum() / weights.sum() - alpha * (diversity * valid).sum() / valid.sum()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("shape", "xi", "with_weight", "ignore_index"),
    [((4, 6, 3, 3), 2, False, -100), ((3, 9, 4, 2), 3, True, 1), ((2, 4, 5), 1, False, -100)],
)
def test_mutual_channel_loss_formula_in_eval(reduction, shape, xi, with_weight, ignore_index):
    x = torch.randn(shape, dtype=torch.float64)
    num_classes = shape[1] // xi
    target = torch.arange(shape[0]) % num_classes
    weight = torch.rand(num_classes, dtype=torch.float64) + 0.5 if with_weight else None
    criterion = hnn.MutualChannelLoss(weight, ignore_index, reduction, xi=xi, alpha=0.7).eval()
    keep = torch.ones(num_classes, xi, dtype=torch.float64)
    expected = _mutual_channel_reference(x, target, weight, ignore_index, reduction, xi, 0.7, keep)
    torch.testing.assert_close(criterion(x, target), expected)


@pytest.mark.parametrize("xi", [2, 3])
def test_mutual_channel_loss_training_drops_half_of_each_group(xi):
    """In training, the loss must be the reference for one of the masks keeping ceil(xi / 2) channels per class."""
    num_classes = 2
    x = torch.randn(3, num_classes * xi, 2, 2, dtype=torch.float64)
    target = torch.tensor([0, 1, 1])
    criterion = hnn.MutualChannelLoss(xi=xi).train()
    kept = math.ceil(xi / 2)
    rows = [
        torch.tensor([1.0 if c in combo else 0.0 for c in range(xi)])
        for combo in itertools.combinations(range(xi), kept)
    ]
    candidates = [
        _mutual_channel_reference(x, target, None, -100, "mean", xi, 1.0, torch.stack(masks).double())
        for masks in itertools.product(rows, repeat=num_classes)
    ]
    seen = set()
    for _ in range(40):
        out = criterion(x, target)
        matches = [idx for idx, value in enumerate(candidates) if torch.allclose(out, value)]
        assert matches, "training loss matches no valid channel mask"
        seen.update(matches)
    assert len(seen) > 1, "the channel mask never changes"


def _dice_reference(x, target, weight, gamma, eps):
    scores = []
    for k in range(x.shape[1]):
        p, g = x[:, k].flatten(), target[:, k].flatten()
        scores.append(((1 + gamma) * (p * g).sum() + eps) / ((p**2).sum() + gamma * (g**2).sum() + eps))
    scores = torch.stack(scores)
    if weight is None:
        return 1 - scores.mean()
    return 1 - (weight * scores).sum() / weight.sum()


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
@pytest.mark.parametrize(("shape", "with_weight"), [((2, 3, 4, 4), False), ((3, 2, 5), True), ((1, 4), False)])
def test_dice_loss_formula(gamma, shape, with_weight):
    x = torch.softmax(torch.randn(shape, dtype=torch.float64), dim=1)
    target = torch.rand(shape, dtype=torch.float64)
    weight = torch.rand(shape[1], dtype=torch.float64) + 0.5 if with_weight else None
    out = hnn.DiceLoss(weight=weight, gamma=gamma)(x, target)
    torch.testing.assert_close(out, _dice_reference(x, target, weight, gamma, 1e-8))


def test_dice_loss_properties():
    target = torch.zeros(2, 3, 4, 4)
    target[:, 0, :2] = 1
    target[:, 1, 2:] = 1
    # A perfect prediction (including the empty class 2) has zero loss
    assert hnn.DiceLoss()(target.clone(), target).abs() < 1e-6
    # Class indices are one-hot encoded
    indices = target.argmax(dim=1)
    x = torch.softmax(torch.randn(2, 3, 4, 4), dim=1)
    torch.testing.assert_close(hnn.DiceLoss()(x, indices), hnn.DiceLoss()(x, target))


def _poly_reference(x, target, weight, ignore_index, reduction, eps):
    def position_loss(p, label):
        return -torch.log(p[label]) + eps * (1 - p[label])

    return _hard_target_reference(x, target, weight, ignore_index, reduction, position_loss)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [0.0, 1.0, 2.0])
@pytest.mark.parametrize(("x_shape", "with_weight", "ignore_index"), [((5, 3), False, -100), ((3, 4, 2, 2), True, 2)])
def test_poly_loss_hard_targets(reduction, eps, x_shape, with_weight, ignore_index):
    x, target, weight = _hard_target_inputs(x_shape, with_weight, 0)
    out = hnn.PolyLoss(weight, ignore_index, reduction, eps=eps)(x, target)
    torch.testing.assert_close(out, _poly_reference(x, target, weight, ignore_index, reduction, eps))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_poly_loss_soft_targets(reduction):
    x = torch.randn(4, 3, 2, dtype=torch.float64)
    target = torch.softmax(torch.randn(4, 3, 2, dtype=torch.float64), dim=1)
    out = hnn.PolyLoss(reduction=reduction, eps=1.5)(x, target)
    p = torch.softmax(x, dim=1)
    per_position = -(target * torch.log(p)).sum(1) + 1.5 * (1 - (target * p).sum(1))
    expected = {"none": per_position, "sum": per_position.sum(), "mean": per_position.mean()}[reduction]
    torch.testing.assert_close(out, expected)
    # One-hot soft targets give the hard-target loss, weights included; 'mean' divides by the number of positions
    # (as cross_entropy with probability targets), not by the sum of the weights as with class indices.
    weight = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    indices = torch.randint(0, 3, (4, 2))
    one_hot = TF.one_hot(indices, 3).movedim(-1, 1).double()
    soft = hnn.PolyLoss(weight, reduction=reduction)(x, one_hot)
    hard = hnn.PolyLoss(weight, reduction="sum" if reduction == "mean" else reduction)(x, indices)
    torch.testing.assert_close(soft, hard / indices.numel() if reduction == "mean" else hard)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("x_shape", [(5, 4), (2, 4, 3, 5)])
def test_poly_loss_soft_targets_follow_cross_entropy(reduction, x_shape):
    """With eps = 0, PolyLoss on probability targets is cross_entropy on them: weights, 'mean' = sum / positions."""
    x = torch.randn(x_shape, dtype=torch.float64)
    target = torch.softmax(torch.randn(x_shape, dtype=torch.float64), dim=1)
    weight = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    out = F.poly_loss(x, target, eps=0.0, weight=weight, reduction=reduction)
    torch.testing.assert_close(out, TF.cross_entropy(x, target, weight=weight, reduction=reduction))
    if reduction == "mean":
        positions = target.numel() // target.shape[1]
        torch.testing.assert_close(out, F.poly_loss(x, target, eps=0.0, weight=weight, reduction="sum") / positions)
    if reduction == "none":
        assert out.shape == (x_shape[0], *x_shape[2:])


def test_poly_loss_soft_targets_ignore_index_drops_the_class():
    x = torch.randn(3, 4, dtype=torch.float64)
    target = torch.softmax(torch.randn(3, 4, dtype=torch.float64), dim=1)
    kept = target.clone()
    kept[:, 2] = 0.0
    torch.testing.assert_close(F.poly_loss(x, target, ignore_index=2), F.poly_loss(x, kept))
    assert not torch.allclose(F.poly_loss(x, target, ignore_index=2), F.poly_loss(x, target))
    # Out of [0, K): nothing to drop
    torch.testing.assert_close(F.poly_loss(x, target, ignore_index=4), F.poly_loss(x, target))


def test_class_balanced_wrapper_sets_effective_number_weights():
    num_samples = torch.tensor([10, 100, 1000])
    beta = 0.99
    expected = torch.tensor([(1 - beta) / (1 - beta**n) for n in (10, 100, 1000)])
    x, target = torch.randn(8, 3), torch.randint(0, 3, (8,))

    wrapped = hnn.ClassBalancedWrapper(hnn.FocalLoss(), num_samples, beta)
    torch.testing.assert_close(wrapped.criterion.weight, expected)
    torch.testing.assert_close(wrapped(x, target), hnn.FocalLoss(weight=expected)(x, target))
    # Upstream's wrapper keeps these weights out of the state_dict (recorded with pylocron 0.3.0), so checkpoints
    # load with strict=True both ways; they still follow the module's dtype and device.
    assert list(wrapped.state_dict()) == []
    assert wrapped.double().criterion.weight.dtype == torch.float64

    # A torch criterion whose weight buffer is None
    wrapped = hnn.ClassBalancedWrapper(nn.CrossEntropyLoss(), num_samples, beta)
    torch.testing.assert_close(wrapped(x, target), TF.cross_entropy(x, target, expected))
    assert list(wrapped.state_dict()) == ["criterion.weight"]  # torch's persistent buffer, as upstream

    # Existing class weights are multiplied
    base = torch.tensor([1.0, 2.0, 3.0])
    wrapped = hnn.ClassBalancedWrapper(hnn.PolyLoss(base.clone()), num_samples, beta)
    torch.testing.assert_close(wrapped.criterion.weight, base * expected)
    assert list(wrapped.state_dict()) == ["criterion.weight"]


def test_class_balanced_wrapper_errors():
    with pytest.raises(TypeError, match="criterion"):
        hnn.ClassBalancedWrapper(nn.L1Loss(), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="beta"):
        hnn.ClassBalancedWrapper(hnn.FocalLoss(), torch.tensor([1, 2]), beta=1.0)
    with pytest.raises(ValueError, match="num_samples"):
        hnn.ClassBalancedWrapper(hnn.FocalLoss(), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="shape"):
        hnn.ClassBalancedWrapper(hnn.FocalLoss(weight=[1.0, 2.0, 3.0]), torch.tensor([1, 2]))


def _loss_cases():
    x = torch.randn(4, 6, 3, 3)
    hard = torch.tensor([0, 2, 1, 2])
    return [
        (hnn.FocalLoss(weight=[1.0, 2.0, 0.5, 1.0, 1.0, 1.0]), x, torch.randint(0, 6, (4, 3, 3))),
        (hnn.MultiLabelCrossEntropy(), x, torch.rand(4, 6, 3, 3)),
        (hnn.ComplementCrossEntropy(ignore_index=1), x, torch.randint(0, 6, (4, 3, 3))),
        (hnn.MutualChannelLoss(xi=2).eval(), x, hard),
        (hnn.DiceLoss(weight=[1.0, 2.0, 1.0, 1.0, 1.0, 1.0]), torch.softmax(x, 1), torch.randint(0, 6, (4, 3, 3))),
        (hnn.PolyLoss(reduction="sum"), x, torch.randint(0, 6, (4, 3, 3))),
        (hnn.PolyLoss(), x, torch.softmax(torch.randn(4, 6, 3, 3), 1)),
        (
            hnn.ClassBalancedWrapper(hnn.FocalLoss(), torch.tensor([5, 6, 7, 8, 9, 10])),
            x,
            torch.randint(0, 6, (4, 3, 3)),
        ),
    ]


@pytest.mark.parametrize(("criterion", "x", "target"), _loss_cases())
def test_losses_script_roundtrip_and_gradients(criterion, x, target, script_roundtrip):
    scripted = script_roundtrip(criterion)
    torch.testing.assert_close(scripted(x, target), criterion(x, target))
    x = x.clone().requires_grad_(True)
    criterion(x, target).backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


def test_loss_bases():
    for cls in (
        hnn.FocalLoss,
        hnn.MultiLabelCrossEntropy,
        hnn.ComplementCrossEntropy,
        hnn.MutualChannelLoss,
        hnn.DiceLoss,
        hnn.PolyLoss,
    ):
        assert cls.__bases__ == (hnn.Loss,)
    assert hnn.Loss.__bases__ == (nn.Module,)
    assert hnn.ClassBalancedWrapper.__bases__ == (nn.Module,)


@pytest.mark.parametrize(
    ("factory", "error", "argument"),
    [
        (lambda: hnn.Loss(reduction="avg"), NotImplementedError, "reduction"),
        (lambda: hnn.FocalLoss(reduction="max"), NotImplementedError, "reduction"),
        (lambda: hnn.FocalLoss(gamma=-1.0), ValueError, "gamma"),
        (lambda: hnn.FocalLoss(weight="heavy"), TypeError, "weight"),
        (lambda: hnn.FocalLoss(weight=torch.ones(2, 2)), ValueError, "weight"),
        (lambda: hnn.MutualChannelLoss(xi=0), ValueError, "xi"),
        (lambda: hnn.DiceLoss(gamma=0.0), ValueError, "gamma"),
    ],
)
def test_loss_construction_errors(factory, error, argument):
    with pytest.raises(error, match=argument):
        factory()


@pytest.mark.parametrize(
    ("criterion", "x", "target", "match"),
    [
        (hnn.FocalLoss(), torch.randn(4, 3), torch.randint(0, 3, (5,)), "target"),
        (hnn.FocalLoss(), torch.randn(4, 3), torch.rand(4), "int64"),
        (hnn.FocalLoss(weight=[1.0, 2.0]), torch.randn(4, 3), torch.randint(0, 3, (4,)), "weight"),
        (hnn.MultiLabelCrossEntropy(), torch.randn(4, 3), torch.rand(4, 2), "target"),
        (hnn.ComplementCrossEntropy(), torch.randn(4, 1), torch.zeros(4, dtype=torch.long), "2 classes"),
        (hnn.MutualChannelLoss(xi=2), torch.randn(4, 5, 2, 2), torch.zeros(4, dtype=torch.long), "xi"),
        (hnn.PolyLoss(), torch.randn(4, 3), torch.rand(4, 2), "target"),
    ],
)
def test_loss_forward_errors(criterion, x, target, match):
    with pytest.raises((ValueError, TypeError), match=match):
        criterion(x, target)
