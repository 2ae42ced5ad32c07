"""Everything ONNX about ``holocron::Add2d``: schema, dynamo translation, TorchScript symbolic, standard fallback.

The fallback functions (standard ONNX only) extract the windows with a one-hot convolution, normalize them when
asked, and compare them with the ``C_out / group`` filters of each group a few at a time, so that peak memory is a few
times the unfolded input ``N * C_in * kH * kW * H_out * W_out`` plus the output, never
``N * C_out * C_in * kH * kW * H_out * W_out``: :func:`specialized_function` (one body per node) unrolls the filters
in chunks of static sizes.
"""

from collections.abc import Sequence

import onnx
import onnxscript
from onnx import TensorProto, helper
from onnxscript import FLOAT
from torch.onnx import symbolic_helper

from holocron.contract import ADD2D

from ._attributes import node_attributes, torchscript_node
from ._function_builder import FunctionBuilder
from ._schema import Dim, ShapeOf, build_schema
from ._windows import one_hot_windows, window_output_dims

# The hooks every op module offers the registry (export/onnx/ops/__init__.py).
__all__ = ["CONTRACT", "SCHEMA", "dynamo_translation", "fallback_for_node", "torchscript_symbolic"]

CONTRACT = ADD2D

_HOLOCRON = onnxscript.values.Opset(ADD2D.domain, ADD2D.version)


def _infer_shape(shapes: list[list[Dim] | None], attributes: dict[str, object]) -> list[Dim] | None:
    x, w = shapes[0], shapes[1]
    if x is None or w is None or len(x) != 4 or len(w) != 4:
        return None
    return [x[0], w[0], *window_output_dims(x[2:], w[2:], attributes)]


SCHEMA = build_schema(ADD2D, _infer_shape)


#: A window argument of the torch op (stride, padding or dilation: one value per spatial axis).
Pair = Sequence[int]


def onnx_attributes(
    stride: Pair, padding: Pair, dilation: Pair, groups: int, normalize_slices: bool, eps: float
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
def torchscript_symbolic(g, input, weight, bias, stride, padding, dilation, groups, normalize_slices, eps):
    """``holocron::add2d`` -> one ``holocron::Add2d`` node, for ``torch.onnx.register_custom_op_symbolic``.

    ``parse_args`` gives the arguments their types: values for ``input``, ``weight`` and ``bias``, int lists for
    ``stride``, ``padding`` and ``dilation``, then an int, a bool and a float.
    """
    inputs = (input, weight) if symbolic_helper._is_none(bias) else (input, weight, bias)
    return torchscript_node(g, ADD2D, inputs, onnx_attributes(stride, padding, dilation, groups, normalize_slices, eps))


#: Bound on the values of one chunk's difference tensor ``N x group x filters x H_out x W_out x C_in / group x kH x kW``
#: when the node's positions ``N x H_out x W_out`` are static (4 MiB of float32: in onnxruntime, chunks of that size
#: run as fast as chunks of one filter, with fewer nodes); a chunk has one filter at least.
CHUNK_ELEMENTS = 2**20

#: The bound per output position and image when the positions are not static.
CHUNK_ELEMENTS_PER_POSITION = 320

#: Filters shorter than this (``C_in / group x kH x kW`` values) are compared with the positions innermost: each
#: reduction then adds whole rows of positions, which onnxruntime vectorizes, instead of summing many short windows.
SHORT_WINDOW = 256


def positions_innermost(weight_shape: Sequence[int]) -> bool:
    """Whether the body of a node with ``W`` of ``weight_shape`` lays the output positions innermost."""
    _, in_per_group, kernel_h, kernel_w = weight_shape
    return in_per_group * kernel_h * kernel_w < SHORT_WINDOW


def overload(
    weight_shape: Sequence[int], group: int, normalize_slices: bool, has_bias: bool, positions: int | None = None
) -> str:
    """Name of the specialised body for a node with static ``W`` shape ``weight_shape`` and these attributes.

    The name ends with the filters per chunk (:func:`chunk_sizes`), which ``positions`` may change.
    """
    out_channels, in_per_group, kernel_h, kernel_w = weight_shape
    norm = "_normalized" if normalize_slices else ""
    bias = "" if has_bias else "_nobias"
    per_chunk = chunk_sizes(out_channels // group, group * in_per_group * kernel_h * kernel_w, positions)[0]
    layout = "_p" if positions_innermost(weight_shape) else ""
    return f"w{out_channels}x{in_per_group}x{kernel_h}x{kernel_w}_g{group}{norm}{bias}_c{per_chunk}{layout}"


def chunk_sizes(filters: int, depth: int, positions: int | None = None) -> list[int]:
    """Filters per chunk when ``filters`` filters of ``depth`` values (all groups) meet the windows at once.

    Args:
        filters: filters per group, ``C_out / group``.
        depth: values per filter over all groups, ``C_in x kH x kW``.
        positions: static ``N x H_out x W_out``, or ``None`` when unknown.
    """
    bound = CHUNK_ELEMENTS_PER_POSITION // depth if positions is None else CHUNK_ELEMENTS // (depth * positions)
    per_chunk = max(1, min(filters, bound))
    return [min(per_chunk, filters - start) for start in range(0, filters, per_chunk)]


def specialized_function(
    opset: int,
    weight_shape: Sequence[int],
    group: int,
    normalize_slices: bool,
    has_bias: bool,
    static_positions: int | None = None,
) -> onnx.FunctionProto:
    """Standard-ONNX body of ``holocron::Add2d`` for one node, overload :func:`overload` of the same arguments.

    No control flow: the normalization and the bias are in or out of the body, and the ``C_out / group`` filters of
    each group are compared with the windows in chunks of static sizes (:func:`chunk_sizes`), one ``Sub``, ``Abs``
    and ``ReduceSum`` per chunk, so that a chunk's differences stay within :data:`CHUNK_ELEMENTS` values (or
    :data:`CHUNK_ELEMENTS_PER_POSITION` per output position and image when ``static_positions`` is unknown), or
    one filter. The strides, pads, dilations and ``eps`` stay references to the node's attributes; every constant is
    cast like ``X``, so the body runs in float32 and float16.

    Args:
        opset: default-domain opset of the body.
        weight_shape: the node's static ``W`` shape ``(C_out, C_in / group, kH, kW)``.
        group: the node's ``group`` attribute.
        normalize_slices: the node's ``normalize_slices`` attribute.
        has_bias: whether the node has its optional input ``B``.
        static_positions: the node's static ``N x H_out x W_out`` (a dynamic batch counted as 1), ``None`` when unknown.
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
    # (N, group, 1, C_in / group * kH * kW, L): the windows of each group in the (c, i, j) order of W's rows. Long
    # windows go last (each sum of absolute differences then runs over contiguous values); short ones stay before
    # the positions (each sum then adds whole rows of positions).
    slices = body("Reshape", windows, body("Concat", batch, body.ints(group, depth), positions, axis=0))
    innermost = positions_innermost(weight_shape)
    window_axis = 3 if innermost else 4
    slices = body("Unsqueeze", slices if innermost else body("Transpose", slices, perm=[0, 1, 3, 2]), body.ints(2))
    if normalize_slices:
        slices = normalized(body, slices, axis=window_axis)

    filter_shape = body.ints(group, filters, depth, 1) if innermost else body.ints(group, filters, 1, depth)
    filters_of_group = body("Reshape", "W", filter_shape)  # broadcasts against the slices
    sizes = chunk_sizes(filters, group * depth, static_positions)
    chunks = body.split(filters_of_group, sizes, axis=1) if len(sizes) > 1 else [filters_of_group]
    axes = body.ints(window_axis)
    distances = [body("ReduceSum", body("Abs", body("Sub", slices, c)), axes, keepdims=0) for c in chunks]
    distance = distances[0] if len(distances) == 1 else body("Concat", *distances, axis=2)  # (N, group, C_out/g, L)
    distance = body("Reshape", distance, body("Concat", batch, body.ints(out_channels), out_size, axis=0))
    if has_bias:
        y = body("Sub", body("Reshape", "B", body.ints(1, out_channels, 1, 1)), distance)
    else:
        y = body("Neg", distance)
    return body.function(opset, overload(weight_shape, group, normalize_slices, has_bias, static_positions), Y=y)


def normalized(body: FunctionBuilder, slices: str, axis: int) -> str:
    r"""Each slice ``S`` over ``axis`` normalized as the contract says, in float64, cast back like ``slices``.

    .. math::

        m = \operatorname{mean}(S), \quad d = S - m, \quad v = \operatorname{mean}(d^2), \quad
        S_n = \begin{cases} d / \sqrt{v + \epsilon} & v + \epsilon > 0 \\ 0 & v + \epsilon = 0 \end{cases}

    Two passes (the mean first, then the variance of the centred values) in float64: a constant or near-constant
    window gives the float64 result (zeros for a constant one) even at ``eps = 1e-14``, where one float32 rounding of
    the mean would be amplified by ``1 / sqrt(eps)``; a constant window at ``eps = 0`` gives zeros, not ``0 / 0``.
    """
    wide = body("Cast", slices, to=TensorProto.DOUBLE)
    axes = body.ints(axis)
    centered = body("Sub", wide, body("ReduceMean", wide, axes, keepdims=1))
    denominator = body(
        "Add",
        body("ReduceMean", body("Mul", centered, centered), axes, keepdims=1),
        body("Cast", body.attribute_value("eps"), to=TensorProto.DOUBLE),
    )
    zero = body("Constant", value=helper.make_tensor("zero", TensorProto.DOUBLE, [1], [0.0]))
    inverse_std = body("Where", body("Greater", denominator, zero), body("Reciprocal", body("Sqrt", denominator)), zero)
    return body.like(body("Mul", centered, inverse_std), slices)


def _static_positions(
    x_shape: list[int] | None, weight_shape: Sequence[int], attributes: dict[str, object]
) -> int | None:
    """Static ``N x H_out x W_out`` of a node (an unknown batch counted as 1), ``None`` without static H, W."""
    if x_shape is None or len(x_shape) != 4 or any(d is None or d < 1 for d in x_shape[2:]):
        return None
    dims = window_output_dims(x_shape[2:], weight_shape[2:], attributes)
    if any(not isinstance(d, int) or d < 1 for d in dims):
        return None
    batch = x_shape[0] if x_shape[0] is not None and x_shape[0] >= 1 else 1
    return batch * int(dims[0]) * int(dims[1])  # type: ignore[arg-type]


def fallback_for_node(
    node: onnx.NodeProto, attributes: dict[str, object], shape_of: ShapeOf, opset: int
) -> onnx.FunctionProto:
    """The fallback body of one ``Add2d`` node: specialised to its static ``W`` shape, ``group``,
    ``normalize_slices``, bias presence and (when static) output positions.

    The hook's arguments are described by :class:`~holocron.export.onnx.ops.OpExport`.
    """
    weight = shape_of(1)
    has_bias = len(node.input) > 2 and node.input[2] != ""
    positions = _static_positions(shape_of(0, required=False), weight, attributes)
    group, normalize = int(attributes["group"]), bool(attributes["normalize_slices"])  # type: ignore[call-overload]
    return specialized_function(opset, weight, group, normalize, has_bias, positions)
