"""Both torch ONNX exporters turn each op into exactly one ``holocron`` node with the contract's attributes."""

import io
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from torch import Tensor, nn

from holocron.contract import DOMAIN
from holocron.export.onnx.graph import holocron_nodes
from holocron.export.onnx.ops import (
    OP_EXPORTS,
    attach_fallback_functions,
    custom_translation_table,
    register_schemas,
    register_torchscript_symbolics,
)
from holocron.export.onnx.ops import add2d as add2d_onnx
from holocron.export.onnx.ops import involution2d as involution2d_onnx
from holocron.export.onnx.ops import lambda_layer as lambda_onnx
from holocron.ops import add2d, involution2d, lambda_layer

TORCHSCRIPT_OPSET = 17


class Add2dBlock(nn.Module):
    def __init__(self, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 2, 3, 3))
        self.bias = nn.Parameter(torch.randn(6)) if bias else None
        self.attributes = ([2, 1], [1, 0], [1, 2], 2, True, 1e-5)

    def forward(self, x: Tensor, kernel: Tensor) -> Tensor:
        return add2d(x, self.weight, self.bias, *self.attributes)


class InvolutionBlock(nn.Module):
    attributes = ([3, 3], [1, 1], [1, 1], [1, 1], 2)

    def forward(self, x: Tensor, kernel: Tensor) -> Tensor:
        return involution2d(x, kernel, *self.attributes)


class LambdaBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.randn(2, 2, 1, 3, 3))

    def forward(self, x: Tensor, kernel: Tensor) -> Tensor:
        return lambda_layer(x, x, x, self.pos, 2)


ADD2D_ATTRIBUTES = add2d_onnx.onnx_attributes([2, 1], [1, 0], [1, 2], 2, True, 1e-5)
INVOLUTION_ATTRIBUTES = involution2d_onnx.onnx_attributes(*InvolutionBlock.attributes)

# name -> (module factory, ONNX op type, expected attributes, number of node inputs)
BLOCKS = {
    "add2d": (lambda: Add2dBlock(bias=True), "Add2d", ADD2D_ATTRIBUTES, 3),
    "add2d_nobias": (lambda: Add2dBlock(bias=False), "Add2d", ADD2D_ATTRIBUTES, 2),
    "involution2d": (InvolutionBlock, "Involution2d", INVOLUTION_ATTRIBUTES, 2),
    "lambda": (LambdaBlock, "Lambda", lambda_onnx.onnx_attributes(2), 4),
}


def _inputs() -> tuple[Tensor, Tensor]:
    return torch.randn(1, 4, 5, 6), torch.randn(1, 18, 5, 6)


def _check_single_node(model: onnx.ModelProto, op_type: str, attributes: dict, num_inputs: int) -> None:
    (node,) = holocron_nodes(model)
    assert node.op_type == op_type
    assert len([name for name in node.input if name]) == num_inputs
    got = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    assert got.keys() == attributes.keys()
    for name, value in attributes.items():
        if isinstance(value, float):
            assert got[name] == pytest.approx(value, rel=1e-6)
        else:
            assert got[name] == value, name
    assert {(o.domain, o.version) for o in model.opset_import if o.domain == DOMAIN} == {(DOMAIN, 1)}


@pytest.mark.parametrize("name", BLOCKS)
def test_dynamo_export_emits_one_holocron_node(name: str) -> None:
    make, op_type, attributes, num_inputs = BLOCKS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            make().eval(), _inputs(), dynamo=True, custom_translation_table=custom_translation_table(), optimize=False
        )
    _check_single_node(program.model_proto, op_type, attributes, num_inputs)


@pytest.mark.parametrize("name", BLOCKS)
def test_torchscript_export_emits_one_holocron_node(name: str) -> None:
    make, op_type, attributes, num_inputs = BLOCKS[name]
    register_torchscript_symbolics(TORCHSCRIPT_OPSET)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            make().eval(),
            _inputs(),
            buffer,
            dynamo=False,
            opset_version=TORCHSCRIPT_OPSET,
            custom_opsets={DOMAIN: 1},
        )
    _check_single_node(onnx.load_from_string(buffer.getvalue()), op_type, attributes, num_inputs)


def test_dynamo_export_with_fallback_functions_runs_in_onnxruntime() -> None:
    import onnxruntime as ort

    class Everything(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.add = Add2dBlock(bias=False)
            self.involution = InvolutionBlock()
            self.lambda_block = LambdaBlock()

        def forward(self, x: Tensor, kernel: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            return self.add(x, kernel), self.involution(x, kernel), self.lambda_block(x, kernel)

    module = Everything().eval()
    inputs = _inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, inputs, dynamo=True, custom_translation_table=custom_translation_table())
    model = program.model_proto
    assert sorted(n.op_type for n in holocron_nodes(model)) == sorted(op.contract.onnx_name for op in OP_EXPORTS)
    attach_fallback_functions(model)
    register_schemas()
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs, strict=True)}
    with torch.no_grad():
        expected = module(*inputs)
    for got, want in zip(session.run(None, feeds), expected, strict=True):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)
