"""Everything ONNX about ``holocron::Add2d``: schema, dynamo translation, TorchScript symbolic, standard fallback.

The fallback function (standard ONNX only) extracts the windows with a one-hot convolution, normalizes them when
asked, and loops over the ``C_out / group`` filters of each group so that only one window-sized difference tensor
lives at a time: peak memory is a few times the unfolded input ``N * C_in * kH * kW * H_out * W_out`` plus the output,
never ``N * C_out * C_in * kH * kW * H_out * W_out``.
"""

from collections.abc import Sequence

import onnx
import onnxscript
from onnx import TensorProto, helper
from onnxscript import FLOAT
from torch.onnx import symbolic_helper

from holocron.ops.contract import ADD2D

from ._attributes import node_attributes, torchscript_node
from ._function_builder import FunctionBuilder
from ._schema import Dim, build_schema
from ._windows import one_hot_windows, window_output_dims

__all__ = ["SCHEMA", "dynamo_translation", "fallback_function", "onnx_attributes", "torchscript_symbolic"]

_HOLOCRON = onnxscript.values.Opset(ADD2D.domain, ADD2D.version)


def _infer_shape(shapes: list[list[Dim] | None], attributes: dict[str, object]) -> list[Dim] | None:
    x, w = shapes[0], shapes[1]
    if x is None or w is None or len(x) != 4 or len(w) != 4:
        return None
    return [x[0], w[0], *window_output_dims(x[2:], w[2:], attributes)]


SCHEMA = build_schema(ADD2D, _infer_shape)


def onnx_attributes(
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    normalize_slices: bool,
    eps: float,
) -> dict[str, object]:
    """ONNX attributes of a ``holocron::Add2d`` node from the torch op's arguments (padding doubled)."""
    return node_attributes(
        ADD2D,
        strides=stride,
        pads=[*padding, *padding],
        dilations=dilation,
        group=groups,
        normalize_slices=normalize_slices,
        eps=eps,
    )


def dynamo_translation(
    input: FLOAT,
    weight: FLOAT,
    bias: FLOAT | None,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    normalize_slices: bool,
    eps: float,
) -> FLOAT:
    """``torch.ops.holocron.add2d.default`` -> one ``holocron::Add2d`` node (no ``B`` input when ``bias`` is None)."""
    inputs = (input, weight) if bias is None else (input, weight, bias)
    return _HOLOCRON.Add2d(*inputs, **onnx_attributes(stride, padding, dilation, groups, normalize_slices, eps))


@symbolic_helper.parse_args("v", "v", "v", "is", "is", "is", "i", "b", "f")
def torchscript_symbolic(
    g,
    input,
    weight,
    bias,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    groups: int,
    normalize_slices: bool,
    eps: float,
):
    """``holocron::add2d`` -> one ``holocron::Add2d`` node, for ``torch.onnx.register_custom_op_symbolic``."""
    inputs = (input, weight) if symbolic_helper._is_none(bias) else (input, weight, bias)
    return torchscript_node(g, ADD2D, inputs, onnx_attributes(stride, padding, dilation, groups, normalize_slices, eps))


def fallback_function(opset: int) -> onnx.FunctionProto:
    """Standard-ONNX body of ``holocron::Add2d`` for default-domain ``opset`` (shape- and attribute-generic)."""
    body = FunctionBuilder(ADD2D)
    batch = body("Shape", "X", start=0, end=1)
    out_channels = body("Shape", "W", start=0, end=1)
    group = body.attribute_value("group")

    # (N * C_in, kH * kW, H_out, W_out) -> slices (N, group, C_in / group * kH * kW, L), values in (c, i, j) order.
    windows = one_hot_windows(body, "X", body("Shape", "W", start=2))
    out_size = body("Shape", windows, start=2)
    positions = body("ReduceProd", out_size, keepdims=1)
    slices = body("Reshape", windows, body("Concat", batch, group, body.ints(-1), positions, axis=0))
    slices = _normalized_if_asked(body, slices)

    # Loop over the filters of each group: iteration o gives -|S - W[g * C_out / group + o]| summed, (N, group, L).
    per_group = body("Div", out_channels, group)
    filters = body("Reshape", "W", body("Concat", group, per_group, body.ints(-1), axis=0))
    step = body.subgraph("filter_")
    filter_o = step("Unsqueeze", step("Gather", filters, "o", axis=1), step.ints(0, 3))
    distance = step("ReduceSum", step("Abs", step("Sub", slices, filter_o)), step.ints(2), keepdims=0)
    loop_body = step.graph(
        "add2d_filter",
        inputs=[
            helper.make_tensor_value_info("o", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
        ],
        outputs={"cond_out": "cond", "distance": distance},
        output_types={"cond_out": TensorProto.BOOL, "distance": TensorProto.FLOAT},
    )
    trip_count = body("Squeeze", per_group, body.ints(0))
    distances = body("Loop", trip_count, "", body=loop_body)  # (C_out / group, N, group, L)
    distances = body("Transpose", distances, perm=[1, 2, 0, 3])
    out_shape = body("Concat", batch, out_channels, out_size, axis=0)
    negated = body("Neg", body("Reshape", distances, out_shape))
    return body.function(opset, Y=body("Add", negated, _bias_or_zero(body, out_channels)))


def _normalized_if_asked(body: FunctionBuilder, slices: str) -> str:
    """``(S - mean) / sqrt(var + eps)`` over axis 2 when ``normalize_slices`` is 1, else ``S`` (an ``If``)."""
    eps = body.attribute_value("eps")
    flag = body("Cast", body("Squeeze", body.attribute_value("normalize_slices"), body.ints(0)), to=TensorProto.BOOL)
    norm = body.subgraph("normalize_")
    centered = norm("Sub", slices, norm("ReduceMean", slices, norm.ints(2), keepdims=1))
    variance = norm("ReduceMean", norm("Mul", centered, centered), norm.ints(2), keepdims=1)
    normalized = norm("Div", centered, norm("Sqrt", norm("Add", variance, eps)))
    keep = body.subgraph("raw_")
    kept = keep("Identity", slices)
    float_out = {"slices": TensorProto.FLOAT}
    return body(
        "If",
        flag,
        then_branch=norm.graph("add2d_normalize", [], {"slices": normalized}, float_out),
        else_branch=keep.graph("add2d_raw", [], {"slices": kept}, float_out),
    )


def _bias_or_zero(body: FunctionBuilder, out_channels: str) -> str:
    """``B`` as ``(1, C_out, 1, 1)``, or zeros when the node omits ``B``.

    ``Gemm(ones(1, 1), zeros(1, C_out), C)`` returns ``C`` broadcast to ``(1, C_out)``, and zeros when its optional
    input ``C`` is missing: it is how a function body reads an optional input without a branch on its presence.
    """
    zeros = body("ConstantOfShape", body("Concat", body.ints(1), out_channels, axis=0))
    one = body("Constant", value=helper.make_tensor("one", TensorProto.FLOAT, [1, 1], [1.0]))
    row = body("Gemm", one, zeros, "B")
    return body("Reshape", row, body.ints(1, -1, 1, 1))
