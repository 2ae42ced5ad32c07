"""Lambda kernel against a float64 numpy reference of the contract, local (R) and global (E) positions."""

import numpy as np
import pytest
import torch
from helpers import single_node_model
from hypothesis import given, settings
from hypothesis import strategies as st

import holocron.ops

ATOL, RTOL = 1e-5, 1e-4
# Float32 rounding of a sum grows with the sum of its terms' magnitudes, not with the result: where large terms cancel
# (|Y| << sum |terms|) a fixed rtol on |Y| is no bound at all. The kernel may differ from the float64 reference by a
# few float32 ulps of that magnitude (the reference evaluated on |inputs|); a wrong index or a missing term is off by
# the magnitude itself.
FLOAT32_EPS = float(np.finfo(np.float32).eps)
MAGNITUDE_ULPS = 8


def lambda_reference(
    q: np.ndarray, keys: np.ndarray, values: np.ndarray, position: np.ndarray, heads: int
) -> np.ndarray:
    """``Y[n, h V + v, p] = sum_k Q[n, h K + k, p] (Lc[n, k, v] + Lp[n, k, v, p])`` (contract of ``Lambda``)."""
    n, _, h, w = q.shape
    dim_k = q.shape[1] // heads
    dim_u = keys.shape[1] // dim_k
    dim_v = values.shape[1] // dim_u
    m = h * w
    queries = q.astype(np.float64).reshape(n, heads, dim_k, m)
    logits = keys.astype(np.float64).reshape(n, dim_k, dim_u, m)
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    vals = values.astype(np.float64).reshape(n, dim_v, dim_u, m)
    content = np.einsum("nkum,nvum->nkv", weights, vals)
    if position.ndim == 5:
        r = position.shape[-1]
        pad = r // 2
        padded = np.pad(vals.reshape(n, dim_v, dim_u, h, w), ((0, 0), (0, 0), (0, 0), (pad, pad), (pad, pad)))
        positional = np.zeros((n, dim_k, dim_v, h, w))
        for i in range(r):
            for j in range(r):
                shifted = padded[:, :, :, i : i + h, j : j + w]
                positional += np.einsum("ku,nvuyx->nkvyx", position[:, :, 0, i, j].astype(np.float64), shifted)
        positional = positional.reshape(n, dim_k, dim_v, m)
    else:
        positional = np.einsum("pmku,nvum->nkvp", position.astype(np.float64), vals)
    out = np.einsum("nhkp,nkv->nhvp", queries, content) + np.einsum("nhkp,nkvp->nhvp", queries, positional)
    return out.reshape(n, heads * dim_v, h, w)


def make_inputs(
    seed: int, n: int, heads: int, dim_k: int, dim_u: int, dim_v: int, h: int, w: int, r: int | None
) -> dict:
    rng = np.random.default_rng(seed)
    inputs = {
        "Q": rng.standard_normal((n, heads * dim_k, h, w)),
        "Kx": rng.standard_normal((n, dim_k * dim_u, h, w)),
        "V": rng.standard_normal((n, dim_v * dim_u, h, w)),
        "P": rng.standard_normal((dim_k, dim_u, 1, r, r) if r else (h * w, h * w, dim_k, dim_u)),
    }
    return {name: value.astype(np.float32) for name, value in inputs.items()}


@st.composite
def lambda_configs(draw: st.DrawFn) -> dict:
    return {
        "n": draw(st.integers(1, 4)),
        "heads": draw(st.integers(1, 4)),
        "dim_k": draw(st.integers(1, 9)),
        "dim_u": draw(st.integers(1, 3)),
        "dim_v": draw(st.integers(1, 19)),
        "h": draw(st.integers(1, 9)),
        "w": draw(st.integers(1, 11)),
        "r": draw(st.sampled_from([None, 1, 3, 5])),
        "threads": draw(st.sampled_from([1, 2])),
        "seed": draw(st.integers(0, 2**16)),
    }


@settings(max_examples=60, deadline=None)
@given(config=lambda_configs())
def test_lambda_kernel_matches_reference(run_kernel, config: dict) -> None:
    shape = {name: config[name] for name in ("n", "heads", "dim_k", "dim_u", "dim_v", "h", "w", "r")}
    inputs = make_inputs(config["seed"], **shape)
    out = run_kernel("Lambda", inputs, {"num_heads": config["heads"]}, threads=config["threads"])
    expected = lambda_reference(inputs["Q"], inputs["Kx"], inputs["V"], inputs["P"], config["heads"])
    magnitude = lambda_reference(*(np.abs(value) for value in inputs.values()), config["heads"])
    assert out.shape == expected.shape
    bound = ATOL + RTOL * np.abs(expected) + MAGNITUDE_ULPS * FLOAT32_EPS * magnitude
    excess = np.abs(out - expected) - bound
    assert excess.max() <= 0, f"worst element off by {np.abs(out - expected).flat[excess.argmax()]:.3g} past its bound"


@pytest.mark.parametrize("r", [7, None])
def test_lambda_kernel_benchmark_layer(run_kernel, r: int | None) -> None:
    """LambdaLayer(64, 64, dim_k=16, heads=4) at 14 x 14, with r = 7 and with the global embedding."""
    inputs = make_inputs(7, n=2, heads=4, dim_k=16, dim_u=1, dim_v=16, h=14, w=14, r=r)
    # Scaled like a trained layer (normalized q and v, small positional parameters) so outputs stay O(1).
    inputs["P"] *= 0.1
    out = run_kernel("Lambda", inputs, {"num_heads": 4})
    np.testing.assert_allclose(out, lambda_reference(*inputs.values(), 4), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("r", [3, None])
def test_lambda_kernel_matches_torch_op(run_kernel, r: int | None) -> None:
    inputs = make_inputs(3, n=2, heads=2, dim_k=3, dim_u=2, dim_v=5, h=5, w=6, r=r)
    out = run_kernel("Lambda", inputs, {"num_heads": 2})
    eager = holocron.ops.lambda_layer(*(torch.from_numpy(value) for value in inputs.values()), 2)
    np.testing.assert_allclose(out, eager.numpy(), rtol=RTOL, atol=ATOL)


# Local-lambda shapes for the kernel's three local steps on every instruction set (lanes 4, 8, 16): the queries first
# (heads * (K + V) <= 0.4 K * V: LambdaResNet's 14 x 14 stage; two intra-depth planes, 2 heads (a remainder tile of
# heads) and V = 40 (a partial vector with 16 lanes); 5 heads, and a window wider than the image), along the values
# (V >= 2 vectors; V = 35 ends on a partial vector of values; 5 keys need a remainder tile) and along the pixels of a
# row (V below a vector).
LOCAL_PATH_SHAPES = {
    "queries-lambdaresnet": dict(n=1, heads=4, dim_k=16, dim_u=1, dim_v=64, h=14, w=14, r=23),
    "queries": dict(n=2, heads=2, dim_k=8, dim_u=2, dim_v=40, h=9, w=7, r=5),
    "queries-heads": dict(n=1, heads=5, dim_k=16, dim_u=1, dim_v=64, h=6, w=5, r=7),
    "values": dict(n=2, heads=3, dim_k=5, dim_u=2, dim_v=40, h=9, w=7, r=5),
    "values-partial": dict(n=1, heads=2, dim_k=4, dim_u=1, dim_v=35, h=6, w=11, r=3),
    "pixels": dict(n=1, heads=2, dim_k=4, dim_u=2, dim_v=3, h=5, w=27, r=5),
}


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("name", list(LOCAL_PATH_SHAPES))
def test_local_lambda_steps_match_reference_on_every_instruction_set(run_in_subprocess, name: str, isa: str) -> None:
    shape = LOCAL_PATH_SHAPES[name]
    inputs = make_inputs(11, **shape)
    heads = shape["heads"]
    model = single_node_model("Lambda", inputs, {"num_heads": heads})
    result = run_in_subprocess(model, inputs, env={"HOLOCRON_CPU_ISA": isa})
    assert result.returncode == 0, result.stdout + result.stderr
    out = np.load(result.args[-1])["Y"]
    expected = lambda_reference(inputs["Q"], inputs["Kx"], inputs["V"], inputs["P"], heads)
    magnitude = lambda_reference(*(np.abs(value) for value in inputs.values()), heads)
    bound = ATOL + RTOL * np.abs(expected) + MAGNITUDE_ULPS * FLOAT32_EPS * magnitude
    excess = np.abs(out - expected) - bound
    assert excess.max() <= 0, f"worst element off by {np.abs(out - expected).flat[excess.argmax()]:.3g} past its bound"
