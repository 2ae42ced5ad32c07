"""Example inputs for export and verification: seeded random tensors from shapes."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .shape_text import parse_input_shape

__all__ = ["InputSpec", "make_inputs", "parse_input_shape"]

#: An input given either as a tensor (used as is) or as a shape (filled with seeded standard-normal values).
InputSpec = torch.Tensor | Sequence[int]


def _check_shape(shape: Sequence[int], index: int) -> tuple[int, ...]:
    if isinstance(shape, (str, bytes)) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise TypeError(f"inputs[{index}] must be a tensor or a sequence of ints, got {shape!r}")
    dims = tuple(shape)
    if any(d < 1 for d in dims):
        raise ValueError(f"inputs[{index}] shape {dims} has a dimension below 1; every dimension must be >= 1")
    return dims


def make_inputs(
    specs: InputSpec | Sequence[InputSpec], *, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, ...]:
    """Materialize input specs: tensors pass through, shapes become ``N(0, 1)`` samples of a generator seeded with
    ``seed`` (same seed, same tensors).

    Args:
        specs: one tensor or shape, or a sequence of them (one per model input).
        seed: seed of the random generator.
        dtype: dtype of the generated tensors.

    Raises:
        TypeError / ValueError: a spec that is neither a tensor nor a valid shape (its index is named).
    """
    if isinstance(specs, torch.Tensor):
        return (specs,)
    if not isinstance(specs, Sequence) or isinstance(specs, (str, bytes)) or len(specs) == 0:
        raise TypeError(f"inputs must be a tensor, or a non-empty sequence of tensors or shapes, got {specs!r}")
    if all(isinstance(s, int) and not isinstance(s, bool) for s in specs):
        specs = [specs]  # a single shape such as (1, 3, 32, 32)
    generator = torch.Generator().manual_seed(seed)
    tensors = []
    for index, spec in enumerate(specs):
        if isinstance(spec, torch.Tensor):
            tensors.append(spec)
        else:
            tensors.append(torch.randn(_check_shape(spec, index), generator=generator, dtype=dtype))
    return tuple(tensors)
