"""Weight initialization for networks built with ``holocron.nn``."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

__all__ = ["init_module"]


@torch.no_grad()
def init_module(module: nn.Module, nonlinearity: str = "relu") -> None:
    """Initialize the convolutions and normalization layers of a module and of all its submodules, in place.

    Every convolution (any subclass of ``torch.nn.modules.conv._ConvNd``, which includes
    :class:`~holocron.nn.NormConv2d` and :class:`~holocron.nn.Add2d`) gets Kaiming-normal weights (``mode="fan_out"``)
    and zero biases; every batch normalization and :class:`torch.nn.GroupNorm` gets an affine weight of 1 and a bias
    of 0 (running statistics are left as they are). Other layers are not touched.

    Args:
        module: module to initialize, walked recursively
        nonlinearity: the non-linearity that follows the convolutions, as understood by
            :func:`torch.nn.init.kaiming_normal_` (e.g. ``'relu'`` or ``'leaky_relu'``)
    """
    for layer in module.modules():
        if isinstance(layer, _ConvNd):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity=nonlinearity)  # type: ignore[arg-type]
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (_BatchNorm, nn.GroupNorm)):
            if layer.weight is not None:
                nn.init.ones_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
