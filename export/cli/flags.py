"""Flag value parsers of the command lines: each turns one flag's text into its value or says, in one line naming
the flag's expectation, why not (argparse then exits 2). Free of torch, so a bad value is refused at once."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import TypeVar

__all__ = [
    "MAX_INPUT_ELEMENTS",
    "MAX_SEED",
    "UsageError",
    "check_opset_for_exporter",
    "input_shape_type",
    "localize_type",
    "opset_type",
    "parse_input_shape",
    "parse_positive_int",
    "parse_providers",
    "parse_seed",
    "parse_tolerance",
    "positive_int_type",
    "providers_type",
    "seed_type",
    "tolerance_type",
]


class UsageError(ValueError):
    """An invalid command line, found before the model is loaded: exit status 2, one line naming the flag."""


_T = TypeVar("_T")


#: Largest dimension, and largest element count, of an ``--input-shape`` (int32 indexing in the exporters/runtime).
MAX_INPUT_ELEMENTS = 2**31 - 1


#: Largest ``--seed`` torch's generator takes.
MAX_SEED = 2**64 - 1


_ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def _ascii_int(text: str) -> int | None:
    """``text`` as a non-negative integer if it is ASCII digits only (no sign, exponent, underscore or other script)."""
    stripped = text.strip()
    return int(stripped) if _ASCII_DIGITS.fullmatch(stripped) else None


def parse_input_shape(text: str) -> tuple[int, ...]:
    """Parse an ``--input-shape`` value such as ``1,3,224,224`` into ``(1, 3, 224, 224)``.

    Free of torch, so the command line rejects bad values at once. Entries are ASCII digits only: ``1e20``, ``+3``,
    ``1_000`` and digits of other scripts are refused.

    Args:
        text: comma-separated dimensions.

    Returns:
        The dimensions.

    Raises:
        ValueError: empty text, an entry that is not ASCII digits, a dimension below 1, or a shape of more than
            ``MAX_INPUT_ELEMENTS`` elements.
    """
    malformed = f"input shape {text!r} is malformed; expected comma-separated positive integers like 1,3,224,224"
    parts = text.split(",")
    values = [_ascii_int(part) for part in parts]
    if not text.strip() or any(value is None for value in values):
        raise ValueError(malformed)
    dims = tuple(value for value in values if value is not None)
    if any(dim < 1 for dim in dims):
        raise ValueError(f"input shape {text!r} has a dimension below 1; every dimension must be >= 1")
    if math.prod(dims) > MAX_INPUT_ELEMENTS:
        raise ValueError(
            f"input shape {text!r} has {math.prod(dims)} elements; at most {MAX_INPUT_ELEMENTS} are supported"
        )
    return dims


def parse_tolerance(text: str) -> float:
    """Parse an ``--atol``/``--rtol`` value: a finite number >= 0 (``inf`` and ``nan`` would check nothing).

    Raises:
        ValueError: not a number, negative, infinite or NaN.
    """
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"tolerance {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"tolerance {text!r} must be a finite number >= 0")
    return value


def parse_seed(text: str) -> int:
    """Parse a ``--seed`` value: ASCII digits, from 0 to ``MAX_SEED``.

    Raises:
        ValueError: anything else (``1e23``, a sign, a value torch's generator cannot take).
    """
    value = _ascii_int(text)
    if value is None or value > MAX_SEED:
        raise ValueError(f"seed {text!r} must be an integer from 0 to {MAX_SEED}")
    return value


def parse_positive_int(text: str) -> int:
    """Parse a count such as ``--instances``: ASCII digits, from 1 to 2**31 - 1.

    Raises:
        ValueError: anything else.
    """
    value = _ascii_int(text)
    if value is None or not 1 <= value < 2**31:
        raise ValueError(f"{text!r} must be an integer from 1 to {2**31 - 1}")
    return value


def _argparse_type(parse: Callable[[str], _T], name: str) -> Callable[[str], _T]:
    def convert(text: str) -> _T:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = name
    return convert


#: argparse ``type=`` converters: a bad value is a one-line usage error naming the flag (exit 2).
input_shape_type = _argparse_type(parse_input_shape, "input_shape_type")


tolerance_type = _argparse_type(parse_tolerance, "tolerance_type")


seed_type = _argparse_type(parse_seed, "seed_type")


positive_int_type = _argparse_type(parse_positive_int, "positive_int_type")


def localize_type(text: str) -> bool | str:
    """argparse ``type=`` for ``--localize=VALUE``: only ``best-effort`` (``--localize`` alone is strict)."""
    if text.strip() == "best-effort":
        return "best-effort"
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a localization mode; expected --localize or --localize=best-effort"
    )


def parse_providers(text: str) -> list[str]:
    """Parse a ``--providers`` value such as ``CUDAExecutionProvider,CPUExecutionProvider`` (names, in order).

    Raises:
        ValueError: an empty list or an empty name.
    """
    names = [name.strip() for name in text.split(",")]
    if not text.strip() or any(not name for name in names):
        raise ValueError(
            f"providers {text!r} are malformed; expected comma-separated onnxruntime execution provider names like "
            "CUDAExecutionProvider,CPUExecutionProvider"
        )
    return names


providers_type = _argparse_type(parse_providers, "providers_type")


def opset_type(text: str) -> int:
    """argparse ``type=`` for ``--opset``: an integer from ``FIRST_OPSET`` (18) to ``LAST_OPSET`` (23)."""
    from holocron.contract import FIRST_OPSET, LAST_OPSET

    value = _ascii_int(text)
    if value is None or not FIRST_OPSET <= value <= LAST_OPSET:
        raise argparse.ArgumentTypeError(
            f"opset {text!r} is not supported; expected {FIRST_OPSET} to {LAST_OPSET} "
            "(to 20 with the TorchScript exporter)"
        )
    return value


def check_opset_for_exporter(opset: int | None, exporter: str, reason: str = "") -> None:
    """Check ``--opset`` against the exporter that will run.

    Args:
        opset: the ``--opset`` value, if given.
        exporter: ``dynamo`` or ``torchscript``.
        reason: why that exporter runs, appended to the message (e.g. ``a TorchScript MODEL always uses it``).

    Raises:
        UsageError: the TorchScript exporter cannot produce ``opset``.
    """
    from ..onnx.exporters import TORCHSCRIPT_MAX_OPSET

    if opset is not None and exporter == "torchscript" and opset > TORCHSCRIPT_MAX_OPSET:
        why = f" ({reason})" if reason else ""
        raise UsageError(
            f"--opset {opset} is above {TORCHSCRIPT_MAX_OPSET}, the newest opset of the TorchScript exporter{why}"
        )
