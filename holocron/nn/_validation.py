"""Argument checks shared by the layers of ``holocron.nn``, run once at construction time."""

from __future__ import annotations

__all__ = [
    "HolocronArgumentError",
    "HolocronInputError",
    "check_divisible",
    "check_in_range",
    "check_non_negative_int",
    "check_positive",
    "check_positive_int",
]


class HolocronArgumentError(ValueError, AssertionError):
    """Invalid constructor argument.

    It is a :class:`ValueError`, and also an :class:`AssertionError` so that code written against the reference
    implementation, which raised bare assertions for some of these checks, keeps catching it.
    """


class HolocronInputError(ValueError, AssertionError):
    """Input of a forward pass with an unusable size or shape.

    A :class:`ValueError`, and also an :class:`AssertionError` where the reference implementation asserted on the
    input (e.g. a spatial size that ``scale_factor`` does not divide), so that code catching that keeps working.
    Under TorchScript it surfaces as ``torch.jit.Error``, as every exception raised in a scripted function does.
    """


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_positive_int(value: object, name: str) -> None:
    """Raise when ``value`` is not an integer >= 1."""
    if not _is_int(value) or value < 1:  # type: ignore[operator]
        raise HolocronArgumentError(f"argument `{name}` is expected to be a positive integer, received {value!r}")


def check_non_negative_int(value: object, name: str) -> None:
    """Raise when ``value`` is not an integer >= 0."""
    if not _is_int(value) or value < 0:  # type: ignore[operator]
        raise HolocronArgumentError(f"argument `{name}` is expected to be a non-negative integer, received {value!r}")


def check_positive(value: float, name: str) -> None:
    """Raise when ``value`` is not a number > 0."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise HolocronArgumentError(f"argument `{name}` is expected to be a positive number, received {value!r}")


def check_in_range(value: float, name: str, low: float, high: float, high_inclusive: bool = True) -> None:
    """Raise when ``value`` is not a number in ``[low, high]`` (or ``[low, high)``)."""
    closing = "]" if high_inclusive else ")"
    inside = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value
    inside = inside and (value <= high if high_inclusive else value < high)
    if not inside:
        raise HolocronArgumentError(f"argument `{name}` is expected in [{low}, {high}{closing}, received {value!r}")


def check_divisible(value: int, name: str, divisor: int, divisor_name: str) -> None:
    """Raise when ``value`` is not a multiple of ``divisor``."""
    if value % divisor != 0:
        raise HolocronArgumentError(
            f"argument `{name}` ({value}) is expected to be divisible by `{divisor_name}` ({divisor})"
        )
