"""Shared fixtures of the op tests: running one ``holocron`` node through its standard-ONNX fallback in onnxruntime."""

from collections.abc import Callable

import numpy as np
import onnx
import pytest
import torch
from helpers import single_node_model

from holocron.export.onnx.ops import OpExport, attach_fallback_functions, register_schemas

RunNode = Callable[[OpExport, dict[str, torch.Tensor], dict[str, object], int, tuple[int, ...]], np.ndarray]


@pytest.fixture(scope="session")
def run_fallback() -> RunNode:
    """Check (``full_check``, schemas registered) and run on onnxruntime's CPU provider a model of one ``holocron``
    node of ``op`` with the fallback function :func:`attach_fallback_functions` specialises to it.

    ``inputs`` maps the contract's input names to values (an optional input left out is omitted from the node).
    """
    import onnxruntime as ort

    register_schemas()

    def run(
        op: OpExport,
        inputs: dict[str, torch.Tensor],
        attributes: dict[str, object],
        opset: int,
        out_shape: tuple[int, ...],
    ) -> np.ndarray:
        model = single_node_model(
            op.contract.onnx_name,
            inputs,
            attributes,
            output_shape=out_shape,
            opset=opset,
        )
        attach_fallback_functions(model)
        onnx.checker.check_model(model, full_check=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        (out,) = session.run(None, {name: t.numpy() for name, t in inputs.items()})
        return out

    return run
