"""Docstrings of the torch ops completed from the contract, so the reference semantics are written once."""

import inspect
import textwrap

from holocron.contract import DOMAIN, OpContract

__all__ = ["with_contract"]


def with_contract(doc: str | None, op: OpContract) -> str | None:
    """Append the contract's reference semantics of ``op`` to ``doc`` as a ``Note:`` section.

    Args:
        doc: the torch op's docstring (summary, formula, paper link, Args, Returns, Raises).
        op: the op's contract.

    Returns:
        The completed docstring, or ``None`` when ``doc`` is ``None`` (under ``python -OO``).
    """
    if doc is None:
        return None
    tensors = ", ".join(f"``{t.name}``" for t in op.inputs)
    semantics = textwrap.indent(op.semantics, " " * 8)
    return (
        f"{inspect.cleandoc(doc)}\n\n"
        "Note:\n"
        f"    Reference semantics of ONNX ``{DOMAIN}::{op.onnx_name}`` version {op.version}, from\n"
        f"    :mod:`holocron.contract`; the tensor arguments go by their ONNX names {tensors}::\n\n"
        f"{semantics}\n"
    )
