"""Convolution layers."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn.functional import pad
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.utils import _pair

from holocron.contract import ADD2D

from .. import functional as F
from .._upstream_state import UpstreamAttributes, accepts_upstream_state
from .._validation import (
    HolocronArgumentError,
    check_divisible,
    check_in_range,
    check_non_negative_int,
    check_positive,
    check_positive_int,
)

__all__ = ["Add2d", "Involution2d", "NormConv2d", "PyConv2d", "SlimConv2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _size_pair(value: int | tuple[int, ...], name: str, minimum: int) -> tuple[int, int]:
    """``value`` as an ``(h, w)`` pair, after checking it is an integer or a pair of integers, each >= ``minimum``."""
    check = check_positive_int if minimum == 1 else check_non_negative_int
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise HolocronArgumentError(
                f"argument `{name}` is expected to be an integer or a pair of integers, received {value!r}"
            )
        check(value[0], f"{name}[0]")
        check(value[1], f"{name}[1]")
        return (value[0], value[1])
    check(value, name)
    return (value, value)


def _check_conv_args(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int],
    padding: int | tuple[int, int],
    dilation: int | tuple[int, int],
    groups: int,
    padding_mode: str,
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Check the arguments shared with :class:`torch.nn.Conv2d`; return kernel size, stride, padding and dilation as
    pairs (each may be given as an integer or a pair, as for :class:`torch.nn.Conv2d`)."""
    check_positive_int(in_channels, "in_channels")
    check_positive_int(out_channels, "out_channels")
    pairs = (
        _size_pair(kernel_size, "kernel_size", 1),
        _size_pair(stride, "stride", 1),
        _size_pair(padding, "padding", 0),
        _size_pair(dilation, "dilation", 1),
    )
    check_positive_int(groups, "groups")
    check_divisible(in_channels, "in_channels", groups, "groups")
    check_divisible(out_channels, "out_channels", groups, "groups")
    if padding_mode not in _PADDING_MODES:
        raise HolocronArgumentError(
            f"argument `padding_mode` is expected in {_PADDING_MODES}, received {padding_mode!r}"
        )
    return pairs


class _NormConvNd(_ConvNd):
    """Base of the convolution-like layers whose slices may be normalized; ``weight`` and ``bias`` as in
    :class:`torch.nn.Conv2d`. It checks the arguments (see :func:`_check_conv_args`), applies a non-zero
    ``padding_mode`` and leaves the sliding-window work to ``_conv``, which each subclass defines."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int],
        padding: int | tuple[int, int],
        dilation: int | tuple[int, int],
        groups: int,
        bias: bool,
        padding_mode: Literal["zeros", "reflect", "replicate", "circular"],
        normalize_slices: bool,
        eps: float,
    ) -> None:
        kernel_pair, stride_pair, padding_pair, dilation_pair = _check_conv_args(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, padding_mode
        )
        super().__init__(
            in_channels,
            out_channels,
            kernel_pair,
            stride_pair,
            padding_pair,
            dilation_pair,
            False,
            _pair(0),
            groups,
            bias,
            padding_mode,
        )
        check_in_range(eps, "eps", 0.0, float("inf"))
        self.normalize_slices: bool = normalize_slices
        self.eps: float = float(eps)

    def forward(self, x: Tensor) -> Tensor:
        # Two calls rather than a shared helper returning (x, padding): the TorchScript ONNX exporter cannot lower a
        # tuple-valued padding computed at run time inside a scripted module ("Couldn't lower all tuples").
        if self.padding_mode != "zeros":
            return self._conv(pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode), (0, 0))
        return self._conv(x, self.padding)  # type: ignore[arg-type]

    def _conv(self, x: Tensor, padding: tuple[int, int]) -> Tensor:
        """The layer's sliding-window function of ``x`` (already padded unless ``padding_mode`` is 'zeros')."""
        raise NotImplementedError


class NormConv2d(_NormConvNd):
    r"""Implements the normalized convolution module from `Normalized Convolutional Neural
    Network <https://arxiv.org/pdf/2005.05274v2.pdf>`_.

    In the simplest case, the output value of the layer with input size
    :math:`(N, C_{in}, H, W)` and output :math:`(N, C_{out}, H_{out}, W_{out})`
    can be precisely described as:

    .. math::

        out(N_i, C_{out_j}) = bias(C_{out_j}) +
        \sum_{k = 0}^{C_{in} - 1} weight(C_{out_j}, k) \star
        \frac{input(N_i, k) - \mu(N_i, k)}{\sqrt{\sigma^2(N_i, k) + \epsilon}}

    where :math:`\star` is the valid 2D cross-correlation operator,
    :math:`\mu(N_i, k)` and :math:`\sigma^2(N_i, k)` are the mean and variance of :math:`input(N_i, k)` over all slices,
    :math:`N` is a batch size, :math:`C` denotes a number of channels,
    :math:`H` is a height of input planes in pixels, and :math:`W` is width in pixels.

    A slice is the :math:`C_{in} / groups \cdot kH \cdot kW` input values of one channel group under one window position
    (padding included); see :func:`holocron.nn.functional.norm_conv2d`.

    Args:
        in_channels: Number of channels in the input image
        out_channels: Number of channels produced by the convolution
        kernel_size: Size of the convolving kernel
        stride: Stride of the convolution.
        padding: Zero-padding added to both sides of the input.
        dilation: Spacing between kernel elements.
        groups: Number of blocked connections from input channels to output channels.
        bias: If True, adds a learnable bias to the output.
        padding_mode: padding mode for the convolution.
        eps: a value added to the denominator for numerical stability.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros",
        eps: float = 1e-14,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, False, eps
        )

    def _conv(self, x: Tensor, padding: tuple[int, int]) -> Tensor:
        return F.norm_conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups, self.eps)  # type: ignore[arg-type]


class Add2d(_NormConvNd):
    r"""Implements the adder module from `AdderNet: Do We Really Need Multiplications in Deep
    Learning? <https://arxiv.org/pdf/1912.13200.pdf>`_.

    In the simplest case, the output value of the layer at position :math:`(m, n)` in channel :math:`c`
    with filter F of spatial size :math:`(d, d)`, input size :math:`(C_{in}, H, W)` and output :math:`(C_{out}, H, W)`
    can be precisely described as:

    .. math::

        out(m, n, c) = - \sum\limits_{i=0}^d \sum\limits_{j=0}^d \sum\limits_{k=0}^{C_{in}}
        |X(m + i, n + j, k) - F(i, j, k, c)|

    where :math:`C` denotes a number of channels, :math:`H` is a height of input planes in pixels, and :math:`W` is
    width in pixels. With groups, :math:`k` runs over the input channels of the group of :math:`c`; the bias is added
    last. The sliding-window work is done by the custom op ``torch.ops.holocron.add2d`` (see
    :func:`holocron.nn.functional.add2d`).

    Args:
        in_channels: Number of channels in the input image
        out_channels: Number of channels produced by the convolution
        kernel_size: Size of the convolving kernel
        stride: Stride of the convolution.
        padding: Zero-padding added to both sides of the input.
        dilation: Spacing between kernel elements.
        groups: Number of blocked connections from input channels to output channels.
        bias: If True, adds a learnable bias to the output.
        padding_mode: padding mode for the convolution.
        normalize_slices: whether slices should be normalized before performing cross-correlation.
        eps: a value added to the denominator for numerical stability.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros",
        normalize_slices: bool = False,
        eps: float = 1e-14,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            normalize_slices,
            eps,
        )
        # The op contract bounds every attribute: a larger one exports a model that the kernels refuse.
        ADD2D.attribute("strides").check("Add2d", self.stride, "stride")
        ADD2D.attribute("dilations").check("Add2d", self.dilation, "dilation")
        if not isinstance(self.padding, str):
            ADD2D.attribute("pads").check("Add2d", self.padding, "padding", count=2)

    def _conv(self, x: Tensor, padding: tuple[int, int]) -> Tensor:
        return F.add2d(
            x,
            self.weight,
            self.bias,
            self.stride,  # type: ignore[arg-type]
            padding,
            self.dilation,  # type: ignore[arg-type]
            self.groups,
            self.normalize_slices,
            self.eps,
        )


class SlimConv2d(nn.Module):
    r"""Implements the convolution module from `SlimConv: Reducing Channel Redundancy in Convolutional Neural
    Networks by Weights Flipping <https://arxiv.org/pdf/2003.07469.pdf>`_.

    First, we compute channel-wise weights as follows:

    .. math::

        z(c) = \frac{1}{H \cdot W} \sum\limits_{i=1}^H \sum\limits_{j=1}^W X_{c,i,j}

    where :math:`X \in \mathbb{R}^{C \times H \times W}` is the input tensor, :math:`H` is height in pixels, and
    :math:`W` is width in pixels.

    .. math::

        w = \sigma(F_{fc2}(\delta(F_{fc1}(z))))

    where :math:`z \in \mathbb{R}^{C}` contains channel-wise statistics,
    :math:`\sigma` refers to the sigmoid function,
    :math:`\delta` refers to the ReLU function,
    :math:`F_{fc1}` is a convolution operation with kernel of size :math:`(1, 1)` with :math:`max(C/r, L)` output
    channels followed by batch normalization, and :math:`F_{fc2}` is a plain convolution operation with kernel of size
    :math:`(1, 1)` with :math:`C` output channels.

    We then proceed with reconstructing and transforming both pathways:

    .. math::

        X_{top} = X \odot w \qquad X_{bot} = X \odot \check{w}

    where :math:`\odot` refers to the element-wise multiplication and :math:`\check{w}` is the channel-wise reverse-flip
    of :math:`w`.

    .. math::

        T_{top} = F_{top}(X_{top}^{(1)} + X_{top}^{(2)}) \qquad T_{bot} = F_{bot}(X_{bot}^{(1)} + X_{bot}^{(2)})

    where :math:`X^{(1)}` and :math:`X^{(2)}` are the channel-wise first and second halves of :math:`X`,
    :math:`F_{top}` is a convolution of kernel size :math:`(3, 3)`,
    and :math:`F_{bot}` is a convolution of kernel size :math:`(1, 1)` reducing channels by half,
    followed by a convolution of kernel size :math:`(3, 3)`.

    Finally we fuse both pathways to yield the output:

    .. math::

        Y = T_{top} \oplus T_{bot}

    where :math:`\oplus` is the channel-wise concatenation. The output has :math:`3 C / 4` channels.

    Args:
        in_channels: Number of channels in the input image (a multiple of 4)
        kernel_size: Size of the convolving kernel
        stride: Stride of the convolution.
        padding: Zero-padding added to both sides of the input.
        dilation: Spacing between kernel elements.
        groups: Number of blocked connections from input channels to output channels.
        bias: If True, adds a learnable bias to the output.
        padding_mode: padding mode for the convolution.
        r: squeezing divider.
        L: minimum squeezed channels.
    """

    def __init__(
        self,
        in_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros",
        r: int = 32,
        L: int = 2,  # noqa: N803
    ) -> None:
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_divisible(in_channels, "in_channels", 4, "4 (the two pathways halve then quarter it)")
        _check_conv_args(
            in_channels // 4, in_channels // 4, kernel_size, stride, padding, dilation, groups, padding_mode
        )
        check_positive_int(r, "r")
        check_positive_int(L, "L")
        squeezed = max(in_channels // r, L)
        self.fc1 = nn.Conv2d(in_channels, squeezed, 1)
        self.bn = nn.BatchNorm2d(squeezed)
        self.fc2 = nn.Conv2d(squeezed, in_channels, 1)
        self.conv_top = nn.Conv2d(
            in_channels // 2, in_channels // 2, kernel_size, stride, padding, dilation, groups, bias, padding_mode
        )
        self.conv_bot1 = nn.Conv2d(in_channels // 2, in_channels // 4, 1)
        self.conv_bot2 = nn.Conv2d(
            in_channels // 4, in_channels // 4, kernel_size, stride, padding, dilation, groups, bias, padding_mode
        )

    def forward(self, x: Tensor) -> Tensor:
        w = torch.sigmoid(self.fc2(torch.relu(self.bn(self.fc1(x.mean(dim=(2, 3), keepdim=True))))))
        half = x.shape[1] // 2
        x_top = x * w
        x_bot = x * w.flip(dims=(1,))
        t_top = self.conv_top(x_top[:, :half] + x_top[:, half:])
        t_bot = self.conv_bot2(self.conv_bot1(x_bot[:, :half] + x_bot[:, half:]))
        return torch.cat((t_top, t_bot), dim=1)


class PyConv2d(nn.ModuleList):
    """Implements the convolution module from `Pyramidal Convolution: Rethinking Convolutional Neural Networks for
    Visual Recognition <https://arxiv.org/pdf/2006.11538.pdf>`_.

    Level ``i`` is a convolution of kernel size ``kernel_size + 2 i`` and padding ``padding + i * dilation`` (so that
    every level yields the same spatial size); the outputs of the levels are concatenated along channels, which
    split ``out_channels`` as in the paper (halves, then quarters for the extra levels).

    Args:
        in_channels: Number of channels in the input image
        out_channels: Number of channels produced by the convolution
        kernel_size: Size of the convolving kernel
        num_levels: number of stacks in the pyramid.
        padding: Zero-padding added to both sides of the input.
        groups: Number of blocked connections from input channels to output channels, one per level (by default
            1 for the first level and ``min(2 ** (i + 1), out_channels_i)`` for level ``i``).
        kwargs: keyword args of :class:`torch.nn.Conv2d`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        num_levels: int = 2,
        padding: int = 0,
        groups: list[int] | None = None,
        **kwargs: Any,
    ) -> None:
        check_positive_int(in_channels, "in_channels")
        check_positive_int(out_channels, "out_channels")
        check_positive_int(kernel_size, "kernel_size")
        check_positive_int(num_levels, "num_levels")
        check_non_negative_int(padding, "padding")
        if groups is not None and (not isinstance(groups, list) or len(groups) != num_levels):
            raise ValueError(
                f"The argument `groups` is expected to be a list of integer of size `num_levels` ({num_levels}),"
                f" received {groups!r}."
            )
        if num_levels == 1:
            out_chans = [out_channels]
        else:
            exp2 = int(math.log2(num_levels))
            remainder = num_levels - 2**exp2
            out_chans = [out_channels // 2 ** (exp2 + 1)] * (2 * remainder) + [out_channels // 2**exp2] * (
                num_levels - 2 * remainder
            )
        if sum(out_chans) != out_channels or min(out_chans) < 1:
            raise HolocronArgumentError(
                f"argument `out_channels` ({out_channels}) cannot be split over {num_levels} levels as {out_chans}"
            )
        if groups is None:
            groups = [1] + [min(2 ** (2 + idx), chans) for idx, chans in enumerate(out_chans[1:])]
        dilation = kwargs.get("dilation", 1)
        check_positive_int(dilation, "dilation")
        layers = []
        for level, (chans, group) in enumerate(zip(out_chans, groups, strict=True)):
            check_positive_int(group, f"groups[{level}]")
            check_divisible(in_channels, "in_channels", group, f"groups[{level}]")
            check_divisible(chans, f"out_channels of level {level}", group, f"groups[{level}]")
            layers.append(
                nn.Conv2d(
                    in_channels,
                    chans,
                    kernel_size + 2 * level,
                    padding=padding + level * dilation,
                    groups=group,
                    **kwargs,
                )
            )
        super().__init__(layers)
        self.num_levels: int = num_levels

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([conv(x) for conv in self], dim=1)


# Upstream keeps the window geometry in its ``unfold`` module only.
@accepts_upstream_state(
    UpstreamAttributes(
        attributes={
            "stride": lambda m: m.unfold.stride,
            "padding": lambda m: m.unfold.padding,
            "dilation": lambda m: m.unfold.dilation,
        }
    )
)
class Involution2d(nn.Module):
    """Implements the convolution module from `Involution: Inverting the Inherence of Convolution for Visual
    Recognition <https://arxiv.org/pdf/2103.06255.pdf>`_, adapted from the proposed PyTorch implementation in the
    paper.

    The kernels are generated from the input: average pooling of size ``stride`` (when ``stride > 1``), a 1x1
    convolution ``reduce`` to ``in_channels // reduction_ratio`` channels, then a 1x1 convolution ``span`` to
    ``groups * kernel_size ** 2`` channels; the custom op ``torch.ops.holocron.involution2d`` applies them (see
    :func:`holocron.nn.functional.involution2d`). The kernel map must have the size of the sliding-window output,
    which is the case when the pooled size ``H // stride`` equals ``(H + 2 padding - dilation (k - 1) - 1) // stride
    + 1`` (e.g. ``padding = dilation * (kernel_size - 1) // 2`` with an odd ``kernel_size``); otherwise the forward
    raises a ``ValueError``.

    Args:
        in_channels: Number of channels in the input image
        kernel_size: Size of the convolving kernel
        padding: Zero-padding added to both sides of the input.
        stride: Stride of the convolution.
        groups: Number of blocked connections from input channels to output channels.
        dilation: Spacing between kernel elements.
        reduction_ratio: reduction ratio of the channels to generate the kernel
    """

    def __init__(
        self,
        in_channels: int,
        kernel_size: int,
        padding: int = 0,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        reduction_ratio: float = 1,
    ) -> None:
        super().__init__()
        # Square windows only: the kernel generator spans ``kernel_size ** 2`` taps and pools with ``stride``.
        check_positive_int(kernel_size, "kernel_size")
        check_positive_int(stride, "stride")
        check_non_negative_int(padding, "padding")
        check_positive_int(dilation, "dilation")
        _check_conv_args(in_channels, in_channels, kernel_size, stride, padding, dilation, groups, "zeros")
        check_positive(reduction_ratio, "reduction_ratio")
        reduced = int(in_channels // reduction_ratio)
        if reduced < 1:
            raise HolocronArgumentError(
                f"argument `reduction_ratio` ({reduction_ratio}) leaves no channel out of `in_channels` ({in_channels})"
            )

        self.groups: int = groups
        self.k_size: int = kernel_size
        self.stride: int = stride
        self.padding: int = padding
        self.dilation: int = dilation

        self.pool: nn.AvgPool2d | None = nn.AvgPool2d(stride, stride) if stride > 1 else None
        self.reduce = nn.Conv2d(in_channels, reduced, 1)
        self.span = nn.Conv2d(reduced, kernel_size**2 * groups, 1)
        # Stateless; kept so that the module tree matches the reference layer. The custom op does the unfolding.
        self.unfold = nn.Unfold(kernel_size, dilation, padding, stride)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"input is expected to be 4D, of shape (N, C, H, W), received shape {x.shape}")
        kernel = x if self.pool is None else self.pool(x)
        kernel = self.span(self.reduce(kernel))
        return F.involution2d(x, kernel, self.k_size, self.stride, self.padding, self.dilation, self.groups)
