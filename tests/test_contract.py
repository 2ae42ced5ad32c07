"""The op contract is the single source: the docs, the C++ header and the Python checks must follow it."""

import dataclasses
import importlib
import importlib.util
import inspect
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from holocron import contract, ops

REPO = Path(__file__).resolve().parents[1]


def _load_renderer():  # scripts/ is no package: load the renderer CMake runs from its file
    spec = importlib.util.spec_from_file_location("render_contract", REPO / "scripts" / "render_contract.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _load_renderer()

# The op modules (``holocron.ops.add2d`` as an attribute is the function of that name).
ADD2D_MODULE, INVOLUTION2D_MODULE, LAMBDA_MODULE = (
    importlib.import_module(f"holocron.ops.{name}") for name in ("add2d", "involution2d", "lambda_layer")
)
ATTRIBUTES = {f"{op.onnx_name}.{attr.name}": (op, attr) for op in contract.OPS for attr in op.attributes}


def test_docs_ops_md_is_generated_from_contract() -> None:
    assert (REPO / "docs" / "ops.md").read_text() == render.markdown(), (
        "docs/ops.md is stale: run `python scripts/render_contract.py --markdown docs/ops.md`"
    )


def test_names_are_unique_within_each_op() -> None:
    for op in contract.OPS:
        names = [t.name for t in op.inputs] + [a.name for a in op.attributes] + [t.name for t in op.outputs]
        assert len(names) == len(set(names)), f"{op.onnx_name}: duplicated input/attribute/output name"


def _value(attr: contract.Attribute, element: float) -> object:
    """A value of ``attr`` whose every element is ``element`` (ints get ``count`` of them)."""
    if attr.type == "ints":
        return [int(element)] * attr.count  # type: ignore[operator]
    return int(element) if attr.type == "int" else element


def _below(attr: contract.Attribute, bound: float) -> float:
    return math.nextafter(bound, -math.inf) if attr.type == "float" else bound - 1


def _above(attr: contract.Attribute, bound: float) -> float:
    return math.nextafter(bound, math.inf) if attr.type == "float" else bound + 1


@pytest.mark.parametrize("key", ATTRIBUTES)
def test_check_accepts_the_bounds_and_refuses_one_past_them(key: str) -> None:
    op, attr = ATTRIBUTES[key]
    assert attr.minimum is not None, f"{key}: every attribute has a lower bound"
    bounds = [attr.minimum] + ([] if attr.maximum is None else [attr.maximum])
    for bound in bounds:
        attr.check(op.torch_name, _value(attr, bound), "arg")
    past = [_below(attr, attr.minimum)] + ([] if attr.maximum is None else [_above(attr, attr.maximum)])
    for value in past:
        with pytest.raises(ValueError, match=f"`arg` must be .*{re.escape(attr.range_text)}"):
            attr.check(op.torch_name, _value(attr, value), "arg")
    if attr.type == "ints":
        with pytest.raises(ValueError, match=f"`arg` must be {attr.count} ints"):
            attr.check(op.torch_name, [attr.minimum] * (attr.count + 1), "arg")  # type: ignore[operator]
        with pytest.raises(ValueError, match="`arg` must be 2 ints"):
            attr.check(op.torch_name, [attr.minimum] * 3, "arg", count=2)


def test_a_float_attribute_refuses_nan() -> None:
    with pytest.raises(ValueError, match="`eps` must be >= 0"):
        contract.ADD2D.attribute("eps").check("add2d", math.nan)


# torch op -> (module holding its contract, the contract's global name there, the op, valid positional arguments)
VALID_CALLS = {
    "add2d": (
        ADD2D_MODULE,
        "ADD2D",
        ops.add2d,
        (torch.randn(1, 4, 5, 5), torch.randn(6, 2, 3, 3), None, [1, 1], [1, 1], [1, 1], 2, False, 1e-5),
    ),
    "involution2d": (
        INVOLUTION2D_MODULE,
        "INVOLUTION2D",
        ops.involution2d,
        (torch.randn(1, 4, 5, 5), torch.randn(1, 18, 5, 5), [3, 3], [1, 1], [1, 1], [1, 1], 2),
    ),
    "lambda_layer": (
        LAMBDA_MODULE,
        "LAMBDA",
        ops.lambda_layer,
        (torch.randn(1, 4, 3, 4), torch.randn(1, 4, 3, 4), torch.randn(1, 6, 3, 4), torch.randn(2, 2, 1, 3, 3), 2),
    ),
}
# "<torch op>.<Python argument>" -> its ONNX attribute
PYTHON_ARGUMENTS = {
    "add2d.stride": "strides",
    "add2d.padding": "pads",
    "add2d.dilation": "dilations",
    "add2d.groups": "group",
    "add2d.eps": "eps",
    "involution2d.kernel_size": "kernel_shape",
    "involution2d.stride": "strides",
    "involution2d.padding": "pads",
    "involution2d.dilation": "dilations",
    "involution2d.groups": "group",
    "lambda_layer.num_heads": "num_heads",
}


def _with_attribute(op: contract.OpContract, name: str, **changes: object) -> contract.OpContract:
    attributes = tuple(dataclasses.replace(a, **changes) if a.name == name else a for a in op.attributes)
    return dataclasses.replace(op, attributes=attributes)


@pytest.mark.parametrize("key", PYTHON_ARGUMENTS)
def test_python_checks_read_the_contract(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    op_name, argument = key.split(".")
    module, global_name, function, args = VALID_CALLS[op_name]
    attribute = PYTHON_ARGUMENTS[key]
    function(*args)  # valid under the contract as written
    valid = inspect.signature(function).bind(*args).arguments[argument]
    largest = max(valid) if isinstance(valid, list) else valid
    # Move the lower bound past the valid value: the same call must now be refused, by the moved bound.
    tightened = _with_attribute(getattr(contract, global_name), attribute, minimum=largest + 1, maximum=None)
    monkeypatch.setattr(module, global_name, tightened)
    expected = tightened.attribute(attribute).range_text
    with pytest.raises(ValueError, match=f"`{argument}` must be .*{re.escape(expected)}; got"):
        function(*args)


def test_every_attribute_reaches_a_python_check() -> None:
    torch_names = {op.torch_name: op.onnx_name for op in contract.OPS}
    checked = {f"{torch_names[key.split('.')[0]]}.{attribute}" for key, attribute in PYTHON_ARGUMENTS.items()}
    # ``normalize_slices`` is a bool on the torch side: it cannot leave [0, 1].
    assert checked == set(ATTRIBUTES) - {"Add2d.normalize_slices"}


def test_markdown_renders_every_attribute_record() -> None:
    text = render.markdown()
    for op, attr in ATTRIBUTES.values():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{attr.name}` |") and attr.doc in line)
        assert attr.range_text in row and attr.type in row, f"{op.onnx_name}.{attr.name}: {row}"
        assert ("required" if attr.required else f"`{attr.default}`") in row


def test_markdown_follows_a_changed_record(monkeypatch: pytest.MonkeyPatch) -> None:
    changed = _with_attribute(contract.ADD2D, "group", maximum=7, doc="changed group record")
    monkeypatch.setattr(contract, "OPS", (changed, *contract.OPS[1:]))
    assert "| `group` | int | `1` | changed group record; in [1, 7] |" in render.markdown()


SIZES = [(7, 3, 1, 0, 0, 1), (7, 3, 2, 1, 0, 1), (8, 2, 3, 0, 2, 2), (5, 5, 1, 2, 2, 1), (9, 3, 2, 1, 1, 3)]


@pytest.mark.parametrize(("size", "kernel", "stride", "pad_begin", "pad_end", "dilation"), SIZES)
def test_conv_output_size_matches_a_torch_convolution(
    size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int
) -> None:
    x = F.pad(torch.zeros(1, 1, 1, size), (pad_begin, pad_end))
    out = F.conv2d(x, torch.zeros(1, 1, 1, kernel), stride=stride, dilation=dilation)
    assert contract.conv_output_size(size, kernel, stride, pad_begin, pad_end, dilation) == out.shape[-1]


def test_cpp_header_lists_every_attribute(tmp_path: Path) -> None:
    header = tmp_path / "holocron_contract.h"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "render_contract.py"), "--cpp-header", str(header)], check=True
    )
    text = header.read_text()
    for op in contract.OPS:
        assert f'kOpName = "{op.onnx_name}"' in text
        for attr in op.attributes:
            assert f'= "{attr.name}";' in text


def test_cpp_header_compiles(tmp_path: Path) -> None:
    compiler = "c++"
    if subprocess.run(["which", compiler], capture_output=True).returncode != 0:
        pytest.skip("no C++ compiler")
    header = tmp_path / "holocron_contract.h"
    header.write_text(render.cpp_header())
    source = tmp_path / "use.cc"
    source.write_text('#include "holocron_contract.h"\nint main() { return holocron::contract::kDomainVersion - 1; }\n')
    subprocess.run([compiler, "-std=c++17", "-I", str(tmp_path), str(source), "-o", str(tmp_path / "use")], check=True)
    assert subprocess.run([str(tmp_path / "use")]).returncode == 0
