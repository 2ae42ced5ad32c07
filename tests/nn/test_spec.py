"""Constructor signatures and bases of the 26 public layers, as the reference holocron.nn defines them.

The expected signatures are data kept in this file (argument names, kinds, defaults and the direct base class), so that
the check runs in every clone; annotations are not compared (ours may be wider, e.g. NormConv2d takes pairs).
"""

from __future__ import annotations

import inspect

import pytest

from holocron import nn as hnn

EMPTY = inspect.Parameter.empty
POS = inspect.Parameter.POSITIONAL_OR_KEYWORD
ARGS = inspect.Parameter.VAR_POSITIONAL
KW = inspect.Parameter.KEYWORD_ONLY
KWARGS = inspect.Parameter.VAR_KEYWORD

# class name: (direct base class name, [(argument, kind, default), ...])
EXPECTED = {
    "HardMish": (
        "_Activation",
        [
            ("inplace", POS, False),
        ],
    ),
    "NLReLU": (
        "_Activation",
        [
            ("beta", POS, 1.0),
            ("inplace", POS, False),
        ],
    ),
    "FReLU": (
        "Module",
        [
            ("in_channels", POS, EMPTY),
            ("kernel_size", POS, 3),
        ],
    ),
    "Loss": (
        "Module",
        [
            ("weight", POS, None),
            ("ignore_index", POS, -100),
            ("reduction", POS, "mean"),
        ],
    ),
    "FocalLoss": (
        "Loss",
        [
            ("gamma", POS, 2.0),
            ("kwargs", KWARGS, EMPTY),
        ],
    ),
    "MultiLabelCrossEntropy": (
        "Loss",
        [
            ("args", ARGS, EMPTY),
            ("kwargs", KWARGS, EMPTY),
        ],
    ),
    "ComplementCrossEntropy": (
        "Loss",
        [
            ("gamma", POS, -1),
            ("kwargs", KWARGS, EMPTY),
        ],
    ),
    "MutualChannelLoss": (
        "Loss",
        [
            ("weight", POS, None),
            ("ignore_index", POS, -100),
            ("reduction", POS, "mean"),
            ("xi", POS, 2),
            ("alpha", POS, 1),
        ],
    ),
    "DiceLoss": (
        "Loss",
        [
            ("weight", POS, None),
            ("gamma", POS, 1.0),
            ("eps", POS, 1e-08),
        ],
    ),
    "PolyLoss": (
        "Loss",
        [
            ("args", ARGS, EMPTY),
            ("eps", KW, 2.0),
            ("kwargs", KWARGS, EMPTY),
        ],
    ),
    "ClassBalancedWrapper": (
        "Module",
        [
            ("criterion", POS, EMPTY),
            ("num_samples", POS, EMPTY),
            ("beta", POS, 0.99),
        ],
    ),
    "NormConv2d": (
        "_NormConvNd",
        [
            ("in_channels", POS, EMPTY),
            ("out_channels", POS, EMPTY),
            ("kernel_size", POS, EMPTY),
            ("stride", POS, 1),
            ("padding", POS, 0),
            ("dilation", POS, 1),
            ("groups", POS, 1),
            ("bias", POS, True),
            ("padding_mode", POS, "zeros"),
            ("eps", POS, 1e-14),
        ],
    ),
    "Add2d": (
        "_NormConvNd",
        [
            ("in_channels", POS, EMPTY),
            ("out_channels", POS, EMPTY),
            ("kernel_size", POS, EMPTY),
            ("stride", POS, 1),
            ("padding", POS, 0),
            ("dilation", POS, 1),
            ("groups", POS, 1),
            ("bias", POS, True),
            ("padding_mode", POS, "zeros"),
            ("normalize_slices", POS, False),
            ("eps", POS, 1e-14),
        ],
    ),
    "SlimConv2d": (
        "Module",
        [
            ("in_channels", POS, EMPTY),
            ("kernel_size", POS, EMPTY),
            ("stride", POS, 1),
            ("padding", POS, 0),
            ("dilation", POS, 1),
            ("groups", POS, 1),
            ("bias", POS, True),
            ("padding_mode", POS, "zeros"),
            ("r", POS, 32),
            ("L", POS, 2),
        ],
    ),
    "PyConv2d": (
        "ModuleList",
        [
            ("in_channels", POS, EMPTY),
            ("out_channels", POS, EMPTY),
            ("kernel_size", POS, EMPTY),
            ("num_levels", POS, 2),
            ("padding", POS, 0),
            ("groups", POS, None),
            ("kwargs", KWARGS, EMPTY),
        ],
    ),
    "Involution2d": (
        "Module",
        [
            ("in_channels", POS, EMPTY),
            ("kernel_size", POS, EMPTY),
            ("padding", POS, 0),
            ("stride", POS, 1),
            ("groups", POS, 1),
            ("dilation", POS, 1),
            ("reduction_ratio", POS, 1),
        ],
    ),
    "DropBlock2d": (
        "Module",
        [
            ("p", POS, 0.1),
            ("block_size", POS, 7),
            ("inplace", POS, False),
        ],
    ),
    "ConcatDownsample2d": (
        "Module",
        [
            ("scale_factor", POS, EMPTY),
        ],
    ),
    "GlobalAvgPool2d": (
        "Module",
        [
            ("flatten", POS, False),
        ],
    ),
    "GlobalMaxPool2d": (
        "Module",
        [
            ("flatten", POS, False),
        ],
    ),
    "BlurPool2d": (
        "Module",
        [
            ("channels", POS, EMPTY),
            ("kernel_size", POS, 3),
            ("stride", POS, 2),
        ],
    ),
    "SPP": (
        "ModuleList",
        [
            ("kernel_sizes", POS, EMPTY),
        ],
    ),
    "ZPool": (
        "Module",
        [
            ("dim", POS, 1),
        ],
    ),
    "SAM": (
        "Module",
        [
            ("in_channels", POS, EMPTY),
        ],
    ),
    "LambdaLayer": (
        "Module",
        [
            ("in_channels", POS, EMPTY),
            ("out_channels", POS, EMPTY),
            ("dim_k", POS, EMPTY),
            ("n", POS, None),
            ("r", POS, None),
            ("num_heads", POS, 4),
            ("dim_u", POS, 1),
        ],
    ),
    "TripletAttention": (
        "Module",
        [],
    ),
}


def test_expected_data_lists_exactly_the_exported_classes():
    assert len(EXPECTED) == 26
    assert set(EXPECTED) == set(hnn.__all__) - {"functional"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_constructor_signature(name):
    _, expected = EXPECTED[name]
    actual = [
        (parameter.name, parameter.kind, parameter.default)
        for parameter in inspect.signature(getattr(hnn, name)).parameters.values()
    ]
    assert actual == expected


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_direct_base(name):
    base, _ = EXPECTED[name]
    assert [parent.__name__ for parent in getattr(hnn, name).__bases__] == [base]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_default_types(name):
    """A default of 1.0 and one of 1 compare equal: check the type too (it shows in reprs and TorchScript types)."""
    _, expected = EXPECTED[name]
    actual = inspect.signature(getattr(hnn, name)).parameters
    for argument, _, default in expected:
        assert type(actual[argument].default) is type(default), argument
