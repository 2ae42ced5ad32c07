"""Downsampling and pooling layers."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..._jit import jit_deprecation_silenced
from .. import functional as F
from .._upstream_state import UpstreamAttributes, accepts_upstream_state
from .._validation import HolocronArgumentError, check_positive_int

__all__ = [
    "SPP",
    "BlurPool2d",
    "ConcatDownsample2d",
    "ConcatDownsample2dJit",
    "GlobalAvgPool2d",
    "GlobalMaxPool2d",
    "ZPool",
]


class ConcatDownsample2d(nn.Module):
    """Implements a loss-less downsampling operation described in `YOLO9000: Better, Faster,
    Stronger <https://pjreddie.com/media/files/papers/YOLO9000.pdf>`_ by stacking adjacent information on the channel
    dimension.

    Maps (N, C, H, W) to (N, C * s ** 2, H / s, W / s); see :func:`holocron.nn.functional.concat_downsample2d` for the
    channel order.

    Args:
        scale_factor: spatial scaling factor
    """

    def __init__(self, scale_factor: int) -> None:
        super().__init__()
        check_positive_int(scale_factor, "scale_factor")
        self.scale_factor: int = scale_factor

    def forward(self, x: Tensor) -> Tensor:
        return F.concat_downsample2d(x, self.scale_factor)


class ConcatDownsample2dJit:
    """:class:`ConcatDownsample2d` as a TorchScript class (not a module): the same loss-less downsampling from
    `YOLO9000: Better, Faster, Stronger <https://pjreddie.com/media/files/papers/YOLO9000.pdf>`_, callable from
    Python and usable as a value inside scripted code.

    Args:
        scale_factor: spatial scaling factor
    """

    def __init__(self, scale_factor: int) -> None:
        self.scale_factor = scale_factor

    def __call__(self, x: Tensor) -> Tensor:
        return F.concat_downsample2d(x, self.scale_factor)


with jit_deprecation_silenced():
    # Compiled once at import, as upstream's; torch's deprecation notice of torch.jit.script (torch >= 2.14) is not
    # the user's to act on.
    ConcatDownsample2dJit = torch.jit.script(ConcatDownsample2dJit)  # type: ignore[misc]


def _check_4d(x: Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"input is expected to have shape (N, C, H, W), received shape {x.shape}")


def _global_pool(x: Tensor, flatten: bool, use_max: bool) -> Tensor:
    """Max (``use_max``) or mean of ``x`` (N, C, H, W) over its spatial dimensions, as (N, C) or (N, C, 1, 1)."""
    _check_4d(x)
    pooled = x.flatten(2).amax(dim=-1) if use_max else x.flatten(2).mean(dim=-1)
    return pooled if flatten else pooled.reshape(x.shape[0], x.shape[1], 1, 1)


class GlobalAvgPool2d(nn.Module):
    """Fast implementation of global average pooling from `TResNet: High Performance GPU-Dedicated
    Architecture <https://arxiv.org/pdf/2003.13630.pdf>`_

    Maps (N, C, H, W) to (N, C, 1, 1), or to (N, C) with ``flatten``.

    Args:
        flatten: whether spatial dimensions should be squeezed
    """

    def __init__(self, flatten: bool = False) -> None:
        super().__init__()
        self.flatten: bool = flatten

    def forward(self, x: Tensor) -> Tensor:
        return _global_pool(x, self.flatten, False)

    def extra_repr(self) -> str:
        return "flatten=True" if self.flatten else ""


class GlobalMaxPool2d(nn.Module):
    """Fast implementation of global max pooling from `TResNet: High Performance GPU-Dedicated
    Architecture <https://arxiv.org/pdf/2003.13630.pdf>`_

    Maps (N, C, H, W) to (N, C, 1, 1), or to (N, C) with ``flatten``.

    Args:
        flatten: whether spatial dimensions should be squeezed
    """

    def __init__(self, flatten: bool = False) -> None:
        super().__init__()
        self.flatten: bool = flatten

    def forward(self, x: Tensor) -> Tensor:
        return _global_pool(x, self.flatten, True)

    def extra_repr(self) -> str:
        return "flatten=True" if self.flatten else ""


def _blur_padding(kernel_size: int, stride: int) -> int:
    """Padding on each side of the blur filter (the reference layer's rule)."""
    return ((stride - 1) + (kernel_size - 1)) // 2


def _binomial_filter(kernel_size: int) -> Tensor:
    """The normalized 2D binomial filter of side ``kernel_size`` (outer product of a row of Pascal's triangle)."""
    row = torch.tensor([math.comb(kernel_size - 1, idx) for idx in range(kernel_size)], dtype=torch.float64)
    row = row / row.sum()
    return (row[:, None] * row[None, :]).to(torch.float32)


def _blur_filters(channels: int, kernel_size: int) -> Tensor:
    """One binomial filter per channel, shape (channels, 1, kernel_size, kernel_size), for a grouped convolution."""
    return _binomial_filter(kernel_size).expand(channels, 1, kernel_size, kernel_size).clone()


# Upstream builds the filter in each forward from its ``_coeffs`` (a cache dict ``kernel`` beside them).
@accepts_upstream_state(
    UpstreamAttributes(
        attributes={"pad_size": lambda m: _blur_padding(m.kernel_size, m.stride)},
        buffers={"filt": lambda m: _blur_filters(m.channels, m.kernel_size)},
        dropped=("_coeffs", "kernel"),
    )
)
class BlurPool2d(nn.Module):
    """Ross Wightman's `implementation <https://github.com/rwightman/pytorch-image-models/blob/master/timm/models/layers/blur_pool.py>`_
    of blur pooling module as described in `Making Convolutional Networks Shift-Invariant
    Again <https://arxiv.org/pdf/1904.11486.pdf>`_.

    The input is reflection-padded, blurred channel by channel with a normalized binomial filter of side
    ``kernel_size``, and subsampled with ``stride``. The filter is a non-persistent buffer ``filt``: it follows the
    module across devices and dtypes but is not part of the ``state_dict`` (which is empty, as in the reference
    layer).

    Args:
        channels: Number of input channels
        kernel_size: binomial filter size for blurring. currently supports 3 (default) and 5.
        stride: downsampling filter stride
    """

    def __init__(self, channels: int, kernel_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        check_positive_int(channels, "channels")
        if not isinstance(kernel_size, int) or kernel_size <= 1:
            raise HolocronArgumentError(
                f"argument `kernel_size` is expected to be an integer > 1, received {kernel_size!r}"
            )
        check_positive_int(stride, "stride")
        self.channels: int = channels
        self.kernel_size: int = kernel_size
        self.stride: int = stride
        self.pad_size: int = _blur_padding(kernel_size, stride)
        self.padding = nn.ReflectionPad2d(self.pad_size)
        self.register_buffer("filt", _blur_filters(channels, kernel_size), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        _check_4d(x)
        if x.shape[1] != self.channels:
            raise ValueError(f"input is expected to have {self.channels} channels, received shape {x.shape}")
        if x.shape[2] <= self.pad_size or x.shape[3] <= self.pad_size:
            raise ValueError(
                f"input spatial size ({x.shape[2]}, {x.shape[3]}) is expected to exceed the reflection padding"
                f" ({self.pad_size})"
            )
        return nn.functional.conv2d(self.padding(x), self.filt.to(x.dtype), stride=self.stride, groups=self.channels)  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_size={self.kernel_size}, stride={self.stride}"


class SPP(nn.ModuleList):
    """SPP layer from `Spatial Pyramid Pooling in Deep Convolutional Networks for Visual
    Recognition <https://arxiv.org/pdf/1406.4729.pdf>`_.

    The input and its max poolings (stride 1, same padding) are concatenated along channels, so that
    (N, C, H, W) becomes (N, C * (1 + len(kernel_sizes)), H, W).

    Args:
        kernel_sizes: kernel sizes of each pooling (odd)
    """

    def __init__(self, kernel_sizes: list[int]) -> None:
        if not isinstance(kernel_sizes, (list, tuple)) or len(kernel_sizes) == 0:
            raise HolocronArgumentError(
                f"argument `kernel_sizes` is expected to be a non-empty list of odd integers, received {kernel_sizes!r}"
            )
        for idx, k_size in enumerate(kernel_sizes):
            check_positive_int(k_size, f"kernel_sizes[{idx}]")
            if k_size % 2 != 1:
                raise HolocronArgumentError(
                    f"argument `kernel_sizes[{idx}]` is expected to be odd to keep the spatial size, received {k_size}"
                )
        super().__init__([nn.MaxPool2d(k_size, stride=1, padding=k_size // 2) for k_size in kernel_sizes])

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x] + [pool(x) for pool in self], dim=1)


class ZPool(nn.Module):
    """Z-pool layer from `Rotate to Attend: Convolutional Triplet Attention Module <https://arxiv.org/pdf/2010.03045.pdf>`_.

    Concatenates the max and the mean across ``dim`` (size 2 along ``dim``); see
    :func:`holocron.nn.functional.z_pool`.

    Args:
        dim: dimension to pool across
    """

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise TypeError(f"argument `dim` is expected to be an integer, received {dim!r}")
        self.dim: int = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.z_pool(x, self.dim)
