"""Sliding-window geometry and argument checks shared by the windowed ops (``add2d``, ``involution2d``)."""

from torch import Tensor

__all__ = ["check_floating", "check_pair", "check_rank", "output_size"]


def check_pair(op: str, name: str, value: list[int], minimum: int) -> None:
    """Raise ``ValueError`` unless ``value`` is a pair of ints, each at least ``minimum``."""
    if len(value) != 2 or any(not isinstance(v, int) or v < minimum for v in value):
        raise ValueError(f"{op}: `{name}` must be 2 ints (along H, W), each >= {minimum}; got {list(value)}")


def check_rank(op: str, name: str, tensor: Tensor, rank: int, layout: str) -> None:
    """Raise ``ValueError`` unless ``tensor`` has ``rank`` dimensions (``layout`` names them for the message)."""
    if tensor.dim() != rank:
        raise ValueError(f"{op}: `{name}` must have rank {rank} {layout}; got shape {tuple(tensor.shape)}")


def check_floating(op: str, reference: str, tensors: dict[str, Tensor]) -> None:
    """Raise ``TypeError`` unless every tensor is floating point with the dtype and device of ``tensors[reference]``."""
    ref = tensors[reference]
    if not ref.is_floating_point():
        raise TypeError(f"{op}: `{reference}` must be a floating-point tensor; got {ref.dtype}")
    for name, tensor in tensors.items():
        if tensor.dtype != ref.dtype or tensor.device != ref.device:
            raise TypeError(
                f"{op}: `{name}` must have the dtype and device of `{reference}` ({ref.dtype}, {ref.device}); "
                f"got ({tensor.dtype}, {tensor.device})"
            )


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Number of window positions along one axis: ``(size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1``.

    Args:
        size: input length along the axis.
        kernel: number of taps along the axis.
        stride: step between consecutive windows.
        padding: zero padding added on both sides.
        dilation: spacing between taps.
    """
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
