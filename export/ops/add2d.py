"""Everything ONNX about ``holocron::Add2d``: schema, dynamo translation, TorchScript symbolic, standard fallback.

The fallback functions (standard ONNX only) extract the windows with a one-hot convolution, normalize them when
asked, and compare them with the ``C_out / group`` filters of each group a few at a time, so that peak memory is a few
times the unfolded input ``N * C_in * kH * kW * H_out * W_out`` plus the output, never
``N * C_out * C_in * kH * kW * H_out * W_out``. :func:`specialized_function` (what exports carry) unrolls the filters
in chunks of static sizes; :func:`fallback_function` (generic, for nodes without an overload) loops over them.
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


#: Bound on ``filters x C_in / group x kH x kW`` of one chunk of the specialised body: the difference tensor of a chunk
#: holds at most this many values per output position and image (4 MiB of float32 at 56 x 56 outputs); a chunk has
#: one filter at least.
CHUNK_ELEMENTS = 320


def overload(weight_shape: Sequence[int], group: int, normalize_slices: bool, has_bias: bool) -> str:
    """Name of the specialised body for a node with static ``W`` shape ``weight_shape`` and these attributes."""
    out_channels, in_per_group, kernel_h, kernel_w = weight_shape
    norm = "_normalized" if normalize_slices else ""
    bias = "" if has_bias else "_nobias"
    return f"w{out_channels}x{in_per_group}x{kernel_h}x{kernel_w}_g{group}{norm}{bias}"


def chunk_sizes(filters: int, depth: int) -> list[int]:
    """Filters per chunk when ``filters`` filters of ``depth`` values each are compared with the windows at once."""
    per_chunk = max(1, min(filters, CHUNK_ELEMENTS // depth))
    return [min(per_chunk, filters - start) for start in range(0, filters, per_chunk)]


def specialized_function(
    opset: int, weight_shape: Sequence[int], group: int, normalize_slices: bool, has_bias: bool
) -> onnx.FunctionProto:
    """Standard-ONNX body of ``holocron::Add2d`` for one node, overload :func:`overload` of the same arguments.

    No control flow: the normalization and the bias are in or out of the body, and the ``C_out / group`` filters of
    each group are compared with the windows in chunks of static sizes (:func:`chunk_sizes`), one ``Sub``, ``Abs``
    and ``ReduceSum`` per chunk, so at most ``max(CHUNK_ELEMENTS, C_in / group * kH * kW)`` differences per output
    position and image live at a time. The strides, pads, dilations and ``eps`` stay references to the node's
    attributes; every constant is cast like ``X``, so the body runs in float32 and float16.

    Args:
        opset: default-domain opset of the body.
        weight_shape: the node's static ``W`` shape ``(C_out, C_in / group, kH, kW)``.
        group: the node's ``group`` attribute.
        normalize_slices: the node's ``normalize_slices`` attribute.
        has_bias: whether the node has its optional input ``B``.
    """
    out_channels, in_per_group, kernel_h, kernel_w = (int(d) for d in weight_shape)
    if min(out_channels, in_per_group, kernel_h, kernel_w, group) < 1 or out_channels % group:
        raise ValueError(
            f"Add2d fallback: `weight_shape` must be 4 positive sizes with C_out divisible by group={group}; "
            f"got {list(weight_shape)}"
        )
    filters = out_channels // group
    depth = in_per_group * kernel_h * kernel_w
    body = FunctionBuilder(ADD2D)
    batch = body("Shape", "X", start=0, end=1)

    windows = one_hot_windows(body, "X", body.ints(kernel_h, kernel_w))  # (N * C_in, kH * kW, H_out, W_out)
    out_size = body("Shape", windows, start=2)
    positions = body("ReduceProd", out_size, keepdims=1)
    # (N, group, 1, L, C_in / group * kH * kW): the windows of each group in the (c, i, j) order of W's rows, last so
    # that each sum of absolute differences runs over contiguous values.
    slices = body("Reshape", windows, body("Concat", batch, body.ints(group, depth), positions, axis=0))
    slices = body("Unsqueeze", body("Transpose", slices, perm=[0, 1, 3, 2]), body.ints(2))
    if normalize_slices:
        slices = normalized(body, slices, axis=4)

    filters_of_group = body("Reshape", "W", body.ints(group, filters, 1, depth))  # broadcasts against the slices
    sizes = chunk_sizes(filters, depth)
    chunks = body.split(filters_of_group, sizes, axis=1) if len(sizes) > 1 else [filters_of_group]
    distances = [body("ReduceSum", body("Abs", body("Sub", slices, c)), body.ints(4), keepdims=0) for c in chunks]
    distance = distances[0] if len(distances) == 1 else body("Concat", *distances, axis=2)  # (N, group, C_out/g, L)
    distance = body("Reshape", distance, body("Concat", batch, body.ints(out_channels), out_size, axis=0))
    if has_bias:
        y = body("Sub", body("Reshape", "B", body.ints(1, out_channels, 1, 1)), distance)
    else:
        y = body("Neg", distance)
    return body.function(opset, overload(weight_shape, group, normalize_slices, has_bias), Y=y)


def normalized(body: FunctionBuilder, slices: str, axis: int) -> str:
    """``(S - mean) / sqrt(var + eps)`` over ``axis``, computed in float64 and cast back like ``slices``.

    Two passes (the mean first, then the variance of the centred values) in float64: a constant or near-constant
    window gives the float64 result (zeros for a constant one) even at ``eps = 1e-14``, where one float32 rounding of
    the mean would be amplified by ``1 / sqrt(eps)``.
    """
    wide = body("Cast", slices, to=TensorProto.DOUBLE)
    axes = body.ints(axis)
    centered = body("Sub", wide, body("ReduceMean", wide, axes, keepdims=1))
    variance = body("ReduceMean", body("Mul", centered, centered), axes, keepdims=1)
    eps = body("Cast", body.attribute_value("eps"), to=TensorProto.DOUBLE)
    return body.like(body("Div", centered, body("Sqrt", body("Add", variance, eps))), slices)
