"""Registration of a ``holocron`` torch op, its fake kernel, its backward op and its autograd formula, written once.

Every op follows one pattern: the public wrapper's annotated signature is the op's schema (so the argument list is
spelled once, where ``torch.jit.script`` needs it), the eager kernel and a shape function take the same arguments,
and the backward is an op of its own, ``holocron::_<name>_backward``, so that tracers (torch.compile, AOT autograd)
see one opaque call. That op takes ``grad_output`` followed by the forward arguments but the optional tensors, and
returns the gradients of the required tensor arguments (contiguous), in order.
"""

import inspect
import typing
from collections.abc import Callable

import torch
from torch import Tensor

from holocron.contract import DOMAIN, OpContract
from holocron.ops._doc import with_contract

__all__ = ["define_op"]

_REQUIRED, _OPTIONAL, _ATTRIBUTE = "tensor", "optional tensor", "attribute"


def _kinds(signature: Callable[..., Tensor]) -> list[str]:
    """Kind of each parameter of ``signature``: a required tensor, an optional tensor or an attribute."""
    hints = typing.get_type_hints(signature)
    kinds = []
    for name in inspect.signature(signature).parameters:
        hint = hints[name]
        kinds.append(_REQUIRED if hint is Tensor else _OPTIONAL if Tensor in typing.get_args(hint) else _ATTRIBUTE)
    return kinds


def _backward_schema(schema: str, kinds: list[str]) -> str:
    """Schema of the backward op, from the forward ``schema`` ``(args) -> Tensor`` and the kinds of its arguments."""
    arguments = schema[1 : schema.index(") -> ")].split(", ")
    kept = [arg for arg, kind in zip(arguments, kinds, strict=True) if kind != _OPTIONAL]
    grads = ", ".join("Tensor" for kind in kinds if kind == _REQUIRED)
    return f"(Tensor grad_output, {', '.join(kept)}) -> ({grads})"


def define_op(
    contract: OpContract,
    signature: Callable[..., Tensor],
    forward: Callable[..., Tensor],
    output_shape: Callable[..., tuple[int, ...]],
    backward: Callable[..., tuple[Tensor, ...]],
    optional_grad: Callable[[Tensor], Tensor] | None = None,
) -> None:
    """Register ``holocron::<contract.torch_name>`` and its backward op, and complete the wrapper's docstring.

    Args:
        contract: the op's contract (torch name, reference semantics for the docstring).
        signature: the public wrapper; its annotations give the op's schema.
        forward: eager kernel, taking the arguments of ``signature``.
        output_shape: validates the arguments of ``signature`` and returns the output shape (the fake kernel's).
        backward: eager kernel of the backward op: ``grad_output`` then the arguments of ``signature`` without its
            optional tensors; returns the contiguous gradients of the required tensor arguments.
        optional_grad: gradient of an optional tensor argument (a bias), from ``grad_output``, when it is given.
    """
    kinds = _kinds(signature)
    schema = torch.library.infer_schema(signature, mutates_args=())
    name = f"{DOMAIN}::{contract.torch_name}"
    op = torch.library.custom_op(name, forward, mutates_args=(), schema=schema)
    backward_name = f"{DOMAIN}::_{contract.torch_name}_backward"
    backward_op = torch.library.custom_op(
        backward_name, backward, mutates_args=(), schema=_backward_schema(schema, kinds)
    )

    @op.register_fake
    def _fake(*args: object) -> Tensor:
        return args[0].new_empty(output_shape(*args))  # type: ignore[attr-defined]

    @backward_op.register_fake
    def _backward_fake(grad_output: Tensor, *args: object) -> tuple[Tensor, ...]:
        kept = [kind for kind in kinds if kind != _OPTIONAL]
        tensors = [arg for arg, kind in zip(args, kept, strict=True) if kind == _REQUIRED]
        return tuple(torch.empty_like(t, memory_format=torch.contiguous_format) for t in tensors)  # type: ignore[arg-type]

    def _setup_context(ctx, inputs: tuple, output: Tensor) -> None:
        ctx.save_for_backward(*(arg for arg, kind in zip(inputs, kinds, strict=True) if kind == _REQUIRED))
        ctx.attributes = [arg for arg, kind in zip(inputs, kinds, strict=True) if kind == _ATTRIBUTE]
        ctx.optional_given = [arg is not None for arg, kind in zip(inputs, kinds, strict=True) if kind == _OPTIONAL]

    def _backward(ctx, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        tensors, attributes = iter(ctx.saved_tensors), iter(ctx.attributes)
        args = [next(tensors) if kind == _REQUIRED else next(attributes) for kind in kinds if kind != _OPTIONAL]
        grads, given = iter(backward_op(grad_output, *args)), iter(ctx.optional_given)
        result: list[Tensor | None] = []
        for kind in kinds:
            if kind == _REQUIRED:
                result.append(next(grads))
            elif kind == _OPTIONAL and next(given) and optional_grad is not None:
                result.append(optional_grad(grad_output))
            else:
                result.append(None)
        return tuple(result)

    op.register_autograd(_backward, setup_context=_setup_context)
    signature.__doc__ = with_contract(signature.__doc__, contract)
