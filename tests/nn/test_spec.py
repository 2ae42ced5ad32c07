"""Constructor signatures and bases of the 26 public layers and of the TorchScript class ConcatDownsample2dJit, as
the reference holocron.nn defines them.

The expected signatures are data kept in this file (argument names, kinds, defaults and the direct base class), so that
the check runs in every clone; annotations are not compared (ours may be wider, e.g. NormConv2d takes pairs).
"""

from __future__ import annotations

import ast
import inspect

import pytest

from holocron import nn as hnn

EMPTY = inspect.Parameter.empty
POS = inspect.Parameter.POSITIONAL_OR_KEYWORD
ARGS = inspect.Parameter.VAR_POSITIONAL
KW = inspect.Parameter.KEYWORD_ONLY
KWARGS = inspect.Parameter.VAR_KEYWORD

#: The keyword arguments shared with :class:`torch.nn.Conv2d`, in its order.
CONV = "stride=1, padding=0, dilation=1, groups=1, bias=True, padding_mode='zeros'"

# class name: (direct base class name, its constructor's arguments written as in a Python signature, without self)
EXPECTED_SOURCE = {
    "HardMish": ("_Activation", "inplace=False"),
    "NLReLU": ("_Activation", "beta=1.0, inplace=False"),
    "FReLU": ("Module", "in_channels, kernel_size=3"),
    "Loss": ("Module", "weight=None, ignore_index=-100, reduction='mean'"),
    "FocalLoss": ("Loss", "gamma=2.0, **kwargs"),
    "MultiLabelCrossEntropy": ("Loss", "*args, **kwargs"),
    "ComplementCrossEntropy": ("Loss", "gamma=-1, **kwargs"),
    "MutualChannelLoss": ("Loss", "weight=None, ignore_index=-100, reduction='mean', xi=2, alpha=1"),
    "DiceLoss": ("Loss", "weight=None, gamma=1.0, eps=1e-08"),
    "PolyLoss": ("Loss", "*args, eps=2.0, **kwargs"),
    "ClassBalancedWrapper": ("Module", "criterion, num_samples, beta=0.99"),
    "NormConv2d": ("_NormConvNd", f"in_channels, out_channels, kernel_size, {CONV}, eps=1e-14"),
    "Add2d": ("_NormConvNd", f"in_channels, out_channels, kernel_size, {CONV}, normalize_slices=False, eps=1e-14"),
    "SlimConv2d": ("Module", f"in_channels, kernel_size, {CONV}, r=32, L=2"),
    "PyConv2d": (
        "ModuleList",
        "in_channels, out_channels, kernel_size, num_levels=2, padding=0, groups=None, **kwargs",
    ),
    "Involution2d": (
        "Module",
        "in_channels, kernel_size, padding=0, stride=1, groups=1, dilation=1, reduction_ratio=1",
    ),
    "DropBlock2d": ("Module", "p=0.1, block_size=7, inplace=False"),
    "ConcatDownsample2d": ("Module", "scale_factor"),
    "ConcatDownsample2dJit": ("object", "scale_factor"),
    "GlobalAvgPool2d": ("Module", "flatten=False"),
    "GlobalMaxPool2d": ("Module", "flatten=False"),
    "BlurPool2d": ("Module", "channels, kernel_size=3, stride=2"),
    "SPP": ("ModuleList", "kernel_sizes"),
    "ZPool": ("Module", "dim=1"),
    "SAM": ("Module", "in_channels"),
    "LambdaLayer": ("Module", "in_channels, out_channels, dim_k, n=None, r=None, num_heads=4, dim_u=1"),
    "TripletAttention": ("Module", ""),
}


def _parse_arguments(source: str) -> list[tuple[str, object, object]]:
    """``[(argument, kind, default), ...]`` of a signature's argument list, the defaults being Python literals."""
    arguments = ast.parse(f"def f({source}): pass").body[0].args
    assert not arguments.posonlyargs
    positional = [EMPTY] * (len(arguments.args) - len(arguments.defaults)) + arguments.defaults
    rows = [(arg.arg, POS, default) for arg, default in zip(arguments.args, positional, strict=True)]
    if arguments.vararg is not None:
        rows.append((arguments.vararg.arg, ARGS, EMPTY))
    rows += [(arg.arg, KW, default) for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)]
    if arguments.kwarg is not None:
        rows.append((arguments.kwarg.arg, KWARGS, EMPTY))
    return [
        (name, kind, EMPTY if default is EMPTY or default is None else ast.literal_eval(default))
        for name, kind, default in rows
    ]


EXPECTED = {name: (base, _parse_arguments(source)) for name, (base, source) in EXPECTED_SOURCE.items()}


def test_parse_arguments():
    assert _parse_arguments("") == []
    assert _parse_arguments("a, b=None, c=-1, d='x', *e, f=1e-08, g, **h") == [
        ("a", POS, EMPTY),
        ("b", POS, None),
        ("c", POS, -1),
        ("d", POS, "x"),
        ("e", ARGS, EMPTY),
        ("f", KW, 1e-08),
        ("g", KW, EMPTY),
        ("h", KWARGS, EMPTY),
    ]
    assert type(_parse_arguments("a=1.0")[0][2]) is float
    assert type(_parse_arguments("a=1")[0][2]) is int


def test_expected_data_lists_exactly_the_exported_classes():
    assert len(EXPECTED) == 27
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
