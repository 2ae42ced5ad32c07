"""Add2d kernel against a float64 numpy reference of the contract, over generated configurations."""

import numpy as np
import pytest
import torch
from helpers import draw_window, reference_test, single_node_model
from hypothesis import strategies as st

import holocron.ops

ATOL, RTOL = 1e-5, 1e-4


def add2d_reference(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    strides: list[int],
    pads: list[int],
    dilations: list[int],
    group: int,
    normalize_slices: bool = False,
    eps: float = 1e-14,
) -> np.ndarray:
    """``B[o] - sum_{c, i, j} |S[c, i, j] - W[o, c, i, j]|`` over zero-padded, optionally normalized slices."""
    n, _, h, width = x.shape
    c_out, c_group, kh, kw = w.shape
    (sh, sw), (dh, dw) = strides, dilations
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    ho = (h + pads[0] + pads[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (width + pads[1] + pads[3] - dw * (kw - 1) - 1) // sw + 1
    taps = np.stack(
        [
            np.stack(
                [
                    padded[:, :, i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw]
                    for j in range(kw)
                ],
                axis=2,
            )
            for i in range(kh)
        ],
        axis=2,
    )  # (N, C_in, kH, kW, H_out, W_out)
    slices = taps.reshape(n, group, c_group * kh * kw, ho, wo)
    if normalize_slices:
        mean = slices.mean(axis=2, keepdims=True)
        var = ((slices - mean) ** 2).mean(axis=2, keepdims=True)
        slices = (slices - mean) / np.sqrt(var + eps)
    filters = w.astype(np.float64).reshape(group, c_out // group, c_group * kh * kw)
    distance = np.abs(slices[:, :, None] - filters[None, :, :, :, None, None]).sum(axis=3)
    y = -distance.reshape(n, c_out, ho, wo)
    if b is not None:
        y = y + b.astype(np.float64)[None, :, None, None]
    return y


@st.composite
def add2d_configs(draw: st.DrawFn) -> dict:
    window = draw_window(draw, max_kernel=4, max_extra=(9, 9), max_group_channels=4)
    return window | {
        "out_channels": window["group"] * draw(st.integers(1, 7)),
        "bias": draw(st.booleans()),
        "normalize_slices": draw(st.booleans()),
        "eps": draw(st.sampled_from([1e-14, 1e-5, 0.5])),
        "threads": draw(st.sampled_from([1, 2])),
        "seed": draw(st.integers(0, 2**16)),
    }


def run_config(run_kernel, config: dict) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(config["seed"])
    c_in = config["shape"][1]
    x = rng.standard_normal(config["shape"]).astype(np.float32)
    weight = rng.standard_normal((config["out_channels"], c_in // config["group"], *config["kernel"])).astype(
        np.float32
    )
    bias = rng.standard_normal(config["out_channels"]).astype(np.float32) if config["bias"] else None
    inputs = {"X": x, "W": weight} | ({"B": bias} if bias is not None else {})
    attributes = {
        "strides": config["strides"],
        "pads": config["pads"],
        "dilations": config["dilations"],
        "group": config["group"],
        "normalize_slices": int(config["normalize_slices"]),
        "eps": config["eps"],
    }
    out = run_kernel("Add2d", inputs, attributes, threads=config["threads"])
    expected = add2d_reference(
        x,
        weight,
        bias,
        config["strides"],
        config["pads"],
        config["dilations"],
        config["group"],
        config["normalize_slices"],
        config["eps"],
    )
    return out, expected


test_add2d_kernel_matches_reference = reference_test(add2d_configs(), run_config, RTOL, ATOL)


@pytest.mark.parametrize(
    "config",
    [
        # Many pixel tiles and whole micro-tiles of output channels.
        {"shape": (2, 16, 20, 23), "out_channels": 24, "kernel": (3, 3), "strides": [1, 1], "pads": [1, 1, 1, 1]},
        # Few pixels, long slices: the output channels are split over tasks too.
        {"shape": (1, 40, 9, 9), "out_channels": 44, "kernel": (3, 3), "strides": [2, 2], "pads": [1, 1, 1, 1]},
        # Depthwise-like: one input channel per group.
        {
            "shape": (1, 12, 15, 7),
            "out_channels": 24,
            "kernel": (5, 3),
            "strides": [1, 2],
            "pads": [2, 0, 1, 1],
            "group": 12,
        },
    ],
)
@pytest.mark.parametrize("normalize_slices", [False, True])
def test_add2d_kernel_larger_layers(run_kernel, config: dict, normalize_slices: bool) -> None:
    full = {"dilations": [1, 1], "group": 1, "bias": True, "eps": 1e-5, "threads": 2, "seed": 3} | config
    out, expected = run_config(run_kernel, full | {"normalize_slices": normalize_slices})
    np.testing.assert_allclose(out, expected, rtol=RTOL, atol=ATOL)


def test_absent_bias_named_empty_reads_as_zero(run_kernel, library) -> None:
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    options = ort.SessionOptions()
    options.register_custom_ops_library(str(library))
    model = single_node_model("Add2d", {"X": x, "W": w}, node_inputs=["X", "W", ""])
    (out,) = ort.InferenceSession(model.SerializeToString(), options).run(None, {"X": x, "W": w})
    np.testing.assert_allclose(out, add2d_reference(x, w, None, [1, 1], [0] * 4, [1, 1], 1), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("normalize_slices", [False, True])
def test_add2d_kernel_matches_torch_op(run_kernel, normalize_slices: bool) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 11, 9)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    attributes = {"strides": [2, 1], "pads": [1, 2, 1, 2], "dilations": [1, 2], "group": 2}
    out = run_kernel("Add2d", {"X": x, "W": w, "B": b}, attributes | {"normalize_slices": int(normalize_slices)})
    eager = holocron.ops.add2d(
        torch.from_numpy(x),
        torch.from_numpy(w),
        torch.from_numpy(b),
        [2, 1],
        [1, 2],
        [1, 2],
        2,
        normalize_slices,
        1e-14,
    )
    np.testing.assert_allclose(out, eager.numpy(), rtol=RTOL, atol=ATOL)
