"""holocron::lambda_layer: eager op vs a loop reference (local and global), gradients, opcheck, errors, fallback."""

from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import bad_arguments_test
from torch._subclasses.fake_tensor import FakeTensorMode

from holocron.contract import LAMBDA
from holocron.export.onnx.ops import OP_EXPORTS
from holocron.export.onnx.ops import lambda_layer as lambda_onnx
from holocron.ops import lambda_layer

EXPORT = next(op for op in OP_EXPORTS if op.contract is LAMBDA)


@dataclass(frozen=True)
class Case:
    heads: int
    dim_k: int
    dim_u: int
    dim_v: int
    r: int | None  # None: global embedding
    batch: int = 2
    size: tuple[int, int] = (3, 4)

    def tensors(self, dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(seed)
        n, (h, w) = self.batch, self.size
        q = torch.randn(n, self.heads * self.dim_k, h, w, generator=gen, dtype=dtype)
        k = torch.randn(n, self.dim_k * self.dim_u, h, w, generator=gen, dtype=dtype)
        v = torch.randn(n, self.dim_v * self.dim_u, h, w, generator=gen, dtype=dtype)
        if self.r is None:
            pos = torch.randn(h * w, h * w, self.dim_k, self.dim_u, generator=gen, dtype=dtype)
        else:
            pos = torch.randn(self.dim_k, self.dim_u, 1, self.r, self.r, generator=gen, dtype=dtype)
        return q, k, v, pos


CASES = {
    "local_r3": Case(heads=2, dim_k=3, dim_u=1, dim_v=2, r=3),
    "local_r5_intra_depth": Case(heads=2, dim_k=2, dim_u=3, dim_v=2, r=5),
    "global": Case(heads=1, dim_k=2, dim_u=1, dim_v=3, r=None),
    "global_intra_depth": Case(heads=2, dim_k=2, dim_u=2, dim_v=2, r=None),
}


def reference_lambda(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pos: torch.Tensor, heads: int) -> torch.Tensor:
    """Straight from the contract, the local position lambda as an explicit sum over the ``r x r`` offsets."""
    n, _, h, w = q.shape
    dim_k = q.shape[1] // heads
    dim_u = k.shape[1] // dim_k
    dim_v = v.shape[1] // dim_u
    queries = q.reshape(n, heads, dim_k, h * w)
    keys = k.reshape(n, dim_k, dim_u, h * w).softmax(dim=-1)
    values = v.reshape(n, dim_v, dim_u, h * w)
    content = sum(keys[:, :, u] @ values[:, :, u].transpose(1, 2) for u in range(dim_u))  # (N, K, V)
    if pos.dim() == 5:
        r = pos.shape[-1]
        padded = F.pad(values.view(n, dim_v, dim_u, h, w), (r // 2,) * 4)
        position = torch.zeros(n, dim_k, dim_v, h, w, dtype=q.dtype)
        for i in range(r):
            for j in range(r):
                shifted = padded[..., i : i + h, j : j + w]  # V[.., y + i - r // 2, x + j - r // 2]
                position += torch.einsum("ku,nvuyx->nkvyx", pos[:, :, 0, i, j], shifted)
        position = position.view(n, dim_k, dim_v, h * w)
    else:
        position = torch.einsum("pmku,nvum->nkvp", pos, values)
    out = torch.einsum("nhkp,nkvp->nhvp", queries, content.unsqueeze(-1) + position)
    return out.reshape(n, heads * dim_v, h, w)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_matches_reference(case: Case) -> None:
    tensors = case.tensors(torch.float64)
    out = lambda_layer(*tensors, case.heads)
    expected = reference_lambda(*tensors, case.heads)
    assert out.shape == (case.batch, case.heads * case.dim_v, *case.size)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_gradcheck(case: Case) -> None:
    small = replace(case, batch=1, size=(2, 3))
    tensors = tuple(t.requires_grad_() for t in small.tensors(torch.float64, seed=1))
    assert torch.autograd.gradcheck(lambda *args: lambda_layer(*args, case.heads), tensors)


@pytest.mark.parametrize("name", ["local_r5_intra_depth", "global_intra_depth"])
def test_opcheck(name: str) -> None:
    case = replace(CASES[name], batch=1, size=(2, 3))
    tensors = tuple(t.requires_grad_() for t in case.tensors(torch.float32))
    torch.library.opcheck(torch.ops.holocron.lambda_layer.default, (*tensors, case.heads))


@pytest.mark.parametrize("name", ["local_r5_intra_depth", "global_intra_depth"])
def test_backward_op_opcheck(name: str) -> None:
    case = replace(CASES[name], batch=1, size=(2, 3))
    q, k, v, pos = case.tensors(torch.float32)
    grad_y = torch.randn(1, case.heads * case.dim_v, *case.size)
    torch.library.opcheck(torch.ops.holocron._lambda_layer_backward.default, (grad_y, q, k, v, pos, case.heads))


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_fake_tensor_shape(case: Case) -> None:
    tensors = case.tensors(torch.float32)
    with FakeTensorMode() as mode:
        out = lambda_layer(*(mode.from_tensor(t) for t in tensors), case.heads)
    assert out.shape == (case.batch, case.heads * case.dim_v, *case.size)


VALID = {
    "q": torch.randn(1, 4, 3, 4),
    "k": torch.randn(1, 4, 3, 4),
    "v": torch.randn(1, 6, 3, 4),
    "pos": torch.randn(2, 2, 1, 3, 3),
    "num_heads": 2,
}

BAD = {
    "q_rank": ({"q": torch.randn(4, 3, 4)}, ValueError, "`q` must have rank 4"),
    "v_spatial": ({"v": torch.randn(1, 6, 4, 3)}, ValueError, "`v` must have the batch and spatial size of `q`"),
    "heads_divide": ({"num_heads": 3}, ValueError, "`num_heads` must divide the 4 channels"),
    "k_channels": ({"k": torch.randn(1, 5, 3, 4)}, ValueError, "`k` channels must be a multiple of dim_k = 2"),
    "v_channels": ({"v": torch.randn(1, 5, 3, 4)}, ValueError, "`v` channels must be a multiple of dim_u = 2"),
    "r_even": ({"pos": torch.randn(2, 2, 1, 4, 4)}, ValueError, "r odd"),
    "local_dims": ({"pos": torch.randn(2, 1, 1, 3, 3)}, ValueError, r"local `pos` must have shape .*\(2, 2, 1, r, r\)"),
    "global_size": ({"pos": torch.randn(11, 12, 2, 2)}, ValueError, r"global `pos` must have shape .*\(12, 12, 2, 2\)"),
    "pos_rank": ({"pos": torch.randn(2, 2, 3)}, ValueError, "`pos` must have rank 5 .* or rank 4"),
    "integer_q": ({"q": torch.ones(1, 4, 3, 4, dtype=torch.int64)}, TypeError, "`q` must be a floating-point"),
}


test_rejects_bad_arguments = bad_arguments_test(lambda_layer, VALID, BAD)


@pytest.mark.parametrize("opset", [18, 23])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_fallback_function_matches_op(case: Case, opset: int, run_fallback) -> None:
    q, k, v, pos = case.tensors(torch.float32, seed=2)
    expected = lambda_layer(q, k, v, pos, case.heads)
    inputs = {"Q": q, "Kx": k, "V": v, "P": pos}
    out = run_fallback(EXPORT, inputs, lambda_onnx.onnx_attributes(case.heads), opset, tuple(expected.shape))
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-4, atol=1e-5)
