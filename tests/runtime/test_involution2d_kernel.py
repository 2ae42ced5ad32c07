"""Involution2d kernel against a float64 numpy reference of the contract, over generated configurations."""

import numpy as np
import pytest
import torch
from helpers import draw_window, reference_test
from hypothesis import strategies as st

import holocron.ops

ATOL, RTOL = 1e-5, 1e-4


def output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int) -> int:
    return (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1


def involution2d_reference(
    x: np.ndarray,
    k: np.ndarray,
    kernel_shape: list[int],
    strides: list[int],
    pads: list[int],
    dilations: list[int],
    group: int,
) -> np.ndarray:
    """``Y[n, c, y, x] = sum_{i, j} K[n, g * kH * kW + i * kW + j, y, x] * X_pad[n, c, y sH + i dH, x sW + j dW]``."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel_shape, strides, dilations
    ho = output_size(h, kh, sh, pads[0], pads[2], dh)
    wo = output_size(w, kw, sw, pads[1], pads[3], dw)
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    group_of_channel = np.arange(c) // (c // group)
    y = np.zeros((n, c, ho, wo))
    for i in range(kh):
        for j in range(kw):
            tap = padded[:, :, i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw]
            y += k[:, group_of_channel * kh * kw + i * kw + j].astype(np.float64) * tap
    return y


@st.composite
def involution_configs(draw: st.DrawFn) -> dict:
    window = draw_window(draw, max_kernel=5, max_extra=(11, 21), max_group_channels=11)
    kernel_shape = list(window.pop("kernel"))
    return window | {
        "kernel_shape": kernel_shape,
        "threads": draw(st.sampled_from([1, 2])),
        "seed": draw(st.integers(0, 2**16)),
    }


def run_config(run_kernel, config: dict) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(config["seed"])
    n, _, h, w = config["shape"]
    (kh, kw), (sh, sw), pads, (dh, dw) = config["kernel_shape"], config["strides"], config["pads"], config["dilations"]
    ho, wo = output_size(h, kh, sh, pads[0], pads[2], dh), output_size(w, kw, sw, pads[1], pads[3], dw)
    x = rng.standard_normal(config["shape"]).astype(np.float32)
    k = rng.standard_normal((n, config["group"] * kh * kw, ho, wo)).astype(np.float32)
    attributes = {name: config[name] for name in ("kernel_shape", "strides", "pads", "dilations", "group")}
    out = run_kernel("Involution2d", {"X": x, "K": k}, attributes, threads=config["threads"])
    expected = involution2d_reference(x, k, **attributes)
    return out, expected


test_involution2d_kernel_matches_reference = reference_test(involution_configs(), run_config, RTOL, ATOL)


@pytest.mark.parametrize(
    ("shape", "kernel_shape", "group"),
    [
        ((1, 64, 30, 29), [7, 7], 4),  # the benchmark's layer, smaller: chunks of channels, many row blocks
        ((2, 80, 9, 13), [3, 3], 1),  # a group wider than one channel chunk
    ],
)
def test_involution2d_kernel_larger_layers(run_kernel, shape: tuple, kernel_shape: list[int], group: int) -> None:
    pad = kernel_shape[0] // 2
    config = {
        "shape": shape,
        "kernel_shape": kernel_shape,
        "strides": [1, 1],
        "pads": [pad] * 4,
        "dilations": [1, 1],
        "group": group,
        "threads": 2,
        "seed": 5,
    }
    out, expected = run_config(run_kernel, config)
    np.testing.assert_allclose(out, expected, rtol=RTOL, atol=ATOL)


def test_involution2d_kernel_matches_torch_op(run_kernel) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 10, 12)).astype(np.float32)
    k = rng.standard_normal((2, 3 * 9, 5, 12)).astype(np.float32)
    attributes = {"kernel_shape": [3, 3], "strides": [2, 1], "pads": [1, 2, 1, 2], "dilations": [1, 2], "group": 3}
    out = run_kernel("Involution2d", {"X": x, "K": k}, attributes)
    eager = holocron.ops.involution2d(torch.from_numpy(x), torch.from_numpy(k), [3, 3], [2, 1], [1, 2], [1, 2], 3)
    np.testing.assert_allclose(out, eager.numpy(), rtol=RTOL, atol=ATOL)
