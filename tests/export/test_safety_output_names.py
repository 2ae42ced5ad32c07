"""Graph outputs are output_0, output_1, ... with both exporters, even for a tensor returned twice or an input."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

from holocron.export import to_onnx_proto


class ReturnsTwice(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.relu(x)
        return y, y


class ReturnsInput(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return x, torch.relu(x), x


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
@pytest.mark.parametrize("module", [ReturnsTwice, ReturnsInput])
def test_outputs_are_unique_and_numbered(exporter: str, module: type[nn.Module]) -> None:
    model = module().eval()
    x = torch.randn(1, 3, 4, 4)
    proto = to_onnx_proto(model, (x,), exporter=exporter)  # type: ignore[arg-type]
    with torch.no_grad():
        expected = model(x)
    names = [value.name for value in proto.graph.output]
    assert names == [f"output_{i}" for i in range(len(expected))]
    session = onnxruntime.InferenceSession(proto.SerializeToString())
    assert [o.name for o in session.get_outputs()] == names
    results = session.run(None, {"input": x.numpy()})
    for result, reference in zip(results, expected, strict=True):
        np.testing.assert_allclose(result, reference.numpy(), rtol=0, atol=0)
