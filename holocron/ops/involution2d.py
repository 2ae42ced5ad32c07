"""``torch.ops.holocron.involution2d``: per-pixel kernels of `Involution <https://arxiv.org/abs/2103.06255>`_.

The eager kernel walks the ``kH * kW`` taps: each tap is a strided view of the zero-padded input, multiplied by its
per-pixel weight and accumulated, so memory stays at one padded input plus the output (no unfolded windows). The
backward (an op of its own, ``holocron::_involution2d_backward``) walks the same taps with explicit formulas.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from holocron.contract import INVOLUTION2D
from holocron.ops._library import define_op
from holocron.ops._window import check_floating, check_rank, check_window, window_output_size

__all__ = ["involution2d"]

_OP = INVOLUTION2D.torch_name


def _output_shape(input, kernel, kernel_size, stride, padding, dilation, groups) -> tuple[int, ...]:
    """Validate the arguments of :func:`involution2d` (same order); return the output shape ``(N, C, H_out, W_out)``."""
    check_rank(_OP, "input", input, 4, "(N, C, H, W)")
    check_rank(_OP, "kernel", kernel, 4, "(N, groups * kH * kW, H_out, W_out)")
    check_floating(_OP, "input", {"input": input, "kernel": kernel})
    INVOLUTION2D.attribute("kernel_shape").check(_OP, kernel_size, "kernel_size")
    check_window(INVOLUTION2D, stride, padding, dilation)
    INVOLUTION2D.attribute("group").check(_OP, groups, "groups")
    if input.shape[1] % groups != 0:
        raise ValueError(f"{_OP}: `groups` must divide C={input.shape[1]}; got {groups}")
    out_h, out_w = window_output_size(
        INVOLUTION2D, [input.shape[2], input.shape[3]], kernel_size, stride, padding, dilation
    )
    expected = (input.shape[0], groups * kernel_size[0] * kernel_size[1], out_h, out_w)
    if tuple(kernel.shape) != expected:
        raise ValueError(
            f"{_OP}: `kernel` must have shape (N, groups * kH * kW, H_out, W_out) = {expected}; "
            f"got {tuple(kernel.shape)}"
        )
    return input.shape[0], input.shape[1], out_h, out_w


def _tap(padded: Tensor, i: int, j: int, stride: list[int], dilation: list[int], out_h: int, out_w: int) -> Tensor:
    """View of ``padded`` seen by tap ``(i, j)`` at every output position: ``(N, C, H_out, W_out)``."""
    top, left = i * dilation[0], j * dilation[1]
    return padded[
        :, :, top : top + (out_h - 1) * stride[0] + 1 : stride[0], left : left + (out_w - 1) * stride[1] + 1 : stride[1]
    ]


def _forward(input, kernel, kernel_size, stride, padding, dilation, groups) -> Tensor:
    """Eager kernel of ``holocron::involution2d``, arguments as :func:`involution2d`."""
    _, _, out_h, out_w = _output_shape(input, kernel, kernel_size, stride, padding, dilation, groups)
    batch, channels = input.shape[0], input.shape[1]
    padded = F.pad(input, (padding[1], padding[1], padding[0], padding[0]))
    taps = kernel.view(batch, groups, 1, kernel_size[0] * kernel_size[1], out_h, out_w)
    out = input.new_zeros((batch, groups, channels // groups, out_h, out_w))
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            window = _tap(padded, i, j, stride, dilation, out_h, out_w).view(out.shape)
            out.addcmul_(window, taps[:, :, :, i * kernel_size[1] + j])
    return out.view(batch, channels, out_h, out_w)


def _backward(grad_output, input, kernel, kernel_size, stride, padding, dilation, groups) -> tuple[Tensor, Tensor]:
    """Eager kernel of ``holocron::_involution2d_backward``: the gradients w.r.t. ``input`` and ``kernel``, tap by tap.

    ``dK[g * kH * kW + t] = sum_{c in g} dY * X_t`` and ``dX_pad[window t] += dY * K_t``.
    """
    batch, channels, out_h, out_w = grad_output.shape
    padded = F.pad(input, (padding[1], padding[1], padding[0], padding[0]))
    grad_padded = torch.zeros_like(padded)
    grad_y = grad_output.reshape(batch, groups, channels // groups, out_h, out_w)
    taps = kernel.view(batch, groups, 1, kernel_size[0] * kernel_size[1], out_h, out_w)
    grad_taps = torch.empty_like(taps)
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            t = i * kernel_size[1] + j
            window = _tap(padded, i, j, stride, dilation, out_h, out_w).reshape(grad_y.shape)
            grad_taps[:, :, :, t] = (grad_y * window).sum(dim=2, keepdim=True)
            grad_window = _tap(grad_padded, i, j, stride, dilation, out_h, out_w)
            grad_window += (grad_y * taps[:, :, :, t]).reshape(grad_window.shape)
    height, width = input.shape[2], input.shape[3]
    grad_input = grad_padded[:, :, padding[0] : padding[0] + height, padding[1] : padding[1] + width].contiguous()
    return grad_input, grad_taps.reshape(kernel.shape).contiguous()


def involution2d(
    input: Tensor,
    kernel: Tensor,
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    groups: int,
) -> Tensor:
    r"""Involution: every output pixel applies its own ``kH x kW`` kernel, shared by the channels of a group.

    .. math::

        Y[n, c, y, x] = \sum_{i, j} K[n, g(c) k_H k_W + i k_W + j, y, x] \, X_{pad}[n, c, y s_H + i d_H, x s_W + j d_W]

    with :math:`g(c)` the channel group of :math:`c` and :math:`X_{pad}` the zero-padded input, from
    `Involution: Inverting the Inherence of Convolution for Visual Recognition <https://arxiv.org/abs/2103.06255>`_.

    Args:
        input: feature map ``(N, C, H, W)``.
        kernel: per-pixel kernels ``(N, groups * kH * kW, H_out, W_out)``, channel ``g * kH * kW + i * kW + j``.
        kernel_size: ``[kH, kW]`` (ONNX ``kernel_shape``), each >= 1.
        stride: window step ``[sH, sW]`` (ONNX ``strides``), each >= 1.
        padding: symmetric zero padding ``[pH, pW]``, each >= 0 (ONNX ``pads = [pH, pW, pH, pW]``).
        dilation: tap spacing ``[dH, dW]`` (ONNX ``dilations``), each >= 1.
        groups: channel groups sharing one kernel (ONNX ``group``); divides ``C``.

    Returns:
        ``(N, C, H_out, W_out)``, each output size by :func:`~holocron.contract.conv_output_size` (padding ``pH``
        before and after).

    Raises:
        ValueError: a shape or rank does not fit, or an argument is outside its attribute's range in
            :mod:`holocron.contract` (the message names the argument and the expected value).
        TypeError: the tensors are not floating point or disagree in dtype or device.
    """
    return torch.ops.holocron.involution2d(input, kernel, kernel_size, stride, padding, dilation, groups)


define_op(INVOLUTION2D, involution2d, _forward, _output_shape, _backward)
