"""The layers of ``holocron.nn``, one file per family."""

from .activation import FReLU, HardMish, NLReLU
from .attention import SAM, TripletAttention
from .conv import Add2d, Involution2d, NormConv2d, PyConv2d, SlimConv2d
from .downsample import (
    SPP,
    BlurPool2d,
    ConcatDownsample2d,
    ConcatDownsample2dJit,
    GlobalAvgPool2d,
    GlobalMaxPool2d,
    ZPool,
)
from .dropblock import DropBlock2d
from .lambda_layer import LambdaLayer
from .loss import (
    ClassBalancedWrapper,
    ComplementCrossEntropy,
    DiceLoss,
    FocalLoss,
    Loss,
    MultiLabelCrossEntropy,
    MutualChannelLoss,
    PolyLoss,
)

__all__ = [
    "SAM",
    "SPP",
    "Add2d",
    "BlurPool2d",
    "ClassBalancedWrapper",
    "ComplementCrossEntropy",
    "ConcatDownsample2d",
    "ConcatDownsample2dJit",
    "DiceLoss",
    "DropBlock2d",
    "FReLU",
    "FocalLoss",
    "GlobalAvgPool2d",
    "GlobalMaxPool2d",
    "HardMish",
    "Involution2d",
    "LambdaLayer",
    "Loss",
    "MultiLabelCrossEntropy",
    "MutualChannelLoss",
    "NLReLU",
    "NormConv2d",
    "PolyLoss",
    "PyConv2d",
    "SlimConv2d",
    "TripletAttention",
    "ZPool",
]
