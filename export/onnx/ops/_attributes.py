"""How each attribute type of the contract (``int``, ``ints``, ``float``) is written and read in ONNX.

One table serves the schema, the fallback function bodies, the node attributes of the dynamo translations and the
TorchScript symbolics, so a contract type maps to one ``AttributeProto`` type everywhere.
"""

from collections.abc import Callable
from dataclasses import dataclass

import onnx
from onnx import defs, helper

from holocron.contract import Attribute, AttributeType, OpContract

__all__ = [
    "ATTRIBUTE_TYPES",
    "OnnxAttributeType",
    "attribute_ref",
    "default_attribute",
    "node_attributes",
    "read_attribute",
    "schema_attribute",
    "torchscript_node",
]


@dataclass(frozen=True)
class OnnxAttributeType:
    """The ONNX side of one contract attribute type.

    Args:
        proto_type: the ``AttributeProto`` type.
        value: converts a Python value (a torch argument, a contract default, a value read from a proto) to the value
            written in the proto and given to shape inference.
        symbolic_suffix: suffix of the keyword ``g.op`` takes the attribute by in a TorchScript symbolic.
    """

    proto_type: onnx.AttributeProto.AttributeType
    value: Callable[[object], object]
    symbolic_suffix: str


ATTRIBUTE_TYPES: dict[AttributeType, OnnxAttributeType] = {
    "int": OnnxAttributeType(onnx.AttributeProto.INT, int, "i"),  # type: ignore[arg-type]
    "ints": OnnxAttributeType(onnx.AttributeProto.INTS, lambda v: [int(i) for i in v], "i"),  # type: ignore[attr-defined]
    "float": OnnxAttributeType(onnx.AttributeProto.FLOAT, float, "f"),  # type: ignore[arg-type]
}


def default_attribute(attribute: Attribute) -> onnx.AttributeProto:
    """The contract default of an optional ``attribute`` as an ``AttributeProto``."""
    return helper.make_attribute(attribute.name, ATTRIBUTE_TYPES[attribute.type].value(attribute.default))


def attribute_ref(attribute: Attribute, name: str) -> onnx.AttributeProto:
    """Node attribute ``name`` that refers to the enclosing function's ``attribute`` (``ref_attr_name``)."""
    return helper.make_attribute_ref(name, ATTRIBUTE_TYPES[attribute.type].proto_type, ref_attr_name=attribute.name)


def read_attribute(attribute: Attribute, proto: onnx.AttributeProto | None) -> object:
    """The value of ``attribute`` in a node: ``proto``'s value, or the contract default when the node omits it."""
    value = attribute.default if proto is None else helper.get_attribute_value(proto)
    return None if value is None else ATTRIBUTE_TYPES[attribute.type].value(value)


def schema_attribute(attribute: Attribute) -> defs.OpSchema.Attribute:
    """``attribute`` as an ``onnx.defs`` schema attribute: required with its type, or optional with its default."""
    if attribute.required:
        proto_type = defs.OpSchema.AttrType(ATTRIBUTE_TYPES[attribute.type].proto_type)  # type: ignore[call-arg]
        return defs.OpSchema.Attribute(attribute.name, proto_type, attribute.doc, required=True)
    return defs.OpSchema.Attribute(attribute.name, default_attribute(attribute), attribute.doc)


def node_attributes(op: OpContract, **values: object) -> dict[str, object]:
    """``values`` as the attributes of an ``op`` node: each name checked against the contract, each value converted.

    Raises:
        KeyError: a name is not an attribute of ``op``.
    """
    return {name: ATTRIBUTE_TYPES[op.attribute(name).type].value(value) for name, value in values.items()}


def torchscript_node(g, op: OpContract, inputs: tuple, attributes: dict[str, object]):
    """Emit one ``op`` node from a TorchScript symbolic and return its output.

    Every op of the domain returns one 4-D feature map of the first input's element type; the sizes are left to the
    schema's shape inference.

    Args:
        g: the TorchScript exporter's graph context.
        op: contract of the op.
        inputs: the node's input values, in contract order (an absent optional input left out).
        attributes: the node's attributes, from :func:`node_attributes`.

    Returns:
        The node's output value.
    """
    kwargs = {f"{name}_{ATTRIBUTE_TYPES[op.attribute(name).type].symbolic_suffix}": v for name, v in attributes.items()}
    node = g.op(f"{op.domain}::{op.onnx_name}", *inputs, **kwargs)
    return node.setType(inputs[0].type().with_sizes([None] * 4))
