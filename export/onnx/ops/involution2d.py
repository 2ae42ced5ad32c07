"""Everything ONNX about ``holocron::Involution2d``: schema, dynamo translation, TorchScript symbolic, fallback.

The fallback function (standard ONNX only) extracts the windows with a one-hot convolution and weights them with the
per-pixel kernels: peak memory is about twice the unfolded input ``N * C * kH * kW * H_out * W_out``.
"""

from collections.abc import Sequence

import onnx
import onnxscript
from onnxscript import FLOAT
from torch.onnx import symbolic_helper

from holocron.contract import INVOLUTION2D

from ._attributes import node_attributes, torchscript_node
from ._function_builder import FunctionBuilder
from ._schema import Dim, ShapeOf, build_schema
from ._windows import one_hot_windows, window_output_dims

# The hooks every op module offers the registry (export/onnx/ops/__init__.py).
__all__ = ["CONTRACT", "SCHEMA", "dynamo_translation", "fallback_for_node", "torchscript_symbolic"]

CONTRACT = INVOLUTION2D

_HOLOCRON = onnxscript.values.Opset(INVOLUTION2D.domain, INVOLUTION2D.version)


def _infer_shape(shapes: list[list[Dim] | None], attributes: dict[str, object]) -> list[Dim] | None:
    x = shapes[0]
    if x is None or len(x) != 4:
        return None
    return [x[0], x[1], *window_output_dims(x[2:], attributes["kernel_shape"], attributes)]  # type: ignore[arg-type]


SCHEMA = build_schema(INVOLUTION2D, _infer_shape)


def onnx_attributes(
    kernel_size: Sequence[int], stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int], groups: int
) -> dict[str, object]:
    """ONNX attributes of a ``holocron::Involution2d`` node from the torch op's arguments (padding doubled)."""
    return node_attributes(
        INVOLUTION2D,
        kernel_shape=kernel_size,
        strides=stride,
        pads=[*padding, *padding],
        dilations=dilation,
        group=groups,
    )


def dynamo_translation(
    input: FLOAT,
    kernel: FLOAT,
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
) -> FLOAT:
    """``torch.ops.holocron.involution2d.default`` -> one ``holocron::Involution2d`` node."""
    attributes = onnx_attributes(kernel_size, stride, padding, dilation, groups)
    return _HOLOCRON.Involution2d(input, kernel, **attributes)


@symbolic_helper.parse_args("v", "v", "is", "is", "is", "is", "i")
def torchscript_symbolic(
    g, input, kernel, kernel_size: list[int], stride: list[int], padding: list[int], dilation: list[int], groups: int
):
    """``holocron::involution2d`` -> one ``holocron::Involution2d`` node, for ``register_custom_op_symbolic``."""
    return torchscript_node(
        g, INVOLUTION2D, (input, kernel), onnx_attributes(kernel_size, stride, padding, dilation, groups)
    )


def specialized_function(opset: int) -> onnx.FunctionProto:
    """Standard-ONNX body of ``holocron::Involution2d`` for default-domain ``opset``: one body serves every node
    (shape- and attribute-generic, no control flow), so it has no overload name."""
    body = FunctionBuilder(INVOLUTION2D)
    kernel_size = body.attribute_value("kernel_shape")
    taps = body("ReduceProd", kernel_size, keepdims=1)
    batch = body("Shape", "X", start=0, end=1)
    group = body.attribute_value("group")

    windows = one_hot_windows(body, "X", kernel_size)  # (N * C, kH * kW, H_out, W_out)
    out_size = body("Shape", windows, start=2)
    windows = body("Reshape", windows, body("Concat", batch, group, body.ints(-1), taps, out_size, axis=0))
    kernels = body(
        "Reshape", "K", body("Concat", batch, group, body.ints(1), taps, body("Shape", "K", start=2), axis=0)
    )
    weighted = body("ReduceSum", body("Mul", windows, kernels), body.ints(3), keepdims=0)  # (N, group, C / group, ...)
    out_shape = body("Concat", batch, body("Shape", "X", start=1, end=2), out_size, axis=0)
    return body.function(opset, Y=body("Reshape", weighted, out_shape))


def fallback_for_node(
    node: onnx.NodeProto, attributes: dict[str, object], shape_of: ShapeOf, opset: int
) -> onnx.FunctionProto:
    """The fallback body of one ``Involution2d`` node: one shape- and attribute-generic body serves every node.

    The hook's arguments are described by :class:`~holocron.export.onnx.ops.OpExport`.
    """
    return specialized_function(opset)
