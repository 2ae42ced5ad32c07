"""Add2d ``normalize_slices`` on constant and near-constant windows (issue 8, finding 6).

At the default ``eps = 1e-14`` the normalisation multiplies the centred slice by up to ``1 / sqrt(eps) = 1e7``: a
float32 window mean off by one ulp of 0.1 turned an all-0.1 input into -25.25 in the kernel (-21.81 eagerly) where
float64 gives -21.96. Kernel (CPU) and eager must now match a float64 reference there, and ``eps = 0`` must give
the documented result: a zero-variance slice normalises to 0 (no NaN).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import holocron.ops


def reference(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    """Float64 Add2d, 3x3 window, no padding, stride 1, one group, normalized slices (0 where var + eps == 0)."""
    n, c, h, width = x.shape
    kh, kw = w.shape[2:]
    ho, wo = h - kh + 1, width - kw + 1
    x64 = x.astype(np.float64)
    slices = np.stack(
        [x64[:, :, i : i + ho, j : j + wo] for i in range(kh) for j in range(kw)], axis=2
    )  # (N, C, kH * kW, H_out, W_out)
    slices = slices.reshape(n, c * kh * kw, ho, wo)
    centred = slices - slices.mean(axis=1, keepdims=True)
    denominator = (centred**2).mean(axis=1, keepdims=True) + eps
    with np.errstate(divide="ignore", invalid="ignore"):
        normalized = np.where(denominator > 0, centred / np.sqrt(denominator), 0.0)
    filters = w.astype(np.float64).reshape(w.shape[0], -1)
    return -np.abs(normalized[:, None] - filters[None, :, :, None, None]).sum(axis=2)


def near_constant(shape: tuple[int, ...], value: float, ulps: int, seed: int) -> np.ndarray:
    """``value`` in float32, each element moved by up to ``ulps`` float32 ulps."""
    steps = np.random.default_rng(seed).integers(-ulps, ulps + 1, size=shape)
    base = np.full(shape, value, dtype=np.float32)
    ulp = np.spacing(base)
    return (base + steps * ulp).astype(np.float32)


CASES = [
    pytest.param(0.1, 0, 1e-14, id="constant-0.1-default-eps"),
    pytest.param(0.1, 3, 1e-14, id="near-constant-0.1-default-eps"),
    pytest.param(-7.3, 2, 1e-14, id="near-constant-minus-7.3-default-eps"),
    pytest.param(0.1, 0, 0.0, id="constant-0.1-eps-0"),
    pytest.param(0.1, 1, 0.0, id="near-constant-0.1-eps-0"),
]


def _inputs(value: float, ulps: int) -> tuple[np.ndarray, np.ndarray]:
    x = near_constant((1, 3, 6, 7), value, ulps, seed=0)
    w = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
    return x, w


def _check(y: np.ndarray, expected: np.ndarray, w: np.ndarray) -> None:
    assert np.isfinite(y).all()
    # Float32 rounding of the normalized slice (|S| <= sqrt(27)) and of the 27-term sum, relative to its magnitude.
    magnitude = np.abs(w).sum() + 27 * np.sqrt(27)
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-5 * magnitude)


@pytest.mark.parametrize(("value", "ulps", "eps"), CASES)
def test_kernel_matches_float64_on_flat_windows(run_kernel, value: float, ulps: int, eps: float) -> None:
    x, w = _inputs(value, ulps)
    y = run_kernel("Add2d", {"X": x, "W": w}, {"normalize_slices": 1, "eps": eps})
    _check(y, reference(x, w, eps), w)


@pytest.mark.parametrize(("value", "ulps", "eps"), CASES)
def test_eager_matches_float64_on_flat_windows(value: float, ulps: int, eps: float) -> None:
    x, w = _inputs(value, ulps)
    y = holocron.ops.add2d(torch.from_numpy(x), torch.from_numpy(w), None, [1, 1], [0, 0], [1, 1], 1, True, eps)
    _check(y.numpy(), reference(x, w, eps), w)


def test_eager_gradient_is_finite_on_zero_variance_slices() -> None:
    x, w = _inputs(0.1, 0)
    inp = torch.from_numpy(x).requires_grad_()
    weight = torch.from_numpy(w).requires_grad_()
    holocron.ops.add2d(inp, weight, None, [1, 1], [0, 0], [1, 1], 1, True, 0.0).sum().backward()
    assert inp.grad is not None and weight.grad is not None
    assert torch.isfinite(inp.grad).all() and torch.isfinite(weight.grad).all()
    # The normalized slices are 0 whatever the input: no gradient reaches it.
    assert torch.count_nonzero(inp.grad) == 0
