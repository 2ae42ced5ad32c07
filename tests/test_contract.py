"""The op contract is the single source: the generated docs and C++ header must follow it."""

import subprocess
import sys
from pathlib import Path

import pytest

from holocron.ops import contract

REPO = Path(__file__).resolve().parents[1]


def test_docs_ops_md_is_generated_from_contract() -> None:
    assert (REPO / "docs" / "ops.md").read_text() == contract.markdown(), (
        "docs/ops.md is stale: run `python holocron/ops/contract.py --markdown docs/ops.md`"
    )


def test_every_op_is_in_the_holocron_domain_version_1() -> None:
    assert {op.onnx_name for op in contract.OPS} == {"Add2d", "Involution2d", "Lambda"}
    for op in contract.OPS:
        assert op.domain == "holocron"
        assert op.version == contract.DOMAIN_VERSION == 1
        names = [t.name for t in op.inputs] + [a.name for a in op.attributes] + [t.name for t in op.outputs]
        assert len(names) == len(set(names)), f"{op.onnx_name}: duplicated input/attribute/output name"


def test_cpp_header_lists_every_attribute(tmp_path: Path) -> None:
    header = tmp_path / "holocron_contract.h"
    subprocess.run(
        [sys.executable, str(REPO / "holocron" / "ops" / "contract.py"), "--cpp-header", str(header)], check=True
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
    header.write_text(contract.cpp_header())
    source = tmp_path / "use.cc"
    source.write_text('#include "holocron_contract.h"\nint main() { return holocron::contract::kDomainVersion - 1; }\n')
    subprocess.run([compiler, "-std=c++17", "-I", str(tmp_path), str(source), "-o", str(tmp_path / "use")], check=True)
    assert subprocess.run([str(tmp_path / "use")]).returncode == 0
