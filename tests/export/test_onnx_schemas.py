"""The ONNX registry follows the contract: schemas, shape inference, fallback function signatures and opsets."""

import onnx
import pytest
import torch
from helpers import single_node_model
from onnx import TensorProto, defs, helper

from holocron.contract import ADD2D, DOMAIN, INVOLUTION2D, LAMBDA, OPS
from holocron.export.onnx.ops import (
    FIRST_OPSET,
    LAST_OPSET,
    OP_EXPORTS,
    OpExport,
    attach_fallback_functions,
    register_schemas,
)
from holocron.export.onnx.ops import add2d as add2d_onnx
from holocron.export.onnx.ops import involution2d as involution2d_onnx
from holocron.export.onnx.ops import lambda_layer as lambda_onnx
from holocron.ops import add2d, involution2d, lambda_layer

EXPORTS = {op.contract.onnx_name: op for op in OP_EXPORTS}


def test_registry_covers_the_contract() -> None:
    assert tuple(op.contract for op in OP_EXPORTS) == OPS
    for op in OP_EXPORTS:
        assert op.torch_op is getattr(torch.ops.holocron, op.contract.torch_name).default
        assert op.torchscript_name == f"holocron::{op.contract.torch_name}"


@pytest.mark.parametrize("op", OP_EXPORTS, ids=lambda op: op.contract.onnx_name)
def test_registered_schema_matches_contract(op: OpExport) -> None:
    register_schemas()
    register_schemas()  # idempotent
    schema = defs.get_schema(op.contract.onnx_name, op.contract.version, DOMAIN)
    assert schema.since_version == op.contract.version
    assert [p.name for p in schema.inputs] == [t.name for t in op.contract.inputs]
    optional = defs.OpSchema.FormalParameterOption.Optional
    assert [p.option == optional for p in schema.inputs] == [t.optional for t in op.contract.inputs]
    assert [p.name for p in schema.outputs] == [t.name for t in op.contract.outputs]
    assert [list(c.allowed_type_strs) for c in schema.type_constraints] == [list(op.contract.type_constraint)]
    assert set(schema.attributes) == {a.name for a in op.contract.attributes}
    for attribute in op.contract.attributes:
        declared = schema.attributes[attribute.name]
        assert declared.required == attribute.required
        if not attribute.required:
            default = helper.get_attribute_value(declared.default_value)
            expected = list(attribute.default) if attribute.type == "ints" else attribute.default
            assert default == pytest.approx(expected), attribute.name


# Static input shapes and required attributes of one node of each op (Lambda's P in its local, rank 5, form).
EXAMPLES: dict[str, tuple[dict[str, list[int]], dict[str, object]]] = {
    ADD2D.onnx_name: ({"X": [1, 4, 5, 5], "W": [6, 4, 3, 3], "B": [6]}, {}),
    INVOLUTION2D.onnx_name: ({"X": [1, 4, 5, 5], "K": [1, 9, 5, 5]}, {"kernel_shape": [3, 3]}),
    LAMBDA.onnx_name: (
        {"Q": [1, 4, 3, 3], "Kx": [1, 2, 3, 3], "V": [1, 2, 3, 3], "P": [2, 1, 1, 3, 3]},
        {"num_heads": 2},
    ),
}


def _with_fallback(op: OpExport, opset: int) -> onnx.ModelProto:
    inputs, attributes = EXAMPLES[op.contract.onnx_name]
    model = single_node_model(op.contract.onnx_name, inputs, attributes, output_shape=["n", "c", "h", "w"], opset=opset)
    return attach_fallback_functions(model)


@pytest.mark.parametrize("op", OP_EXPORTS, ids=lambda op: op.contract.onnx_name)
def test_fallback_function_signature_matches_contract(op: OpExport) -> None:
    (function,) = _with_fallback(op, FIRST_OPSET).functions
    assert (function.domain, function.name) == (DOMAIN, op.contract.onnx_name)
    assert list(function.input) == [t.name for t in op.contract.inputs]
    assert list(function.output) == [t.name for t in op.contract.outputs]
    declared = set(function.attribute) | {a.name for a in function.attribute_proto}
    assert declared == {a.name for a in op.contract.attributes}
    assert set(function.attribute) == {a.name for a in op.contract.attributes if a.required}
    assert [(o.domain, o.version) for o in function.opset_import] == [("", FIRST_OPSET)]


@pytest.mark.parametrize("opset", range(FIRST_OPSET, LAST_OPSET + 1))
@pytest.mark.parametrize("op", OP_EXPORTS, ids=lambda op: op.contract.onnx_name)
def test_fallback_function_is_valid_standard_onnx(op: OpExport, opset: int) -> None:
    model = _with_fallback(op, opset)
    (function,) = model.functions
    assert {node.domain for node in function.node} == {""}
    assert not any(
        a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in function.node for a in n.attribute
    )
    register_schemas()
    onnx.checker.check_model(model, full_check=True)


@pytest.mark.parametrize("opset", [FIRST_OPSET - 1, LAST_OPSET + 1])
def test_fallback_function_rejects_untested_opsets(opset: int) -> None:
    for op in OP_EXPORTS:
        inputs, attributes = EXAMPLES[op.contract.onnx_name]
        model = single_node_model(op.contract.onnx_name, inputs, attributes, opset=FIRST_OPSET)
        with pytest.raises(ValueError, match=r"`opset` must be in \[18, 23\]"):
            attach_fallback_functions(model, opset)


def _inferred_shape(op: OpExport, inputs: dict[str, torch.Tensor], attributes: dict) -> list[int | None]:
    model = single_node_model(op.contract.onnx_name, inputs, attributes, opset=18)
    register_schemas()
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    (output,) = inferred.graph.output
    assert output.type.tensor_type.elem_type == TensorProto.FLOAT
    return [d.dim_value if d.HasField("dim_value") else None for d in output.type.tensor_type.shape.dim]


def test_shape_inference_add2d() -> None:
    x, w = torch.randn(2, 4, 7, 9), torch.randn(6, 2, 3, 2)
    attributes = ([2, 1], [1, 2], [1, 3], 2, False, 1e-14)
    expected = list(add2d(x, w, None, *attributes).shape)
    inferred = _inferred_shape(EXPORTS[ADD2D.onnx_name], {"X": x, "W": w}, add2d_onnx.onnx_attributes(*attributes))
    assert inferred == expected


def test_shape_inference_involution2d() -> None:
    attributes = ([3, 2], [2, 1], [1, 2], [1, 2], 2)
    x = torch.randn(2, 4, 7, 9)
    kernel = torch.randn(2, 12, 4, 11)
    expected = list(involution2d(x, kernel, *attributes).shape)
    inputs = {"X": x, "K": kernel}
    assert _inferred_shape(EXPORTS[INVOLUTION2D.onnx_name], inputs, involution2d_onnx.onnx_attributes(*attributes)) == (
        expected
    )


def test_shape_inference_lambda() -> None:
    q, k, v, pos = (
        torch.randn(2, 6, 3, 4),
        torch.randn(2, 6, 3, 4),
        torch.randn(2, 10, 3, 4),
        torch.randn(3, 2, 1, 3, 3),
    )
    expected = list(lambda_layer(q, k, v, pos, 2).shape)
    inputs = {"Q": q, "Kx": k, "V": v, "P": pos}
    assert _inferred_shape(EXPORTS[LAMBDA.onnx_name], inputs, lambda_onnx.onnx_attributes(2)) == expected
