"""Shared fixtures of the op tests: running one ``holocron`` node through its standard-ONNX fallback in onnxruntime."""

from collections.abc import Callable

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from holocron.export.ops import OpExport, register_schemas

RunNode = Callable[[OpExport, dict[str, torch.Tensor], dict[str, object], int, tuple[int, ...]], np.ndarray]


def single_node_model(
    op: OpExport, inputs: dict[str, torch.Tensor], attributes: dict[str, object], opset: int, out_shape: tuple[int, ...]
) -> onnx.ModelProto:
    """A model made of one ``holocron`` node of ``op`` with the op's fallback function attached.

    ``inputs`` maps the contract's input names to values (an optional input left out is omitted from the node).
    """
    node = helper.make_node(op.contract.onnx_name, list(inputs), ["Y"], domain=op.contract.domain, **attributes)
    graph = helper.make_graph(
        [node],
        f"single_{op.contract.torch_name}",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(t.shape)) for name, t in inputs.items()],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, list(out_shape))],
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(op.contract.domain, op.contract.version)],
        functions=[op.fallback_function(opset)],
    )


@pytest.fixture(scope="session")
def run_fallback() -> RunNode:
    """Check (``full_check``, schemas registered) and run a single-node model on onnxruntime's CPU provider."""
    import onnxruntime as ort

    register_schemas()

    def run(
        op: OpExport,
        inputs: dict[str, torch.Tensor],
        attributes: dict[str, object],
        opset: int,
        out_shape: tuple[int, ...],
    ) -> np.ndarray:
        model = single_node_model(op, inputs, attributes, opset, out_shape)
        onnx.checker.check_model(model, full_check=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        (out,) = session.run(None, {name: t.numpy() for name, t in inputs.items()})
        return out

    return run
