"""Functional forms of the convolution-like layers of ``holocron.nn``.

``norm_conv2d`` is written with standard torch ops only (so that it exports to plain ONNX); ``add2d`` and
``involution2d`` hand their sliding-window work to the custom ops of :mod:`holocron.ops`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from holocron import ops

from ._utils import as_pair, check_conv_input, conv_output_size

__all__ = ["add2d", "involution2d", "norm_conv2d"]


def _window_pairs(
    x: Tensor,
    weight: Tensor,
    stride: int | tuple[int, int],
    padding: int | tuple[int, int],
    dilation: int | tuple[int, int],
    groups: int,
) -> tuple[list[int], list[int], list[int]]:
    """Check ``x`` and ``weight`` fit together; return stride, padding and dilation as ``[h, w]`` lists."""
    check_conv_input(x, weight, groups)
    return as_pair(stride, "stride", 1), as_pair(padding, "padding", 0), as_pair(dilation, "dilation", 1)


def norm_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    eps: float = 1e-14,
) -> Tensor:
    r"""Normalized 2D convolution from
    `Normalized Convolutional Neural Network <https://arxiv.org/pdf/2005.05274v2.pdf>`_.

    Every slice, i.e. the :math:`C_{in} / groups \cdot kH \cdot kW` values of one channel group under one window
    position (zero padding included), is normalized to :math:`\frac{S - \mu(S)}{\sqrt{\sigma^2(S) + \epsilon}}` (biased
    variance) before being correlated with the filters of that group, then the bias is added.

    The slices are gathered with :func:`torch.nn.functional.unfold` and their statistics computed in two passes
    (mean, then mean squared deviation), which keeps float32 accurate for slices whose spread is small next to their
    mean; only standard ops are used, so that the layer exports to plain ONNX.

    Args:
        x: input tensor of shape (N, C_in, H, W)
        weight: filters of shape (C_out, C_in / groups, kH, kW)
        bias: optional bias of shape (C_out,)
        stride: stride of the sliding window, an int or a pair (sH, sW)
        padding: zero padding added on both sides, an int or a pair (pH, pW)
        dilation: spacing between kernel elements, an int or a pair (dH, dW)
        groups: number of channel groups (divides C_in and C_out)
        eps: added to the slice variance for numerical stability

    Returns:
        tensor of shape (N, C_out, H_out, W_out)
    """
    stride_, padding_, dilation_ = _window_pairs(x, weight, stride, padding, dilation, groups)
    batch, out_channels = x.shape[0], weight.shape[0]
    kernel_size = [weight.shape[2], weight.shape[3]]
    out_h = conv_output_size(x.shape[2], kernel_size[0], stride_[0], padding_[0], dilation_[0])
    out_w = conv_output_size(x.shape[3], kernel_size[1], stride_[1], padding_[1], dilation_[1])
    # (N, G, C_in / G * kH * kW, L): the channels of a group are contiguous in unfold's (c, i, j) order
    slices = F.unfold(x, kernel_size, dilation_, padding_, stride_)  # type: ignore[arg-type]
    slices = slices.reshape(batch, groups, -1, slices.shape[-1])
    centered = slices - slices.mean(dim=2, keepdim=True)
    normalized = centered * (centered.pow(2).mean(dim=2, keepdim=True) + eps).rsqrt()
    # (1, G, C_out / G, K) @ (N, G, K, L) -> (N, G, C_out / G, L)
    filters = weight.reshape(1, groups, out_channels // groups, -1)
    out = torch.matmul(filters, normalized).reshape(batch, out_channels, out_h, out_w)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out


def add2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    normalize_slices: bool = False,
    eps: float = 1e-14,
) -> Tensor:
    r"""Adder 2D operation from `AdderNet: Do We Really Need Multiplications in Deep
    Learning? <https://arxiv.org/pdf/1912.13200.pdf>`_: the negated L1 distance between each slice and each filter.

    .. math::

        out(n, o, y, x) = bias(o) - \sum_{c, i, j} |S_{n, g(o), y, x}(c, i, j) - weight(o, c, i, j)|

    where the slice :math:`S` holds the :math:`C_{in} / groups \cdot kH \cdot kW` zero-padded input values of the group
    of :math:`o` under the window at :math:`(y, x)`, optionally normalized to zero mean and unit (biased) variance
    first. Computed by the custom op ``torch.ops.holocron.add2d``.

    Args:
        x: input tensor of shape (N, C_in, H, W)
        weight: filters of shape (C_out, C_in / groups, kH, kW)
        bias: optional bias of shape (C_out,)
        stride: stride of the sliding window, an int or a pair (sH, sW)
        padding: zero padding added on both sides, an int or a pair (pH, pW)
        dilation: spacing between kernel elements, an int or a pair (dH, dW)
        groups: number of channel groups (divides C_in and C_out)
        normalize_slices: whether each slice is normalized before the distance
        eps: added to the slice variance for numerical stability

    Returns:
        tensor of shape (N, C_out, H_out, W_out)
    """
    stride_, padding_, dilation_ = _window_pairs(x, weight, stride, padding, dilation, groups)
    return ops.add2d(x, weight, bias, stride_, padding_, dilation_, groups, normalize_slices, eps)


def involution2d(
    x: Tensor,
    kernel: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> Tensor:
    r"""Involution from `Involution: Inverting the Inherence of Convolution for Visual
    Recognition <https://arxiv.org/pdf/2103.06255.pdf>`_ with given per-pixel kernels.

    .. math::

        out(n, c, y, x) = \sum_{i, j} kernel(n, g(c) \cdot kH \cdot kW + i \cdot kW + j, y, x)
        \cdot input(n, c, y \cdot sH + i \cdot dH - pH, x \cdot sW + j \cdot dW - pW)

    where :math:`g(c)` is the channel group of :math:`c` and the input is zero outside its bounds.
    Computed by the custom op ``torch.ops.holocron.involution2d``.

    Args:
        x: input tensor of shape (N, C, H, W)
        kernel: per-pixel kernels of shape (N, groups * kH * kW, H_out, W_out)
        kernel_size: kernel size, an int or a pair (kH, kW)
        stride: stride of the sliding window, an int or a pair (sH, sW)
        padding: zero padding added on both sides, an int or a pair (pH, pW)
        dilation: spacing between kernel elements, an int or a pair (dH, dW)
        groups: number of channel groups (divides C)

    Returns:
        tensor of shape (N, C, H_out, W_out)
    """
    kernel_size_ = as_pair(kernel_size, "kernel_size", 1)
    stride_ = as_pair(stride, "stride", 1)
    padding_ = as_pair(padding, "padding", 0)
    dilation_ = as_pair(dilation, "dilation", 1)
    if x.dim() != 4 or kernel.dim() != 4:
        raise ValueError(f"input and kernel are expected to be 4D, received shapes {x.shape} and {kernel.shape}")
    if groups < 1 or x.shape[1] % groups != 0:
        raise ValueError(f"groups ({groups}) is expected to be >= 1 and to divide the input channels ({x.shape[1]})")
    out_h = conv_output_size(x.shape[2], kernel_size_[0], stride_[0], padding_[0], dilation_[0])
    out_w = conv_output_size(x.shape[3], kernel_size_[1], stride_[1], padding_[1], dilation_[1])
    expected = [x.shape[0], groups * kernel_size_[0] * kernel_size_[1], out_h, out_w]
    if list(kernel.shape) != expected:
        raise ValueError(
            f"kernel is expected to have shape {expected} (N, groups * kH * kW, H_out, W_out) for an input of"
            f" shape {x.shape}, received {kernel.shape}"
        )
    return ops.involution2d(x, kernel, kernel_size_, stride_, padding_, dilation_, groups)
