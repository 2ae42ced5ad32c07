"""Invalid nodes and inputs make the kernels fail with an onnxruntime error naming the op and the problem.

Every case runs in its own interpreter: a crash (or an out-of-bounds access the OS catches) fails that case instead of
killing the test session.
"""

import re

import numpy as np
import pytest
from helpers import single_node_model

rng = np.random.default_rng(0)


def arrays(**shapes: tuple[int, ...]) -> dict[str, np.ndarray]:
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


ADD2D_X, ADD2D_W = (1, 4, 6, 6), (6, 4, 3, 3)
INV_X, INV_K = (1, 4, 6, 6), (1, 2 * 9, 6, 6)
INV_ATTRS = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "group": 2}
LAMBDA_SHAPES = {"Q": (1, 8, 4, 5), "Kx": (1, 4, 4, 5), "V": (1, 6, 4, 5), "P": (4, 1, 1, 3, 3)}


def involution(pattern: str, attributes: dict | None = None, **shapes: tuple[int, ...]) -> tuple:
    """An Involution2d case: the valid inputs with ``shapes`` replaced, ``INV_ATTRS`` unless ``attributes``."""
    inputs = arrays(**{"X": INV_X, "K": INV_K} | shapes)
    return "Involution2d", inputs, INV_ATTRS if attributes is None else attributes, None, pattern


def lambda_case(pattern: str, attributes: dict | None = None, **shapes: tuple[int, ...]) -> tuple:
    """A Lambda case: the valid inputs with ``shapes`` replaced, ``num_heads = 2`` unless ``attributes``."""
    inputs = arrays(**LAMBDA_SHAPES | shapes)
    return "Lambda", inputs, {"num_heads": 2} if attributes is None else attributes, None, pattern


# (op, inputs, attributes, node inputs or None, pattern the error message must contain)
CASES = {
    "add2d_x_rank_3": ("Add2d", arrays(X=(4, 6, 6), W=ADD2D_W), {}, None, "X must have rank 4"),
    "add2d_w_rank_3": ("Add2d", arrays(X=ADD2D_X, W=(6, 4, 9)), {}, None, "W must have rank 4"),
    "add2d_wrong_in_channels": ("Add2d", arrays(X=ADD2D_X, W=(6, 3, 3, 3)), {}, None, "C_in / group"),
    "add2d_group_not_dividing_in": ("Add2d", arrays(X=ADD2D_X, W=(6, 1, 3, 3)), {"group": 3}, None, "'group'"),
    "add2d_group_not_dividing_out": ("Add2d", arrays(X=ADD2D_X, W=(5, 2, 3, 3)), {"group": 2}, None, "output channels"),
    "add2d_group_zero": ("Add2d", arrays(X=ADD2D_X, W=ADD2D_W), {"group": 0}, None, "'group'"),
    "add2d_stride_zero": ("Add2d", arrays(X=ADD2D_X, W=ADD2D_W), {"strides": [0, 1]}, None, "'strides'"),
    "add2d_stride_negative": ("Add2d", arrays(X=ADD2D_X, W=ADD2D_W), {"strides": [1, -2]}, None, "'strides'"),
    "add2d_pads_negative": ("Add2d", arrays(X=ADD2D_X, W=ADD2D_W), {"pads": [0, -1, 0, 0]}, None, "'pads'"),
    "add2d_pads_length_2": ("Add2d", arrays(X=ADD2D_X, W=ADD2D_W), {"pads": [1, 1]}, None, "'pads' must hold 4"),
    "add2d_dilation_zero": ("Add2d", arrays(X=ADD2D_X, W=ADD2D_W), {"dilations": [1, 0]}, None, "'dilations'"),
    "add2d_strides_as_floats": ("Add2d", arrays(X=ADD2D_X, W=ADD2D_W), {"strides": [1.0, 1.0]}, None, "'strides'"),
    "add2d_normalize_2": ("Add2d", arrays(X=ADD2D_X, W=ADD2D_W), {"normalize_slices": 2}, None, "'normalize_slices'"),
    "add2d_eps_negative": ("Add2d", arrays(X=ADD2D_X, W=ADD2D_W), {"eps": -1.0}, None, "'eps'"),
    "add2d_empty_batch": ("Add2d", arrays(X=(0, 4, 6, 6), W=ADD2D_W), {}, None, "must not be empty"),
    "add2d_empty_channels": ("Add2d", arrays(X=(1, 0, 6, 6), W=(6, 0, 3, 3)), {}, None, "must not be empty"),
    "add2d_bias_shape": ("Add2d", arrays(X=ADD2D_X, W=ADD2D_W, B=(5,)), {}, None, "B must have shape"),
    "add2d_bias_rank_2": ("Add2d", arrays(X=ADD2D_X, W=ADD2D_W, B=(6, 1)), {}, None, "B must have shape"),
    "add2d_kernel_too_large": ("Add2d", arrays(X=(1, 4, 2, 2), W=ADD2D_W), {}, None, "does not fit"),
    "add2d_missing_x": ("Add2d", arrays(W=ADD2D_W), {}, ["", "W"], "X is required"),
    "involution_x_rank_5": involution("X must have rank 4", X=(1, *INV_X)),
    "involution_k_channels": involution("K must have shape", K=(1, 9, 6, 6)),
    "involution_k_size": involution("K must have shape", K=(1, 18, 5, 6)),
    "involution_k_batch": involution("K must have shape", K=(2, 18, 6, 6)),
    "involution_kernel_shape_missing": involution("'kernel_shape' is required", {"group": 2}),
    "involution_kernel_shape_zero": involution("'kernel_shape'", INV_ATTRS | {"kernel_shape": [0, 3]}),
    "involution_group_not_dividing": involution("'group'", INV_ATTRS | {"group": 3}, K=(1, 27, 6, 6)),
    "involution_stride_zero": involution("'strides'", INV_ATTRS | {"strides": [0, 0]}),
    "involution_empty_batch": involution("empty", X=(0, 4, 6, 6), K=(0, 18, 6, 6)),
    "lambda_q_rank_3": lambda_case("Q must have rank 4", Q=(8, 4, 5)),
    "lambda_heads_missing": lambda_case("'num_heads' is required", {}),
    "lambda_heads_zero": lambda_case("'num_heads'", {"num_heads": 0}),
    "lambda_heads_not_dividing": lambda_case("'num_heads'", {"num_heads": 3}),
    "lambda_keys_channels": lambda_case("Kx", Kx=(1, 6, 4, 5)),
    "lambda_values_channels": lambda_case("V must", Kx=(1, 8, 4, 5), V=(1, 5, 4, 5)),
    "lambda_spatial_mismatch": lambda_case("share N, H and W", V=(1, 6, 5, 4)),
    "lambda_p_rank_3": lambda_case("P must", P=(4, 3, 3)),
    "lambda_local_even_r": lambda_case("r odd", P=(4, 1, 1, 2, 2)),
    "lambda_local_wrong_keys": lambda_case("local P", P=(3, 1, 1, 3, 3)),
    "lambda_global_wrong_positions": lambda_case("global P", P=(20, 19, 4, 1)),
    "lambda_empty_batch": lambda_case("must not be empty", Q=(0, 8, 4, 5), Kx=(0, 4, 4, 5), V=(0, 6, 4, 5)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_node_gives_onnxruntime_error(run_in_subprocess, case: str) -> None:
    op, inputs, attributes, node_inputs, pattern = CASES[case]
    model = single_node_model(op, inputs, attributes, node_inputs=node_inputs)
    result = run_in_subprocess(model, inputs)
    assert result.returncode == 3, (
        f"expected an onnxruntime error, got exit {result.returncode}: {result.stderr[-2000:]}"
    )
    assert re.search(r"^ERROR (InvalidArgument|Fail):", result.stdout, re.MULTILINE), result.stdout
    assert f"{op}:" in result.stdout and pattern in result.stdout, result.stdout


def test_valid_node_runs_in_the_same_harness(run_in_subprocess) -> None:
    """The harness itself: a valid node exits 0 with an output (so the cases above fail for their input only)."""
    inputs = arrays(X=ADD2D_X, W=ADD2D_W)
    result = run_in_subprocess(single_node_model("Add2d", inputs, {"pads": [1, 1, 1, 1]}), inputs)
    assert result.returncode == 0, result.stdout + result.stderr
