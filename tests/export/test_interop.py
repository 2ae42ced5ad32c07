"""Exports through other ONNX runtimes and tools (the ``interop`` extra): each result compared with eager PyTorch.

Test models: Add2d -> BN -> Involution2d -> BN -> 1x1 conv -> LambdaLayer (local ``r=3`` or global) -> pool ->
Linear, exported by default (``holocron`` nodes with fallback functions) and with ``custom_ops=False`` (standard ONNX
only). Tools: ONNX's reference evaluator, OpenVINO, onnxsim, onnxslim, onnxoptimizer (their outputs then run on plain
onnxruntime and with holocron's kernels) and the float16 converter. Each tool's tests skip when its package is missing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

import holocron.nn as hnn
from holocron.export import to_onnx_proto
from holocron.export.onnx.ops import to_float16

FLOAT32_TOLERANCE = 1e-5  # of the largest eager output magnitude
FLOAT16_TOLERANCE = 1e-2
KINDS = ("local", "global")
FILES = ("default", "no_custom_ops")


def _model(kind: str) -> nn.Module:
    lam = hnn.LambdaLayer(16, 16, dim_k=4, r=3, num_heads=4) if kind == "local" else hnn.LambdaLayer(16, 16, 4, n=64)
    return nn.Sequential(
        hnn.Add2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        hnn.Involution2d(8, 3, padding=1, groups=2),
        nn.BatchNorm2d(8),
        nn.Conv2d(8, 16, 1),
        lam,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )


@pytest.fixture(scope="module")
def exports() -> dict[tuple[str, str], tuple[onnx.ModelProto, np.ndarray, np.ndarray]]:
    """(kind, file) -> (model proto, input, eager output), exported once for the module."""
    from .conftest import _seeded

    out = {}
    for kind in KINDS:
        module = _seeded(lambda kind=kind: _model(kind))
        x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            eager = module(x).numpy()
        for file in FILES:
            out[kind, file] = (to_onnx_proto(module, x, custom_ops=file == "default"), x.numpy(), eager)
    return out


def _close(actual: np.ndarray, eager: np.ndarray, tolerance: float) -> None:
    assert actual.shape == eager.shape
    scale = float(np.abs(eager).max())
    np.testing.assert_allclose(actual, eager, rtol=0, atol=tolerance * scale)


def _plain(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {model.graph.input[0].name: x})[0]


def _kernels(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    from holocron.runtime import InferenceSession

    session = InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {model.graph.input[0].name: x})[0]


@pytest.mark.parametrize("file", FILES)
@pytest.mark.parametrize("kind", KINDS)
def test_reference_evaluator(exports, kind: str, file: str) -> None:
    from onnx.reference import ReferenceEvaluator

    model, x, eager = exports[kind, file]
    _close(ReferenceEvaluator(model).run(None, {model.graph.input[0].name: x})[0], eager, FLOAT32_TOLERANCE)


@pytest.mark.parametrize("kind", KINDS)
def test_openvino_runs_no_custom_ops_files(exports, kind: str) -> None:
    ov = pytest.importorskip("openvino")
    model, x, eager = exports[kind, "no_custom_ops"]
    core = ov.Core()
    # f32 explicitly: on CPUs with bf16 or f16 units OpenVINO otherwise lowers the precision by default.
    compiled = core.compile_model(
        core.read_model(model.SerializeToString(), b""), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )
    _close(compiled([x])[0], eager, FLOAT32_TOLERANCE)


def _onnxsim(model: onnx.ModelProto) -> onnx.ModelProto:
    onnxsim = pytest.importorskip("onnxsim")
    simplified, ok = onnxsim.simplify(model)
    assert ok, "onnxsim could not validate its result"
    return simplified


def _onnxslim(model: onnx.ModelProto) -> onnx.ModelProto:
    return pytest.importorskip("onnxslim").slim(model)


def _onnxoptimizer(model: onnx.ModelProto) -> onnx.ModelProto:
    return pytest.importorskip("onnxoptimizer").optimize(model)


TOOLS: dict[str, Callable[[onnx.ModelProto], onnx.ModelProto]] = {
    "onnxsim": _onnxsim,
    "onnxslim": _onnxslim,
    "onnxoptimizer": _onnxoptimizer,
}


@pytest.mark.parametrize("file", FILES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_tool_output_runs_on_plain_onnxruntime(exports, tool: str, kind: str, file: str) -> None:
    model, x, eager = exports[kind, file]
    _close(_plain(TOOLS[tool](model), x), eager, FLOAT32_TOLERANCE)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_tool_output_runs_with_kernels(exports, require_kernels, tool: str, kind: str) -> None:
    model, x, eager = exports[kind, "default"]
    processed = TOOLS[tool](model)
    assert any(node.domain == "holocron" for node in processed.graph.node), f"{tool} removed the holocron nodes"
    _close(_kernels(processed, x), eager, FLOAT32_TOLERANCE)


def _float16(model: onnx.ModelProto) -> onnx.ModelProto:
    pytest.importorskip("onnxconverter_common")
    converted = to_float16(model)
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in converted.graph.initializer), (
        "to_float16 left the weights float32"
    )
    return converted


@pytest.mark.parametrize("file", FILES)
@pytest.mark.parametrize("kind", KINDS)
def test_float16_conversion_runs_on_plain_onnxruntime(exports, kind: str, file: str) -> None:
    model, x, eager = exports[kind, file]
    _close(_plain(_float16(model), x), eager, FLOAT16_TOLERANCE)


@pytest.mark.parametrize("kind", KINDS)
def test_float16_conversion_runs_with_kernels(exports, require_kernels, kind: str) -> None:
    model, x, eager = exports[kind, "default"]
    actual = _kernels(_float16(model), x)
    _close(actual, eager, FLOAT16_TOLERANCE)
