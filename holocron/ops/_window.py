"""Argument checks shared by the torch ops, and the sliding-window geometry of the windowed ones (add2d, involution2d).

The valid range of every attribute-like argument is read from :mod:`holocron.contract`; only the checks that
relate arguments to each other (a group count that divides the channels, a kernel that fits the input) are code.
"""

from torch import Tensor

from holocron.contract import OpContract, conv_output_size

__all__ = ["check_floating", "check_rank", "check_window", "window_output_size"]


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


def check_window(op: OpContract, stride: list[int], padding: list[int], dilation: list[int]) -> None:
    """Check the torch window arguments against the ``strides``, ``pads`` and ``dilations`` attributes of ``op``.

    Args:
        op: contract of a windowed op.
        stride: ``[sH, sW]``.
        padding: symmetric ``[pH, pW]``, that is 2 of the 4 ONNX ``pads``.
        dilation: ``[dH, dW]``.

    Raises:
        ValueError: an argument is out of the contract's range (the message names it).
    """
    op.attribute("strides").check(op.torch_name, stride, "stride")
    op.attribute("pads").check(op.torch_name, padding, "padding", count=2)
    op.attribute("dilations").check(op.torch_name, dilation, "dilation")


def window_output_size(
    op: OpContract, size: list[int], kernel_size: list[int], stride: list[int], padding: list[int], dilation: list[int]
) -> tuple[int, int]:
    """Output size ``(H_out, W_out)`` of a window of ``kernel_size`` sliding over ``size`` (symmetric padding).

    Args:
        op: contract of the op, whose torch name starts the error message.
        size: input ``[H, W]``.
        kernel_size: ``[kH, kW]``.
        stride: ``[sH, sW]``.
        padding: symmetric ``[pH, pW]``.
        dilation: ``[dH, dW]``.

    Returns:
        ``(H_out, W_out)`` by :func:`~holocron.contract.conv_output_size`.

    Raises:
        ValueError: the dilated kernel does not fit the padded input.
    """
    out_h = conv_output_size(size[0], kernel_size[0], stride[0], padding[0], padding[0], dilation[0])
    out_w = conv_output_size(size[1], kernel_size[1], stride[1], padding[1], padding[1], dilation[1])
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"{op.torch_name}: the dilated kernel {tuple(kernel_size)} (dilation {list(dilation)}) does not fit the "
            f"input {tuple(size)} padded by {list(padding)}"
        )
    return out_h, out_w
