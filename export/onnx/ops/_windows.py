"""Sliding windows shared by Add2d and Involution2d: their output size in shape inference, their extraction in ONNX."""

from collections.abc import Sequence
from typing import cast

from onnx import TensorProto, helper

from holocron.contract import conv_output_size

from ._function_builder import FunctionBuilder
from ._schema import Dim

__all__ = ["one_hot_windows", "window_output_dims"]


def window_output_dims(spatial: Sequence[Dim], kernel: Sequence[Dim], attributes: dict[str, object]) -> list[Dim]:
    """``[H_out, W_out]`` of a window ``kernel`` sliding over ``spatial`` with the node's window ``attributes``.

    Args:
        spatial: input ``[H, W]`` as shape inference sees it.
        kernel: ``[kH, kW]``.
        attributes: the node's ``strides``, ``pads`` (ONNX order: begins then ends) and ``dilations``.

    Returns:
        Each dimension by :func:`~holocron.contract.conv_output_size`, or ``None`` where the input size or the
        kernel size is not a known integer.
    """
    strides, pads, dilations = (cast(list[int], attributes[name]) for name in ("strides", "pads", "dilations"))
    dims: list[Dim] = []
    for axis, (size, taps) in enumerate(zip(spatial, kernel, strict=True)):
        if isinstance(size, int) and isinstance(taps, int):
            dims.append(conv_output_size(size, taps, strides[axis], pads[axis], pads[axis + 2], dilations[axis]))
        else:
            dims.append(None)
    return dims


def one_hot_windows(body: FunctionBuilder, x: str, kernel_size: str) -> str:
    """Every ``kH x kW`` window of every channel of ``x``: ``(N * C, kH * kW, H_out, W_out)``, tap ``i * kW + j``.

    A ``Conv`` of the channels, seen as ``N * C`` one-channel images, with the one-hot filters ``(kH * kW, 1, kH, kW)``
    (an identity matrix reshaped, cast like ``x``) copies tap ``(i, j)`` of each window into output channel
    ``i * kW + j``. Strides, pads and dilations are references to the op's attributes, so one body serves every node.

    Args:
        body: builder of the function body (its op has ``strides``, ``pads`` and ``dilations`` attributes).
        x: ``(N, C, H, W)`` value.
        kernel_size: 1-D int64 value ``[kH, kW]``.
    """
    taps = body("ReduceProd", kernel_size, keepdims=1)
    # int64 until the final CastLike: float converters (float16) rewrite float constants but leave integer ones alone.
    zero = helper.make_tensor("zero", TensorProto.INT64, [1], [0])
    identity = body("EyeLike", body("ConstantOfShape", body("Concat", taps, taps, axis=0), value=zero))
    one_hot = body.like(body("Reshape", identity, body("Concat", taps, body.ints(1), kernel_size, axis=0)), x)
    planes = body("Reshape", x, body("Concat", body.ints(-1, 1), body("Shape", x, start=2), axis=0))
    return body(
        "Conv",
        planes,
        one_hot,
        strides=body.ref("strides"),
        pads=body.ref("pads"),
        dilations=body.ref("dilations"),
    )
