"""Small TorchScript-compatible helpers shared by the functional forms."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["as_pair", "check_conv_input", "check_hard_target", "check_reduction", "conv_output_size"]


def as_pair(value: int | tuple[int, int], name: str, minimum: int) -> list[int]:
    """Turn an ``int`` or an ``(h, w)`` pair into a list ``[h, w]`` and check both are >= ``minimum``."""
    if isinstance(value, int):
        pair = [value, value]
    else:
        if len(value) != 2:
            raise ValueError(f"argument `{name}` is expected to be an int or a pair of ints, received {value}")
        pair = [value[0], value[1]]
    if pair[0] < minimum or pair[1] < minimum:
        raise ValueError(f"argument `{name}` is expected to be >= {minimum}, received {pair}")
    return pair


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Number of sliding-window positions along one axis (same rule as ``torch.nn.Conv2d``)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def check_conv_input(x: Tensor, weight: Tensor, groups: int) -> None:
    """Check that ``x`` (N, C_in, H, W) and ``weight`` (C_out, C_in / groups, kH, kW) fit together."""
    if x.dim() != 4:
        raise ValueError(f"input is expected to have shape (N, C_in, H, W), received shape {x.shape}")
    if weight.dim() != 4:
        raise ValueError(f"weight is expected to have shape (C_out, C_in / groups, kH, kW), received {weight.shape}")
    if groups < 1 or weight.shape[0] % groups != 0:
        raise ValueError(f"groups ({groups}) is expected to be >= 1 and to divide C_out ({weight.shape[0]})")
    if x.shape[1] != weight.shape[1] * groups:
        raise ValueError(
            f"input has {x.shape[1]} channels, expected weight.shape[1] * groups = {weight.shape[1] * groups}"
        )


def check_reduction(reduction: str) -> None:
    """Check that ``reduction`` is one of ``'none'``, ``'mean'`` or ``'sum'``."""
    if reduction not in ["none", "mean", "sum"]:
        raise ValueError(f"argument `reduction` is expected to be 'none', 'mean' or 'sum', received '{reduction}'")


def check_hard_target(x: Tensor, target: Tensor) -> None:
    """Check that ``target`` holds class indices of shape (N, ...) for logits ``x`` of shape (N, K, ...)."""
    if x.dim() < 2:
        raise ValueError(f"input is expected to have shape (N, K, ...), received shape {x.shape}")
    if target.dim() != x.dim() - 1 or target.shape[0] != x.shape[0] or target.shape[1:] != x.shape[2:]:
        raise ValueError(
            f"target is expected to have the shape of the input {x.shape} without dim 1, received {target.shape}"
        )
    if target.dtype != torch.long:
        raise TypeError(f"target is expected to hold class indices of dtype torch.int64, received {target.dtype}")
