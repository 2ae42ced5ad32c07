"""Functional forms of the losses of ``holocron.nn``.

Conventions shared by the losses on hard targets (class indices): ``x`` holds logits of shape (N, K, ...), ``target``
has shape (N, ...), positions whose target equals ``ignore_index`` contribute nothing, each position is weighted by the
weight of its target class, and ``reduction='mean'`` divides the weighted sum by the sum of the weights of the
positions that count, as :func:`torch.nn.functional.cross_entropy` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._utils import check_hard_target, check_reduction

__all__ = [
    "complement_cross_entropy",
    "dice_loss",
    "focal_loss",
    "multilabel_cross_entropy",
    "mutual_channel_loss",
    "poly_loss",
]


def _check_class_weight(weight: Tensor, x: Tensor) -> None:
    """Check that ``weight`` holds one weight per class of ``x`` (N, K, ...)."""
    if weight.dim() != 1 or weight.shape[0] != x.shape[1]:
        raise ValueError(f"weight is expected to have shape ({x.shape[1]},), received shape {weight.shape}")


def _class_weight_view(weight: Tensor, x: Tensor) -> Tensor:
    """``weight`` (K,) viewed as (1, K, 1, ...) to broadcast against ``x`` (N, K, ...)."""
    _check_class_weight(weight, x)
    return weight.to(x.dtype).reshape([1, x.shape[1]] + [1] * (x.dim() - 2))


def _target_weights(x: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int) -> tuple[Tensor, Tensor]:
    """Weight of each target position (0 where ignored) and a copy of ``target`` safe to index with."""
    valid = target != ignore_index
    safe_target = target.masked_fill(~valid, 0)
    if weight is None:
        return valid.to(x.dtype), safe_target
    _check_class_weight(weight, x)
    return weight.to(x.dtype)[safe_target] * valid, safe_target


def _reduce(loss: Tensor, weights: Tensor, reduction: str) -> Tensor:
    """Apply ``reduction`` to already weighted per-position losses; 'mean' divides by the sum of ``weights``.

    When nothing counts (every position ignored or weighted 0) the loss, made of zeros, is returned as 0 for 'mean'
    (not 0 / 0), with a zero gradient, as upstream does.
    """
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        total = weights.sum()
        return loss.sum() / torch.where(total > 0, total, torch.ones_like(total))
    return loss


def _accumulation_dtype(x: Tensor) -> Tensor:
    """``x`` in float32 when it is float16 or bfloat16, so that losses over many positions sum in float32."""
    if x.dtype == torch.float16 or x.dtype == torch.bfloat16:
        return x.float()
    return x


def focal_loss(
    x: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    gamma: float = 2.0,
) -> Tensor:
    r"""Focal loss from `Focal Loss for Dense Object Detection <https://arxiv.org/pdf/1708.02002.pdf>`_.

    .. math::

        FL(p_t) = -\alpha_t (1 - p_t)^\gamma log(p_t)

    where :math:`p_t` is the softmax probability of the target class and :math:`\alpha_t` its class weight.
    With :math:`\gamma = 0` this is :func:`torch.nn.functional.cross_entropy`.

    Args:
        x: logits of shape (N, K, ...)
        target: class indices of shape (N, ...)
        weight: class weights of shape (K,)
        ignore_index: target value that does not contribute to the loss
        reduction: 'none' (shape of ``target``), 'mean' or 'sum'
        gamma: focusing parameter (>= 0)

    Returns:
        the reduced loss
    """
    check_reduction(reduction)
    check_hard_target(x, target)
    x = _accumulation_dtype(x)
    alpha, safe_target = _target_weights(x, target, weight, ignore_index)
    logpt = F.log_softmax(x, dim=1).gather(1, safe_target.unsqueeze(1)).squeeze(1)
    loss = -alpha * (1 - logpt.exp()).pow(gamma) * logpt
    return _reduce(loss, alpha, reduction)


def multilabel_cross_entropy(
    x: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    r"""Cross-entropy against multi-label (or soft) targets.

    .. math::

        \mathcal{L}(x, y) = - \sum_{k \neq ignore\_index} w_k \, y_k \log(softmax(x)_k)

    Args:
        x: logits of shape (N, K, ...)
        target: target scores of shape (N, K, ...)
        weight: class weights of shape (K,)
        ignore_index: class (column) excluded from the loss, if within [0, K)
        reduction: 'none' (shape (N, ...)), 'mean' (average over positions) or 'sum'

    Returns:
        the reduced loss
    """
    check_reduction(reduction)
    if x.dim() < 2 or target.shape != x.shape:
        raise ValueError(f"target is expected to have the shape of the input {x.shape}, received {target.shape}")
    loss = -target * F.log_softmax(x, dim=1)
    if weight is not None:
        loss = loss * _class_weight_view(weight, x)
    if ignore_index >= 0 and ignore_index < x.shape[1]:
        keep = torch.ones(x.shape[1], dtype=x.dtype, device=x.device)
        keep[ignore_index] = 0.0
        loss = loss * _class_weight_view(keep, x)
    loss = loss.sum(dim=1)
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    return loss


def complement_cross_entropy(
    x: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    gamma: float = -1,
) -> Tensor:
    r"""Complement cross entropy from `Imbalanced Image Classification with Complement Cross
    Entropy <https://arxiv.org/pdf/2009.02189.pdf>`_.

    With :math:`p = softmax(x)`, :math:`g` the target class and :math:`K` classes, the probabilities of the other
    classes renormalized as :math:`q_j = \frac{p_j}{1 - p_g}` (:math:`j \neq g`) have the complement entropy
    :math:`\mathcal{C} = - \sum_{j \neq g} q_j \log q_j`, and

    .. math::

        \mathcal{L} = \alpha_g \left(- \log p_g + \frac{\gamma}{K - 1} \mathcal{C}\right)

    The default :math:`\gamma = -1` rewards a flat distribution over the wrong classes (the paper's setting).
    :math:`q` is computed as a softmax over the non-target logits, which stays finite when :math:`p_g` rounds to 1.

    Args:
        x: logits of shape (N, K, ...), K >= 2
        target: class indices of shape (N, ...)
        weight: class weights of shape (K,)
        ignore_index: target value that does not contribute to the loss
        reduction: 'none' (shape of ``target``), 'mean' or 'sum'
        gamma: factor of the complement entropy term

    Returns:
        the reduced loss
    """
    check_reduction(reduction)
    check_hard_target(x, target)
    num_classes = x.shape[1]
    if num_classes < 2:
        raise ValueError(f"complement cross entropy needs at least 2 classes, received input of shape {x.shape}")
    alpha, safe_target = _target_weights(x, target, weight, ignore_index)
    index = safe_target.unsqueeze(1)
    cross_entropy = -F.log_softmax(x, dim=1).gather(1, index).squeeze(1)
    is_target = torch.zeros_like(x, dtype=torch.bool).scatter_(1, index, True)
    log_q = F.log_softmax(x.masked_fill(is_target, float("-inf")), dim=1)
    # exp(-inf) = 0 at the target class; zeroing log_q there keeps 0 * log(0) out of values and gradients.
    complement_entropy = -(log_q.exp() * log_q.masked_fill(is_target, 0.0)).sum(dim=1)
    loss = alpha * (cross_entropy + gamma / (num_classes - 1) * complement_entropy)
    return _reduce(loss, alpha, reduction)


def mutual_channel_loss(
    x: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    xi: int = 2,
    alpha: float = 1.0,
    training: bool = True,
) -> Tensor:
    r"""Mutual-channel loss from `The Devil is in the Channels: Mutual-Channel Loss for Fine-Grained Image
    Classification <https://arxiv.org/pdf/2002.04264.pdf>`_.

    The :math:`K \cdot \xi` feature channels are split into :math:`K` groups :math:`F_i` of :math:`\xi` channels, one
    per class.

    - Discriminality: channel-wise attention (CWA, training only) keeps a random :math:`\lceil \xi / 2 \rceil` channels
    of
      each group, cross-channel max pooling (CCMP) keeps the largest response per position, and global average
      pooling gives one logit per class: :math:`g_i = \frac{1}{HW} \sum_k \max_j M_{i,j} F_{i,j,k}`, scored with
      cross-entropy.
    - Diversity: :math:`\mathcal{L}_{div} = \frac{1}{K} \sum_i \sum_k \max_j softmax_k(F_{i,j})`, the spatial softmax of
      each channel followed by CCMP, summed over positions.

    .. math::

        \mathcal{L}_{MC} = CE(g, y) - \alpha \cdot \mathcal{L}_{div}

    Args:
        x: features of shape (N, K * xi, ...)
        target: class indices of shape (N,), or of shape (N, ...) (the shape of ``x`` without dim 1) for a
            dense prediction, where every position is classified from its own pooled responses
        weight: class weights of shape (K,), used by the cross-entropy term
        ignore_index: target value that does not contribute to the loss
        reduction: 'none' (shape of ``target``), 'mean' or 'sum'; the cross-entropy term follows
            :func:`torch.nn.functional.cross_entropy`, the diversity term is averaged over the samples that count
        xi: number of channels per class
        alpha: weight of the diversity term
        training: whether to apply the random channel-wise attention

    Returns:
        the reduced loss
    """
    check_reduction(reduction)
    if x.dim() < 2:
        raise ValueError(f"input is expected to have shape (N, K * xi, ...), received shape {x.shape}")
    if xi < 1 or x.shape[1] % xi != 0:
        raise ValueError(f"input channels ({x.shape[1]}) are expected to be a multiple of `xi` ({xi})")
    x = _accumulation_dtype(x)
    dense = target.dim() == x.dim() - 1 and target.dim() > 1
    if dense:
        if target.shape[0] != x.shape[0] or target.shape[1:] != x.shape[2:]:
            raise ValueError(
                f"target is expected to have the shape of the input {x.shape} without dim 1, received {target.shape}"
            )
    elif target.dim() != 1 or target.shape[0] != x.shape[0]:
        raise ValueError(
            f"target is expected to have shape ({x.shape[0]},) or the shape of the input {x.shape} without dim 1,"
            f" received shape {target.shape}"
        )
    num_classes = x.shape[1] // xi
    # (N, K, xi, positions)
    features = x.reshape(x.shape[0], num_classes, xi, -1)

    attended = features
    if training:
        # A random permutation of the channels of each class; those ranked below ceil(xi / 2) are kept. Dropped
        # channels are left out of the max pooling (rather than zeroed), so that negative responses survive it.
        ranks = torch.rand(num_classes, xi, device=x.device).argsort(dim=1)
        dropped = (ranks >= (xi + 1) // 2).reshape(1, num_classes, xi, 1)
        attended = features.masked_fill(dropped, float("-inf"))
    # (N, K, positions): cross-channel max pooling
    pooled = attended.amax(dim=2)
    class_weight = None if weight is None else weight.to(x.dtype)

    if not dense:
        logits = pooled.mean(dim=-1)
        discriminality = F.cross_entropy(logits, target, class_weight, ignore_index=ignore_index, reduction=reduction)
        diversity = F.softmax(features, dim=-1).amax(dim=2).sum(dim=-1).mean(dim=1)
        valid = (target != ignore_index).to(x.dtype)
        diversity = diversity * valid
        if reduction == "sum":
            diversity = diversity.sum()
        elif reduction == "mean":
            diversity = diversity.sum() / valid.sum()
        return discriminality - alpha * diversity

    # Dense targets: each position is classified from its own pooled responses, and the spatial softmax of the
    # diversity term runs over the positions that count only, so ignored positions get neither loss nor gradient.
    flat_target = target.reshape(target.shape[0], -1)
    valid = flat_target != ignore_index
    per_position = F.cross_entropy(pooled, flat_target, class_weight, ignore_index=ignore_index, reduction="none")
    mask = valid.reshape(valid.shape[0], 1, 1, -1)
    shifted = features.masked_fill(~mask, 0.0)
    peak = shifted.masked_fill(~mask, float("-inf")).amax(dim=-1, keepdim=True)
    peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak)).detach()
    exp = (shifted - peak).exp() * mask.to(x.dtype)
    # The sum is >= 1 (the peak contributes exp(0)) unless every position of the sample is ignored.
    softmax = exp / exp.sum(dim=-1, keepdim=True).clamp_min(1.0)
    # (N, positions): the share of each position in the diversity of its sample
    diversity = softmax.amax(dim=2).mean(dim=1)
    loss = (per_position - alpha * diversity).reshape(target.shape)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    counted_samples = valid.any(dim=1).to(x.dtype).sum()
    if class_weight is None:
        position_weights = valid.to(x.dtype)
    else:
        position_weights = class_weight[flat_target.masked_fill(~valid, 0)] * valid
    # Nothing counted (every position ignored): a loss of 0 with zero gradients, rather than 0 / 0.
    total_weight = position_weights.sum()
    total_weight = torch.where(total_weight > 0, total_weight, torch.ones_like(total_weight))
    counted_samples = torch.where(counted_samples > 0, counted_samples, torch.ones_like(counted_samples))
    return per_position.sum() / total_weight - alpha * diversity.sum() / counted_samples


def dice_loss(
    x: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    gamma: float = 1.0,
    eps: float = 1e-8,
) -> Tensor:
    r"""Dice loss from `V-Net: Fully Convolutional Neural Networks for Volumetric Medical Image
    Segmentation <https://arxiv.org/pdf/1606.04797.pdf>`_, with a recall/precision trade-off :math:`\gamma`.

    For each class :math:`k`, with sums over the batch and all positions,

    .. math::

        D_k = \frac{(1 + \gamma) \sum p_k \, g_k + \epsilon}{\sum p_k^2 + \gamma \sum g_k^2 + \epsilon}
        \qquad
        \mathcal{L} = 1 - \frac{\sum_k w_k D_k}{\sum_k w_k}

    which is the paper's dice coefficient for :math:`\gamma = 1`; :math:`\gamma > 1` favours recall, :math:`\gamma < 1`
    precision.

    Args:
        x: predicted probabilities of shape (N, K, ...)
        target: target probabilities of shape (N, K, ...), or class indices of shape (N, ...)
        weight: class weights of shape (K,); uniform when None
        gamma: recall/precision trade-off (> 0)
        eps: added to numerator and denominator (an empty class scores a perfect 1)

    Returns:
        the scalar loss
    """
    if x.dim() < 2:
        raise ValueError(f"input is expected to have shape (N, K, ...), received shape {x.shape}")
    if target.dim() == x.dim() - 1:
        check_hard_target(x, target)
        target = torch.zeros_like(x).scatter_(1, target.unsqueeze(1), 1.0)
    elif target.shape != x.shape:
        raise ValueError(f"target is expected to have the shape of the input {x.shape}, received {target.shape}")
    # (K, N * positions): sums run over the batch and all positions, per class
    probs = x.transpose(0, 1).reshape(x.shape[1], -1)
    truth = target.to(x.dtype).transpose(0, 1).reshape(x.shape[1], -1)
    intersection = (probs * truth).sum(dim=1)
    cardinality = (probs * probs).sum(dim=1) + gamma * (truth * truth).sum(dim=1)
    dice = ((1 + gamma) * intersection + eps) / (cardinality + eps)
    if weight is None:
        return 1 - dice.mean()
    _check_class_weight(weight, x)
    weight = weight.to(x.dtype)
    return 1 - (weight * dice).sum() / weight.sum()


def poly_loss(
    x: Tensor,
    target: Tensor,
    eps: float = 2.0,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    r"""Poly-1 loss from `PolyLoss: A Polynomial Expansion Perspective of Classification Loss
    Functions <https://arxiv.org/pdf/2204.12511.pdf>`_.

    .. math::

        \mathcal{L}_{Poly-1} = - \log P_t + \epsilon_1 (1 - P_t)

    With hard targets, :math:`P_t` is the softmax probability of the target class and each position is weighted by its
    class weight :math:`w_t`; 'mean' divides by the sum of the weights of the positions that count. With soft targets
    :math:`y` (shape of ``x``), each class contributes its own term,
    :math:`\sum_k w_k y_k \left(- \log p_k + \epsilon_1 (1 - p_k)\right)` (the hard-target loss for one-hot :math:`y`,
    and :func:`torch.nn.functional.cross_entropy` with probability targets for :math:`\epsilon_1 = 0`); an
    ``ignore_index`` within [0, K) drops that class (column) from :math:`y`, and 'mean' divides by the number of
    positions (N for a 2D input), as :func:`torch.nn.functional.cross_entropy` does with probability targets.

    Args:
        x: logits of shape (N, K, ...)
        target: class indices of shape (N, ...) or target probabilities of shape (N, K, ...)
        eps: :math:`\epsilon_1`, the weight of the first polynomial term
        weight: class weights of shape (K,)
        ignore_index: hard target value that does not contribute to the loss
        reduction: 'none' (shape (N, ...)), 'mean' or 'sum'

    Returns:
        the reduced loss
    """
    check_reduction(reduction)
    if x.dim() < 2:
        raise ValueError(f"input is expected to have shape (N, K, ...), received shape {x.shape}")
    log_p = F.log_softmax(x, dim=1)
    if target.dim() == x.dim() - 1:
        check_hard_target(x, target)
        sample_weights, safe_target = _target_weights(x, target, weight, ignore_index)
        log_pt = log_p.gather(1, safe_target.unsqueeze(1)).squeeze(1)
        cross_entropy = -log_pt
        pt = log_pt.exp()
    elif target.shape == x.shape:
        target = target.to(x.dtype)
        if ignore_index >= 0 and ignore_index < x.shape[1]:
            keep = torch.ones(x.shape[1], dtype=x.dtype, device=x.device)
            keep[ignore_index] = 0.0
            target = target * _class_weight_view(keep, x)
        if weight is not None:
            target = target * _class_weight_view(weight, x)
        # sum_k w_k y_k (-log p_k + eps (1 - p_k)): with eps = 0, the cross-entropy with probability targets
        loss = (target * (eps * (1 - log_p.exp()) - log_p)).sum(dim=1)
        # As torch.nn.functional.cross_entropy with probability targets: 'mean' averages over the positions.
        return _reduce(loss, torch.ones_like(loss), reduction)
    else:
        raise ValueError(
            f"target is expected to have the shape of the input {x.shape} (probabilities) or that shape without"
            f" dim 1 (class indices), received {target.shape}"
        )
    loss = sample_weights * (cross_entropy + eps * (1 - pt))
    return _reduce(loss, sample_weights, reduction)
