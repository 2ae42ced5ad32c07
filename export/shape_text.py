"""Parsing of ``--input-shape`` values (kept free of torch so the command line rejects bad ones instantly)."""

from __future__ import annotations

__all__ = ["parse_input_shape"]


def parse_input_shape(text: str) -> tuple[int, ...]:
    """Parse an ``--input-shape`` value such as ``1,3,224,224`` into ``(1, 3, 224, 224)``.

    Raises:
        ValueError: empty text, a non-integer entry, or a dimension below 1.
    """
    malformed = f"input shape {text!r} is malformed; expected comma-separated positive integers like 1,3,224,224"
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not part for part in parts):
        raise ValueError(malformed)
    try:
        dims = tuple(int(part) for part in parts)
    except ValueError:
        raise ValueError(malformed) from None
    if any(dim < 1 for dim in dims):
        raise ValueError(f"input shape {text!r} has a dimension below 1; every dimension must be >= 1")
    return dims
