"""NormConv2d, Add2d, SlimConv2d, PyConv2d and Involution2d against references written from their definitions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as TF
from torch import nn
from torch.nn.modules.conv import _ConvNd

from holocron import nn as hnn
from holocron.nn import functional as F
from holocron.nn.modules.conv import _NormConvNd


def _slices(x, kernel, stride, padding, dilation, groups, padding_mode="zeros"):
    """(N, G, C_in / G * kH * kW, L) windows of x, channels of a group then kernel taps, as F.unfold lays them."""
    if padding_mode != "zeros":
        x = TF.pad(x, [padding, padding, padding, padding], mode=padding_mode)
        padding = 0
    cols = TF.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)
    return cols.view(x.shape[0], groups, -1, cols.shape[-1])


def _output_size(size, kernel, stride, padding, dilation):
    return math.floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1)


def _finish(out, module_out_channels, x, kernel, stride, padding, dilation):
    h = _output_size(x.shape[2], kernel, stride, padding, dilation)
    w = _output_size(x.shape[3], kernel, stride, padding, dilation)
    return out.reshape(x.shape[0], module_out_channels, h, w)


def _normalize(cols, eps):
    mean = cols.mean(dim=2, keepdim=True)
    var = ((cols - mean) ** 2).mean(dim=2, keepdim=True)
    return (cols - mean) / torch.sqrt(var + eps)


def _norm_conv_reference(x, weight, bias, stride, padding, dilation, groups, eps, padding_mode="zeros"):
    kernel = weight.shape[-1]
    cols = _normalize(_slices(x, kernel, stride, padding, dilation, groups, padding_mode), eps)
    filters = weight.reshape(groups, weight.shape[0] // groups, -1)
    out = torch.einsum("ngkl,gok->ngol", cols, filters).reshape(x.shape[0], weight.shape[0], -1)
    if bias is not None:
        out = out + bias.view(1, -1, 1)
    return _finish(out, weight.shape[0], x, kernel, stride, padding, dilation)


def _add_reference(x, weight, bias, stride, padding, dilation, groups, normalize, eps, padding_mode="zeros"):
    kernel = weight.shape[-1]
    cols = _slices(x, kernel, stride, padding, dilation, groups, padding_mode)
    if normalize:
        cols = _normalize(cols, eps)
    filters = weight.reshape(groups, weight.shape[0] // groups, -1)
    # (N, G, O, K, L): every slice against every filter of its group
    distances = (cols.unsqueeze(2) - filters.unsqueeze(0).unsqueeze(-1)).abs().sum(dim=3)
    out = -distances.reshape(x.shape[0], weight.shape[0], -1)
    if bias is not None:
        out = out + bias.view(1, -1, 1)
    return _finish(out, weight.shape[0], x, kernel, stride, padding, dilation)


# (in, out, kernel, stride, padding, dilation, groups, bias, padding_mode, input shape)
CONV_CONFIGS = [
    (3, 4, 3, 1, 0, 1, 1, True, "zeros", (2, 3, 7, 6)),
    (4, 6, 3, 2, 1, 1, 2, True, "zeros", (1, 4, 9, 8)),
    (4, 4, 3, 1, 2, 2, 4, False, "zeros", (2, 4, 7, 7)),
    (6, 3, 2, 3, 1, 1, 3, True, "zeros", (3, 6, 11, 10)),
    (2, 4, 3, 1, 1, 1, 1, True, "reflect", (2, 2, 5, 6)),
    (4, 4, 3, 2, 1, 1, 2, True, "circular", (1, 4, 7, 7)),
    (2, 2, 5, 1, 2, 1, 1, True, "replicate", (2, 2, 6, 5)),
    (1, 2, 1, 1, 0, 1, 1, True, "zeros", (2, 1, 3, 3)),
]


@pytest.mark.parametrize(("cin", "cout", "k", "s", "p", "d", "g", "bias", "mode", "shape"), CONV_CONFIGS)
def test_norm_conv2d_matches_slice_normalization(cin, cout, k, s, p, d, g, bias, mode, shape):
    module = hnn.NormConv2d(cin, cout, k, s, p, d, g, bias, mode, eps=1e-6).double()
    x = torch.randn(shape, dtype=torch.float64) * 2 + 3
    out = module(x)
    expected = _norm_conv_reference(x, module.weight, module.bias, s, p, d, g, 1e-6, mode)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected)


def test_norm_conv2d_float32_precision_with_offset_input():
    """Slices with a spread small next to their mean keep the accuracy float32 allows (no E[S^2] - E[S]^2)."""
    offset, spread = 50.0, 0.1
    module = hnn.NormConv2d(4, 4, 3, padding=1, groups=2)
    x = torch.randn(2, 4, 8, 8) * spread + offset
    expected = _norm_conv_reference(x.double(), module.weight.double(), module.bias.double(), 1, 1, 1, 2, 1e-14)
    # Rounding the slice mean in float32 shifts the normalized values by about offset / spread * eps(float32);
    # a single-pass variance would lose (offset / spread) ** 2 * eps(float32), i.e. whole percents here.
    tolerance = 4 * offset / spread * torch.finfo(torch.float32).eps
    torch.testing.assert_close(module(x).double(), expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("normalize_slices", [False, True])
@pytest.mark.parametrize(("cin", "cout", "k", "s", "p", "d", "g", "bias", "mode", "shape"), CONV_CONFIGS)
def test_add2d_matches_negated_l1_distance(cin, cout, k, s, p, d, g, bias, mode, shape, normalize_slices):
    module = hnn.Add2d(cin, cout, k, s, p, d, g, bias, mode, normalize_slices, eps=1e-6).double()
    x = torch.randn(shape, dtype=torch.float64)
    out = module(x)
    expected = _add_reference(x, module.weight, module.bias, s, p, d, g, normalize_slices, 1e-6, mode)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected)


def test_functional_conv_forms_accept_ints_and_pairs():
    x = torch.randn(1, 4, 7, 9, dtype=torch.float64)
    weight = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(
        F.norm_conv2d(x, weight, None, (2, 1), (1, 0), 1, 2),
        F.norm_conv2d(x, weight, None, stride=(2, 1), padding=(1, 0), dilation=(1, 1), groups=2),
    )
    torch.testing.assert_close(
        F.add2d(x, weight, None, 2, 1, 1, 2), F.add2d(x, weight, None, (2, 2), (1, 1), (1, 1), 2)
    )
    # Anisotropic pairs against the unfold reference (the module only takes square settings)
    out = F.add2d(x, weight, None, (2, 1), (1, 0), (1, 2), 2)
    cols = TF.unfold(x, 3, dilation=(1, 2), padding=(1, 0), stride=(2, 1)).view(1, 2, 18, -1)
    ref = -(cols.unsqueeze(2) - weight.view(2, 1, 18).unsqueeze(0).unsqueeze(-1)).abs().sum(3)
    torch.testing.assert_close(out, ref.reshape(out.shape))


def test_gradcheck_norm_conv2d_and_add2d():
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, w, b: F.norm_conv2d(a, w, b, 2, 1, 1, 2, 1e-5), (x, weight, bias), fast_mode=True
    )
    assert torch.autograd.gradcheck(
        lambda a, w, b: F.add2d(a, w, b, 1, 1, 2, 2, True, 1e-5), (x, weight, bias), fast_mode=True
    )
    assert torch.autograd.gradcheck(lambda a, w, b: F.add2d(a, w, b, 2, 0, 1, 2), (x, weight, bias), fast_mode=True)
    # Through the modules, with a non-zero padding mode
    module = hnn.NormConv2d(4, 2, 3, padding=1, padding_mode="reflect", eps=1e-5).double()
    assert torch.autograd.gradcheck(module, (x,), fast_mode=True)
    module = hnn.Add2d(4, 2, 3, padding=1, padding_mode="circular").double()
    assert torch.autograd.gradcheck(module, (x,), fast_mode=True)


def test_norm_conv2d_and_add2d_structure():
    for cls in (hnn.NormConv2d, hnn.Add2d):
        assert cls.__bases__ == (_NormConvNd,)
        module = cls(4, 6, 3, groups=2)
        assert list(module.state_dict()) == ["weight", "bias"]
        assert module.weight.shape == (6, 2, 3, 3)
        assert list(cls(4, 6, 3, bias=False).state_dict()) == ["weight"]
    assert _NormConvNd.__bases__ == (_ConvNd,)
    assert hnn.Add2d(2, 2, 1, normalize_slices=True).normalize_slices


def test_slim_conv2d_pathways():
    module = hnn.SlimConv2d(8, 3, padding=1, r=4, L=3).eval()
    with torch.no_grad():
        module.bn.running_mean.uniform_(-1, 1)
        module.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 8, 6, 5)
    out = module(x)
    # Channel weights from the squeeze branch: mean -> fc1 -> BN -> ReLU -> fc2 -> sigmoid
    z = x.mean(dim=(2, 3))
    z = z @ module.fc1.weight.view(3, 8).T + module.fc1.bias
    bn = module.bn
    z = (z - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    w = torch.sigmoid(torch.relu(z) @ module.fc2.weight.view(8, 3).T + module.fc2.bias)
    w_flipped = w.flip(1)
    x_top = x * w.view(2, 8, 1, 1)
    x_bot = x * w_flipped.view(2, 8, 1, 1)
    top = TF.conv2d(x_top[:, :4] + x_top[:, 4:], module.conv_top.weight, module.conv_top.bias, padding=1)
    bot = TF.conv2d(x_bot[:, :4] + x_bot[:, 4:], module.conv_bot1.weight, module.conv_bot1.bias)
    bot = TF.conv2d(bot, module.conv_bot2.weight, module.conv_bot2.bias, padding=1)
    assert out.shape == (2, 6, 6, 5)
    torch.testing.assert_close(out, torch.cat((top, bot), dim=1))


@pytest.mark.parametrize(
    ("kwargs", "shape", "out_shape"),
    [
        ({"in_channels": 8, "kernel_size": 3}, (2, 8, 7, 7), (2, 6, 5, 5)),
        ({"in_channels": 16, "kernel_size": 3, "stride": 2, "padding": 1, "groups": 2}, (2, 16, 9, 8), (2, 12, 5, 4)),
        (
            {"in_channels": 4, "kernel_size": 3, "dilation": 2, "padding": 2, "padding_mode": "reflect"},
            (3, 4, 6, 6),
            (3, 3, 6, 6),
        ),
    ],
)
def test_slim_conv2d_shapes(kwargs, shape, out_shape):
    module = hnn.SlimConv2d(**kwargs)
    assert module(torch.randn(shape)).shape == out_shape
    # A batch of one needs the running statistics of the squeeze branch's batch norm (1 value per channel)
    assert module.eval()(torch.randn(1, *shape[1:])).shape == (1, *out_shape[1:])


def test_slim_conv2d_state_dict():
    module = hnn.SlimConv2d(64, 3)
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    expected = ["fc1.weight", "fc1.bias", *(f"bn.{key}" for key in bn), "fc2.weight", "fc2.bias"]
    expected += ["conv_top.weight", "conv_top.bias", "conv_bot1.weight", "conv_bot1.bias"]
    expected += ["conv_bot2.weight", "conv_bot2.bias"]
    assert list(module.state_dict()) == expected
    assert module.fc1.weight.shape == (2, 64, 1, 1)
    assert module.conv_bot2.weight.shape == (16, 16, 3, 3)


@pytest.mark.parametrize(
    ("num_levels", "out_channels", "groups", "expected_chans", "expected_groups"),
    [
        (1, 8, None, [8], [1]),
        (1, 8, [2], [8], [2]),
        (2, 8, None, [4, 4], [1, 4]),
        (3, 16, None, [4, 4, 8], [1, 4, 8]),
        (4, 16, [1, 2, 2, 4], [4, 4, 4, 4], [1, 2, 2, 4]),
    ],
)
def test_pyconv2d_levels(num_levels, out_channels, groups, expected_chans, expected_groups):
    module = hnn.PyConv2d(8, out_channels, 3, num_levels, padding=1, groups=groups)
    assert isinstance(module, nn.ModuleList)
    assert [conv.out_channels for conv in module] == expected_chans
    assert [conv.groups for conv in module] == expected_groups
    assert [conv.kernel_size for conv in module] == [(3 + 2 * i, 3 + 2 * i) for i in range(num_levels)]
    x = torch.randn(2, 8, 7, 6)
    out = module(x)
    expected = torch.cat(
        [TF.conv2d(x, c.weight, c.bias, padding=1 + i, groups=c.groups) for i, c in enumerate(module)], 1
    )
    assert out.shape == (2, out_channels, 7, 6)
    torch.testing.assert_close(out, expected)
    assert list(module.state_dict()) == [f"{i}.{key}" for i in range(num_levels) for key in ("weight", "bias")]


def test_pyconv2d_forwards_conv_kwargs():
    module = hnn.PyConv2d(4, 8, 3, 2, padding=2, stride=2, dilation=2, bias=False)
    out = module(torch.randn(1, 4, 9, 9))
    assert out.shape == (1, 8, 5, 5)
    assert all(conv.bias is None and conv.stride == (2, 2) for conv in module)


def _involution_reference(module, x):
    kernel = module.pool(x) if module.pool is not None else x
    kernel = module.span(module.reduce(kernel))
    k, s, p, d, g = module.k_size, module.stride, module.padding, module.dilation, module.groups
    out_h, out_w = kernel.shape[2], kernel.shape[3]
    padded = TF.pad(x, [p, p, p, p])
    n, c = x.shape[:2]
    out = torch.zeros(n, c, out_h, out_w, dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            window = padded[:, :, i * d : i * d + s * (out_h - 1) + 1 : s, j * d : j * d + s * (out_w - 1) + 1 : s]
            # Kernel tap (i, j) of group gi weighs the channels [gi * c / g, (gi + 1) * c / g)
            tap = kernel[:, i * k + j :: k * k]
            out += window * tap.repeat_interleave(c // g, dim=1)
    return out


@pytest.mark.parametrize(
    ("kwargs", "shape"),
    [
        ({"in_channels": 4, "kernel_size": 3, "padding": 1}, (2, 4, 6, 5)),
        ({"in_channels": 6, "kernel_size": 3, "padding": 1, "stride": 2, "groups": 3}, (1, 6, 8, 8)),
        (
            {"in_channels": 4, "kernel_size": 3, "padding": 2, "dilation": 2, "groups": 2, "reduction_ratio": 2},
            (2, 4, 7, 7),
        ),
        (
            {"in_channels": 8, "kernel_size": 5, "padding": 2, "stride": 3, "groups": 4, "reduction_ratio": 4},
            (2, 8, 9, 12),
        ),
        ({"in_channels": 3, "kernel_size": 1}, (3, 3, 4, 4)),
    ],
)
def test_involution2d_matches_tap_sum(kwargs, shape):
    module = hnn.Involution2d(**kwargs).double()
    x = torch.randn(shape, dtype=torch.float64)
    out = module(x)
    stride = kwargs.get("stride", 1)
    assert out.shape == (shape[0], shape[1], shape[2] // stride, shape[3] // stride)
    torch.testing.assert_close(out, _involution_reference(module, x))


def test_involution2d_rejects_mismatched_kernel_map():
    module = hnn.Involution2d(4, 3, padding=0)
    with pytest.raises(ValueError, match="kernel is expected to have shape"):
        module(torch.randn(1, 4, 6, 6))


def test_involution2d_structure_and_gradcheck():
    module = hnn.Involution2d(4, 3, padding=1, stride=2, groups=2, reduction_ratio=2)
    assert isinstance(module.pool, nn.AvgPool2d)
    assert isinstance(module.unfold, nn.Unfold)
    assert list(module.state_dict()) == ["reduce.weight", "reduce.bias", "span.weight", "span.bias"]
    assert module.reduce.weight.shape == (2, 4, 1, 1)
    assert module.span.weight.shape == (18, 2, 1, 1)
    assert hnn.Involution2d(4, 3).pool is None
    module = module.double()
    x = torch.randn(1, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (x,), fast_mode=True)
    kernel = torch.randn(1, 18, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, k: F.involution2d(a, k, 3, 2, 1, 1, 2), (x, kernel), fast_mode=True)


def _conv_modules():
    return [
        (hnn.NormConv2d(4, 6, 3, 2, 1, 1, 2), (2, 4, 7, 7)),
        (hnn.NormConv2d(4, 2, 3, padding=1, padding_mode="replicate"), (1, 4, 5, 5)),
        (hnn.Add2d(4, 6, 3, 1, 1, 2, 2, normalize_slices=True), (2, 4, 7, 7)),
        (hnn.Add2d(4, 2, 3, padding=1, padding_mode="reflect"), (1, 4, 5, 5)),
        (hnn.SlimConv2d(8, 3, padding=1), (2, 8, 6, 6)),
        (hnn.PyConv2d(8, 8, 3, 3, padding=1), (2, 8, 6, 6)),
        (hnn.Involution2d(4, 3, padding=1, stride=2, groups=2), (2, 4, 6, 6)),
    ]


@pytest.mark.parametrize(("module", "shape"), _conv_modules())
def test_conv_modules_script_roundtrip_and_gradients(module, shape, assert_trains_and_scripts):
    assert_trains_and_scripts(module, shape)


@pytest.mark.parametrize(
    ("factory", "argument"),
    [
        (lambda: hnn.NormConv2d(3, 4, 3, groups=2), "in_channels"),
        (lambda: hnn.NormConv2d(4, 3, 3, groups=2), "out_channels"),
        (lambda: hnn.NormConv2d(4, 4, 0), "kernel_size"),
        (lambda: hnn.NormConv2d(4, 4, 3, stride=0), "stride"),
        (lambda: hnn.NormConv2d(4, 4, 3, padding=-1), "padding"),
        (lambda: hnn.NormConv2d(4, 4, 3, eps=-1.0), "eps"),
        (lambda: hnn.Add2d(4, 4, 3, groups=3), "in_channels"),
        (lambda: hnn.Add2d(4, 4, 3, padding_mode="mirror"), "padding_mode"),
        (lambda: hnn.Add2d(4, 4, 3, dilation=0), "dilation"),
        (lambda: hnn.SlimConv2d(6, 3), "in_channels"),
        (lambda: hnn.SlimConv2d(8, 3, groups=3), "groups"),
        (lambda: hnn.PyConv2d(8, 8, 3, 2, groups=[1]), "groups"),
        (lambda: hnn.PyConv2d(8, 8, 3, 3, groups=[1, 2, 3]), "groups"),
        (lambda: hnn.PyConv2d(8, 6, 3, 4), "out_channels"),
        (lambda: hnn.PyConv2d(8, 8, 3, 0), "num_levels"),
        (lambda: hnn.Involution2d(6, 3, groups=4), "in_channels"),
        (lambda: hnn.Involution2d(4, 3, reduction_ratio=8), "reduction_ratio"),
        (lambda: hnn.Involution2d(4, 3, reduction_ratio=0), "reduction_ratio"),
    ],
)
def test_conv_construction_errors(factory, argument):
    with pytest.raises(ValueError, match=argument):
        factory()


@pytest.mark.parametrize(
    ("module", "x", "match"),
    [
        (hnn.NormConv2d(4, 4, 3), torch.randn(4, 5, 5), "shape"),
        (hnn.NormConv2d(4, 4, 3), torch.randn(1, 3, 5, 5), "channels"),
        (hnn.Add2d(4, 4, 3, groups=2), torch.randn(1, 2, 5, 5), "channels"),
        (hnn.Involution2d(4, 3, padding=1), torch.randn(1, 4, 5), "4D"),
    ],
)
def test_conv_forward_errors(module, x, match):
    with pytest.raises(ValueError, match=match):
        module(x)
