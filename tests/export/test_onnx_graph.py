"""onnx_graph.holocron_nodes finds holocron nodes inside subgraphs, and verification counts them."""

from __future__ import annotations

import copy

import onnx
import pytest
from onnx import helper

import holocron.nn as hnn
from holocron.export import to_onnx_proto, verify
from holocron.export.model.inputs import make_inputs
from holocron.export.onnx.graph import holocron_nodes

SHAPE = (1, 4, 6, 6)


def _under_if(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its main graph's nodes moved into the ``then`` branch of an ``If`` on a constant True.

    The ``else`` branch passes the input through (same shape, as the layer keeps it).
    """
    wrapped = copy.deepcopy(model)
    graph = wrapped.graph
    (graph_input,) = [v for v in graph.input if v.name not in {t.name for t in graph.initializer}]
    (graph_output,) = graph.output
    then_out = helper.make_tensor_value_info("then_out", onnx.TensorProto.FLOAT, None)
    else_out = helper.make_tensor_value_info("else_out", onnx.TensorProto.FLOAT, None)
    body = list(graph.node)
    body.append(helper.make_node("Identity", [graph_output.name], ["then_out"]))
    then_branch = helper.make_graph(body, "then", [], [then_out])
    else_branch = helper.make_graph(
        [helper.make_node("Identity", [graph_input.name], ["else_out"])], "else", [], [else_out]
    )
    condition = helper.make_tensor("condition", onnx.TensorProto.BOOL, [], [True])
    if_node = helper.make_node(
        "If", ["condition"], [graph_output.name], then_branch=then_branch, else_branch=else_branch
    )
    del graph.node[:]
    graph.node.append(if_node)
    graph.initializer.append(condition)
    del graph.value_info[:]
    return wrapped


@pytest.fixture(scope="module")
def add2d_under_if() -> tuple[hnn.Add2d, onnx.ModelProto]:
    layer = hnn.Add2d(4, 4, 3, padding=1).eval()
    proto = to_onnx_proto(layer, make_inputs([SHAPE]), exporter="torchscript")
    return layer, _under_if(proto)


def test_holocron_nodes_walks_subgraphs(add2d_under_if) -> None:
    _, model = add2d_under_if
    assert [node.op_type for node in model.graph.node] == ["If"]
    assert [node.op_type for node in holocron_nodes(model)] == ["Add2d"]


def test_verification_reports_holocron_ops_inside_subgraphs(add2d_under_if, require_kernels) -> None:
    layer, model = add2d_under_if
    report = verify(layer, model, [SHAPE], use_kernels=True)
    assert report.passed
    assert report.holocron_ops == ("Add2d",)
    assert report.execution_path == "holocron-kernels"
