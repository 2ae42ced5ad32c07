"""Example inputs of a model: seeded tensors from shapes, and an early check that the model takes them."""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import MAX_INPUT_ELEMENTS, InputSizeError, summarize_error
from .modes import eval_mode

__all__ = ["InputSpec", "check_input_size", "check_inputs", "make_inputs"]


def check_input_size(shapes: Sequence[Sequence[int]], *, source: str, flag: str) -> None:
    """Raise :class:`InputSizeError` when an input of ``shapes`` has more than :data:`MAX_INPUT_ELEMENTS` elements.

    Args:
        shapes: one shape per input.
        source: where the shapes come from, for the message (``the ARTIFACT's declared shape``).
        flag: the command-line flag that sets them, named in the CLI message (``--input-shape``).
    """
    for index, shape in enumerate(shapes):
        count = math.prod(shape)
        if count > MAX_INPUT_ELEMENTS:
            what = (
                f"input {index} of shape {tuple(shape)} ({source}) has {count} elements, more than {MAX_INPUT_ELEMENTS}"
            )
            raise InputSizeError(what, cli_message=f"{what}: give a smaller one with {flag}")


#: An input given either as a tensor (used as is) or as a shape (filled with seeded standard-normal values).
InputSpec = torch.Tensor | Sequence[int]


def _check_shape(shape: object, index: int) -> tuple[int, ...]:
    if (
        not isinstance(shape, Sequence)
        or isinstance(shape, (str, bytes))
        or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
    ):
        raise TypeError(f"inputs[{index}] must be a tensor or a sequence of ints, got {shape!r}")
    dims = tuple(shape)
    if any(d < 1 for d in dims):
        raise ValueError(f"inputs[{index}] shape {dims} has a dimension below 1; every dimension must be >= 1")
    return dims


def make_inputs(
    specs: InputSpec | Sequence[InputSpec], *, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, ...]:
    """Materialize input specs: tensors pass through, shapes become seeded ``N(0, 1)`` samples.

    The generator is seeded with ``seed``: the same seed gives the same tensors.

    Args:
        specs: one tensor or shape, or a sequence of them (one per model input).
        seed: seed of the random generator.
        dtype: dtype of the generated tensors.

    Returns:
        One tensor per spec.

    Raises:
        TypeError: a spec that is neither a tensor nor a sequence of ints (its index is named).
        ValueError: a shape with a dimension below 1 (its index is named).
        InputSizeError: a shape of more than :data:`MAX_INPUT_ELEMENTS` elements.
    """
    if isinstance(specs, torch.Tensor):
        return (specs,)
    if not isinstance(specs, Sequence) or isinstance(specs, (str, bytes)) or len(specs) == 0:
        raise TypeError(f"inputs must be a tensor, or a non-empty sequence of tensors or shapes, got {specs!r}")
    entries: Sequence[object] = [specs] if all(isinstance(s, int) and not isinstance(s, bool) for s in specs) else specs
    shapes = [_check_shape(spec, index) for index, spec in enumerate(entries) if not isinstance(spec, torch.Tensor)]
    check_input_size(shapes, source="an input to generate", flag="--input-shape")
    generator = torch.Generator().manual_seed(seed)
    tensors = []
    for index, spec in enumerate(entries):  # a single shape such as (1, 3, 32, 32) is one entry
        if isinstance(spec, torch.Tensor):
            tensors.append(spec)
        else:
            tensors.append(torch.randn(_check_shape(spec, index), generator=generator, dtype=dtype))
    return tuple(tensors)


def _positional_arity(model: nn.Module) -> tuple[int, int | None] | None:
    """(required, maximum) positional inputs of ``model.forward`` (maximum None for ``*args``), None if unknown."""
    if isinstance(model, torch.jit.ScriptModule):
        try:
            arguments = model.forward.schema.arguments[1:]  # type: ignore[attr-defined]  # drop self
        except (AttributeError, RuntimeError):
            return None
        required = sum(1 for arg in arguments if not arg.has_default_value())
        return required, len(arguments)
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return None
    required = sum(1 for p in positional if p.default is p.empty)
    return required, len(positional)


def check_inputs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
    """Fail early, with a clear message, on inputs the model cannot take (run once in eval mode, without grad).

    Raises:
        ValueError: the number of inputs does not fit ``model.forward``, or the model rejects them.
    """
    arity = _positional_arity(model)
    if arity is not None:
        required, maximum = arity
        if not required <= len(inputs) <= (maximum if maximum is not None else len(inputs)):
            expected = str(required) if required == maximum else f"{required} to {maximum}"
            raise ValueError(f"the model takes {expected} input(s) but {len(inputs)} --input-shape value(s) were given")
    shapes = ", ".join(",".join(map(str, t.shape)) for t in inputs)
    try:
        with eval_mode(model), torch.no_grad():
            model(*inputs)
    except Exception as error:
        where = _failure_place(model, error)
        raise ValueError(f"{where} inputs of shape {shapes}: {summarize_error(error)}{_state_hint(error)}") from error


def _failing_module(model: nn.Module, error: BaseException) -> tuple[str, nn.Module] | None:
    """The innermost submodule of ``model`` whose Python ``forward`` (or a method it called) raised ``error``.

    Found from the frames of the traceback: each frame whose ``self`` is one of ``model``'s modules. ``None`` when no
    frame is (a TorchScript model runs no Python frames; its error text says where it failed).
    """
    names = {id(module): name for name, module in model.named_modules()}
    found: tuple[str, nn.Module] | None = None
    trace = error.__traceback__
    while trace is not None:
        owner = trace.tb_frame.f_locals.get("self")
        if isinstance(owner, nn.Module) and id(owner) in names:
            found = names[id(owner)], owner
        trace = trace.tb_next
    return found


def _failure_place(model: nn.Module, error: BaseException) -> str:
    """The message's start: ``the model fails in module 'layer1.0.conv' (Involution2d) on``, else ``... rejects``."""
    found = _failing_module(model, error)
    if found is None or found[0] == "":
        return "the model rejects"
    name, module = found
    return f"the model fails in module {name!r} ({type(module).__name__}) on"


def _state_hint(error: BaseException) -> str:
    """A hint for a module missing an attribute its ``forward`` reads: a pickle made from other code of its class."""
    if isinstance(error, AttributeError) and isinstance(getattr(error, "obj", None), nn.Module):
        cls = type(error.obj)
        return (
            f"; the model file was probably pickled from another version of {cls.__module__}.{cls.__qualname__}, "
            "whose state this code does not know: re-save it from a model built with this code"
        )
    return ""
