"""Docstrings of the torch ops completed from the contract, so the formula is written once."""

import inspect
import textwrap

from holocron.ops.contract import DOMAIN, OpContract

__all__ = ["with_contract"]


def with_contract(doc: str | None, op: OpContract) -> str | None:
    """Append the contract's reference semantics of ``op`` to the docstring ``doc`` (``None`` under ``python -OO``)."""
    if doc is None:
        return None
    semantics = textwrap.indent(op.semantics, "        ")
    return (
        f"{inspect.cleandoc(doc)}\n\n"
        f"Semantics (``holocron.ops.contract``, ONNX ``{DOMAIN}::{op.onnx_name}`` version {op.version}),\n"
        f"with the ONNX names ``{', '.join(t.name for t in op.inputs)}`` for the tensor arguments::\n\n"
        f"{semantics}\n"
    )
