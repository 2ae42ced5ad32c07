"""holocron::involution2d: eager op vs an unfold reference, gradients, opcheck, fake shapes, errors, ONNX fallback."""

from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import WindowCase, bad_arguments_test
from torch._subclasses.fake_tensor import FakeTensorMode

from holocron.contract import INVOLUTION2D
from holocron.export.onnx.ops import OP_EXPORTS
from holocron.export.onnx.ops import involution2d as involution2d_onnx
from holocron.ops import involution2d

EXPORT = next(op for op in OP_EXPORTS if op.contract is INVOLUTION2D)


@dataclass(frozen=True)
class Case(WindowCase):
    channels: int = 4
    padding: tuple[int, int] = (1, 1)

    def tensors(self, dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(self.batch, self.channels, *self.size, generator=gen, dtype=dtype)
        taps = self.kernel[0] * self.kernel[1]
        kernel = torch.randn(self.batch, self.groups * taps, *self.out_size(), generator=gen, dtype=dtype)
        return x, kernel

    def attributes(self) -> tuple:
        """Non-tensor arguments of the op, in order."""
        return [*self.kernel], *self.window(), self.groups


CASES = {
    "same_3x3": Case(),
    "strided_dilated_grouped": Case(kernel=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
    "depthwise_unpadded": Case(channels=4, groups=4, kernel=(2, 2), padding=(0, 0)),
}


def reference_involution2d(
    x: torch.Tensor,
    kernel: torch.Tensor,
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    groups: int,
) -> torch.Tensor:
    """Straight from the contract: unfold the windows and weight them with the per-pixel kernels of their group."""
    batch, channels = x.shape[:2]
    taps = kernel_size[0] * kernel_size[1]
    cols = F.unfold(x, kernel_size, dilation=dilation, padding=padding, stride=stride)
    cols = cols.view(batch, groups, channels // groups, taps, -1)
    weights = kernel.reshape(batch, groups, 1, taps, -1)
    return (cols * weights).sum(dim=3).view(batch, channels, *kernel.shape[2:])


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_matches_reference(case: Case) -> None:
    x, kernel = case.tensors(torch.float64)
    out = involution2d(x, kernel, *case.attributes())
    expected = reference_involution2d(x, kernel, *case.attributes())
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_gradcheck(case: Case) -> None:
    x, kernel = replace(case, batch=1).tensors(torch.float64, seed=1)
    x.requires_grad_()
    kernel.requires_grad_()
    assert torch.autograd.gradcheck(lambda x, k: involution2d(x, k, *case.attributes()), (x, kernel))


def test_opcheck() -> None:
    case = replace(CASES["strided_dilated_grouped"], batch=1)
    x, kernel = case.tensors(torch.float32)
    torch.library.opcheck(
        torch.ops.holocron.involution2d.default, (x.requires_grad_(), kernel.requires_grad_(), *case.attributes())
    )


def test_backward_op_opcheck() -> None:
    case = replace(CASES["strided_dilated_grouped"], batch=1)
    x, kernel = case.tensors(torch.float32)
    grad_y = torch.randn(1, case.channels, *case.out_size())
    torch.library.opcheck(torch.ops.holocron._involution2d_backward.default, (grad_y, x, kernel, *case.attributes()))


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_fake_tensor_shape(case: Case) -> None:
    x, kernel = case.tensors(torch.float32)
    with FakeTensorMode() as mode:
        out = involution2d(mode.from_tensor(x), mode.from_tensor(kernel), *case.attributes())
    assert out.shape == (case.batch, case.channels, *case.out_size())


VALID = {
    "input": torch.randn(1, 4, 5, 5),
    "kernel": torch.randn(1, 18, 5, 5),
    "kernel_size": [3, 3],
    "stride": [1, 1],
    "padding": [1, 1],
    "dilation": [1, 1],
    "groups": 2,
}

BAD = {
    "input_rank": ({"input": torch.randn(4, 5, 5)}, ValueError, "`input` must have rank 4"),
    "kernel_rank": ({"kernel": torch.randn(18, 5, 5)}, ValueError, "`kernel` must have rank 4"),
    "kernel_groups": ({"kernel": torch.randn(1, 9, 5, 5)}, ValueError, r"`kernel` must have shape .* \(1, 18, 5, 5\)"),
    "kernel_spatial": ({"kernel": torch.randn(1, 18, 3, 3)}, ValueError, r"\(1, 18, 5, 5\); got \(1, 18, 3, 3\)"),
    "groups_divide": ({"groups": 3}, ValueError, "`groups` must divide C=4"),
    "kernel_size_length": ({"kernel_size": [3]}, ValueError, "`kernel_size` must be 2 ints"),
    "stride_zero": ({"stride": [1, 0]}, ValueError, "`stride`"),
    "kernel_too_big": ({"kernel_size": [9, 3]}, ValueError, "does not fit"),
    "dtype_mismatch": ({"kernel": torch.randn(1, 18, 5, 5, dtype=torch.float64)}, TypeError, "`kernel` must have"),
}


test_rejects_bad_arguments = bad_arguments_test(involution2d, VALID, BAD)


@pytest.mark.parametrize("opset", [18, 23])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_fallback_function_matches_op(case: Case, opset: int, run_fallback) -> None:
    x, kernel = case.tensors(torch.float32, seed=2)
    expected = involution2d(x, kernel, *case.attributes())
    attributes = involution2d_onnx.onnx_attributes(*case.attributes())
    out = run_fallback(EXPORT, {"X": x, "K": kernel}, attributes, opset, tuple(expected.shape))
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_fallback_function_uses_contract_defaults(run_fallback) -> None:
    defaults = {a.name: a.default for a in INVOLUTION2D.attributes}
    case = Case(padding=tuple(defaults["pads"][:2]))  # type: ignore[arg-type]
    x, kernel = case.tensors(torch.float32, seed=3)
    expected = involution2d(
        x,
        kernel,
        list(case.kernel),
        list(defaults["strides"]),
        list(defaults["pads"][:2]),
        list(defaults["dilations"]),
        defaults["group"],
    )
    out = run_fallback(EXPORT, {"X": x, "K": kernel}, {"kernel_shape": list(case.kernel)}, 18, tuple(expected.shape))
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-4, atol=1e-5)
