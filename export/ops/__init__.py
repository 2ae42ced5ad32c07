"""ONNX side of holocron's custom ops: one module per op, and the registry the export pipeline reads.

For every op of :mod:`holocron.ops.contract`, :data:`OP_EXPORTS` holds its ``onnx.defs`` schema (domain ``holocron``),
its dynamo translation (``torch.onnx.export(..., dynamo=True, custom_translation_table=...)``), its TorchScript
symbolic (``torch.onnx.register_custom_op_symbolic``) and the builder of its standard-ONNX fallback function (a
``FunctionProto`` of the same domain and name that runtimes without holocron's kernels inline).

Optional bias of ``Add2d``: the translations emit a node without ``B`` when the torch op's ``bias`` is ``None``; the
fallback body reads an absent ``B`` as zeros.

Requires ``onnx`` and ``onnxscript``; never imports ``onnxruntime``.
"""

from collections.abc import Callable
from dataclasses import dataclass

import onnx
import torch

import holocron.ops  # noqa: F401  (registers torch.ops.holocron.*)
from holocron.ops.contract import ADD2D, FIRST_OPSET, INVOLUTION2D, LAMBDA, LAST_OPSET, OPS, OpContract

from . import add2d, involution2d, lambda_layer
from ._schema import register_schema

__all__ = [
    "FIRST_OPSET",
    "LAST_OPSET",
    "OP_EXPORTS",
    "OpExport",
    "custom_translation_table",
    "fallback_functions",
    "register_schemas",
    "register_torchscript_symbolics",
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
        fallback_function: ``opset -> FunctionProto``, the standard-ONNX body (default-domain opset in
            [``FIRST_OPSET``, ``LAST_OPSET``]).
    """

    contract: OpContract
    torch_op: torch._ops.OpOverload
    schema: onnx.defs.OpSchema
    dynamo_translation: Callable
    torchscript_symbolic: Callable
    fallback_function: Callable[[int], onnx.FunctionProto]

    @property
    def torchscript_name(self) -> str:
        """Qualified name the TorchScript exporter knows the op by, e.g. ``holocron::add2d``."""
        return f"{self.contract.domain}::{self.contract.torch_name}"


OP_EXPORTS: tuple[OpExport, ...] = tuple(
    OpExport(
        contract=contract,
        torch_op=getattr(torch.ops.holocron, contract.torch_name).default,
        schema=module.SCHEMA,
        dynamo_translation=module.dynamo_translation,
        torchscript_symbolic=module.torchscript_symbolic,
        fallback_function=module.fallback_function,
    )
    for contract, module in ((ADD2D, add2d), (INVOLUTION2D, involution2d), (LAMBDA, lambda_layer))
)

if tuple(e.contract for e in OP_EXPORTS) != OPS:
    raise RuntimeError("holocron.export.ops: OP_EXPORTS must cover holocron.ops.contract.OPS, in order")


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


def fallback_functions(opset: int) -> list[onnx.FunctionProto]:
    """The standard-ONNX fallback function of every op, for default-domain ``opset``."""
    return [op.fallback_function(opset) for op in OP_EXPORTS]
