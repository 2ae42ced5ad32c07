"""The torch op library (libholocron_torch.so) behind torch.ops.holocron.*: its schemas are the wrappers', its CPU
kernels agree with the pure-torch ones within float32 rounding, Python's path is kept for what the kernels lack, the
pure-torch fallback still works (HOLOCRON_PURE_TORCH=1), and a process that never imports holocron runs a scripted
model's archive with the library alone."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import holocron.ops
from holocron.ops import _native, add2d, involution2d, lambda_layer

_ADD2D = sys.modules["holocron.ops.add2d"]
_INVOLUTION = sys.modules["holocron.ops.involution2d"]
_LAMBDA = sys.modules["holocron.ops.lambda_layer"]

# Unit roundoff of float32 and float16: a rounded operation is off by at most that fraction of its exact result.
F32_ROUNDOFF = 2.0**-24
F16_ROUNDOFF = 2.0**-11


def _sum_bound(terms: int, magnitude: Tensor) -> Tensor:
    """Largest difference between two float32 evaluations of sums of ``terms`` rounded terms each.

    A float32 sum of ``n`` terms, each a rounded product or difference, is off from the exact value by at most
    ``n * u * sum |term|`` (``terms - 1`` roundings of the running sum, one per term: Higham's gamma_n to first
    order); two such evaluations (the native kernel and pure torch, in whatever order) by twice that. ``magnitude``
    is ``sum |term|`` per output, computed in float64.
    """
    return 2 * terms * F32_ROUNDOFF * magnitude


def _assert_within(got: Tensor, want: Tensor, bound: Tensor) -> None:
    excess = (got.double() - want.double()).abs() - bound
    assert excess.max().item() <= 0, f"exceeds the rounding bound by up to {excess.max().item():.3g}"


ADD2D_CASES = {
    "plain": dict(size=(7, 9), cin=4, cout=6, kernel=(3, 3), window=([1, 1], [1, 1], [1, 1]), groups=1),
    "strided_dilated_grouped": dict(
        size=(9, 8), cin=8, cout=6, kernel=(3, 2), window=([2, 1], [1, 2], [1, 2]), groups=2
    ),
    "wide": dict(size=(10, 10), cin=64, cout=16, kernel=(3, 3), window=([1, 1], [1, 1], [1, 1]), groups=1),
}


@pytest.mark.parametrize("name", ADD2D_CASES)
def test_add2d_native_matches_pure_torch(torch_library: Path, name: str) -> None:
    case = ADD2D_CASES[name]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, case["cin"], *case["size"], generator=gen)
    w = torch.randn(case["cout"], case["cin"] // case["groups"], *case["kernel"], generator=gen)
    b = torch.randn(case["cout"], generator=gen)
    attrs = (*case["window"], case["groups"], False, 1e-14)
    got = add2d(x, w, b, *attrs)
    want = _ADD2D._forward(x, w, b, *attrs)
    # sum |S - W| over D = C_in / groups * kH * kW differences, plus |B|: D + 1 terms.
    magnitude = -_ADD2D._forward(x.double(), w.double(), None, *attrs) + b.double().abs().view(1, -1, 1, 1)
    depth = case["cin"] // case["groups"] * case["kernel"][0] * case["kernel"][1] + 1
    _assert_within(got, want, _sum_bound(depth, magnitude))


@pytest.mark.parametrize("kernel_size, groups", [((3, 3), 2), ((7, 7), 4), ((1, 5), 1)])
def test_involution2d_native_matches_pure_torch(torch_library: Path, kernel_size: tuple[int, int], groups: int) -> None:
    gen = torch.Generator().manual_seed(1)
    window = ([1, 2], [kernel_size[0] // 2, kernel_size[1] // 2], [1, 1])
    x = torch.randn(2, 8, 9, 11, generator=gen)
    out_w = (11 + 2 * window[1][1] - kernel_size[1]) // 2 + 1
    k = torch.randn(2, groups * kernel_size[0] * kernel_size[1], 9, out_w, generator=gen)
    args = (list(kernel_size), *window, groups)
    got = involution2d(x, k, *args)
    want = _INVOLUTION._forward(x, k, *args)
    magnitude = _INVOLUTION._forward(x.double().abs(), k.double().abs(), *args)  # sum |K| |X| over the taps
    _assert_within(got, want, _sum_bound(kernel_size[0] * kernel_size[1], magnitude))


@pytest.mark.parametrize("r", [3, 5, None])
def test_lambda_native_matches_pure_torch(torch_library: Path, r: int | None) -> None:
    gen = torch.Generator().manual_seed(2)
    heads, dim_k, dim_u, dim_v, h, w = 2, 4, 2, 6, 5, 6
    q = torch.randn(2, heads * dim_k, h, w, generator=gen)
    k = torch.randn(2, dim_k * dim_u, h, w, generator=gen)
    v = torch.randn(2, dim_v * dim_u, h, w, generator=gen)
    pos_shape = (dim_k, dim_u, 1, r, r) if r else (h * w, h * w, dim_k, dim_u)
    pos = torch.randn(pos_shape, generator=gen)
    got = lambda_layer(q, k, v, pos, heads)
    want = _LAMBDA._forward(q, k, v, pos, heads)
    # Y = sum_k Q (lambda_c + lambda_p): the softmax weights are positive (their own error: exp, sum over H * W and
    # one division, a few roundings each), lambda_c sums H * W products, lambda_p dim_u * r * r (local) or
    # dim_u * H * W (global) ones, Y dim_k of them; the magnitude is the same computation on |Q|, |V| and |P|.
    positions = h * w
    depth = (positions + 4) + positions + dim_u * (r * r if r else positions) + dim_k
    magnitude = _LAMBDA._forward(q.double().abs(), k.double(), v.double().abs(), pos.double().abs(), heads)
    _assert_within(got, want, _sum_bound(depth, magnitude))


def test_float16_runs_natively_within_half_rounding(torch_library: Path) -> None:
    gen = torch.Generator().manual_seed(3)
    x, w = torch.randn(1, 4, 6, 6, generator=gen).half(), torch.randn(3, 4, 3, 3, generator=gen).half()
    attrs = ([1, 1], [1, 1], [1, 1], 1, False, 1e-14)
    got = add2d(x, w, None, *attrs)
    assert got.dtype == torch.float16
    # The kernel computes in float32 on the (exact) float16 inputs and rounds once; so does the reference here.
    want = _ADD2D._forward(x.float(), w.float(), None, *attrs)
    magnitude = -_ADD2D._forward(x.double(), w.double(), None, *attrs)
    bound = _sum_bound(4 * 9, magnitude) + 2 * F16_ROUNDOFF * want.double().abs()
    _assert_within(got, want.half(), bound)


def test_float64_and_non_contiguous_inputs_take_the_right_path(torch_library: Path) -> None:
    gen = torch.Generator().manual_seed(4)
    x, k = torch.randn(2, 4, 6, 6, generator=gen), torch.randn(2, 9 * 2, 6, 6, generator=gen)
    args = ([3, 3], [1, 1], [1, 1], [1, 1], 2)
    # float64 has no native kernel: the pure-torch forward computes it, exactly as when called directly.
    x64, k64 = x.double(), k.double()
    torch.testing.assert_close(involution2d(x64, k64, *args), _INVOLUTION._forward(x64, k64, *args), rtol=0, atol=0)
    # A transposed view is made contiguous before the kernel reads it: same result as the contiguous copy.
    view = x.transpose(2, 3)
    assert not view.is_contiguous()
    expected = involution2d(view.contiguous(), k, *args)
    torch.testing.assert_close(involution2d(view, k, *args), expected, rtol=0, atol=0)


def test_schemas_are_the_wrappers(torch_library: Path) -> None:
    for wrapper in (add2d, involution2d, lambda_layer):
        op = getattr(torch.ops.holocron, wrapper.__name__).default
        expected = torch.library.infer_schema(wrapper, mutates_args=())
        assert str(op._schema) == f"holocron::{wrapper.__name__}{expected}"
        # The native CPU kernel is the library's; Python registered autograd on top, not a CPU kernel.
        assert torch._C._dispatch_has_kernel_for_dispatch_key(op.name(), "CPU")


def test_native_kernels_check_their_arguments_without_python(torch_library: Path) -> None:
    # Below autograd (inference mode) the library's own checks run: a bad call is refused, never read out of bounds.
    x, w = torch.randn(1, 4, 5, 5), torch.randn(6, 2, 3, 3)
    with torch.inference_mode(), pytest.raises((RuntimeError, ValueError), match="groups"):
        torch.ops.holocron.add2d(x, w, None, [1, 1], [0, 0], [1, 1], 3, False, 1e-14)
    with torch.inference_mode(), pytest.raises((RuntimeError, ValueError), match="kernel"):
        torch.ops.holocron.involution2d(x, torch.randn(1, 9, 2, 2), [3, 3], [1, 1], [0, 0], [1, 1], 1)


def _run_python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_pure_torch_fallback_defines_the_ops(tmp_path: Path) -> None:
    env = {**os.environ, _native.PURE_TORCH_ENV: "1"}
    code = """
        import torch
        import holocron.ops
        from holocron.ops import _native
        assert not _native.is_loaded()
        for name in ("add2d", "involution2d", "lambda_layer"):
            op = getattr(torch.ops.holocron, name).default
            assert not torch._C._dispatch_has_kernel_for_dispatch_key(op.name(), "CPU"), name
        x, w, b = torch.randn(1, 4, 5, 5), torch.randn(6, 2, 3, 3), torch.randn(6)
        for t in (x, w, b):
            t.requires_grad_()
        torch.library.opcheck(torch.ops.holocron.add2d.default, (x, w, b, [1, 1], [1, 1], [1, 1], 2, True, 1e-14))
        print("pure-torch ok")
    """
    result = _run_python(code, env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pure-torch ok" in result.stdout


class _AllOps(nn.Module):
    """Every op once, as the holocron.nn layers call them."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(5)
        self.weight = nn.Parameter(torch.randn(4, 2, 3, 3, generator=gen))
        self.bias = nn.Parameter(torch.randn(4, generator=gen))
        self.pos = nn.Parameter(torch.randn(2, 1, 1, 3, 3, generator=gen))

    def forward(self, x: Tensor, kernel: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        added = add2d(x, self.weight, self.bias, [1, 1], [1, 1], [1, 1], 2, True, 1e-14)
        involved = involution2d(x, kernel, [3, 3], [1, 1], [1, 1], [1, 1], 2)
        lambdas = lambda_layer(x, x[:, :2], x, self.pos, 2)
        return added, involved, lambdas


def test_archive_runs_where_only_the_library_is_loaded(torch_library: Path, tmp_path: Path) -> None:
    module = _AllOps().eval()
    gen = torch.Generator().manual_seed(6)
    inputs = (torch.randn(2, 4, 5, 6, generator=gen), torch.randn(2, 18, 5, 6, generator=gen))
    with torch.no_grad():
        expected = module(*inputs)
    torch.jit.save(torch.jit.script(module), str(tmp_path / "model.pt"))
    torch.save(inputs, tmp_path / "inputs.pt")
    code = f"""
        import sys
        import torch
        torch.ops.load_library({str(holocron.ops.torch_library_path())!r})
        model = torch.jit.load("model.pt")
        with torch.no_grad():
            outputs = model(*torch.load("inputs.pt"))
        torch.save(outputs, "outputs.pt")
        assert not any(name == "holocron" or name.startswith("holocron.") for name in sys.modules), "imported"
        # Importing holocron afterwards extends the ops the library defined (Python cannot define them again).
        import holocron.ops
        assert holocron.ops._native.is_loaded()
        with torch.no_grad():
            again = model(*torch.load("inputs.pt"))
        assert all(torch.equal(a, b) for a, b in zip(again, outputs))
    """
    # Run from a neutral folder; the script checks that nothing imported holocron (an editable install could).
    result = _run_python(code, dict(os.environ), tmp_path)
    assert result.returncode == 0, result.stderr
    outputs = torch.load(tmp_path / "outputs.pt")
    # The same kernels on the same inputs: identical, whatever the thread count (the tasks' split is fixed).
    for got, want in zip(outputs, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_override_that_is_not_a_file_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_native.LIBRARY_ENV, str(tmp_path / "missing.so"))
    with pytest.raises(_native.TorchLibraryNotBuiltError, match=r"HOLOCRON_TORCH_LIBRARY=.*missing\.so.* not a file"):
        holocron.ops.torch_library_path()


@pytest.mark.skipif(not os.environ.get("HOLOCRON_TEST_TORCH_LIBRARY"), reason="the run states no expectation")
def test_the_ops_run_the_kernels_the_run_expects() -> None:
    """A run that says which kernels it tests gets them: ``required`` loads the library, ``absent`` (the matrix run
    where it is not built) finds none and runs pure torch, so neither half of the matrix passes on the other's
    path."""
    if os.environ["HOLOCRON_TEST_TORCH_LIBRARY"] == "required":
        assert holocron.ops.torch_library_loaded()
    else:
        assert os.environ["HOLOCRON_TEST_TORCH_LIBRARY"] == "absent"
        assert not holocron.ops.torch_library_loaded()
        with pytest.raises(_native.TorchLibraryNotBuiltError):
            holocron.ops.torch_library_path()
