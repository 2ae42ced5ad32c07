"""A served model's ``config.pbtxt``: its signature (inputs and outputs with Triton data types and dims) and the
config text for the onnxruntime or the PyTorch backend."""

from __future__ import annotations

from dataclasses import dataclass

import onnx
import torch

from .options import KINDS, TritonOptions

__all__ = ["ModelSignature", "TensorSpec", "TorchScriptModel", "config_pbtxt"]


# ONNX element type -> Triton data type (the types an exported holocron model can carry at its boundary).
_TRITON_TYPES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
    onnx.TensorProto.BFLOAT16: "TYPE_BF16",
    onnx.TensorProto.DOUBLE: "TYPE_FP64",
    onnx.TensorProto.INT8: "TYPE_INT8",
    onnx.TensorProto.INT16: "TYPE_INT16",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.UINT8: "TYPE_UINT8",
    onnx.TensorProto.BOOL: "TYPE_BOOL",
}
# torch dtype -> Triton data type (the boundary of a TorchScript model).
_TORCH_TRITON_TYPES: dict[torch.dtype, str] = {
    torch.float32: "TYPE_FP32",
    torch.float16: "TYPE_FP16",
    torch.bfloat16: "TYPE_BF16",
    torch.float64: "TYPE_FP64",
    torch.int8: "TYPE_INT8",
    torch.int16: "TYPE_INT16",
    torch.int32: "TYPE_INT32",
    torch.int64: "TYPE_INT64",
    torch.uint8: "TYPE_UINT8",
    torch.bool: "TYPE_BOOL",
}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a served model: its name, Triton data type and dims (-1 where not fixed)."""

    name: str
    data_type: str
    dims: tuple[int, ...]


@dataclass(frozen=True)
class ModelSignature:
    """The inputs and outputs the config declares, in the model's order."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @classmethod
    def of_onnx(cls, model: onnx.ModelProto) -> ModelSignature:
        """The graph's inputs (initializers left out) and outputs, with their names, element types and dims.

        Raises:
            ValueError: a value without a shape, or of an element type Triton has no data type for.
        """
        initializers = {init.name for init in model.graph.initializer}
        inputs = [value for value in model.graph.input if value.name not in initializers]
        return cls(
            tuple(_onnx_spec("input", value) for value in inputs),
            tuple(_onnx_spec("output", value) for value in model.graph.output),
        )

    @classmethod
    def of_tensors(cls, inputs: tuple[torch.Tensor, ...], outputs: tuple[torch.Tensor, ...]) -> ModelSignature:
        """A TorchScript model's signature from example inputs and the outputs it returned for them.

        Names follow the PyTorch backend's positional convention: ``INPUT__0``, ``INPUT__1``, ... and ``OUTPUT__0``,
        ... in argument and return order. Dims are the example's shapes.

        Raises:
            ValueError: a tensor of a dtype Triton has no data type for.
        """
        return cls(
            tuple(_torch_spec(f"INPUT__{index}", tensor) for index, tensor in enumerate(inputs)),
            tuple(_torch_spec(f"OUTPUT__{index}", tensor) for index, tensor in enumerate(outputs)),
        )


def _onnx_spec(kind: str, value: onnx.ValueInfoProto) -> TensorSpec:
    elem_type = value.type.tensor_type.elem_type
    if elem_type not in _TRITON_TYPES:
        raise ValueError(
            f"graph {kind} {value.name!r} has ONNX element type "
            f"{onnx.TensorProto.DataType.Name(elem_type)}, which has no Triton data type here"
        )
    return TensorSpec(value.name, _TRITON_TYPES[elem_type], tuple(_dims(value)))


def _torch_spec(name: str, tensor: torch.Tensor) -> TensorSpec:
    if tensor.dtype not in _TORCH_TRITON_TYPES:
        raise ValueError(f"model {name} has dtype {tensor.dtype}, which has no Triton data type here")
    return TensorSpec(name, _TORCH_TRITON_TYPES[tensor.dtype], tuple(tensor.shape))


@dataclass(frozen=True)
class TorchScriptModel:
    """A TorchScript archive to serve with Triton's PyTorch backend, and its signature.

    Args:
        archive: the bytes ``torch.jit.save`` wrote.
        signature: its inputs and outputs (:meth:`ModelSignature.of_tensors`).
    """

    archive: bytes
    signature: ModelSignature


def _quote(text: str) -> str:
    """``text`` as a protobuf text-format string literal."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in {'"', "\\"}:
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _dims(value: onnx.ValueInfoProto) -> list[int]:
    """Dimensions of a graph input/output, -1 for symbolic or unknown ones."""
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        raise ValueError(f"graph value {value.name!r} has no shape; Triton needs the rank of every input and output")
    return [dim.dim_value if dim.HasField("dim_value") else -1 for dim in tensor.shape.dim]


def _io_block(kind: str, specs: tuple[TensorSpec, ...], batching: bool) -> list[str]:
    lines = [f"{kind} ["]
    for index, spec in enumerate(specs):
        dims = list(spec.dims)
        if batching:
            if not dims or dims[0] != -1:
                raise ValueError(
                    f"`max_batch_size` > 0 needs a dynamic batch dimension, but graph {kind} {spec.name!r} has "
                    f"shape {dims}; export with a dynamic batch (--dynamic-batch)"
                )
            dims = dims[1:]
        lines += [
            "  {",
            f"    name: {_quote(spec.name)}",
            f"    data_type: {spec.data_type}",
            f"    dims: [ {', '.join(str(d) for d in dims)} ]",
            "  }" + ("," if index < len(specs) - 1 else ""),
        ]
    lines.append("]")
    return lines


def config_pbtxt(model: onnx.ModelProto | TorchScriptModel, options: TritonOptions, library_path: str | None) -> str:
    """The ``config.pbtxt`` of ``model`` for Triton's onnxruntime or PyTorch backend (``options.backend``).

    Args:
        model: the ONNX model (its graph inputs and outputs become the config's) or the TorchScript archive with its
            signature (whose first dimension a batching config treats as the batch).
        options: name, backend, batching and instances.
        library_path: op library as the server opens it; None writes no ``model_operations``.

    Returns:
        The config in protobuf text format (``inference.ModelConfig``).

    Raises:
        ValueError: batching asked for a model without a dynamic batch dimension, an unsupported element type, or
            a model of the other backend's kind.
    """
    if isinstance(model, TorchScriptModel) != (options.backend == "pytorch"):
        what = "a TorchScript archive" if options.backend == "pytorch" else "an ONNX model"
        raise ValueError(f"backend {options.backend!r} serves {what}; got {type(model).__name__}")
    batching = options.max_batch_size > 0
    if isinstance(model, TorchScriptModel):
        # A TorchScript archive has no symbolic dims: the example's first dimension is the batch when batching.
        signature = model.signature
        if batching:
            signature = ModelSignature(tuple(map(_batched, signature.inputs)), tuple(map(_batched, signature.outputs)))
    else:
        signature = ModelSignature.of_onnx(model)
    lines = [
        f"name: {_quote(options.model_name)}",
        f"backend: {_quote(options.backend)}",
        f"max_batch_size: {options.max_batch_size}",
    ]
    lines += _io_block("input", signature.inputs, batching)
    lines += _io_block("output", signature.outputs, batching)
    if batching:
        lines.append("dynamic_batching { }")
    kind = KINDS[options.instance_kind]
    lines += ["instance_group [", "  {", f"    count: {options.instances}", f"    kind: {kind}", "  }", "]"]
    if library_path is not None:
        if options.backend == "pytorch":
            lines += [
                "# Triton's PyTorch backend does not open model_operations: start tritonserver with",
                f"# LD_PRELOAD={library_path} (and libtorch on LD_LIBRARY_PATH), see holocron's README.",
            ]
        lines += ["model_operations {", f"  op_library_filename: {_quote(library_path)}", "}"]
    return "\n".join(lines) + "\n"


def _batched(spec: TensorSpec) -> TensorSpec:
    if not spec.dims:
        raise ValueError(f"`max_batch_size` > 0 needs a batch dimension, but {spec.name} is a scalar")
    return TensorSpec(spec.name, spec.data_type, (-1, *spec.dims[1:]))
