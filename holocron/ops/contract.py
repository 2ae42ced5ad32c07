"""The contract of holocron's custom operators: the single written source.

Everything that touches a custom op follows from the records below: the ``torch.library`` op (namespace
``holocron``), the ONNX schema registered with ``onnx.defs``, the dynamo translation and the TorchScript symbolic,
the standard-ONNX fallback function, the C++ kernels (CMake turns this file into ``holocron_contract.h``) and
``docs/ops.md``. Changing an op's inputs, attributes, outputs or semantics means a new ``DOMAIN_VERSION``.

This module depends on the standard library only, so the C++ build can run it without torch or onnx::

    python holocron/ops/contract.py --cpp-header OUT.h
    python holocron/ops/contract.py --markdown docs/ops.md
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
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
        "Y[n, o, y, x] = -sum_{c, i, j} |S[c, i, j] - W[o, c, i, j]| + B[o]   (B = 0 when absent)."
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


def _cpp_value(attr: Attribute) -> str:
    if attr.default is None:
        return "{}" if attr.type == "ints" else "0"
    if attr.type == "ints":
        return "{" + ", ".join(str(v) for v in attr.default) + "}"  # type: ignore[union-attr]
    if attr.type == "float":
        return _cpp_float(attr.default)  # type: ignore[arg-type]
    return str(attr.default)


def _cpp_float(value: float) -> str:
    return repr(float(value)) + "f"


def _cpp_bound(attr: Attribute, bound: int | float | None, lowest: bool) -> str:
    """One end of an attribute's valid range as a C++ constant; an absent bound is the type's own limit."""
    if attr.type == "float":
        if bound is None:
            infinity = "std::numeric_limits<float>::infinity()"
            return "-" + infinity if lowest else infinity
        return _cpp_float(bound)
    if bound is None:
        return f"std::numeric_limits<int64_t>::{'min' if lowest else 'max'}()"
    return "kMaxAttributeValue" if bound == MAX_ATTRIBUTE_VALUE else str(bound)


def _cpp_strings(values: list[str]) -> str:
    return "{" + ", ".join(f'"{v}"' for v in values) + "}"


def _cpp_attribute(attr: Attribute) -> list[str]:
    const = "k" + "".join(part.capitalize() for part in attr.name.split("_"))
    if attr.type == "ints":
        kind = f"IntsAttribute<{attr.count}>"
    else:
        kind = "IntAttribute" if attr.type == "int" else "FloatAttribute"
    fields = [
        f"{const}Name",
        "true" if attr.required else "false",
        _cpp_value(attr),
        _cpp_bound(attr, attr.minimum, lowest=True),
        _cpp_bound(attr, attr.maximum, lowest=False),
    ]
    return [
        f'inline constexpr const char* {const}Name = "{attr.name}";',
        f"inline constexpr {kind} {const} = {{{', '.join(fields)}}};",
    ]


_CPP_ATTRIBUTE_TYPES = """\
// One attribute of an op: its name, whether a node must set it, the value used when it is absent and the valid range
// [minimum, maximum] (of each value for an ints attribute, which holds exactly `count` values).
struct IntAttribute {
  const char* name;
  bool required;
  int64_t fallback;
  int64_t minimum;
  int64_t maximum;
};
template <std::size_t N>
struct IntsAttribute {
  static constexpr std::size_t count = N;
  const char* name;
  bool required;
  std::array<int64_t, N> fallback;
  int64_t minimum;
  int64_t maximum;
};
struct FloatAttribute {
  const char* name;
  bool required;
  float fallback;
  float minimum;
  float maximum;
};"""


def cpp_header() -> str:
    """C++ constants for the runtime kernels: domain, version, and per op its name, inputs, outputs and attributes."""
    lines = [
        "// Generated from holocron/ops/contract.py by CMake. Do not edit.",
        "#pragma once",
        "#include <array>",
        "#include <cstddef>",
        "#include <cstdint>",
        "#include <limits>",
        "",
        "namespace holocron::contract {",
        f'inline constexpr const char* kDomain = "{DOMAIN}";',
        f"inline constexpr int kDomainVersion = {DOMAIN_VERSION};",
        f"inline constexpr int kFirstOpset = {FIRST_OPSET};",
        f"inline constexpr int kLastOpset = {LAST_OPSET};",
        "// Default upper bound of every int attribute (sizes computed from attributes stay far from overflow).",
        f"inline constexpr int64_t kMaxAttributeValue = {MAX_ATTRIBUTE_VALUE};",
        "",
        *_CPP_ATTRIBUTE_TYPES.splitlines(),
    ]
    for op in OPS:
        n_in, n_out = len(op.inputs), len(op.outputs)
        optional = ", ".join("true" if t.optional else "false" for t in op.inputs)
        lines += [
            "",
            f"namespace {op.torch_name} {{",
            f'inline constexpr const char* kOpName = "{op.onnx_name}";',
            f"inline constexpr int kNumInputs = {n_in};",
            f"inline constexpr int kNumOutputs = {n_out};",
            f"inline constexpr std::array<const char*, {n_in}> kInputNames = "
            f"{_cpp_strings([t.name for t in op.inputs])};",
            f"inline constexpr std::array<bool, {n_in}> kInputOptional = {{{optional}}};",
            f"inline constexpr std::array<const char*, {n_out}> kOutputNames = "
            f"{_cpp_strings([t.name for t in op.outputs])};",
            "// The op's name and inputs as one type, for the kernel templates.",
            "struct Op {",
            "  static constexpr const char* kOpName = " + op.torch_name + "::kOpName;",
            "  static constexpr const auto& kInputNames = " + op.torch_name + "::kInputNames;",
            "  static constexpr const auto& kInputOptional = " + op.torch_name + "::kInputOptional;",
            "};",
        ]
        for attr in op.attributes:
            lines += _cpp_attribute(attr)
        lines.append(f"}}  // namespace {op.torch_name}")
    lines += ["", "}  // namespace holocron::contract", ""]
    return "\n".join(lines)


def markdown() -> str:
    """The human-readable contract, written to ``docs/ops.md``."""
    out = [
        "# The `holocron` ONNX domain",
        "",
        f"Domain `{DOMAIN}`, version {DOMAIN_VERSION}. Generated from `holocron/ops/contract.py`"
        " (`python holocron/ops/contract.py --markdown docs/ops.md`); edit that file, not this one.",
        "",
        "Every op below is also a `torch.library` op in the `holocron` namespace, and every exported model carries"
        " a standard-ONNX function with the same domain and name, so a runtime without holocron's kernels inlines"
        " it and a runtime with them runs the kernel.",
        "",
    ]
    for op in OPS:
        out += [
            f"## {op.onnx_name} (version {op.version})",
            "",
            f"Heavy part of `{op.layer}`; torch op `torch.ops.{DOMAIN}.{op.torch_name}`.",
            "",
            "| input | shape | meaning |",
            "| --- | --- | --- |",
        ]
        out += [f"| `{t.name}`{' (optional)' if t.optional else ''} | {t.shape} | {t.doc} |" for t in op.inputs]
        out += ["", "| attribute | type | default | meaning |", "| --- | --- | --- | --- |"]
        for attr in op.attributes:
            default = "required" if attr.default is None else f"`{attr.default}`"
            each = "each " if attr.type == "ints" else ""
            kind = attr.type if attr.count is None else f"{attr.type}[{attr.count}]"
            out.append(f"| `{attr.name}` | {kind} | {default} | {attr.doc}; {each}{attr.range_text} |")
        out += ["", "| output | shape | meaning |", "| --- | --- | --- |"]
        out += [f"| `{t.name}` | {t.shape} | {t.doc} |" for t in op.outputs]
        out += ["", f"Type constraint: `T` in {', '.join(f'`{t}`' for t in op.type_constraint)}.", ""]
        out += ["Semantics:", "", "```text", op.semantics, "```", ""]
    return "\n".join(out)


def _write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpp-header", type=Path, help="write the C++ constants header here")
    parser.add_argument("--markdown", type=Path, help="write the markdown contract here")
    args = parser.parse_args(argv)
    if args.cpp_header:
        _write_if_changed(args.cpp_header, cpp_header())
    if args.markdown:
        _write_if_changed(args.markdown, markdown())


if __name__ == "__main__":
    main()
