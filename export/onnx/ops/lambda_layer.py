"""Everything ONNX about ``holocron::Lambda``: schema, dynamo translation, TorchScript symbolic, standard fallback.

The fallback functions (standard ONNX only) follow the contract's formulas with ``Softmax`` and ``Einsum``; one body
per rank of ``P`` computes the local position lambda (a 3-D ``Conv`` of the values with ``R``, zero padding
``r // 2``) or the global one (an ``Einsum`` with ``E``). Memory is that of the layer itself: the position lambdas
``N * K * V * H * W`` dominate.
"""

import onnx
import onnxscript
from onnxscript import FLOAT
from torch.onnx import symbolic_helper

from holocron.contract import LAMBDA

from ._attributes import node_attributes, torchscript_node
from ._function_builder import FunctionBuilder
from ._schema import Dim, ShapeOf, build_schema

# The hooks every op module offers the registry (export/onnx/ops/__init__.py).
__all__ = ["CONTRACT", "SCHEMA", "dynamo_translation", "fallback_for_node", "torchscript_symbolic"]

CONTRACT = LAMBDA

_HOLOCRON = onnxscript.values.Opset(LAMBDA.domain, LAMBDA.version)


def _infer_shape(shapes: list[list[Dim] | None], attributes: dict[str, object]) -> list[Dim] | None:
    q, k, v = shapes[0], shapes[1], shapes[2]
    if q is None or len(q) != 4:
        return None
    channels: Dim = None
    heads = attributes["num_heads"]
    if k is not None and v is not None and all(isinstance(d, int) for d in (q[1], k[1], v[1])):
        dim_k = q[1] // heads  # type: ignore[operator]
        dim_u = k[1] // dim_k  # type: ignore[operator]
        channels = heads * (v[1] // dim_u)  # type: ignore[operator]
    return [q[0], channels, q[2], q[3]]


SCHEMA = build_schema(LAMBDA, _infer_shape)


def onnx_attributes(num_heads: int) -> dict[str, object]:
    """ONNX attributes of a ``holocron::Lambda`` node from the torch op's arguments."""
    return node_attributes(LAMBDA, num_heads=num_heads)


def dynamo_translation(q: FLOAT, k: FLOAT, v: FLOAT, pos: FLOAT, num_heads: int) -> FLOAT:
    """``torch.ops.holocron.lambda_layer.default`` -> one ``holocron::Lambda`` node."""
    return _HOLOCRON.Lambda(q, k, v, pos, **onnx_attributes(num_heads))


@symbolic_helper.parse_args("v", "v", "v", "v", "i")
def torchscript_symbolic(g, q, k, v, pos, num_heads: int):
    """``holocron::lambda_layer`` -> one ``holocron::Lambda`` node, for ``register_custom_op_symbolic``."""
    return torchscript_node(g, LAMBDA, (q, k, v, pos), onnx_attributes(num_heads))


#: Overload names of the specialised bodies: position lambdas from a local kernel ``R`` or a global embedding ``E``.
LOCAL, GLOBAL = "local", "global"


def overload(position_rank: int) -> str:
    """Name of the specialised body for a node whose ``P`` has rank ``position_rank`` (5: local ``R``, 4: ``E``)."""
    if position_rank not in (4, 5):
        raise ValueError(f"Lambda fallback: `P` must have rank 5 (local R) or 4 (global E); got rank {position_rank}")
    return LOCAL if position_rank == 5 else GLOBAL


def specialized_function(opset: int, position_rank: int) -> onnx.FunctionProto:
    """Standard-ONNX body of ``holocron::Lambda`` for nodes whose ``P`` has rank ``position_rank``, no control flow.

    Overload ``local`` (rank 5): a 3-D ``Conv`` of the values with ``R``, zero padding ``r // 2``; overload
    ``global`` (rank 4): an ``Einsum`` with ``E``. Element-type generic (float32 and float16).
    """
    kind = overload(position_rank)
    body = FunctionBuilder(LAMBDA)
    heads = body.attribute_value("num_heads")
    batch = body("Shape", "Q", start=0, end=1)
    spatial = body("Shape", "Q", start=2)
    positions = body("ReduceProd", spatial, keepdims=1)
    dim_k = body("Div", body("Shape", "Q", start=1, end=2), heads)
    dim_u = body("Div", body("Shape", "Kx", start=1, end=2), dim_k)
    dim_v = body("Div", body("Shape", "V", start=1, end=2), dim_u)

    queries = body("Reshape", "Q", body("Concat", batch, heads, dim_k, positions, axis=0))
    keys = body("Softmax", body("Reshape", "Kx", body("Concat", batch, dim_k, dim_u, positions, axis=0)), axis=-1)
    values = body("Reshape", "V", body("Concat", batch, dim_v, dim_u, positions, axis=0))
    content = body("Einsum", keys, values, equation="nkum,nvum->nkv")
    if kind == LOCAL:
        r = body("Shape", "P", start=-1)
        half = body("Div", r, body.ints(2))
        kernel = body("Reshape", "P", body("Concat", dim_k, dim_u, body.ints(1), r, r, axis=0))
        volume = body("Reshape", "V", body("Concat", batch, dim_v, dim_u, spatial, axis=0))
        volume = body("Transpose", volume, perm=[0, 2, 1, 3, 4])  # (N, U, V, H, W): U is the conv input channel
        no_pad = body.ints(0, 0, 0)
        pads = body("Concat", no_pad, half, half, no_pad, half, half, axis=0)
        position = body("Conv", body("Pad", volume, pads), kernel)  # (N, K, V, H, W)
        position = body("Reshape", position, body("Concat", batch, dim_k, dim_v, positions, axis=0))
    else:
        embedding = body("Reshape", "P", body("Concat", positions, positions, dim_k, dim_u, axis=0))
        position = body("Einsum", embedding, values, equation="pmku,nvum->nkvp")
    lambdas = body("Add", body("Unsqueeze", content, body.ints(3)), position)  # (N, K, V, H * W)
    out = body("Einsum", queries, lambdas, equation="nhkp,nkvp->nhvp")
    y = body("Reshape", out, body("Concat", batch, body.ints(-1), spatial, axis=0))
    return body.function(opset, kind, Y=y)


def fallback_for_node(
    node: onnx.NodeProto, attributes: dict[str, object], shape_of: ShapeOf, opset: int
) -> onnx.FunctionProto:
    """The fallback body of one ``Lambda`` node: local or global by the rank of its ``P``.

    The hook's arguments are described by :class:`~holocron.export.onnx.ops.OpExport`.
    """
    return specialized_function(opset, len(shape_of(3)))
