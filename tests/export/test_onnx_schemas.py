"""The ONNX registry follows the contract: schemas, shape inference, fallback function signatures and opsets."""

import onnx
import pytest
import torch
from helpers import single_node_model
from onnx import TensorProto, defs, helper

from holocron.export.ops import FIRST_OPSET, LAST_OPSET, OP_EXPORTS, OpExport, register_schemas
from holocron.export.ops import add2d as add2d_onnx
from holocron.export.ops import involution2d as involution2d_onnx
from holocron.export.ops import lambda_layer as lambda_onnx
from holocron.ops import add2d, involution2d, lambda_layer
from holocron.ops.contract import ADD2D, DOMAIN, INVOLUTION2D, LAMBDA, OPS

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


@pytest.mark.parametrize("op", OP_EXPORTS, ids=lambda op: op.contract.onnx_name)
def test_fallback_function_signature_matches_contract(op: OpExport) -> None:
    function = op.fallback_function(FIRST_OPSET)
    assert (function.domain, function.name) == (DOMAIN, op.contract.onnx_name)
    assert list(function.input) == [t.name for t in op.contract.inputs]
    assert list(function.output) == [t.name for t in op.contract.outputs]
    declared = set(function.attribute) | {a.name for a in function.attribute_proto}
    assert declared == {a.name for a in op.contract.attributes}
    assert set(function.attribute) == {a.name for a in op.contract.attributes if a.required}
    assert [(o.domain, o.version) for o in function.opset_import] == [("", FIRST_OPSET)]


def _body_domains(graph_nodes) -> set[str]:
    domains = set()
    for node in graph_nodes:
        domains.add(node.domain)
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                domains |= _body_domains(attribute.g.node)
    return domains


# Ranks of the inputs (symbolic sizes) for the checker; Lambda's P is checked in its local (rank 5) form.
RANKS = {"X": 4, "W": 4, "B": 1, "K": 4, "Q": 4, "Kx": 4, "V": 4, "P": 5}


@pytest.mark.parametrize("opset", range(FIRST_OPSET, LAST_OPSET + 1))
@pytest.mark.parametrize("op", OP_EXPORTS, ids=lambda op: op.contract.onnx_name)
def test_fallback_function_is_valid_standard_onnx(op: OpExport, opset: int) -> None:
    function = op.fallback_function(opset)
    assert _body_domains(function.node) == {""}
    required = {a.name: [3, 3] if a.type == "ints" else 1 for a in op.contract.attributes if a.required}
    model = single_node_model(
        op.contract.onnx_name,
        {t.name: [f"{t.name}{i}" for i in range(RANKS[t.name])] for t in op.contract.inputs},
        required,
        output_shape=["n", "c", "h", "w"],
        functions=[function],
        opset=opset,
    )
    register_schemas()
    onnx.checker.check_model(model, full_check=True)


@pytest.mark.parametrize("opset", [FIRST_OPSET - 1, LAST_OPSET + 1])
def test_fallback_function_rejects_untested_opsets(opset: int) -> None:
    for op in OP_EXPORTS:
        with pytest.raises(ValueError, match=r"`opset` must be in \[18, 23\]"):
            op.fallback_function(opset)


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
