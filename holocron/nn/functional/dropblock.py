"""Functional form of DropBlock."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["dropblock2d"]


def dropblock2d(
    x: Tensor,
    p: float | None = None,
    block_size: int = 7,
    inplace: bool = False,
    training: bool = True,
    drop_prob: float | None = None,
) -> Tensor:
    r"""DropBlock from
    `DropBlock: A regularization method for convolutional networks <https://arxiv.org/pdf/1810.12890.pdf>`_.

    In training, block seeds are drawn independently for every sample and channel with probability

    .. math::

        \gamma = \frac{p}{b_h b_w} \cdot \frac{H W}{(H - b_h + 1)(W - b_w + 1)}

    (Eq. 1 of the paper, with :math:`b_h = \min(b, H)`, :math:`b_w = \min(b, W)` for the block size :math:`b`) in the
    region where a whole block fits, every seed zeroes the :math:`b_h \times b_w` block starting at it, and the kept
    activations are rescaled by ``numel(mask) / count_ones(mask)`` (no rescaling when everything is dropped). Outside
    training, or with ``p = 0``, the input is returned unchanged.

    Upstream holocron named the probability ``drop_prob``; it is accepted as a keyword with the same meaning (the
    fraction of activations to drop), so ``dropblock2d(x, drop_prob=0.1, block_size=7)`` equals
    ``dropblock2d(x, 0.1, 7)``. Give one of ``p`` and ``drop_prob``.

    Args:
        x: input tensor of shape (N, C, H, W)
        p: probability of dropping an activation, in [0, 1]
        block_size: side of the dropped square blocks (>= 1)
        inplace: whether ``x`` should be overwritten with the result
        training: whether to drop blocks at all
        drop_prob: upstream's name of ``p``

    Returns:
        tensor of the same shape as ``x``
    """
    if drop_prob is not None:
        if p is not None:
            raise ValueError("arguments `p` and `drop_prob` (upstream's name of `p`) were both given: pass only `p`")
        p = drop_prob
    if p is None:
        raise TypeError("dropblock2d() missing argument `p`, the probability of dropping an activation, in [0, 1]")
    if not training or p == 0.0:
        return x
    if x.dim() != 4:
        raise ValueError(f"input is expected to have shape (N, C, H, W), received shape {x.shape}")
    if p < 0.0 or p > 1.0:
        raise ValueError(f"argument `p` is expected in [0, 1], received {p}")
    if block_size < 1:
        raise ValueError(f"argument `block_size` is expected to be a positive integer, received {block_size}")
    height, width = x.shape[2], x.shape[3]
    block_h, block_w = min(block_size, height), min(block_size, width)
    seed_h, seed_w = height - block_h + 1, width - block_w + 1
    gamma = p / (block_h * block_w) * (height * width) / (seed_h * seed_w)
    seeds = torch.rand(x.shape[0], x.shape[1], seed_h, seed_w, dtype=x.dtype, device=x.device) < min(gamma, 1.0)
    # Padding by (block - 1) on both sides and a stride-1 max pool spread each seed over the block it starts.
    padded = F.pad(seeds.to(x.dtype), [block_w - 1, block_w - 1, block_h - 1, block_h - 1])
    mask = 1.0 - F.max_pool2d(padded, [block_h, block_w], [1, 1])
    scale = mask.numel() / mask.sum().clamp(min=1.0)
    if inplace:
        return x.mul_(mask).mul_(scale)
    return x * mask * scale
