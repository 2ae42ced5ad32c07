"""The three custom layers become single ``holocron`` nodes carrying their standard-ONNX fallback functions.

For Add2d, Involution2d and LambdaLayer (local and global), through both exporters: exactly one holocron node, the
model imports the ``holocron`` opset version 1 and carries the fallback function of that op and no other; a plain
onnxruntime runs the fallback, onnxruntime with holocron's library runs the kernel instead (seen in its profile);
``custom_ops=False`` leaves no holocron node, opset or function and still matches eager.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx
import onnxruntime
import pytest
import torch
from helpers import enable_profiling, executed_op_types
from torch import nn

import holocron.nn as hnn
from holocron.export import to_onnx_proto, verify
from holocron.export.model.inputs import make_inputs
from holocron.export.onnx.finalize import ensure_schemas_registered
from holocron.export.onnx.graph import holocron_nodes

SHAPE = (1, 8, 10, 10)
EXPORTERS = ("dynamo", "torchscript")

#: id -> (builder, ONNX op type of its holocron node)
CUSTOM_LAYERS: dict[str, tuple[Callable[[], nn.Module], str]] = {
    "Add2d": (lambda: hnn.Add2d(8, 4, 3, padding=1), "Add2d"),
    "Involution2d": (lambda: hnn.Involution2d(8, 3, padding=1, groups=2), "Involution2d"),
    "LambdaLayer-local": (lambda: hnn.LambdaLayer(8, 8, dim_k=4, r=3, num_heads=2), "Lambda"),
    "LambdaLayer-global": (lambda: hnn.LambdaLayer(8, 8, dim_k=4, n=SHAPE[2] * SHAPE[3], num_heads=2), "Lambda"),
}


@pytest.fixture(scope="module")
def exports() -> Callable[[str, str, bool], tuple[nn.Module, onnx.ModelProto]]:
    """Export each (layer, exporter, custom_ops) once for the whole module."""
    cache: dict[tuple[str, str, bool], tuple[nn.Module, onnx.ModelProto]] = {}

    def get(layer_id: str, exporter: str, custom_ops: bool) -> tuple[nn.Module, onnx.ModelProto]:
        key = (layer_id, exporter, custom_ops)
        if key not in cache:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                layer = CUSTOM_LAYERS[layer_id][0]().eval()
            proto = to_onnx_proto(layer, make_inputs([SHAPE]), exporter=exporter, custom_ops=custom_ops)
            cache[key] = (layer, proto)
        return cache[key]

    return get


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("layer_id", sorted(CUSTOM_LAYERS))
def test_one_holocron_node_with_its_fallback_function(layer_id: str, exporter: str, exports) -> None:
    _, proto = exports(layer_id, exporter, True)
    op_type = CUSTOM_LAYERS[layer_id][1]

    assert [node.op_type for node in holocron_nodes(proto)] == [op_type]
    assert {(entry.domain, entry.version) for entry in proto.opset_import if entry.domain == "holocron"} == {
        ("holocron", 1)
    }
    assert [(fn.domain, fn.name) for fn in proto.functions] == [("holocron", op_type)]
    assert all(node.domain in ("", "ai.onnx") for node in proto.functions[0].node), "fallback must be standard ONNX"
    ensure_schemas_registered()
    onnx.checker.check_model(proto, full_check=True)


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("layer_id", sorted(CUSTOM_LAYERS))
def test_plain_onnxruntime_runs_the_fallback_and_matches(layer_id: str, exporter: str, exports) -> None:
    layer, proto = exports(layer_id, exporter, True)
    report = verify(layer, proto, [SHAPE], use_kernels=False, seed=3)
    assert report.execution_path == "onnx-fallback"
    assert report.passed, report.format_table()


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("layer_id", sorted(CUSTOM_LAYERS))
def test_no_custom_ops_leaves_standard_onnx_only(layer_id: str, exporter: str, exports) -> None:
    layer, proto = exports(layer_id, exporter, False)

    assert not list(proto.functions)
    assert not holocron_nodes(proto)
    assert "holocron" not in {entry.domain for entry in proto.opset_import}
    onnx.checker.check_model(proto, full_check=True)
    report = verify(layer, proto, [SHAPE], use_kernels=False, seed=3)
    assert report.execution_path == "standard-onnx"
    assert report.passed, report.format_table()


def test_only_the_fallbacks_of_the_ops_present_are_attached() -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(hnn.Add2d(8, 8, 3, padding=1), hnn.Involution2d(8, 3, padding=1)).eval()
    proto = to_onnx_proto(model, make_inputs([SHAPE]), exporter="torchscript")
    assert sorted(fn.name for fn in proto.functions) == ["Add2d", "Involution2d"]

    plain = to_onnx_proto(nn.Conv2d(8, 4, 3).eval(), make_inputs([SHAPE]), exporter="torchscript")
    assert not list(plain.functions)
    assert "holocron" not in {entry.domain for entry in plain.opset_import}


def _executed_op_types(session_options: onnxruntime.SessionOptions, proto: onnx.ModelProto, tmp: Path) -> set[str]:
    """Op types of the nodes onnxruntime actually ran, from its profile."""
    session = onnxruntime.InferenceSession(
        proto.SerializeToString(),
        sess_options=enable_profiling(session_options, tmp / "profile"),
        providers=["CPUExecutionProvider"],
    )
    feed = {session.get_inputs()[0].name: make_inputs([SHAPE])[0].numpy()}
    session.run(None, feed)
    return executed_op_types(session)


@pytest.mark.parametrize("layer_id", sorted(CUSTOM_LAYERS))
def test_onnxruntime_prefers_the_kernel_over_the_fallback(layer_id: str, exports, tmp_path, require_kernels) -> None:
    import holocron.runtime

    layer, proto = exports(layer_id, "torchscript", True)
    op_type = CUSTOM_LAYERS[layer_id][1]

    with_kernels = _executed_op_types(holocron.runtime.session_options(), proto, tmp_path)
    without = _executed_op_types(onnxruntime.SessionOptions(), proto, tmp_path)
    assert op_type in with_kernels
    assert op_type not in without  # the plain session ran the inlined fallback body instead
    report = verify(layer, proto, [SHAPE], use_kernels=True, seed=3)
    assert report.execution_path == "holocron-kernels"
    assert report.passed, report.format_table()
