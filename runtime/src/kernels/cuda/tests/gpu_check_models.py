"""Write the models, inputs and expected outputs of the onnxruntime-gpu part of gpu_check.sh (run on a CPU machine).

Usage: ``python gpu_check_models.py OUT_DIR LIBRARY``. For each case, ``OUT_DIR/<case>.onnx`` holds one ``holocron``
node (float32 and float16 variants), ``OUT_DIR/<case>.npz`` its inputs and ``expected``: the output of holocron's CPU
kernels (LIBRARY registered with onnxruntime's CPU provider), which the GPU run must reproduce. Also writes the
Add2d and Conv models of the timing step (same shape, weights as graph inputs). Needs numpy, onnx and onnxruntime.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper

DOMAIN = "holocron"  # holocron/contract.py: DOMAIN, DOMAIN_VERSION (kept standalone: the folder travels alone)
DOMAIN_VERSION = 1
OPSET = 17

# case -> (op type, input shapes, attributes)
CASES: dict[str, tuple[str, dict[str, tuple[int, ...]], dict[str, object]]] = {
    "add2d": ("Add2d", {"X": (2, 16, 20, 20), "W": (24, 16, 3, 3), "B": (24,)}, {"pads": [1, 1, 1, 1]}),
    "add2d_norm_groups": (
        "Add2d",
        {"X": (2, 12, 17, 15), "W": (18, 6, 3, 3)},
        {"pads": [1, 0, 2, 1], "strides": [2, 1], "group": 2, "normalize_slices": 1, "eps": 1e-5},
    ),
    "involution2d": (
        "Involution2d",
        {"X": (2, 16, 20, 20), "K": (2, 4 * 9, 20, 20)},
        {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "group": 4},
    ),
    "lambda_local": (
        "Lambda",
        {"Q": (2, 4 * 16, 12, 12), "K": (2, 16, 12, 12), "V": (2, 4, 12, 12), "P": (16, 1, 1, 5, 5)},
        {"num_heads": 4},
    ),
    "lambda_global": (
        "Lambda",
        {"Q": (2, 2 * 8, 5, 6), "K": (2, 8 * 2, 5, 6), "V": (2, 3 * 2, 5, 6), "P": (30, 30, 8, 2)},
        {"num_heads": 2},
    ),
}
TIMING_SHAPE = {"X": (1, 64, 56, 56), "W": (64, 64, 3, 3)}


def model(op_type: str, shapes: dict[str, tuple[int, ...]], attributes: dict[str, object], elem: int, domain: str):
    """One node with output ``Y`` fed by graph inputs of element type ``elem``."""
    node = helper.make_node(op_type, list(shapes), ["Y"], domain=domain, **attributes)
    graph = helper.make_graph(
        [node],
        f"gpu_check_{op_type}",
        [helper.make_tensor_value_info(name, elem, list(shape)) for name, shape in shapes.items()],
        [helper.make_tensor_value_info("Y", elem, None)],
    )
    opsets = [helper.make_opsetid("", OPSET)]
    if domain:
        opsets.append(helper.make_opsetid(domain, DOMAIN_VERSION))
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


def main(out_dir: str, library: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    options = onnxruntime.SessionOptions()
    options.register_custom_ops_library(library)
    options.log_severity_level = 3
    rng = np.random.default_rng(20240611)
    for case, (op_type, shapes, attributes) in CASES.items():
        feeds32 = {name: rng.uniform(-1.0, 1.0, shape).astype(np.float32) for name, shape in shapes.items()}
        if op_type == "Lambda":
            feeds32["K"] *= 4.0  # keys spread enough for the softmax to matter
        precisions = (("float32", TensorProto.FLOAT, np.float32), ("float16", TensorProto.FLOAT16, np.float16))
        for suffix, elem, dtype in precisions:
            proto = model(op_type, shapes, attributes, elem, DOMAIN)
            path = out / f"{case}_{suffix}.onnx"
            onnx.save(proto, path)
            feeds = {name: value.astype(dtype) for name, value in feeds32.items()}
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            (expected,) = session.run(None, feeds)
            np.savez(out / f"{case}_{suffix}.npz", expected=expected, **feeds)
    x_shape, w_shape = TIMING_SHAPE["X"], TIMING_SHAPE["W"]
    timing = {"X": x_shape, "W": w_shape}
    onnx.save(model("Add2d", timing, {"pads": [1, 1, 1, 1]}, TensorProto.FLOAT, DOMAIN), out / "timing_add2d.onnx")
    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    onnx.save(model("Conv", timing, conv, TensorProto.FLOAT, ""), out / "timing_conv.onnx")


if __name__ == "__main__":
    main(*sys.argv[1:3])
