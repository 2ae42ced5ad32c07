"""Access to the per-op export pieces (``holocron.export.ops``) and the torch ops (``holocron.ops``).

Imported lazily: ``holocron.export`` must import, and export models without holocron's custom ops, even where those
pieces are unavailable; the error only comes when a model actually needs them. Registration with torch and onnx is
global state, so each registration runs once per process (per opset for the TorchScript symbolics).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import onnx

from holocron.ops.contract import DOMAIN as HOLOCRON_DOMAIN
from holocron.ops.contract import DOMAIN_VERSION as HOLOCRON_DOMAIN_VERSION
from holocron.ops.contract import OPS

from .errors import ExportError

__all__ = [
    "HOLOCRON_DOMAIN",
    "HOLOCRON_DOMAIN_VERSION",
    "custom_translation_table",
    "ensure_schemas_registered",
    "ensure_symbolics_registered",
    "ensure_torch_ops_loaded",
    "fallback_functions_for",
    "known_op_types",
]


def _import(module_name: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise ExportError(f"{what} unavailable: cannot import {module_name} ({error})") from error


def _export_ops_function(name: str) -> Callable[..., Any]:
    """A function of ``holocron.export.ops``; ExportError when the module or the function is missing."""
    module = _import("holocron.export.ops", "holocron's ONNX op exports")
    function = getattr(module, name, None)
    if not callable(function):
        raise ExportError(f"holocron's ONNX op exports unavailable: holocron.export.ops has no {name}()")
    return function


def known_op_types() -> frozenset[str]:
    """ONNX op types of the ``holocron`` domain, from the op contract."""
    return frozenset(op.onnx_name for op in OPS)


@functools.cache
def ensure_torch_ops_loaded() -> None:
    """Register ``torch.ops.holocron.*`` (needed before loading archives or pickles that call them)."""
    _import("holocron.ops", "holocron's torch custom ops")


@functools.cache
def ensure_schemas_registered() -> None:
    """Register the ``holocron`` ONNX schemas with ``onnx.defs`` (for the checker and the dynamo translations)."""
    _export_ops_function("register_schemas")()


@functools.cache
def ensure_symbolics_registered(opset: int) -> None:
    """Register the TorchScript-exporter symbolic functions of the holocron ops for ``opset``."""
    ensure_torch_ops_loaded()
    _export_ops_function("register_torchscript_symbolics")(opset)


def custom_translation_table() -> dict[Callable[..., Any], Callable[..., Any]]:
    """``custom_translation_table`` for ``torch.onnx.export(dynamo=True)``: holocron torch op -> onnxscript."""
    ensure_torch_ops_loaded()
    ensure_schemas_registered()
    return dict(_export_ops_function("custom_translation_table")())


def fallback_functions_for(op_types: Iterable[str], opset: int) -> list[onnx.FunctionProto]:
    """The standard-ONNX fallback functions (domain ``holocron``) of the given op types, for ONNX ``opset``.

    Raises:
        ExportError: an op type has no fallback function.
    """
    wanted = set(op_types)
    available = _export_ops_function("fallback_functions")(opset)
    functions = [fn for fn in available if fn.domain == HOLOCRON_DOMAIN and fn.name in wanted]
    missing = wanted - {fn.name for fn in functions}
    if missing:
        raise ExportError(f"no standard-ONNX fallback function for holocron op(s) {sorted(missing)} at opset {opset}")
    return functions
