"""A model carrying holocron's standard-ONNX fallback functions runs the kernel when the library is registered and the
fallback otherwise; both give the same result. Which one ran is read from onnxruntime's profile (node op names)."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import enable_profiling, executed_op_types, single_node_model

from holocron.export.onnx.ops import attach_fallback_functions

ATOL, RTOL = 1e-5, 1e-4
OPSET = 18


def random_inputs(seed: int, **shapes: tuple[int, ...]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


CASES = {
    "add2d": (
        "Add2d",
        random_inputs(0, X=(2, 6, 9, 8), W=(4, 3, 3, 3), B=(4,)),
        {"strides": [2, 1], "pads": [1, 0, 1, 2], "dilations": [1, 2], "group": 2},
    ),
    "add2d_normalized": (
        "Add2d",
        random_inputs(1, X=(1, 4, 7, 7), W=(5, 4, 3, 3)),
        {"pads": [1, 1, 1, 1], "normalize_slices": 1, "eps": 1e-5},
    ),
    "involution2d": (
        "Involution2d",
        random_inputs(2, X=(2, 6, 9, 8), K=(2, 3 * 9, 9, 8)),
        {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "group": 3},
    ),
    "lambda_local": (
        "Lambda",
        random_inputs(3, Q=(2, 8, 5, 6), Kx=(2, 8, 5, 6), V=(2, 6, 5, 6), P=(4, 2, 1, 3, 3)),
        {"num_heads": 2},
    ),
    "lambda_global": (
        "Lambda",
        random_inputs(4, Q=(1, 8, 4, 5), Kx=(1, 4, 4, 5), V=(1, 6, 4, 5), P=(20, 20, 4, 1)),
        {"num_heads": 2},
    ),
}


def run_profiled(model: onnx.ModelProto, feeds: dict[str, np.ndarray], tmp_path: Path, library: Path | None):
    """Output and the set of op types onnxruntime executed."""
    import onnxruntime as ort

    options = enable_profiling(ort.SessionOptions(), tmp_path / ("kernel" if library else "fallback"))
    if library is not None:
        options.register_custom_ops_library(str(library))
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, feeds)
    return out, executed_op_types(session)


@pytest.mark.parametrize("case", list(CASES))
def test_kernel_replaces_fallback_and_agrees(library: Path, tmp_path: Path, case: str) -> None:
    op, feeds, attributes = CASES[case]
    model = attach_fallback_functions(single_node_model(op, feeds, attributes, opset=OPSET))

    kernel_out, kernel_ops = run_profiled(model, feeds, tmp_path, library)
    fallback_out, fallback_ops = run_profiled(model, feeds, tmp_path, None)

    assert kernel_ops == {op}, f"with the library only the {op} kernel should run; ran {kernel_ops}"
    assert op not in fallback_ops and fallback_ops, f"without the library the fallback should run; ran {fallback_ops}"
    np.testing.assert_allclose(kernel_out, fallback_out, rtol=RTOL, atol=ATOL)
