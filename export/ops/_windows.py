"""Sliding windows in standard ONNX, shared by the Add2d and Involution2d fallback bodies."""

from ._function_builder import FunctionBuilder

__all__ = ["one_hot_windows"]


def one_hot_windows(body: FunctionBuilder, x: str, kernel_size: str) -> str:
    """Every ``kH x kW`` window of every channel of ``x``: ``(N * C, kH * kW, H_out, W_out)``, tap ``i * kW + j``.

    A ``Conv`` of the channels, seen as ``N * C`` one-channel images, with the one-hot filters ``(kH * kW, 1, kH, kW)``
    (an identity matrix reshaped) copies tap ``(i, j)`` of each window into output channel ``i * kW + j``. Strides,
    pads and dilations are references to the op's attributes, so one body serves every node.

    Args:
        body: builder of the function body (its op has ``strides``, ``pads`` and ``dilations`` attributes).
        x: ``(N, C, H, W)`` value.
        kernel_size: 1-D int64 value ``[kH, kW]``.
    """
    taps = body("ReduceProd", kernel_size, keepdims=1)
    identity = body("EyeLike", body("ConstantOfShape", body("Concat", taps, taps, axis=0)))
    one_hot = body("Reshape", identity, body("Concat", taps, body.ints(1), kernel_size, axis=0))
    planes = body("Reshape", x, body("Concat", body.ints(-1, 1), body("Shape", x, start=2), axis=0))
    return body(
        "Conv",
        planes,
        one_hot,
        strides=body.ref("strides"),
        pads=body.ref("pads"),
        dilations=body.ref("dilations"),
    )
