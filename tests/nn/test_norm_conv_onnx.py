"""NormConv2d exports to plain ONNX (no custom domain) with both torch exporters and runs in onnxruntime."""

from __future__ import annotations

import io
import warnings

import pytest
import torch

from holocron import nn as hnn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _export(module: torch.nn.Module, x: torch.Tensor, dynamo: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            pytest.importorskip("onnxscript")
            return torch.onnx.export(module, (x,), dynamo=True, verbose=False).model_proto
        buffer = io.BytesIO()
        torch.onnx.export(module, (x,), buffer, dynamo=False, opset_version=17)
        return onnx.load_from_string(buffer.getvalue())


@pytest.mark.parametrize("dynamo", [False, True])
def test_norm_conv2d_exports_with_standard_ops(dynamo):
    module = hnn.NormConv2d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2, padding_mode="reflect").eval()
    x = torch.randn(2, 4, 9, 8)
    model = _export(module, x, dynamo)
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
    assert not [function.name for function in model.functions]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), module(x).detach())
