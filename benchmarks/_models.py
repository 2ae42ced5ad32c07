"""ONNX models and onnxruntime sessions the benchmarks time: one holocron node, its standard-ONNX fallback, Conv."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.inliner import inline_local_functions

from holocron.contract import DOMAIN, DOMAIN_VERSION

__all__ = ["OPSET", "conv_model", "fallback_model", "node_model", "session"]

OPSET = 18


def node_model(
    op_type: str,
    inputs: dict[str, np.ndarray],
    weights: dict[str, np.ndarray],
    attributes: dict[str, object],
    domain: str = DOMAIN,
) -> onnx.ModelProto:
    """One node fed by graph inputs ``inputs`` and initializers ``weights`` (in that order), output ``Y``."""
    node = helper.make_node(op_type, [*inputs, *weights], ["Y"], domain=domain, **attributes)  # type: ignore[arg-type]
    graph = helper.make_graph(
        [node],
        op_type,
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)) for name, value in inputs.items()],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    opsets = [helper.make_opsetid("", OPSET)]
    if domain == DOMAIN:
        opsets.append(helper.make_opsetid(DOMAIN, DOMAIN_VERSION))
    return helper.make_model(graph, opset_imports=opsets)


def conv_model(x: np.ndarray, w: np.ndarray, attributes: dict[str, object]) -> onnx.ModelProto:
    """onnxruntime's Conv on the same shapes: the multiply-accumulate baseline of Add2d."""
    names = ("strides", "pads", "dilations", "group")
    conv_attributes = {name: attributes[name] for name in names if name in attributes}
    return node_model("Conv", {"X": x}, {"W": w}, conv_attributes, domain="")


def fallback_model(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """``model`` with its holocron nodes replaced by their specialised standard-ONNX fallback functions (inlined, as
    ``custom_ops=False`` exports are), or ``None`` when ``holocron.export.onnx.ops`` is not available."""
    try:
        from holocron.export.onnx.ops import attach_fallback_functions
    except ImportError:
        return None
    with_functions = onnx.ModelProto()
    with_functions.CopyFrom(model)
    attach_fallback_functions(with_functions, OPSET)
    return inline_local_functions(with_functions)


def session(model: onnx.ModelProto, threads: int, kernels: bool):
    """onnxruntime CPU session with ``threads`` intra-op threads, with or without holocron's kernels."""
    import onnxruntime as ort

    from holocron.runtime import create_session

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session, _ = create_session(
        model.SerializeToString(), use_kernels=kernels, sess_options=options, log_severity_level=3
    )
    return session
