"""ConcatDownsample2d, global poolings, BlurPool2d, SPP and ZPool against direct references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

from holocron import nn as hnn


@pytest.mark.parametrize(("scale", "shape"), [(2, (2, 3, 4, 6)), (3, (1, 2, 9, 6)), (1, (2, 2, 3, 3))])
def test_concat_downsample2d_moves_cells_to_channels(scale, shape):
    x = torch.randn(shape)
    out = hnn.ConcatDownsample2d(scale)(x)
    n, c, h, w = shape
    assert out.shape == (n, c * scale**2, h // scale, w // scale)
    for i in range(scale):
        for j in range(scale):
            block = out[:, (i * scale + j) * c : (i * scale + j + 1) * c]
            torch.testing.assert_close(block, x[:, :, i::scale, j::scale])


def test_concat_downsample2d_errors():
    with pytest.raises(ValueError, match="scale_factor"):
        hnn.ConcatDownsample2d(0)
    with pytest.raises(ValueError, match="multiple of `scale_factor`"):
        hnn.ConcatDownsample2d(2)(torch.randn(1, 2, 5, 4))


@pytest.mark.parametrize("flatten", [False, True])
@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (4, 2, 1, 1)])
def test_global_pools(flatten, shape):
    x = torch.randn(shape)
    avg = hnn.GlobalAvgPool2d(flatten)(x)
    mx = hnn.GlobalMaxPool2d(flatten)(x)
    expected_avg = torch.stack([torch.stack([plane.mean() for plane in sample]) for sample in x])
    expected_max = torch.stack([torch.stack([plane.max() for plane in sample]) for sample in x])
    if not flatten:
        expected_avg, expected_max = expected_avg[..., None, None], expected_max[..., None, None]
    torch.testing.assert_close(avg, expected_avg)
    torch.testing.assert_close(mx, expected_max)
    # Non-contiguous inputs work too
    torch.testing.assert_close(hnn.GlobalAvgPool2d(flatten)(x.transpose(2, 3)), expected_avg)


def test_global_pools_reject_non_4d():
    for module in (hnn.GlobalAvgPool2d(), hnn.GlobalMaxPool2d()):
        with pytest.raises(ValueError, match="shape"):
            module(torch.randn(2, 3, 4))


BINOMIAL = {3: [1.0, 2.0, 1.0], 5: [1.0, 4.0, 6.0, 4.0, 1.0], 2: [1.0, 1.0]}


@pytest.mark.parametrize(
    ("kernel_size", "stride", "shape"),
    [(3, 2, (2, 3, 8, 7)), (5, 2, (1, 2, 9, 9)), (3, 1, (1, 1, 5, 6)), (2, 2, (1, 2, 6, 6))],
)
def test_blurpool2d_is_a_binomial_blur_then_subsampling(kernel_size, stride, shape):
    module = hnn.BlurPool2d(shape[1], kernel_size, stride)
    x = torch.randn(shape)
    row = torch.tensor(BINOMIAL[kernel_size])
    blur = torch.outer(row, row) / row.sum() ** 2
    pad = ((stride - 1) + (kernel_size - 1)) // 2
    padded = TF.pad(x, [pad] * 4, mode="reflect")
    out_h = (shape[2] + 2 * pad - kernel_size) // stride + 1
    out_w = (shape[3] + 2 * pad - kernel_size) // stride + 1
    expected = torch.zeros(shape[0], shape[1], out_h, out_w)
    for i in range(kernel_size):
        for j in range(kernel_size):
            expected += (
                blur[i, j]
                * padded[:, :, i : i + stride * (out_h - 1) + 1 : stride, j : j + stride * (out_w - 1) + 1 : stride]
            )
    torch.testing.assert_close(module(x), expected)


def test_blurpool2d_state_and_devices(script_roundtrip):
    module = hnn.BlurPool2d(4)
    assert list(module.state_dict()) == []
    assert module.load_state_dict({}, strict=True).missing_keys == []
    module = module.double()
    x = torch.randn(1, 4, 6, 6, dtype=torch.float64)
    assert module(x).dtype == torch.float64
    torch.testing.assert_close(script_roundtrip(module)(x), module(x))


def test_blurpool2d_errors():
    with pytest.raises(AssertionError):
        hnn.BlurPool2d(3, kernel_size=1)
    with pytest.raises(ValueError, match="kernel_size"):
        hnn.BlurPool2d(3, kernel_size=0)
    with pytest.raises(ValueError, match="channels"):
        hnn.BlurPool2d(0)
    with pytest.raises(ValueError, match="channels"):
        hnn.BlurPool2d(3)(torch.randn(1, 2, 6, 6))
    with pytest.raises(ValueError, match="padding"):
        hnn.BlurPool2d(2, kernel_size=5)(torch.randn(1, 2, 2, 2))


@pytest.mark.parametrize(("kernel_sizes", "shape"), [([5, 9, 13], (2, 3, 8, 8)), ([3], (1, 2, 5, 7))])
def test_spp_concatenates_input_and_poolings(kernel_sizes, shape):
    module = hnn.SPP(kernel_sizes)
    assert isinstance(module, nn.ModuleList)
    x = torch.randn(shape)
    out = module(x)
    padded_pools = []
    for k in kernel_sizes:
        padded = TF.pad(x, [k // 2] * 4, value=float("-inf"))
        pooled = torch.stack(
            [padded[:, :, i : i + shape[2], j : j + shape[3]] for i in range(k) for j in range(k)], dim=0
        ).amax(dim=0)
        padded_pools.append(pooled)
    assert out.shape == (shape[0], shape[1] * (1 + len(kernel_sizes)), *shape[2:])
    torch.testing.assert_close(out, torch.cat([x, *padded_pools], dim=1))


def test_spp_errors():
    with pytest.raises(ValueError, match="kernel_sizes"):
        hnn.SPP([])
    with pytest.raises(ValueError, match=r"kernel_sizes\[1\]"):
        hnn.SPP([3, 4])


@pytest.mark.parametrize("dim", [1, 2, 3, -1])
def test_zpool(dim):
    x = torch.randn(2, 3, 4, 5)
    out = hnn.ZPool(dim)(x)
    expected = torch.cat([x.max(dim, keepdim=True).values, x.mean(dim, keepdim=True)], dim)
    assert out.shape[dim] == 2
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize(
    "module",
    [
        hnn.ConcatDownsample2d(2),
        hnn.GlobalAvgPool2d(),
        hnn.GlobalAvgPool2d(flatten=True),
        hnn.GlobalMaxPool2d(),
        hnn.GlobalMaxPool2d(flatten=True),
        hnn.BlurPool2d(4, 3, 2),
        hnn.SPP([3, 5]),
        hnn.ZPool(2),
    ],
)
def test_downsample_script_roundtrip_and_gradients(module, script_roundtrip):
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    out = module(x)
    torch.testing.assert_close(script_roundtrip(module)(x), out)
    out.sum().backward()
    assert x.grad is not None
    assert x.grad.abs().sum() > 0
    assert list(module.state_dict()) == []
