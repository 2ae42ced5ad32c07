"""A small writer of standard-ONNX function bodies: nodes with generated names and attribute references.

The fallback functions of the holocron ops are built with it, so each body reads as a sequence of ONNX op calls::

    body = FunctionBuilder(ADD2D)
    patches = body("Conv", planes, one_hot, strides=body.ref("strides"))
    return body.function(opset, Y=patches)
"""

import itertools
from dataclasses import dataclass

import onnx
from onnx import helper

from holocron.contract import FIRST_OPSET, LAST_OPSET, Attribute, OpContract

from ._attributes import attribute_ref, default_attribute

__all__ = ["AttrRef", "FunctionBuilder", "check_opset"]


def check_opset(opset: int) -> None:
    """Raise ``ValueError`` unless ``opset`` is a default-domain opset the fallback bodies are valid for."""
    if not FIRST_OPSET <= opset <= LAST_OPSET:
        raise ValueError(f"fallback functions: `opset` must be in [{FIRST_OPSET}, {LAST_OPSET}]; got {opset}")


@dataclass(frozen=True)
class AttrRef:
    """Reference to an attribute of the enclosing function (``ref_attr_name``), used as a node attribute value."""

    attribute: Attribute

    def proto(self, name: str) -> onnx.AttributeProto:
        return attribute_ref(self.attribute, name)


class FunctionBuilder:
    """Accumulates the nodes of a function body of the op ``op``.

    Calling the builder appends one node and returns its output name (unique within the body); attribute values may
    be Python values or :class:`AttrRef`.

    Args:
        op: contract of the op whose fallback function is being written.
    """

    def __init__(self, op: OpContract) -> None:
        self.op = op
        self.nodes: list[onnx.NodeProto] = []
        self._counter = itertools.count()

    def __call__(self, op_type: str, *inputs: str, **attributes: object) -> str:
        """Append a single-output default-domain ``op_type`` node and return its output name."""
        name = f"{op_type.lower()}_{next(self._counter)}"
        refs = {key: value for key, value in attributes.items() if isinstance(value, AttrRef)}
        values = {key: value for key, value in attributes.items() if not isinstance(value, AttrRef)}
        node = helper.make_node(op_type, list(inputs), [name], name=name, **values)  # type: ignore[arg-type]
        node.attribute.extend(ref.proto(key) for key, ref in refs.items())
        self.nodes.append(node)
        return name

    def split(self, value: str, sizes: list[int], axis: int) -> list[str]:
        """``Split`` of ``value`` into pieces of the static ``sizes`` along ``axis``: one node, one output per piece."""
        name = f"split_{next(self._counter)}"
        outputs = [f"{name}_{i}" for i in range(len(sizes))]
        self.nodes.append(helper.make_node("Split", [value, self.ints(*sizes)], outputs, name=name, axis=axis))
        return outputs

    def like(self, value: str, like: str) -> str:
        """``value`` cast to the element type of ``like`` (``CastLike``), so a body serves float and float16 alike."""
        return self("CastLike", value, like)

    def ref(self, name: str) -> AttrRef:
        """Reference to the op's attribute ``name`` (checked against the contract)."""
        return AttrRef(self.op.attribute(name))

    def ints(self, *values: int) -> str:
        """1-D int64 constant."""
        return self("Constant", value_ints=list(values))

    def attribute_value(self, name: str) -> str:
        """The op's attribute ``name`` as a tensor: 1-D int64 for ``ints``, shape ``[1]`` int64 or float scalar."""
        attribute = self.op.attribute(name)
        if attribute.type == "ints":
            return self("Constant", value_ints=self.ref(name))
        if attribute.type == "int":
            return self("Reshape", self("Constant", value_int=self.ref(name)), self.ints(1))
        return self("Constant", value_float=self.ref(name))

    def function(self, opset: int, overload: str = "", **outputs: str) -> onnx.FunctionProto:
        """Close the body: a ``FunctionProto`` named after the op, its outputs bound by name (``Y=value``).

        ``overload`` (ONNX IR >= 10) tells the bodies of one op apart: a node runs the function whose domain, name and
        overload equal its own domain, op type and ``overload`` field.
        """
        check_opset(opset)
        expected = [t.name for t in self.op.outputs]
        if sorted(outputs) != sorted(expected):
            raise ValueError(f"{self.op.onnx_name}: function outputs must be {expected}; got {sorted(outputs)}")
        nodes = list(self.nodes)
        nodes += [helper.make_node("Identity", [outputs[name]], [name], name=name) for name in expected]
        function = helper.make_function(
            self.op.domain,
            self.op.onnx_name,
            inputs=[t.name for t in self.op.inputs],
            outputs=expected,
            nodes=nodes,
            opset_imports=[helper.make_opsetid("", opset)],
            attributes=[a.name for a in self.op.attributes if a.required],
            attribute_protos=[default_attribute(a) for a in self.op.attributes if not a.required],
            doc_string=f"Standard-ONNX fallback of {self.op.domain}::{self.op.onnx_name}:\n{self.op.semantics}",
        )
        function.overload = overload
        return function
