"""ONNX side of holocron's custom ops: one module per op, and the registry the export pipeline reads.

For every op of :mod:`holocron.contract`, :data:`OP_EXPORTS` holds its ``onnx.defs`` schema (domain ``holocron``),
its dynamo translation (``torch.onnx.export(..., dynamo=True, custom_translation_table=...)``) and its TorchScript
symbolic (``torch.onnx.register_custom_op_symbolic``).

Fallback functions of an exported model: :func:`attach_fallback_functions` gives each ``holocron`` node of a model
the body specialised to it (an ONNX IR 10 function ``overload``: Add2d per static ``W`` shape, ``group``,
``normalize_slices`` and bias presence, unrolled over filter chunks; Lambda per local / global ``P``; Involution2d
needs none): a ``FunctionProto`` of the node's domain and op type that runtimes without holocron's kernels inline,
with no ``Loop`` or ``If``, element-type generic (float32 and float16).

Optional bias of ``Add2d``: the translations emit a node without ``B`` when the torch op's ``bias`` is ``None``; the
fallback body reads an absent ``B`` as zeros.

Requires ``onnx`` and ``onnxscript``; never imports ``onnxruntime``.
"""

from collections.abc import Callable
from dataclasses import dataclass

import onnx
import torch

import holocron.ops  # noqa: F401  (registers torch.ops.holocron.*)
from holocron.contract import DOMAIN, DOMAIN_VERSION, FIRST_OPSET, LAST_OPSET, OPS, OpContract

from ..graph import holocron_nodes, iter_graphs
from . import add2d, involution2d, lambda_layer
from ._attributes import read_attribute
from ._schema import ShapeOf, register_schema
from .float16 import to_float16

__all__ = [
    "FIRST_OPSET",
    "LAST_OPSET",
    "OP_EXPORTS",
    "OpExport",
    "attach_fallback_functions",
    "custom_translation_table",
    "reattach_fallback_functions",
    "register_schemas",
    "register_torchscript_symbolics",
    "to_float16",
]


@dataclass(frozen=True)
class OpExport:
    """Everything needed to export one holocron op to ONNX.

    Args:
        contract: the op's contract (names, inputs, attributes, semantics).
        torch_op: the ``torch.ops.holocron.<torch_name>.default`` overload.
        schema: its ``onnx.defs.OpSchema`` (registered by :func:`register_schemas`).
        dynamo_translation: onnxscript-traced function emitting one ``holocron`` node, keyed by ``torch_op``.
        torchscript_symbolic: symbolic for ``torch.onnx.register_custom_op_symbolic("holocron::<torch_name>", ...)``.
        fallback_for_node: ``(node, attributes, shape_of, opset) -> FunctionProto``, the body specialised to one node
            (the same hook for every op, so the registry names none): ``attributes`` are the node's values by name
            (contract defaults filled in), ``shape_of(index)`` the static shape of its input ``index`` (raising
            ``ValueError`` when unknown; None with ``required=False``), ``opset`` the default-domain opset of the
            body.
    """

    contract: OpContract
    torch_op: torch._ops.OpOverload
    schema: onnx.defs.OpSchema
    dynamo_translation: Callable
    torchscript_symbolic: Callable
    fallback_for_node: Callable[[onnx.NodeProto, dict[str, object], ShapeOf, int], onnx.FunctionProto]

    @property
    def torchscript_name(self) -> str:
        """Qualified name the TorchScript exporter knows the op by, e.g. ``holocron::add2d``."""
        return f"{self.contract.domain}::{self.contract.torch_name}"


OP_EXPORTS: tuple[OpExport, ...] = tuple(
    OpExport(
        contract=module.CONTRACT,
        torch_op=getattr(torch.ops.holocron, module.CONTRACT.torch_name).default,
        schema=module.SCHEMA,
        dynamo_translation=module.dynamo_translation,
        torchscript_symbolic=module.torchscript_symbolic,
        fallback_for_node=module.fallback_for_node,
    )
    for module in (add2d, involution2d, lambda_layer)
)

if tuple(e.contract for e in OP_EXPORTS) != OPS:
    raise RuntimeError("holocron.export.ops: OP_EXPORTS must cover holocron.contract.OPS, in order")


def register_schemas() -> None:
    """Register the ``holocron`` schemas with ``onnx.defs`` (idempotent), for the checker and shape inference."""
    for op in OP_EXPORTS:
        register_schema(op.schema)


def custom_translation_table() -> dict[torch._ops.OpOverload, Callable]:
    """``custom_translation_table`` for ``torch.onnx.export(..., dynamo=True)``; registers the schemas first."""
    register_schemas()
    return {op.torch_op: op.dynamo_translation for op in OP_EXPORTS}


def register_torchscript_symbolics(opset: int) -> None:
    """Register the TorchScript-exporter symbolics of every op for default-domain ``opset``; schemas too."""
    register_schemas()
    for op in OP_EXPORTS:
        torch.onnx.register_custom_op_symbolic(op.torchscript_name, op.torchscript_symbolic, opset)


#: Oldest ONNX IR version with function overloads (``NodeProto.overload`` / ``FunctionProto.overload``).
OVERLOAD_IR_VERSION = 10


def _static_shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    """Shapes by value name: initializers and ``Constant`` nodes, then what ONNX shape inference finds."""
    shapes: dict[str, list[int | None]] = {}
    register_schemas()
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError):
        inferred = model
    for graph in iter_graphs(inferred.graph):
        for info in (*graph.input, *graph.value_info, *graph.output):
            if info.type.tensor_type.HasField("shape"):
                dims = info.type.tensor_type.shape.dim
                shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    for graph in iter_graphs(model.graph):
        shapes.update({init.name: list(init.dims) for init in graph.initializer})
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                for attribute in node.attribute:
                    if attribute.name == "value":
                        shapes[node.output[0]] = list(attribute.t.dims)
    return shapes


def _specialized_function(node: onnx.NodeProto, shapes: dict[str, list[int | None]], opset: int) -> onnx.FunctionProto:
    """The fallback body specialised to ``node``, its overload name set; ValueError when a needed shape is unknown."""
    op = next((op for op in OP_EXPORTS if op.contract.onnx_name == node.op_type), None)
    if op is None:
        raise ValueError(f"holocron node {node.name!r}: unknown op type {node.op_type!r}")
    contract = op.contract
    values = {
        a.name: read_attribute(a, next((p for p in node.attribute if p.name == a.name), None))
        for a in contract.attributes
    }

    def shape_of(index: int, *, required: bool = True) -> list[int]:
        name = node.input[index] if index < len(node.input) else ""
        shape = shapes.get(name)
        if not name or shape is None or any(d is None or d < 1 for d in shape):
            if not required:
                return None  # type: ignore[return-value]
            raise ValueError(
                f"{node.op_type} node {node.name!r}: its fallback needs the static shape of input "
                f"{contract.inputs[index].name} ({name!r}); found {shape}"
            )
        return shape  # type: ignore[return-value]

    return op.fallback_for_node(node, values, shape_of, opset)


def attach_fallback_functions(model: onnx.ModelProto, opset: int | None = None) -> onnx.ModelProto:
    """Give every ``holocron`` node of ``model`` its specialised standard-ONNX fallback function (in place).

    Each node's ``overload`` field is set to the name of its body (see the module docstring), the model's
    ``holocron``-domain functions are replaced by one function per distinct (op type, overload), and the IR version is
    raised to 10 where it is lower. The export's finalize step calls it; it also serves hand-built models and, as
    :func:`reattach_fallback_functions`, models whose functions a tool dropped.

    Args:
        model: a model with ``holocron`` nodes (main graph or subgraphs); the input ``W`` of Add2d and ``P`` of Lambda
            need static shapes (initializers, constants or shapes ONNX shape inference finds).
        opset: default-domain opset of the bodies; the model's own default-domain import when ``None``.

    Returns:
        ``model``.

    Raises:
        ValueError: an unknown holocron op type, a needed shape that is not static, no default-domain opset, or an
            ``opset`` outside [``FIRST_OPSET``, ``LAST_OPSET``].
    """
    if opset is None:
        opset = next((e.version for e in model.opset_import if e.domain in ("", "ai.onnx")), None)
        if opset is None:
            raise ValueError("attach_fallback_functions: `model` imports no default ONNX opset; pass `opset`")
    nodes = holocron_nodes(model)
    shapes = _static_shapes(model) if nodes else {}
    functions: dict[tuple[str, str], onnx.FunctionProto] = {}
    for node in nodes:
        function = _specialized_function(node, shapes, opset)
        node.overload = function.overload
        functions.setdefault((function.name, function.overload), function)
    others = [fn for fn in model.functions if fn.domain != DOMAIN]
    del model.functions[:]
    model.functions.extend([*others, *functions.values()])
    if functions and model.ir_version < OVERLOAD_IR_VERSION:
        model.ir_version = OVERLOAD_IR_VERSION
    return model


def reattach_fallback_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with the fallback functions of its ``holocron`` nodes attached again.

    onnxruntime drops model-local functions when it saves an optimized model
    (``SessionOptions.optimized_model_filepath``) with holocron's library registered: the saved file then runs only
    where that library is. This puts the specialised bodies back (see :func:`attach_fallback_functions`), so the file
    runs everywhere again; a ``holocron`` opset import is added if missing.

    Args:
        model: e.g. ``onnx.load(optimized_model_filepath)``.

    Returns:
        The repaired copy (``model`` is left unchanged).
    """
    repaired = onnx.ModelProto()
    repaired.CopyFrom(model)
    if not any(e.domain == DOMAIN for e in repaired.opset_import):
        repaired.opset_import.append(onnx.helper.make_opsetid(DOMAIN, DOMAIN_VERSION))
    return attach_fallback_functions(repaired)
