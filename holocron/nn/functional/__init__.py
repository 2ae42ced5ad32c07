"""Functional interface of ``holocron.nn``: every layer's computation as a TorchScript-compatible function."""

from holocron._upstream import upstream_package_dir

from .activation import hard_mish, nl_relu
from .conv import add2d, involution2d, norm_conv2d
from .dropblock import dropblock2d
from .loss import (
    complement_cross_entropy,
    dice_loss,
    focal_loss,
    multilabel_cross_entropy,
    mutual_channel_loss,
    poly_loss,
)
from .pooling import concat_downsample2d, z_pool

__all__ = [
    "add2d",
    "complement_cross_entropy",
    "concat_downsample2d",
    "dice_loss",
    "dropblock2d",
    "focal_loss",
    "hard_mish",
    "involution2d",
    "multilabel_cross_entropy",
    "mutual_channel_loss",
    "nl_relu",
    "norm_conv2d",
    "poly_loss",
    "z_pool",
]

# Upstream's modules import this package too (its own functional.py is shadowed by this folder): when upstream was
# installed over this package, that is where the mix is found and explained.
upstream_package_dir()
