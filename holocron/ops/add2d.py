"""``torch.ops.holocron.add2d``: the adder layer of `AdderNet <https://arxiv.org/abs/1912.13200>`_.

The filters are matched to each sliding window by a negated L1 distance instead of a dot product. The eager kernel
builds the windows (``unfold``, the same ``N x C_in*kH*kW x L`` buffer a CPU convolution uses, plus one regrouped
copy) and lets ``torch.cdist(p=1)`` reduce them against the filters, so the ``N x L x C_out x C_in*kH*kW`` difference
tensor is never materialised. The backward (an op of its own, ``holocron::_add2d_backward``) builds that sign tensor
one chunk of output channels at a time, bounded by ``_BACKWARD_CHUNK_ELEMENTS``.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from holocron.contract import ADD2D
from holocron.ops._library import define_op
from holocron.ops._window import check_floating, check_rank, check_window, window_output_size

__all__ = ["add2d"]

_OP = ADD2D.torch_name
# Largest sign tensor (elements) the backward materialises at once; at least one output channel is processed per step.
_BACKWARD_CHUNK_ELEMENTS = 1 << 24


def _output_shape(input, weight, bias, stride, padding, dilation, groups, normalize_slices, eps) -> tuple[int, ...]:
    """Validate the arguments of :func:`add2d` (same order); return the output shape ``(N, C_out, H_out, W_out)``."""
    check_rank(_OP, "input", input, 4, "(N, C_in, H, W)")
    check_rank(_OP, "weight", weight, 4, "(C_out, C_in / groups, kH, kW)")
    tensors = {"input": input, "weight": weight}
    if bias is not None:
        check_rank(_OP, "bias", bias, 1, "(C_out,)")
        tensors["bias"] = bias
    check_floating(_OP, "input", tensors)
    check_window(ADD2D, stride, padding, dilation)
    ADD2D.attribute("group").check(_OP, groups, "groups")
    ADD2D.attribute("eps").check(_OP, eps, "eps")
    in_channels, out_channels = input.shape[1], weight.shape[0]
    if in_channels % groups != 0 or out_channels % groups != 0:
        raise ValueError(f"{_OP}: `groups` must divide C_in={in_channels} and C_out={out_channels}; got {groups}")
    if weight.shape[1] != in_channels // groups:
        raise ValueError(
            f"{_OP}: `weight` must have C_in / groups = {in_channels // groups} channels (dim 1); "
            f"got shape {tuple(weight.shape)}"
        )
    if bias is not None and bias.shape[0] != out_channels:
        raise ValueError(f"{_OP}: `bias` must have shape ({out_channels},); got {tuple(bias.shape)}")
    out_h, out_w = window_output_size(
        ADD2D, [input.shape[2], input.shape[3]], [weight.shape[2], weight.shape[3]], stride, padding, dilation
    )
    return input.shape[0], out_channels, out_h, out_w


def _slices(input, weight, stride, padding, dilation, groups, normalize_slices, eps) -> tuple[Tensor, Tensor | None]:
    """Windows of ``input`` as ``(N, groups, L, C_in / groups * kH * kW)``, (c, i, j) order, optionally normalized.

    The arguments are those of :func:`add2d` but ``bias``; the window size is that of ``weight``. Returns the slices
    and, when normalized, the inverse standard deviations ``1 / sqrt(var + eps)`` ``(N, groups, L, 1)``, 0 where
    ``var + eps == 0`` (such a slice normalizes to 0). Mean and variance are taken in float64: a float32 mean of a
    constant window is off by ulps, which ``1 / sqrt(eps)`` (1e7 at the default eps) would amplify into order-one
    errors.
    """
    batch, channels = input.shape[0], input.shape[1]
    kernel_size = (weight.shape[2], weight.shape[3])
    cols = F.unfold(input, kernel_size, dilation=dilation, padding=padding, stride=stride)
    slices = cols.view(batch, groups, channels // groups * kernel_size[0] * kernel_size[1], -1).transpose(2, 3)
    if not normalize_slices:
        return slices, None
    centered = slices.double()
    centered = centered - centered.mean(dim=-1, keepdim=True)
    denominator = centered.square().mean(dim=-1, keepdim=True) + eps
    inv_std = torch.where(denominator > 0, denominator.rsqrt(), torch.zeros_like(denominator))
    return (centered * inv_std).to(slices.dtype), inv_std.to(slices.dtype)


def _forward(input, weight, bias, stride, padding, dilation, groups, normalize_slices, eps) -> Tensor:
    """Eager kernel of ``holocron::add2d``, arguments as :func:`add2d`."""
    batch, out_channels, out_h, out_w = _output_shape(
        input, weight, bias, stride, padding, dilation, groups, normalize_slices, eps
    )
    slices, _ = _slices(input, weight, stride, padding, dilation, groups, normalize_slices, eps)
    per_group = out_channels // groups
    # Batch folded into the rows, (groups, N * L, D): cdist would otherwise copy the filters once per sample.
    rows = slices.transpose(0, 1).reshape(groups, -1, slices.shape[-1])
    filters = weight.reshape(groups, per_group, -1)
    distances = torch.cdist(filters, rows, p=1.0).view(groups, per_group, batch, out_h, out_w)
    out = distances.permute(2, 0, 1, 3, 4).reshape(batch, out_channels, out_h, out_w).neg_()
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    return out


def _backward(
    grad_output, input, weight, stride, padding, dilation, groups, normalize_slices, eps
) -> tuple[Tensor, Tensor]:
    """Eager kernel of ``holocron::_add2d_backward``: the gradients w.r.t. ``input`` and ``weight``.

    ``dY/dW = sign(S - W)`` and ``dY/dS = -sign(S - W)``, built one chunk of output channels at a time; through the
    normalization ``dS = (dSn - mean(dSn) - Sn * mean(dSn * Sn)) / std`` (0 for a slice with ``var + eps == 0``);
    ``fold`` (the adjoint of ``unfold``) brings the window gradients back to ``input``.
    """
    batch, out_channels = grad_output.shape[0], grad_output.shape[1]
    per_group = out_channels // groups
    kernel_size = (weight.shape[2], weight.shape[3])
    slices, inv_std = _slices(input, weight, stride, padding, dilation, groups, normalize_slices, eps)
    filters = weight.reshape(groups, per_group, -1)
    grad_y = grad_output.reshape(batch, groups, per_group, -1).transpose(2, 3)  # (N, groups, L, C_out / groups)
    grad_slices = torch.zeros_like(slices)
    grad_filters = torch.empty_like(filters)
    step = max(1, _BACKWARD_CHUNK_ELEMENTS // max(1, slices.numel()))
    for start in range(0, per_group, step):
        stop = min(start + step, per_group)
        sign = torch.sign(slices.unsqueeze(3) - filters[None, :, None, start:stop])  # (N, groups, L, chunk, D)
        chunk_grad = grad_y[..., start:stop]
        grad_filters[:, start:stop] = torch.einsum("nglod,nglo->god", sign, chunk_grad)
        grad_slices -= torch.einsum("nglod,nglo->ngld", sign, chunk_grad)
    if inv_std is not None:
        mean_grad = grad_slices.mean(dim=-1, keepdim=True)
        mean_projection = (grad_slices * slices).mean(dim=-1, keepdim=True)
        grad_slices = (grad_slices - mean_grad - slices * mean_projection) * inv_std
    grad_cols = grad_slices.transpose(2, 3).reshape(batch, input.shape[1] * kernel_size[0] * kernel_size[1], -1)
    grad_input = F.fold(
        grad_cols, (input.shape[2], input.shape[3]), kernel_size, dilation=dilation, padding=padding, stride=stride
    )
    return grad_input.contiguous(), grad_filters.reshape(weight.shape).contiguous()


def add2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    groups: int,
    normalize_slices: bool,
    eps: float,
) -> Tensor:
    r"""Adder "convolution": the negated L1 distance between every window of ``input`` and every filter, plus bias.

    .. math::

        Y[n, o, y, x] = -\sum_{c, i, j} \left| S_{n, g(o), y, x}[c, i, j] - W[o, c, i, j] \right| + B[o]

    with :math:`S_{n, g, y, x}` the window of channel group :math:`g` at output position :math:`(y, x)` (normalized
    to zero mean and unit variance when ``normalize_slices``), from
    `AdderNet: Do We Really Need Multiplications in Deep Learning? <https://arxiv.org/abs/1912.13200>`_.

    Args:
        input: feature map ``(N, C_in, H, W)``.
        weight: filters ``(C_out, C_in / groups, kH, kW)``.
        bias: ``(C_out,)`` added to the output, or ``None``.
        stride: window step ``[sH, sW]`` (ONNX ``strides``), each >= 1.
        padding: symmetric zero padding ``[pH, pW]``, each >= 0 (ONNX ``pads = [pH, pW, pH, pW]``).
        dilation: tap spacing ``[dH, dW]`` (ONNX ``dilations``), each >= 1.
        groups: channel groups (ONNX ``group``); divides ``C_in`` and ``C_out``.
        normalize_slices: normalize each window (over its ``C_in / groups * kH * kW`` values, padding included) to
            zero mean and unit variance before the distance.
        eps: added to the window variance before the square root; >= 0. A window whose variance plus ``eps`` is 0
            (a constant window with ``eps = 0``) normalizes to zeros.

    Returns:
        ``(N, C_out, H_out, W_out)``, each output size by :func:`~holocron.contract.conv_output_size` (padding
        ``pH`` before and after).

    Raises:
        ValueError: a shape or rank does not fit, or an argument is outside its attribute's range in
            :mod:`holocron.contract` (the message names the argument and the expected value).
        TypeError: the tensors are not floating point or disagree in dtype or device.
    """
    return torch.ops.holocron.add2d(input, weight, bias, stride, padding, dilation, groups, normalize_slices, eps)


define_op(ADD2D, add2d, _forward, _output_shape, _backward, optional_grad=lambda grad: grad.sum(dim=(0, 2, 3)))
