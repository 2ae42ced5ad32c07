"""``onnx.defs.OpSchema`` of a holocron op, derived from its contract, with a shape inference hook."""

from collections.abc import Callable
from typing import Protocol

import onnx
from onnx import defs

from holocron.contract import OpContract

from ._attributes import read_attribute, schema_attribute

__all__ = ["Dim", "ShapeInference", "ShapeOf", "build_schema", "register_schema"]

Dim = int | str | None
"""One dimension as shape inference sees it: known size, symbolic name, or unknown."""

ShapeInference = Callable[[list[list[Dim] | None], dict[str, object]], list[Dim] | None]


class ShapeOf(Protocol):
    """The static shape of a node's input at ``index``; with ``required=False``, None when it is not known."""

    def __call__(self, index: int, *, required: bool = True) -> list[int]: ...


"""``(input shapes, attribute values) -> output shape``: a shape is ``None`` where its rank is unknown (or the input
is absent); the attributes hold the node's values, the contract defaults filled in."""


def _dims(type_proto: onnx.TypeProto | None) -> list[Dim] | None:
    if type_proto is None or not type_proto.tensor_type.HasField("shape"):
        return None
    dims: list[Dim] = []
    for dim in type_proto.tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(dim.dim_value)
        else:
            dims.append(dim.dim_param if dim.HasField("dim_param") else None)
    return dims


def _inference_function(op: OpContract, infer_shape: ShapeInference) -> Callable:
    def infer(ctx: onnx.shape_inference.InferenceContext) -> None:
        present = [i < ctx.get_num_inputs() and ctx.has_input(i) for i in range(len(op.inputs))]
        shapes = [_dims(ctx.get_input_type(i)) if has else None for i, has in enumerate(present)]
        attributes: dict[str, object] = {}
        for attribute in op.attributes:
            attributes[attribute.name] = read_attribute(attribute, ctx.get_attribute(attribute.name))
        output = onnx.TypeProto()
        output.tensor_type.elem_type = ctx.get_input_type(0).tensor_type.elem_type
        out_dims = infer_shape(shapes, attributes)
        if out_dims is not None:
            shape = output.tensor_type.shape
            for value in out_dims:
                dim = shape.dim.add()
                if isinstance(value, int):
                    dim.dim_value = value
                elif isinstance(value, str):
                    dim.dim_param = value
        ctx.set_output_type(0, output)

    return infer


def build_schema(op: OpContract, infer_shape: ShapeInference) -> defs.OpSchema:
    """The ONNX schema of ``op``: inputs, attributes (defaults, docs), outputs and type constraint ``T``."""
    optional = defs.OpSchema.FormalParameterOption.Optional
    single = defs.OpSchema.FormalParameterOption.Single
    schema = defs.OpSchema(
        op.onnx_name,
        op.domain,
        op.version,
        f"{op.semantics}\n\nHeavy part of {op.layer}.",
        inputs=[
            defs.OpSchema.FormalParameter(
                t.name, "T", f"{t.shape}: {t.doc}", param_option=optional if t.optional else single
            )
            for t in op.inputs
        ],
        outputs=[defs.OpSchema.FormalParameter(t.name, "T", f"{t.shape}: {t.doc}") for t in op.outputs],
        type_constraints=[("T", list(op.type_constraint), "element type of every input and output")],
        attributes=[schema_attribute(a) for a in op.attributes],
    )
    schema.set_type_and_shape_inference_function(_inference_function(op, infer_shape))
    return schema


def register_schema(schema: defs.OpSchema) -> None:
    """Register ``schema`` with ``onnx.defs`` unless a schema of that name, domain and version is already there."""
    try:
        defs.get_schema(schema.name, schema.since_version, schema.domain)
    except defs.SchemaError:
        defs.register_schema(schema)
