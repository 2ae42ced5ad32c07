"""Functional forms of the downsampling layers of ``holocron.nn``."""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import HolocronInputError

__all__ = ["concat_downsample2d", "z_pool"]


def concat_downsample2d(x: Tensor, scale_factor: int) -> Tensor:
    r"""Loss-less downsampling from
    `YOLO9000: Better, Faster, Stronger <https://pjreddie.com/media/files/papers/YOLO9000.pdf>`_: each ``scale_factor``
    x ``scale_factor`` spatial cell is moved onto the channel dimension.

    With :math:`s` the scale factor and :math:`C` the input channels, the output is

    .. math::

        out(n, (i \cdot s + j) \cdot C + c, y, x) = input(n, c, y \cdot s + i, x \cdot s + j)

    for :math:`0 \le i, j < s` (the channel order of the reference implementation, so that trained weights that follow
    this layer keep their meaning).

    Args:
        x: input tensor of shape (N, C, H, W), H and W multiples of ``scale_factor``
        scale_factor: spatial scaling factor

    Returns:
        tensor of shape (N, C * scale_factor ** 2, H / scale_factor, W / scale_factor)
    """
    if x.dim() != 4:
        raise ValueError(f"input is expected to have shape (N, C, H, W), received shape {x.shape}")
    if scale_factor < 1:
        raise ValueError(f"argument `scale_factor` is expected to be a positive integer, received {scale_factor}")
    b, c, h, w = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    if h % scale_factor != 0 or w % scale_factor != 0:
        raise HolocronInputError(
            f"input spatial size ({h}, {w}) is expected to be a multiple of `scale_factor` ({scale_factor})"
        )
    out = x.reshape(b, c, h // scale_factor, scale_factor, w // scale_factor, scale_factor)
    out = out.permute(0, 3, 5, 1, 2, 4)
    return out.reshape(b, c * scale_factor * scale_factor, h // scale_factor, w // scale_factor)


def z_pool(x: Tensor, dim: int) -> Tensor:
    """Z-pool from `Rotate to Attend: Convolutional Triplet Attention Module <https://arxiv.org/pdf/2010.03045.pdf>`_:
    the max and the mean across ``dim``, stacked along ``dim`` (max first).

    Args:
        x: input tensor
        dim: dimension to pool across

    Returns:
        tensor of the shape of ``x`` with size 2 along ``dim``
    """
    return torch.cat([x.amax(dim, keepdim=True), x.mean(dim, keepdim=True)], dim=dim)
