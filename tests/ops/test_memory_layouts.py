"""The ops give the same values and gradients for channels-last and permuted (non-contiguous) inputs."""

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from holocron.ops import add2d, involution2d, lambda_layer


def _permuted(shape: tuple[int, ...], order: tuple[int, ...], seed: int) -> Tensor:
    """A tensor of ``shape`` whose memory is laid out in ``order`` (a non-contiguous view)."""
    gen = torch.Generator().manual_seed(seed)
    stored = torch.randn([shape[i] for i in order], generator=gen, dtype=torch.float64)
    return stored.permute([order.index(i) for i in range(len(shape))])


CHANNELS_LAST = (0, 2, 3, 1)

CASES: dict[str, tuple[Callable[..., Tensor], list[Tensor]]] = {
    "add2d": (
        lambda x, w: add2d(x, w, None, [1, 1], [1, 1], [1, 1], 2, True, 1e-14),
        [_permuted((2, 4, 5, 6), CHANNELS_LAST, 0), _permuted((6, 2, 3, 3), (2, 3, 1, 0), 1)],
    ),
    "involution2d": (
        lambda x, k: involution2d(x, k, [3, 3], [1, 1], [1, 1], [1, 1], 2),
        [_permuted((2, 4, 5, 6), CHANNELS_LAST, 2), _permuted((2, 18, 5, 6), CHANNELS_LAST, 3)],
    ),
    "lambda_layer": (
        lambda q, pos: lambda_layer(q, q, q, pos, 2),
        [_permuted((2, 4, 3, 4), CHANNELS_LAST, 4), _permuted((2, 2, 1, 3, 3), (4, 3, 2, 1, 0), 5)],
    ),
}


# Output gradients as autograd may hand them over: dense, channels-last, or broadcast from a scalar (``out.sum()``).
GRADIENTS: dict[str, Callable[[Tensor], Tensor]] = {
    "dense": lambda out: torch.randn_like(out, memory_format=torch.contiguous_format),
    "channels_last": lambda out: (
        torch.randn_like(out, memory_format=torch.contiguous_format)
        .permute(0, 2, 3, 1)
        .contiguous()
        .permute(0, 3, 1, 2)
    ),
    "broadcast": lambda out: torch.ones((), dtype=out.dtype).expand(out.shape),
}


@pytest.mark.parametrize("gradient", GRADIENTS)
@pytest.mark.parametrize("name", CASES)
def test_layout_does_not_change_values_or_gradients(name: str, gradient: str) -> None:
    fn, tensors = CASES[name]
    assert not any(t.is_contiguous() for t in tensors)
    strided = [t.clone(memory_format=torch.preserve_format).requires_grad_() for t in tensors]
    dense = [t.contiguous().requires_grad_() for t in tensors]
    grad_y = GRADIENTS[gradient](fn(*dense).detach())
    outputs = [fn(*inputs) for inputs in (strided, dense)]
    grads = [torch.autograd.grad(out, inputs, grad_y) for out, inputs in zip(outputs, (strided, dense), strict=True)]
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-12, atol=1e-12)
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
