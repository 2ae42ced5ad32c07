"""Functional forms of the activations of ``holocron.nn``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["hard_mish", "nl_relu"]


def hard_mish(x: Tensor, inplace: bool = False) -> Tensor:
    r"""Hard Mish activation from `H-Mish <https://github.com/digantamisra98/H-Mish>`_.

    .. math::

        f(x) = \frac{x}{2} \cdot \min(2, \max(0, x + 2))

    Args:
        x: input tensor of any shape
        inplace: whether ``x`` should be overwritten with the result

    Returns:
        tensor of the same shape as ``x``
    """
    gate = (x + 2).clamp(min=0.0, max=2.0).mul_(0.5)
    if inplace:
        return x.mul_(gate)
    return x * gate


def nl_relu(x: Tensor, beta: float = 1.0, inplace: bool = False) -> Tensor:
    r"""Natural-Logarithm ReLU from `Natural-Logarithm-Rectified Activation Function in Convolutional Neural
    Networks <https://arxiv.org/pdf/1908.03682.pdf>`_.

    .. math::

        f(x) = ln(1 + \beta \cdot max(0, x))

    Args:
        x: input tensor of any shape
        beta: positive slope applied before the logarithm
        inplace: whether ``x`` should be overwritten with the result

    Returns:
        tensor of the same shape as ``x``
    """
    if inplace:
        return F.relu_(x).mul_(beta).log1p_()
    return torch.log1p(beta * F.relu(x))
