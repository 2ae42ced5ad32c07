"""holocron::add2d: eager op vs an unfold reference, gradients, opcheck, fake shapes, errors, ONNX fallback."""

import importlib
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import WindowCase, bad_arguments_test
from torch._subclasses.fake_tensor import FakeTensorMode

from holocron.contract import ADD2D
from holocron.export.onnx.ops import OP_EXPORTS
from holocron.export.onnx.ops import add2d as add2d_onnx
from holocron.ops import add2d

EXPORT = next(op for op in OP_EXPORTS if op.contract is ADD2D)


@dataclass(frozen=True)
class Case(WindowCase):
    in_channels: int = 4
    out_channels: int = 6
    normalize: bool = False
    bias: bool = True
    eps: float = 1e-14

    def tensors(self, dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(self.batch, self.in_channels, *self.size, generator=gen, dtype=dtype)
        kernel_shape = (self.out_channels, self.in_channels // self.groups, *self.kernel)
        w = torch.randn(kernel_shape, generator=gen, dtype=dtype)
        b = torch.randn(self.out_channels, generator=gen, dtype=dtype) if self.bias else None
        return x, w, b

    def attributes(self) -> tuple:
        """Non-tensor arguments of the op, in order."""
        return *self.window(), self.groups, self.normalize, self.eps


CASES = {
    "plain": Case(),
    "strided_dilated_grouped_normalized_nobias": Case(
        kernel=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2, normalize=True, bias=False
    ),
    "depthwise_1x1": Case(in_channels=4, out_channels=8, kernel=(1, 1), groups=4),
    "padded_normalized": Case(kernel=(2, 3), stride=(1, 2), padding=(2, 1), normalize=True, out_channels=3),
}


def reference_add2d(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    groups: int,
    normalize: bool,
    eps: float,
) -> torch.Tensor:
    """Straight from the contract: unfold the windows, normalize them, broadcast the full difference tensor."""
    out_channels, _, k_h, k_w = w.shape
    cols = F.unfold(x, (k_h, k_w), dilation=dilation, padding=padding, stride=stride)  # (N, C_in * kH * kW, L)
    slices = cols.view(x.shape[0], groups, -1, cols.shape[-1])  # (N, G, D, L)
    if normalize:
        mean = slices.mean(dim=2, keepdim=True)
        var = slices.var(dim=2, unbiased=False, keepdim=True)
        slices = (slices - mean) / torch.sqrt(var + eps)
    filters = w.reshape(groups, out_channels // groups, -1)  # (G, O / G, D)
    out = -(slices[:, :, None] - filters[None, :, :, :, None]).abs().sum(dim=3)  # (N, G, O / G, L)
    if b is not None:
        out = out + b.view(1, groups, -1, 1)
    out_h = (x.shape[2] + 2 * padding[0] - dilation[0] * (k_h - 1) - 1) // stride[0] + 1
    return out.reshape(x.shape[0], out_channels, out_h, -1)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_matches_reference(case: Case) -> None:
    x, w, b = case.tensors(torch.float64)
    out = add2d(x, w, b, *case.attributes())
    expected = reference_add2d(x, w, b, *case.attributes())
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_backward_in_chunks_matches_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module("holocron.ops.add2d")  # the package attribute `add2d` is the function
    case = CASES["strided_dilated_grouped_normalized_nobias"]
    x, w, _ = case.tensors(torch.float64)
    x.requires_grad_()
    w.requires_grad_()
    grad_y = torch.randn_like(reference_add2d(x, w, None, *case.attributes()))
    expected = torch.autograd.grad(reference_add2d(x, w, None, *case.attributes()), (x, w), grad_y)
    # One output channel per step: the chunked path must give the same gradients as the single-step path.
    monkeypatch.setattr(module, "_BACKWARD_CHUNK_ELEMENTS", 1)
    actual = torch.autograd.grad(add2d(x, w, None, *case.attributes()), (x, w), grad_y)
    for got, want in zip(actual, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_gradcheck(case: Case) -> None:
    x, w, b = replace(case, batch=1).tensors(torch.float64, seed=1)
    tensors = (x, w) if b is None else (x, w, b)
    for t in tensors:
        t.requires_grad_()

    def fn(x: torch.Tensor, w: torch.Tensor, *bias: torch.Tensor) -> torch.Tensor:
        return add2d(x, w, bias[0] if bias else None, *case.attributes())

    assert torch.autograd.gradcheck(fn, tensors)


def test_opcheck() -> None:
    case = replace(CASES["strided_dilated_grouped_normalized_nobias"], batch=1, bias=True)
    x, w, b = case.tensors(torch.float32)
    for t in (x, w, b):
        if t is not None:
            t.requires_grad_()
    torch.library.opcheck(torch.ops.holocron.add2d.default, (x, w, b, *case.attributes()))


@pytest.mark.parametrize("normalize", [False, True])
def test_backward_op_opcheck(normalize: bool) -> None:
    case = replace(CASES["strided_dilated_grouped_normalized_nobias"], batch=1, normalize=normalize)
    x, w, _ = case.tensors(torch.float32)
    grad_y = torch.randn_like(add2d(x, w, None, *case.attributes()))
    torch.library.opcheck(torch.ops.holocron._add2d_backward.default, (grad_y, x, w, *case.attributes()))


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_fake_tensor_shape(case: Case) -> None:
    x, w, b = case.tensors(torch.float32)
    expected = reference_add2d(x, w, b, *case.attributes()).shape
    with FakeTensorMode() as mode:
        fake = [None if t is None else mode.from_tensor(t) for t in (x, w, b)]
        out = add2d(*fake, *case.attributes())
    assert out.shape == expected


VALID = {
    "input": torch.randn(1, 4, 5, 5),
    "weight": torch.randn(6, 2, 3, 3),
    "bias": torch.randn(6),
    "stride": [1, 1],
    "padding": [0, 0],
    "dilation": [1, 1],
    "groups": 2,
    "normalize_slices": False,
    "eps": 1e-14,
}

BAD = {
    "input_rank": ({"input": torch.randn(4, 5, 5)}, ValueError, "`input` must have rank 4"),
    "weight_channels": ({"weight": torch.randn(6, 4, 3, 3)}, ValueError, "`weight` must have C_in / groups = 2"),
    "groups_divide": ({"groups": 3}, ValueError, "`groups` must divide C_in=4"),
    "groups_zero": ({"groups": 0}, ValueError, r"`groups` must be in \[1, \d+\]; got 0"),
    "bias_shape": ({"bias": torch.randn(5)}, ValueError, r"`bias` must have shape \(6,\)"),
    "stride_zero": ({"stride": [0, 1]}, ValueError, "`stride` must be 2 ints"),
    "padding_negative": ({"padding": [-1, 0]}, ValueError, "`padding`"),
    "dilation_length": ({"dilation": [1, 1, 1]}, ValueError, "`dilation` must be 2 ints"),
    "eps_negative": ({"eps": -1.0}, ValueError, "`eps` must be >= 0"),
    "kernel_too_big": ({"weight": torch.randn(6, 2, 7, 3)}, ValueError, "does not fit"),
    "integer_input": ({"input": torch.ones(1, 4, 5, 5, dtype=torch.int64)}, TypeError, "floating-point"),
    "dtype_mismatch": ({"weight": torch.randn(6, 2, 3, 3, dtype=torch.float64)}, TypeError, "`weight` must have"),
}


test_rejects_bad_arguments = bad_arguments_test(add2d, VALID, BAD)


@pytest.mark.parametrize("opset", [18, 23])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_fallback_function_matches_op(case: Case, opset: int, run_fallback) -> None:
    x, w, b = case.tensors(torch.float32, seed=2)
    expected = add2d(x, w, b, *case.attributes())
    inputs = {"X": x, "W": w} if b is None else {"X": x, "W": w, "B": b}
    attributes = add2d_onnx.onnx_attributes(*case.attributes())
    out = run_fallback(EXPORT, inputs, attributes, opset, tuple(expected.shape))
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_fallback_function_uses_contract_defaults(run_fallback) -> None:
    defaults = {a.name: a.default for a in ADD2D.attributes}
    x, w, b = Case().tensors(torch.float32, seed=3)
    expected = add2d(
        x,
        w,
        b,
        list(defaults["strides"]),
        list(defaults["pads"][:2]),
        list(defaults["dilations"]),
        defaults["group"],
        bool(defaults["normalize_slices"]),
        defaults["eps"],
    )
    out = run_fallback(EXPORT, {"X": x, "W": w, "B": b}, {}, 18, tuple(expected.shape))
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-4, atol=1e-5)
