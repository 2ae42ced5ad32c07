"""No input allocates without bound: a shape of more than MAX_INPUT_ELEMENTS elements, whether an ARTIFACT declares
it or --max-batch-size makes it, is refused before anything is allocated or exported, naming the flag."""

from __future__ import annotations

import time
from pathlib import Path

import onnx
import pytest
import torch
from helpers import one_line_error, run_cli
from onnx import TensorProto, helper

from holocron.export.errors import MAX_INPUT_ELEMENTS, InputSizeError
from holocron.export.model.inputs import make_inputs


def test_make_inputs_refuses_a_huge_shape_before_allocating() -> None:
    start = time.perf_counter()
    with pytest.raises(InputSizeError, match="3600000000 elements") as caught:
        make_inputs([(60000, 60000)])
    assert time.perf_counter() - start < 1.0
    assert "--input-shape" in caught.value.cli_message
    assert make_inputs([(2, 3)])[0].shape == (2, 3)
    assert MAX_INPUT_ELEMENTS == 2**31 - 1


def test_verify_refuses_an_artifact_declaring_a_huge_input(tmp_path: Path) -> None:
    from holocron.export.parity.api import verify_files

    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [value("x", TensorProto.FLOAT, [60000, 60000])],
        [value("y", TensorProto.FLOAT, [60000, 60000])],
    )
    artifact = tmp_path / "huge.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), artifact)
    model = tmp_path / "identity.pt"
    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(model))
    with pytest.raises(InputSizeError, match="3600000000 elements"):
        verify_files(model, artifact)
    result = run_cli(model, artifact, cwd=tmp_path, name="holocron-verify")
    assert result.returncode == 2
    assert "--input-shape" in one_line_error(result, "holocron-verify")


def test_huge_max_batch_size_exits_2_before_the_export(tmp_path: Path) -> None:
    model = tmp_path / "relu.pt"
    torch.jit.save(torch.jit.script(torch.nn.ReLU()), str(model))
    repo = tmp_path / "repo"
    args = (model, "--input-shape", "1,2", "--format", "triton", "-o", repo, "--max-batch-size", 2147483647)
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    line = one_line_error(result)
    assert "--max-batch-size" in line and "4294967294 elements" in line
    assert not repo.exists()
