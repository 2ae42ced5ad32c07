"""The contract of holocron's custom operators: the single written source.

Everything that touches a custom op follows from the records below: the ``torch.library`` op (namespace
``holocron``), the ONNX schema registered with ``onnx.defs``, the dynamo translation and the TorchScript symbolic,
the standard-ONNX fallback function, the C++ kernels (CMake renders ``holocron_contract.h`` from it) and
``docs/ops.md``. Changing an op's inputs, attributes, outputs or semantics means a new ``DOMAIN_VERSION``.

This module depends on the standard library only, so ``holocron.ops`` (torch), ``holocron.export`` (onnx) and
``holocron.runtime`` (onnxruntime only) all import it, and the C++ build renders it without torch or onnx::

    python scripts/render_contract.py --cpp-header OUT.h
    python scripts/render_contract.py --markdown docs/ops.md
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DOMAIN = "holocron"
DOMAIN_VERSION = 1

# ONNX opsets the standard-ONNX fallback functions are written for (and so the exporters' range).
FIRST_OPSET = 18
LAST_OPSET = 23

# Largest value of any integer attribute: far beyond a real layer, small enough that no size computed from attributes
# and tensor dimensions overflows 64 bits.
MAX_ATTRIBUTE_VALUE = 1 << 24

AttributeType = Literal["int", "ints", "float"]


def conv_output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int) -> int:
    """Output length of a sliding window along one axis (the convolution formula every op of the domain uses).

    .. math::

        out = \\left\\lfloor \\frac{size + pad_{begin} + pad_{end} - dilation \\cdot (kernel - 1) - 1}{stride}
        \\right\\rfloor + 1

    Args:
        size: input length along the axis.
        kernel: number of window taps.
        stride: step between windows (>= 1).
        pad_begin: zero padding before the first element.
        pad_end: zero padding after the last element.
        dilation: spacing between taps (>= 1).

    Returns:
        The number of windows; < 1 when the padded input is shorter than the dilated window.
    """
    return (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True)
class Attribute:
    """One ONNX attribute of an op.

    Args:
        name: ONNX attribute name.
        type: ``int``, ``ints`` or ``float``.
        default: value used when the node omits the attribute; ``None`` means required.
        doc: meaning (the valid range is rendered from ``minimum``/``maximum``).
        minimum: smallest valid value (of each element for ``ints``); ``None`` for no bound.
        maximum: largest valid value (of each element for ``ints``); ints default to :data:`MAX_ATTRIBUTE_VALUE`.
        count: number of values of an ``ints`` attribute (``None`` for scalars).
    """

    name: str
    type: AttributeType
    default: int | float | tuple[int, ...] | None
    doc: str
    minimum: int | float | None = None
    maximum: int | float | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if self.type in ("int", "ints") and self.maximum is None:
            object.__setattr__(self, "maximum", MAX_ATTRIBUTE_VALUE)
        if self.type == "ints" and self.count is None and self.default is not None:
            object.__setattr__(self, "count", len(self.default))  # type: ignore[arg-type]

    @property
    def required(self) -> bool:
        return self.default is None

    @property
    def range_text(self) -> str:
        """The valid range of one value in words, e.g. ``in [1, 16777216]`` or ``>= 0``."""
        if self.minimum is not None and self.maximum is not None:
            return f"in [{self.minimum}, {self.maximum}]"
        if self.minimum is not None:
            return f">= {self.minimum}"
        if self.maximum is not None:
            return f"<= {self.maximum}"
        return "any value"

    def check(
        self,
        op: str,
        value: int | float | tuple[int, ...] | list[int],
        argument: str | None = None,
        count: int | None = None,
    ) -> None:
        """Raise ``ValueError`` naming ``argument`` unless ``value`` fits: its number of ints, and its range.

        Args:
            op: the op's name, for the message.
            value: the value to check (a sequence for ``ints``).
            argument: the name the caller knows the value by (a Python argument name), if not the attribute's.
            count: number of values expected of an ``ints`` argument that holds them differently from the attribute
                (torch's symmetric ``padding`` holds 2 of the 4 ``pads``); the attribute's ``count`` by default.

        Raises:
            ValueError: ``value`` has the wrong number of values, a non-int in an ``ints`` value, or is out of range.
        """
        label = argument or self.name
        if self.type == "ints":
            expected = count if count is not None else self.count
            values = list(value)  # type: ignore[arg-type]
            counted = f"{expected} ints" if expected is not None else "ints"
            wrong_count = expected is not None and len(values) != expected
            if wrong_count or not all(isinstance(v, int) and self._in_range(v) for v in values):
                raise ValueError(f"{op}: `{label}` must be {counted}, each {self.range_text}; got {values}")
        elif not self._in_range(value):  # type: ignore[arg-type]
            raise ValueError(f"{op}: `{label}` must be {self.range_text}; got {value!r}")

    def _in_range(self, value: int | float) -> bool:
        """Whether one value lies within ``minimum`` and ``maximum`` (NaN never does)."""
        low_ok = self.minimum is None or value >= self.minimum
        high_ok = self.maximum is None or value <= self.maximum
        return low_ok and high_ok


@dataclass(frozen=True)
class Tensor:
    """One ONNX input or output of an op.

    Args:
        name: ONNX input/output name.
        shape: symbolic shape, e.g. ``(N, C_in, H, W)``.
        doc: meaning.
        optional: whether the input may be omitted (empty name in the node).
    """

    name: str
    shape: str
    doc: str
    optional: bool = False


@dataclass(frozen=True)
class OpContract:
    """Contract of one custom op of the ``holocron`` domain.

    Args:
        onnx_name: ONNX op type in the ``holocron`` domain.
        torch_name: op name in the ``holocron`` torch.library namespace.
        layer: the holocron.nn layer whose heavy part the op is.
        inputs: ONNX inputs, in order.
        attributes: ONNX attributes.
        outputs: ONNX outputs, in order.
        semantics: reference semantics (the formula every implementation must match).
        type_constraint: allowed element types of all tensors (one constraint ``T`` shared by every input/output).
    """

    onnx_name: str
    torch_name: str
    layer: str
    inputs: tuple[Tensor, ...]
    attributes: tuple[Attribute, ...]
    outputs: tuple[Tensor, ...]
    semantics: str
    type_constraint: tuple[str, ...] = ("tensor(float)", "tensor(float16)")
    version: int = DOMAIN_VERSION
    domain: str = DOMAIN

    def attribute(self, name: str) -> Attribute:
        for attr in self.attributes:
            if attr.name == name:
                return attr
        raise KeyError(f"{self.onnx_name} has no attribute {name!r}")


_STRIDES = Attribute("strides", "ints", (1, 1), "stride along (H, W)", minimum=1)
_PADS = Attribute("pads", "ints", (0, 0, 0, 0), "zero padding (top, left, bottom, right), ONNX order", minimum=0)
_DILATIONS = Attribute("dilations", "ints", (1, 1), "spacing between kernel taps along (H, W)", minimum=1)
_GROUP = Attribute("group", "int", 1, "number of channel groups; divides C_in (and C_out)", minimum=1)

ADD2D = OpContract(
    onnx_name="Add2d",
    torch_name="add2d",
    layer="holocron.nn.Add2d",
    inputs=(
        Tensor("X", "(N, C_in, H, W)", "input feature map"),
        Tensor("W", "(C_out, C_in / group, kH, kW)", "adder filters"),
        Tensor("B", "(C_out,)", "bias", optional=True),
    ),
    attributes=(
        _STRIDES,
        _PADS,
        _DILATIONS,
        _GROUP,
        Attribute(
            "normalize_slices",
            "int",
            0,
            "1: normalize each slice to zero mean, unit variance first",
            minimum=0,
            maximum=1,
        ),
        Attribute("eps", "float", 1e-14, "added to the slice variance before the square root", minimum=0.0),
    ),
    outputs=(Tensor("Y", "(N, C_out, H_out, W_out)", "negated L1 distances plus bias"),),
    semantics=(
        "H_out = (H + pad_top + pad_bottom - dH * (kH - 1) - 1) // sH + 1 (W_out likewise).\n"
        "For output channel o in group g = o // (C_out / group), the slice S[n, g, y, x] is the vector of the\n"
        "C_in / group * kH * kW values X_pad[n, g * C_in / group + c, y * sH + i * dH, x * sW + j * dW]\n"
        "(c, i, j in C order; X_pad is X zero-padded by `pads`). With normalize_slices = 1 the slice is replaced by\n"
        "(S - mean(S)) / sqrt(var(S) + eps) (biased variance over the slice; a slice with var(S) + eps = 0, i.e. a\n"
        "constant slice with eps = 0, is replaced by zeros; mean and variance are meant exactly, e.g. in float64, so\n"
        "that a constant slice centres to exactly 0 whatever eps). Then\n"
        "Y[n, o, y, x] = -sum_{c, i, j} |S[c, i, j] - W[o, c, i, j]| + B[o]   (B = 0 when absent).\n"
        "Accuracy: a kernel may sum in any order and through |s - w| = s + w - 2 min(s, w) (holocron's CPU kernel\n"
        "does), so for float32 it is within float32 rounding of the summed magnitudes, about\n"
        "2 D u (sum_{c, i, j} (|S| + |W|) + |B|) with D the slice length and u = 2^-24, not of the distance itself;\n"
        "where every partial sum is exactly representable (e.g. small integers) the result is exact. Non-finite\n"
        "inputs give what the formula gives (inf - inf, NaN: NaN)."
    ),
)

INVOLUTION2D = OpContract(
    onnx_name="Involution2d",
    torch_name="involution2d",
    layer="holocron.nn.Involution2d",
    inputs=(
        Tensor("X", "(N, C, H, W)", "input feature map"),
        Tensor("K", "(N, group * kH * kW, H_out, W_out)", "per-pixel kernels, one set per channel group"),
    ),
    attributes=(
        Attribute("kernel_shape", "ints", None, "kernel size (kH, kW)", minimum=1, count=2),
        _STRIDES,
        _PADS,
        _DILATIONS,
        Attribute("group", "int", 1, "number of channel groups; divides C", minimum=1),
    ),
    outputs=(Tensor("Y", "(N, C, H_out, W_out)", "involved feature map"),),
    semantics=(
        "H_out, W_out as for a convolution with kernel_shape, strides, pads, dilations; K must have that size.\n"
        "With g = c // (C / group) and X_pad the zero-padded X:\n"
        "Y[n, c, y, x] = sum_{i < kH, j < kW} K[n, g * kH * kW + i * kW + j, y, x]"
        " * X_pad[n, c, y * sH + i * dH, x * sW + j * dW]."
    ),
)

LAMBDA = OpContract(
    onnx_name="Lambda",
    torch_name="lambda_layer",
    layer="holocron.nn.LambdaLayer",
    inputs=(
        Tensor("Q", "(N, heads * K, H, W)", "normalized queries; channel h * K + k"),
        Tensor("Kx", "(N, K * U, H, W)", "keys before softmax; channel k * U + u"),
        Tensor("V", "(N, V * U, H, W)", "normalized values; channel v * U + u"),
        Tensor(
            "P",
            "(K, U, 1, r, r) or (H * W, H * W, K, U)",
            "positional parameter: local kernel R (rank 5, r odd) or global embedding E (rank 4)",
        ),
    ),
    attributes=(Attribute("num_heads", "int", None, "number of query heads", minimum=1),),
    outputs=(Tensor("Y", "(N, heads * V, H, W)", "lambda output; channel h * V + v"),),
    semantics=(
        "With m, p indexing the H * W positions, Ks = softmax over m of Kx viewed (N, K, U, H * W):\n"
        "content lambda  Lc[n, k, v] = sum_{u, m} Ks[n, k, u, m] * V[n, v, u, m];\n"
        "position lambda, local (P = R of rank 5, zero padding r // 2):\n"
        "  Lp[n, k, v, p] = sum_{u, i, j} R[k, u, 0, i, j] * V[n, v, u, py + i - r // 2, px + j - r // 2];\n"
        "position lambda, global (P = E of rank 4): Lp[n, k, v, p] = sum_{u, m} E[p, m, k, u] * V[n, v, u, m];\n"
        "Y[n, h * V + v, p] = sum_k Q[n, h * K + k, p] * (Lc[n, k, v] + Lp[n, k, v, p])."
    ),
)

OPS: tuple[OpContract, ...] = (ADD2D, INVOLUTION2D, LAMBDA)
