"""Renders the op contract (``holocron/contract.py``) for the other languages: the C++ header of the kernels and
``docs/ops.md``.

Standard library only, so CMake runs it before anything is installed::

    python scripts/render_contract.py --cpp-header OUT.h
    python scripts/render_contract.py --markdown docs/ops.md
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's holocron/, whatever the cwd

from holocron import contract
from holocron.contract import Attribute


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
    return "kMaxAttributeValue" if bound == contract.MAX_ATTRIBUTE_VALUE else str(bound)


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
        "// Generated from holocron/contract.py by scripts/render_contract.py. Do not edit.",
        "#pragma once",
        "#include <array>",
        "#include <cstddef>",
        "#include <cstdint>",
        "#include <limits>",
        "",
        "namespace holocron::contract {",
        f'inline constexpr const char* kDomain = "{contract.DOMAIN}";',
        f"inline constexpr int kDomainVersion = {contract.DOMAIN_VERSION};",
        f"inline constexpr int kFirstOpset = {contract.FIRST_OPSET};",
        f"inline constexpr int kLastOpset = {contract.LAST_OPSET};",
        "// Default upper bound of every int attribute (sizes computed from attributes stay far from overflow).",
        f"inline constexpr int64_t kMaxAttributeValue = {contract.MAX_ATTRIBUTE_VALUE};",
        "",
        *_CPP_ATTRIBUTE_TYPES.splitlines(),
    ]
    for op in contract.OPS:
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
        f"Domain `{contract.DOMAIN}`, version {contract.DOMAIN_VERSION}. Generated from `holocron/contract.py`"
        " (`python scripts/render_contract.py --markdown docs/ops.md`); edit that file, not this one.",
        "",
        "Every op below is also a `torch.library` op in the `holocron` namespace, and every exported model carries"
        " a standard-ONNX function with the same domain and name, so a runtime without holocron's kernels inlines"
        " it and a runtime with them runs the kernel.",
        "",
    ]
    for op in contract.OPS:
        out += [
            f"## {op.onnx_name} (version {op.version})",
            "",
            f"Heavy part of `{op.layer}`; torch op `torch.ops.{contract.DOMAIN}.{op.torch_name}`.",
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
    parser = argparse.ArgumentParser(description="Render holocron/contract.py as a C++ header or markdown.")
    parser.add_argument("--cpp-header", type=Path, help="write the C++ constants header here")
    parser.add_argument("--markdown", type=Path, help="write the markdown contract here")
    args = parser.parse_args(argv)
    if args.cpp_header:
        _write_if_changed(args.cpp_header, cpp_header())
    if args.markdown:
        _write_if_changed(args.markdown, markdown())


if __name__ == "__main__":
    main()
