"""to_onnx options: dynamic batch, opset, I/O names, atomic writes, mode handling and argument errors."""

from __future__ import annotations

import onnx
import pytest
import torch
from helpers import custom_op_chain
from torch import nn

from holocron.export import ExportError, OutputExistsError, to_onnx, to_onnx_proto, verify
from holocron.export.model.inputs import make_inputs

SHAPE = (1, 8, 8, 8)


def _custom_block() -> nn.Module:
    return custom_op_chain(8, SHAPE)


@pytest.fixture(scope="module")
def block() -> nn.Module:
    return _custom_block()


@pytest.mark.parametrize("custom_ops", [True, False])
@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_dynamic_batch_exported_at_1_runs_at_3(block: nn.Module, exporter: str, custom_ops: bool) -> None:
    proto = to_onnx_proto(block, make_inputs([SHAPE]), dynamic_batch=True, exporter=exporter, custom_ops=custom_ops)
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.HasField("dim_value")
    report = verify(block, proto, [(3, *SHAPE[1:])], use_kernels=False)
    assert report.outputs[0].shape[0] == 3
    assert report.passed, report.format_table()


def test_static_export_rejects_another_batch(block: nn.Module) -> None:
    proto = to_onnx_proto(block, make_inputs([SHAPE]), exporter="torchscript")
    with pytest.raises(ValueError, match="expects 1,8,8,8"):
        verify(block, proto, [(3, *SHAPE[1:])])


@pytest.mark.parametrize(("exporter", "opset"), [("dynamo", 18), ("torchscript", 18), ("dynamo", 23)])
def test_requested_opset_is_declared_and_runs(block: nn.Module, exporter: str, opset: int) -> None:
    proto = to_onnx_proto(block, make_inputs([SHAPE]), exporter=exporter, opset=opset)
    assert {entry.domain: entry.version for entry in proto.opset_import}[""] == opset
    assert all(entry.version == opset for fn in proto.functions for entry in fn.opset_import if entry.domain == "")
    # Graph inputs keep their element type and shape (torch's own down-conversion next to custom nodes lost them).
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert verify(block, proto, [SHAPE], use_kernels=False).passed


@pytest.mark.parametrize(("exporter", "opset"), [("torchscript", 21), ("dynamo", 17), ("dynamo", 24), ("dynamo", "20")])
def test_unsupported_opset_is_refused(exporter: str, opset: object) -> None:
    with pytest.raises(ValueError, match="opset must be an integer in"):
        to_onnx_proto(nn.ReLU(), make_inputs([SHAPE]), exporter=exporter, opset=opset)  # type: ignore[arg-type]


def test_supported_opsets_are_those_the_fallback_functions_cover() -> None:
    from holocron.export.onnx import ops
    from holocron.export.onnx.exporters import FIRST_OPSET, LAST_OPSET

    assert (FIRST_OPSET, LAST_OPSET) == (ops.FIRST_OPSET, ops.LAST_OPSET)


class TwoInTwoOut(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x + y, x * y


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_io_names_do_not_depend_on_the_exporter(exporter: str) -> None:
    proto = to_onnx_proto(TwoInTwoOut(), make_inputs([SHAPE, SHAPE]), exporter=exporter)
    assert [v.name for v in proto.graph.input] == ["input_0", "input_1"]
    assert [v.name for v in proto.graph.output] == ["output_0", "output_1"]
    assert verify(TwoInTwoOut(), proto, [SHAPE, SHAPE]).passed


def test_export_uses_eval_mode_and_restores_the_callers_mode() -> None:
    model = _custom_block().train()
    proto = to_onnx_proto(model, make_inputs([SHAPE]), exporter="torchscript")
    assert model.training and all(module.training for module in model.modules())
    # Eval-mode BatchNorm (running statistics) is what got exported: it matches eval-mode eager.
    assert verify(model, proto, [SHAPE], use_kernels=False).passed


def test_to_onnx_writes_once_and_keeps_existing_files(tmp_path) -> None:
    target = tmp_path / "relu.onnx"
    assert to_onnx(nn.ReLU(), make_inputs([SHAPE]), target, exporter="torchscript") == target
    onnx.checker.check_model(onnx.load(target), full_check=True)
    before = target.read_bytes()
    with pytest.raises(OutputExistsError):
        to_onnx(nn.Sigmoid(), make_inputs([SHAPE]), target, exporter="torchscript")
    assert target.read_bytes() == before
    to_onnx(nn.Sigmoid(), make_inputs([SHAPE]), target, exporter="torchscript", overwrite=True)
    assert target.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["relu.onnx"]  # no temporary file left behind


def test_failed_export_leaves_no_file(tmp_path) -> None:
    class Unexportable(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("cannot be traced")

    target = tmp_path / "bad.onnx"
    for exporter in ("dynamo", "torchscript"):
        with pytest.raises(ExportError, match=f"{exporter} exporter failed: .*cannot be traced"):
            to_onnx(Unexportable(), make_inputs([SHAPE]), target, exporter=exporter)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"model": "not a module"}, TypeError, "model must be a torch.nn.Module"),
        ({"args": [1.0]}, TypeError, r"args\[0\] must be a torch.Tensor"),
        ({"args": []}, TypeError, "args must be a tensor or a non-empty sequence"),
        ({"exporter": "jit"}, ValueError, "exporter must be one of dynamo, torchscript"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, error: type[Exception], match: str) -> None:
    call = {"model": nn.ReLU(), "args": make_inputs([SHAPE])} | kwargs
    with pytest.raises(error, match=match):
        to_onnx_proto(call.pop("model"), call.pop("args"), **call)
