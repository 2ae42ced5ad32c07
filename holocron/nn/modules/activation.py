"""Non-linear activations."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from .. import functional as F
from .._upstream_state import UpstreamAttributes, accepts_upstream_state
from .._validation import HolocronArgumentError, check_positive, check_positive_int

__all__ = ["FReLU", "HardMish", "NLReLU"]


class _Activation(nn.Module):
    """Base of the parameter-free activations that may run in place."""

    __constants__: ClassVar[list[str]] = ["inplace"]

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace: bool = inplace

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class HardMish(_Activation):
    r"""Implements the Hard Mish activation module from `H-Mish <https://github.com/digantamisra98/H-Mish>`_.

    This activation is computed as follows:

    .. math::

        f(x) = \frac{x}{2} \cdot \min(2, \max(0, x + 2))

    Args:
        inplace: should the operation be performed inplace
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return F.hard_mish(x, inplace=self.inplace)


# Upstream's releases up to 0.2.1 had no ``beta`` (the activation was ``ln(1 + max(0, x))``).
@accepts_upstream_state(UpstreamAttributes(attributes={"beta": lambda _: 1.0}))
class NLReLU(_Activation):
    r"""Implements the Natural-Logarithm ReLU activation module from `Natural-Logarithm-Rectified Activation
    Function in Convolutional Neural Networks <https://arxiv.org/pdf/1908.03682.pdf>`_.

    This activation is computed as follows:

    .. math::

        f(x) = ln(1 + \beta \cdot max(0, x))

    Args:
        beta: beta used for NReLU (> 0)
        inplace: should the operation be performed inplace
    """

    def __init__(self, beta: float = 1.0, inplace: bool = False) -> None:
        super().__init__(inplace)
        check_positive(beta, "beta")
        self.beta: float = float(beta)

    def forward(self, x: Tensor) -> Tensor:
        return F.nl_relu(x, beta=self.beta, inplace=self.inplace)


class FReLU(nn.Module):
    r"""Implements the Funnel activation module from `Funnel Activation for Visual
    Recognition <https://arxiv.org/pdf/2007.11824.pdf>`_.

    This activation is computed as follows:

    .. math::

        f(x) = max(\mathbb{T}(x), x)

    where the :math:`\mathbb{T}` is the spatial contextual feature extraction. It is a convolution filter of size
    ``kernel_size``, same padding and groups equal to the number of input channels, followed by a batch normalization.

    Args:
        in_channels: number of input channels
        kernel_size: size of the convolution filter (odd, so that the padding keeps the spatial size)
    """

    def __init__(self, in_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(kernel_size, "kernel_size")
        if kernel_size % 2 != 1:
            raise HolocronArgumentError(f"argument `kernel_size` is expected to be odd, received {kernel_size}")
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size, padding=kernel_size // 2, groups=in_channels)
        self.bn = nn.BatchNorm2d(in_channels)

    def forward(self, x: Tensor) -> Tensor:
        return torch.max(x, self.bn(self.conv(x)))
