"""Every layer prints as the reference layer does: same fields, values as given, the same nesting.

The expected strings are written out as data: a repr is part of the drop-in surface (logs, dependants' tests).
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import CrossEntropyLoss

from holocron import nn as hnn


def _dim_attention(branch: str) -> list[str]:
    """The repr lines of one of the three branches of TripletAttention, which differ only by name."""
    return [
        f"  ({branch}_branch): DimAttention(",
        "    (compress): Sequential(",
        "      (0): ZPool()",
        "      (1): Conv2d(2, 1, kernel_size=(7, 7), stride=(1, 1), padding=(3, 3), bias=False)",
        "      (2): BatchNorm2d(1, eps=1e-05, momentum=0.01, affine=True, bias=True, track_running_stats=True)",
        "      (3): Sigmoid()",
        "    )",
        "  )",
    ]


CASES = {
    "HardMish": (
        lambda: hnn.HardMish(),
        "HardMish()",
    ),
    "HardMish-inplace": (
        lambda: hnn.HardMish(inplace=True),
        "HardMish(inplace=True)",
    ),
    "NLReLU": (
        lambda: hnn.NLReLU(),
        "NLReLU()",
    ),
    "NLReLU-beta": (
        lambda: hnn.NLReLU(beta=2.0),
        "NLReLU()",
    ),
    "NLReLU-inplace": (
        lambda: hnn.NLReLU(inplace=True),
        "NLReLU(inplace=True)",
    ),
    "FReLU": (
        lambda: hnn.FReLU(4),
        "\n".join(
            [
                "FReLU(",
                "  (conv): Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=4)",
                "  (bn): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)",
                ")",
            ]
        ),
    ),
    "Loss": (
        lambda: hnn.Loss(),
        "Loss()",
    ),
    "FocalLoss": (
        lambda: hnn.FocalLoss(),
        "FocalLoss(gamma=2.0, reduction='mean')",
    ),
    "FocalLoss-int": (
        lambda: hnn.FocalLoss(gamma=1, reduction="sum"),
        "FocalLoss(gamma=1, reduction='sum')",
    ),
    "MultiLabelCrossEntropy": (
        lambda: hnn.MultiLabelCrossEntropy(),
        "MultiLabelCrossEntropy(reduction='mean')",
    ),
    "ComplementCrossEntropy": (
        lambda: hnn.ComplementCrossEntropy(),
        "ComplementCrossEntropy(gamma=-1, reduction='mean')",
    ),
    "MutualChannelLoss": (
        lambda: hnn.MutualChannelLoss(),
        "MutualChannelLoss(reduction='mean', xi=2, alpha=1)",
    ),
    "MutualChannelLoss-xi": (
        lambda: hnn.MutualChannelLoss(reduction="none", xi=3, alpha=0.5),
        "MutualChannelLoss(reduction='none', xi=3, alpha=0.5)",
    ),
    "DiceLoss": (
        lambda: hnn.DiceLoss(),
        "DiceLoss(reduction='mean', gamma=1.0, eps=1e-08)",
    ),
    "PolyLoss": (
        lambda: hnn.PolyLoss(),
        "PolyLoss(eps=2.0, reduction='mean')",
    ),
    "PolyLoss-int": (
        lambda: hnn.PolyLoss(eps=1),
        "PolyLoss(eps=1, reduction='mean')",
    ),
    "ClassBalancedWrapper": (
        lambda: hnn.ClassBalancedWrapper(CrossEntropyLoss(), 10 * torch.ones(4, dtype=torch.long)),
        "ClassBalancedWrapper(CrossEntropyLoss(), beta=0.99)",
    ),
    "ClassBalancedWrapper-holocron": (
        lambda: hnn.ClassBalancedWrapper(hnn.FocalLoss(), torch.tensor([5, 10]), beta=0.9),
        "ClassBalancedWrapper(FocalLoss(gamma=2.0, reduction='mean'), beta=0.9)",
    ),
    "NormConv2d": (
        lambda: hnn.NormConv2d(2, 4, 3),
        "NormConv2d(2, 4, kernel_size=(3, 3), stride=(1, 1))",
    ),
    "NormConv2d-args": (
        lambda: hnn.NormConv2d(2, 4, (3, 1), stride=2, padding=(1, 0), bias=False),
        "NormConv2d(2, 4, kernel_size=(3, 1), stride=(2, 2), padding=(1, 0), bias=False)",
    ),
    "Add2d": (
        lambda: hnn.Add2d(2, 4, 3),
        "Add2d(2, 4, kernel_size=(3, 3), stride=(1, 1))",
    ),
    "Add2d-normalized": (
        lambda: hnn.Add2d(2, 4, 3, padding=1, normalize_slices=True),
        "Add2d(2, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))",
    ),
    "SlimConv2d": (
        lambda: hnn.SlimConv2d(8, 3),
        "\n".join(
            [
                "SlimConv2d(",
                "  (fc1): Conv2d(8, 2, kernel_size=(1, 1), stride=(1, 1))",
                "  (bn): BatchNorm2d(2, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)",
                "  (fc2): Conv2d(2, 8, kernel_size=(1, 1), stride=(1, 1))",
                "  (conv_top): Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1))",
                "  (conv_bot1): Conv2d(4, 2, kernel_size=(1, 1), stride=(1, 1))",
                "  (conv_bot2): Conv2d(2, 2, kernel_size=(3, 3), stride=(1, 1))",
                ")",
            ]
        ),
    ),
    "PyConv2d": (
        lambda: hnn.PyConv2d(4, 8, 3),
        "\n".join(
            [
                "PyConv2d(",
                "  (0): Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1))",
                "  (1): Conv2d(4, 4, kernel_size=(5, 5), stride=(1, 1), padding=(1, 1), groups=4)",
                ")",
            ]
        ),
    ),
    "Involution2d": (
        lambda: hnn.Involution2d(4, 3, 1),
        "\n".join(
            [
                "Involution2d(",
                "  (reduce): Conv2d(4, 4, kernel_size=(1, 1), stride=(1, 1))",
                "  (span): Conv2d(4, 9, kernel_size=(1, 1), stride=(1, 1))",
                "  (unfold): Unfold(kernel_size=3, dilation=1, padding=1, stride=1)",
                ")",
            ]
        ),
    ),
    "Involution2d-stride": (
        lambda: hnn.Involution2d(4, 3, 1, stride=2),
        "\n".join(
            [
                "Involution2d(",
                "  (pool): AvgPool2d(kernel_size=2, stride=2, padding=0)",
                "  (reduce): Conv2d(4, 4, kernel_size=(1, 1), stride=(1, 1))",
                "  (span): Conv2d(4, 9, kernel_size=(1, 1), stride=(1, 1))",
                "  (unfold): Unfold(kernel_size=3, dilation=1, padding=1, stride=2)",
                ")",
            ]
        ),
    ),
    "DropBlock2d": (
        lambda: hnn.DropBlock2d(),
        "DropBlock2d(p=0.1, block_size=7, inplace=False)",
    ),
    "ConcatDownsample2d": (
        lambda: hnn.ConcatDownsample2d(2),
        "ConcatDownsample2d()",
    ),
    "GlobalAvgPool2d": (
        lambda: hnn.GlobalAvgPool2d(),
        "GlobalAvgPool2d()",
    ),
    "GlobalMaxPool2d-flatten": (
        lambda: hnn.GlobalMaxPool2d(flatten=True),
        "GlobalMaxPool2d(flatten=True)",
    ),
    "BlurPool2d": (
        lambda: hnn.BlurPool2d(4),
        "\n".join(
            [
                "BlurPool2d(",
                "  4, kernel_size=3, stride=2",
                "  (padding): ReflectionPad2d((1, 1, 1, 1))",
                ")",
            ]
        ),
    ),
    "SPP": (
        lambda: hnn.SPP([3, 5]),
        "\n".join(
            [
                "SPP(",
                "  (0): MaxPool2d(kernel_size=3, stride=1, padding=1, dilation=1, ceil_mode=False)",
                "  (1): MaxPool2d(kernel_size=5, stride=1, padding=2, dilation=1, ceil_mode=False)",
                ")",
            ]
        ),
    ),
    "ZPool": (
        lambda: hnn.ZPool(),
        "ZPool()",
    ),
    "SAM": (
        lambda: hnn.SAM(4),
        "\n".join(
            [
                "SAM(",
                "  (conv): Conv2d(4, 1, kernel_size=(1, 1), stride=(1, 1))",
                ")",
            ]
        ),
    ),
    "LambdaLayer": (
        lambda: hnn.LambdaLayer(4, 4, 2, r=3),
        "\n".join(
            [
                "LambdaLayer(",
                "  (to_q): Conv2d(4, 8, kernel_size=(1, 1), stride=(1, 1), bias=False)",
                "  (to_k): Conv2d(4, 2, kernel_size=(1, 1), stride=(1, 1), bias=False)",
                "  (to_v): Conv2d(4, 1, kernel_size=(1, 1), stride=(1, 1), bias=False)",
                "  (norm_q): BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)",
                "  (norm_v): BatchNorm2d(1, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)",
                ")",
            ]
        ),
    ),
    "TripletAttention": (
        lambda: hnn.TripletAttention(),
        "\n".join(["TripletAttention(", *_dim_attention("c"), *_dim_attention("h"), *_dim_attention("w"), ")"]),
    ),
}


def test_every_exported_class_is_covered():
    covered = {case_id.split("-")[0] for case_id in CASES}
    # ConcatDownsample2dJit is a TorchScript class, not a module: it has no module repr (nor has upstream's).
    assert covered == set(hnn.__all__) - {"functional", "ConcatDownsample2dJit"}


@pytest.mark.parametrize("case_id", list(CASES))
def test_repr_matches_reference(case_id):
    build, expected = CASES[case_id]
    assert repr(build()) == expected
