"""The op wrappers inside TorchScript: scripted functions and modules call the ops and survive jit.save / jit.load."""

import io

import torch
from torch import Tensor, nn

from holocron.ops import add2d, involution2d, lambda_layer


class AllOps(nn.Module):
    """Calls every op, Add2d with and without bias, as the holocron.nn layers do."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.weight = nn.Parameter(torch.randn(4, 2, 3, 3, generator=gen))
        self.bias = nn.Parameter(torch.randn(4, generator=gen))
        self.pos = nn.Parameter(torch.randn(2, 1, 1, 3, 3, generator=gen))

    def forward(self, x: Tensor, kernel: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        with_bias = add2d(x, self.weight, self.bias, [1, 1], [1, 1], [1, 1], 2, True, 1e-14)
        without_bias = add2d(x, self.weight, None, [2, 1], [0, 1], [1, 2], 2, False, 1e-14)
        involved = involution2d(x, kernel, [3, 3], [1, 1], [1, 1], [1, 1], 2)
        lambdas = lambda_layer(x, x[:, :2], x, self.pos, 2)
        return with_bias, without_bias, involved, lambdas


def _inputs() -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(2, 4, 5, 6, generator=gen), torch.randn(2, 18, 5, 6, generator=gen)


def test_scripted_module_matches_eager_and_survives_save_load() -> None:
    module = AllOps().eval()
    inputs = _inputs()
    expected = module(*inputs)
    scripted = torch.jit.script(module)
    graph = str(scripted.inlined_graph)
    for name in ("add2d", "involution2d", "lambda_layer"):
        assert f"holocron::{name}(" in graph
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    for got in (scripted(*inputs), loaded(*inputs)):
        for out, want in zip(got, expected, strict=True):
            torch.testing.assert_close(out, want, rtol=0, atol=0)


def test_scripted_function_calls_the_op() -> None:
    @torch.jit.script
    def involve(x: Tensor, kernel: Tensor) -> Tensor:
        return involution2d(x, kernel, [3, 3], [1, 1], [1, 1], [1, 1], 1)

    x, kernel = _inputs()
    kernel = kernel[:, :9]
    assert "holocron::involution2d(" in str(involve.inlined_graph)
    torch.testing.assert_close(involve(x, kernel), involution2d(x, kernel, [3, 3], [1, 1], [1, 1], [1, 1], 1))


def test_scripted_module_backward_reaches_parameters() -> None:
    scripted = torch.jit.script(AllOps())
    x, kernel = _inputs()
    sum(out.sum() for out in scripted(x.requires_grad_(), kernel.requires_grad_())).backward()
    for name, param in scripted.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert x.grad is not None and kernel.grad is not None
