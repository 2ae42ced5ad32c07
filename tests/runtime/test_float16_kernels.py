"""float16 kernels: each op on float16 tensors against the float64 references of its float32 kernel test.

The kernels compute in float32 and round the result to float16 (nearest, ties to even), so an element may differ from
the float64 reference (of the same float16 inputs) by half a float16 ulp of itself, plus float32 rounding of the sums.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import run_with_kernels, single_node_model

HALF_ROUNDING = 2.0**-11  # half a float16 ulp, relative
FLOAT32_SLACK = 1e-4  # of the largest reference magnitude: float32 sums before the final rounding


def _test_module(name: str) -> ModuleType:
    """A sibling test module, for its float64 reference (the test folders are not packages)."""
    spec = importlib.util.spec_from_file_location(f"_float16_{name}", Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


add2d_reference = _test_module("test_add2d_kernel").add2d_reference
involution2d_reference = _test_module("test_involution2d_kernel").involution2d_reference
lambda_reference = _test_module("test_lambda_kernel").lambda_reference


def _half_model(op_type: str, inputs: dict[str, np.ndarray], attributes: dict[str, object]) -> onnx.ModelProto:
    model = single_node_model(op_type, inputs, attributes)
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    return model


def _run_half(library: Path, op_type: str, inputs: dict[str, np.ndarray], attributes: dict, threads: int = 2):
    return run_with_kernels(_half_model(op_type, inputs, attributes), inputs, library, threads)


def _assert_close(out: np.ndarray, expected: np.ndarray) -> None:
    assert out.dtype == np.float16
    assert out.shape == expected.shape
    bound = HALF_ROUNDING * np.abs(expected) + FLOAT32_SLACK * np.abs(expected).max()
    excess = np.abs(out.astype(np.float64) - expected) - bound
    assert excess.max() <= 0, f"worst element off by {np.abs(out - expected).flat[excess.argmax()]:.3g} past its bound"


def _half(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    return (scale * rng.standard_normal(shape)).astype(np.float16)


@pytest.mark.parametrize("normalize_slices", [False, True])
@pytest.mark.parametrize("batch", [2, 70])  # 70 images take two float scratch chunks
def test_add2d_float16_matches_reference(library, batch: int, normalize_slices: bool) -> None:
    rng = np.random.default_rng(batch)
    inputs = {"X": _half(rng, (batch, 8, 32, 32)), "W": _half(rng, (8, 4, 3, 3)), "B": _half(rng, (8,))}
    attributes = {"pads": [1, 1, 1, 1], "strides": [1, 1], "group": 2, "normalize_slices": int(normalize_slices)}
    out = _run_half(library, "Add2d", inputs, attributes)
    expected = add2d_reference(
        inputs["X"], inputs["W"], inputs["B"], [1, 1], [1, 1, 1, 1], [1, 1], 2, normalize_slices, 1e-14
    )
    _assert_close(out, expected)


@pytest.mark.parametrize("batch", [3, 80])  # 80 images take two float scratch chunks
def test_involution2d_float16_matches_reference(library, batch: int) -> None:
    rng = np.random.default_rng(batch)
    x = _half(rng, (batch, 8, 33, 31))
    kernel = _half(rng, (batch, 2 * 9, 17, 16))
    attributes = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "group": 2}
    out = _run_half(library, "Involution2d", {"X": x, "K": kernel}, attributes)
    _assert_close(out, involution2d_reference(x, kernel, [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], 2))


@pytest.mark.parametrize("r", [3, None])
def test_lambda_float16_matches_reference(library, r: int | None) -> None:
    rng = np.random.default_rng(5)
    n, heads, dim_k, dim_u, dim_v, h, w = 3, 2, 4, 2, 8, 7, 9
    inputs = {
        "Q": _half(rng, (n, heads * dim_k, h, w)),
        "Kx": _half(rng, (n, dim_k * dim_u, h, w)),
        "V": _half(rng, (n, dim_v * dim_u, h, w)),
        "P": _half(rng, (dim_k, dim_u, 1, r, r) if r else (h * w, h * w, dim_k, dim_u), scale=0.1),
    }
    out = _run_half(library, "Lambda", inputs, {"num_heads": heads})
    _assert_close(out, lambda_reference(inputs["Q"], inputs["Kx"], inputs["V"], inputs["P"], heads))


@pytest.mark.parametrize("scale", [1.0, 2.0**-12, 3.0, 0.1, 7.9e4 / 6.5e4])
def test_float16_rounding_is_nearest_even(library, scale: float) -> None:
    """A 1x1 involution computes 0 + X * K in float32: the float16 result must be numpy's rounding of it.

    Every finite float16 value goes through, so this covers subnormals (2^-12 scales into them), overflow to infinity
    (3 and 1.215 scale past 65504) and ties; scale 1 gives back every value bit for bit (but -0, as the sum is +0).
    """
    bits = np.arange(2**16, dtype=np.uint16)
    values = bits.view(np.float16)
    values = values[np.isfinite(values)]
    x = values.reshape(1, 1, 1, -1)
    kernel = np.full_like(x, scale, dtype=np.float16)
    out = _run_half(library, "Involution2d", {"X": x, "K": kernel}, {"kernel_shape": [1, 1]})
    expected = (np.float32(0) + x.astype(np.float32) * np.float32(kernel[0, 0, 0, 0])).astype(np.float16)
    assert np.array_equal(out.view(np.uint16), expected.view(np.uint16))


def test_float16_nan_and_infinity_pass_through(library) -> None:
    x = np.array([np.nan, np.inf, -np.inf, -65504.0], dtype=np.float16).reshape(1, 1, 1, 4)
    out = _run_half(library, "Involution2d", {"X": x, "K": np.ones_like(x)}, {"kernel_shape": [1, 1]})
    assert np.isnan(out[0, 0, 0, 0])
    assert out[0, 0, 0, 1:].tolist() == [np.inf, -np.inf, -65504.0]


def test_mixed_float_and_float16_inputs_are_refused(library) -> None:
    inputs = {"X": np.ones((1, 1, 2, 2), np.float16), "K": np.ones((1, 1, 2, 2), np.float32)}
    model = single_node_model("Involution2d", inputs, {"kernel_shape": [1, 1]})
    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    options = ort.SessionOptions()
    options.register_custom_ops_library(str(library))
    with pytest.raises(Exception, match="Involution2d"):
        ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(None, inputs)
