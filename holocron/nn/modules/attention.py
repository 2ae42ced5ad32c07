"""Attention layers."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._validation import HolocronArgumentError, check_positive_int
from .downsample import ZPool

__all__ = ["SAM", "DimAttention", "TripletAttention"]


class SAM(nn.Module):
    r"""SAM layer from `CBAM: Convolutional Block Attention Module <https://arxiv.org/pdf/1807.06521.pdf>`_ modified
    in `YOLOv4: Optimal Speed and Accuracy of Object Detection <https://arxiv.org/pdf/2004.10934.pdf>`_.

    A point-wise spatial attention: :math:`out = x \cdot \sigma(conv_{1 \times 1}(x))`, with one attention map shared by
    all channels.

    Args:
        in_channels: input channels
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        self.conv = nn.Conv2d(in_channels, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.conv(x))


class DimAttention(nn.Module):
    r"""One branch of triplet attention: the attention of a 4D tensor across dimension ``dim``.

    ``dim`` is moved to the channel position, then ``compress`` (a :class:`ZPool` to 2 maps, a 7x7 convolution to one
    map, batch normalization and a sigmoid) gives the gate that multiplies the input:
    :math:`out = x \cdot \sigma(BN(conv_{7 \times 7}(ZPool(x))))`, and ``dim`` is moved back.

    Args:
        dim: dimension to compute attention on (1, 2 or 3)
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim not in {1, 2, 3}:
            raise HolocronArgumentError(f"argument `dim` is expected to be 1, 2 or 3, received {dim!r}")
        self.compress = nn.Sequential(
            ZPool(dim=1),
            nn.Conv2d(2, 1, kernel_size=7, stride=1, padding=3, bias=False),
            nn.BatchNorm2d(1, eps=1e-5, momentum=0.01),
            nn.Sigmoid(),
        )
        self.dim: int = dim

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"input is expected to have shape (N, C, H, W), received shape {x.shape}")
        rotated = x.transpose(self.dim, 1) if self.dim != 1 else x
        out = rotated * self.compress(rotated)
        return out.transpose(self.dim, 1) if self.dim != 1 else out


class TripletAttention(nn.Module):
    """Triplet attention layer from `Rotate to Attend: Convolutional Triplet Attention
    Module <https://arxiv.org/pdf/2010.03045.pdf>`_. This implementation is based on the
    `one <https://github.com/LandskapeAI/triplet-attention/blob/master/MODELS/triplet_attention.py>`_ from the paper's
    authors.

    The average of three :class:`DimAttention` branches, across channels (``c_branch``), height (``h_branch``) and
    width (``w_branch``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.c_branch = DimAttention(dim=1)
        self.h_branch = DimAttention(dim=2)
        self.w_branch = DimAttention(dim=3)

    def forward(self, x: Tensor) -> Tensor:
        return (self.c_branch(x) + self.h_branch(x) + self.w_branch(x)) / 3
