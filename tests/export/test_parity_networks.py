"""The default verification on the three reference networks: correct exports pass, planted defects fail.

Correct exports of AdderNet ResNet-20, RedNet-26 and LambdaResNet-26 (narrow variants, fresh and with calibrated
BatchNorm statistics) pass the float64-referenced criterion over several seeds and batch sizes 1 and 4, on holocron's
kernels and on the fallback functions, module boundaries included. Defects planted in an exported model (a holocron
node's pads shifted by one with the same output shape, a spatially flipped Lambda position kernel, one weight
element zeroed in a middle layer) fail, and localization names the edited module.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from holocron._networks import NETWORKS, calibrate_batchnorm
from holocron.export import VerificationReport, assert_close_to_eager, to_onnx_proto, verify

pytestmark = pytest.mark.usefixtures("require_kernels")

#: The holocron op of each network, and the module whose node the defects edit (a middle layer).
_EDITED = {
    "addernet_resnet20": "stages.4.add2",
    "rednet26": "stages.3.spatial",
    "lambda_resnet26": "stages.4.spatial",
}


def _network(name: str, calibrated: bool) -> nn.Module:
    spec = NETWORKS[name]
    model = spec.builder(**spec.narrow_kwargs)
    return calibrate_batchnorm(model, spec.test_input_shape) if calibrated else model


def _export(model: nn.Module, name: str, exporter: str, dynamic_batch: bool) -> onnx.ModelProto:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        example = torch.zeros(NETWORKS[name].test_input_shape)
        return to_onnx_proto(model, (example,), exporter=exporter, dynamic_batch=dynamic_batch)  # type: ignore[arg-type]


_CACHE: dict[tuple[str, bool, str], tuple[nn.Module, onnx.ModelProto]] = {}


def _exported(name: str, calibrated: bool, exporter: str = "torchscript") -> tuple[nn.Module, onnx.ModelProto]:
    """The network and its export (dynamic batch with the TorchScript exporter), built once per test session."""
    key = (name, calibrated, exporter)
    if key not in _CACHE:
        model = _network(name, calibrated)
        _CACHE[key] = (model, _export(model, name, exporter, dynamic_batch=exporter == "torchscript"))
    return _CACHE[key]


def _shape(name: str, batch: int) -> tuple[int, ...]:
    return (batch, *NETWORKS[name].test_input_shape[1:])


def _holocron_node(proto: onnx.ModelProto, module: str) -> onnx.NodeProto:
    """The holocron node that ``module`` emitted (TorchScript exporter: by name; dynamo: by its scope metadata)."""
    for node in proto.graph.node:
        if node.domain != "holocron":
            continue
        scopes = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), "")
        path = "/" + "/".join(module.split(".")) + "/"
        if f"'{module}', " in scopes and scopes.index(f"'{module}', ") == scopes.rindex("', '") - len(module) - 1:
            return node
        if node.name.replace("/stages/stages.", "/stages/").startswith(path):
            return node
    raise AssertionError(f"no holocron node of {module} in the model")


def _edited(proto: onnx.ModelProto, edit: Callable[[onnx.ModelProto, onnx.NodeProto], None], module: str):
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    edit(copy, _holocron_node(copy, module))
    return copy


def _shift_pads(model: onnx.ModelProto, node: onnx.NodeProto) -> None:
    pads = next(attr for attr in node.attribute if attr.name == "pads")
    top, left, bottom, right = pads.ints
    assert top == bottom >= 1
    pads.ints[:] = [top - 1, left, bottom + 1, right]  # same output shape, window moved down by one row


def _initializer(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(init for init in model.graph.initializer if init.name == name)


def _flip_position_kernel(model: onnx.ModelProto, node: onnx.NodeProto) -> None:
    tensor = _initializer(model, node.input[3])  # Lambda(queries, keys, values, R): R is (k, u, 1, r, r)
    values = numpy_helper.to_array(tensor)
    assert values.ndim == 5 and values.shape[-1] == values.shape[-2] > 1
    tensor.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(values[..., ::-1, ::-1]), tensor.name))


def _zero_one_weight(model: onnx.ModelProto, node: onnx.NodeProto) -> None:
    tensor = _initializer(model, node.input[1])  # Add2d(x, weight)
    values = numpy_helper.to_array(tensor).copy()
    index = values.size // 2
    assert values.flat[index] != 0
    values.flat[index] = 0.0
    tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))


def _assert_passes(report: VerificationReport) -> None:
    assert report.criterion == "float64-referenced", report.criterion_note
    assert report.passed, report.format_table()


# --------------------------------------------------------------------------------------------------------------------
# Correct exports pass
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_kernels", [True, False], ids=["kernels", "fallback"])
@pytest.mark.parametrize("calibrated", [False, True], ids=["fresh", "calibrated"])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_correct_exports_pass_over_seeds_and_batch_sizes(name: str, calibrated: bool, use_kernels: bool) -> None:
    model, proto = _exported(name, calibrated)
    for batch, seed, localize in ((1, 0, False), (4, 1, True)):
        report = verify(model, proto, [_shape(name, batch)], seed=seed, use_kernels=use_kernels, localize=localize)
        _assert_passes(report)
        assert report.execution_path == ("holocron-kernels" if use_kernels else "onnx-fallback")
        assert report.input_shapes == (_shape(name, batch),)
        if localize:
            # Module boundaries are compared too: the spatial layers among them.
            assert report.first_divergence is None
            assert any(mod.module == _EDITED[name] for mod in report.modules)
            assert len(report.modules) > 30


@pytest.mark.parametrize("name", ["rednet26", "lambda_resnet26"])
def test_dynamo_exports_pass_on_both_paths(name: str) -> None:
    model, proto = _exported(name, calibrated=True, exporter="dynamo")
    for use_kernels in (True, False):
        report = verify(model, proto, [_shape(name, 4)], seed=3, use_kernels=use_kernels, localize=True)
        _assert_passes(report)
        assert any(mod.module == _EDITED[name] for mod in report.modules)


def test_eager_float32_error_is_the_yardstick() -> None:
    # The calibrated networks' outputs carry float32 rounding errors of order 1e-7..1e-6 that an export reproduces,
    # not zero: the bound is a multiple of that error, not of an arbitrary tolerance.
    model, proto = _exported("lambda_resnet26", calibrated=True)
    out = verify(model, proto, [_shape("lambda_resnet26", 4)]).outputs[0]
    assert out.eager_error is not None and out.exported_error is not None and out.bound is not None
    assert out.eager_error > 0 and 0 < out.exported_error <= out.bound
    assert out.bound == pytest.approx(4 * out.eager_error)
    assert out.ratio == pytest.approx(out.exported_error / out.eager_error)


# --------------------------------------------------------------------------------------------------------------------
# Planted defects fail, and localization names the edited module
# --------------------------------------------------------------------------------------------------------------------

_DEFECTS = [
    ("addernet_resnet20", _shift_pads),
    ("rednet26", _shift_pads),
    ("lambda_resnet26", _flip_position_kernel),
    ("addernet_resnet20", _zero_one_weight),
]


@pytest.mark.parametrize(("name", "edit"), _DEFECTS, ids=[f"{n}-{e.__name__.strip('_')}" for n, e in _DEFECTS])
def test_planted_defects_fail_and_are_localized(name: str, edit: Callable[..., None]) -> None:
    model, proto = _exported(name, calibrated=True)
    broken = _edited(proto, edit, _EDITED[name])
    shape = _shape(name, 4)
    for use_kernels in (True, False):
        report = verify(model, broken, [shape], use_kernels=use_kernels)
        assert not report.passed, report.format_table()
    report = verify(model, broken, [shape], localize=True)
    assert not report.passed
    first = report.first_divergence
    assert first is not None and first["module"] == _EDITED[name], report.format_table()
    assert first["max_abs_err"] > first["bound"] >= 4 * first["reference_err"]
    assert first["criterion"] == "float64-referenced"
    table = report.format_table()
    assert f"first divergence: module {_EDITED[name]!r}" in table
    with pytest.raises(AssertionError, match=f"first divergence: module '{_EDITED[name]}'"):
        assert_close_to_eager(model, broken, [shape], localize=True)


def test_dynamo_planted_defect_is_localized() -> None:
    name = "rednet26"
    model, proto = _exported(name, calibrated=True, exporter="dynamo")
    broken = _edited(proto, _shift_pads, _EDITED[name])
    report = verify(model, broken, [_shape(name, 4)], localize=True, use_kernels=False)
    assert not report.outputs[0].passed
    assert report.first_divergence is not None and report.first_divergence["module"] == _EDITED[name]


def test_a_defect_hidden_at_the_output_is_caught_at_its_module() -> None:
    # A fresh AdderNet maps every input to nearly the same logits (its adder outputs are negative, the ReLUs zero
    # them), so a pads shift in its first adder layer leaves the output within the bound: only the module boundary
    # shows the defect.
    name = "addernet_resnet20"
    model, proto = _exported(name, calibrated=False)
    broken = _edited(proto, _shift_pads, "stages.0.add1")
    shape = _shape(name, 4)
    assert verify(model, broken, [shape]).passed
    report = verify(model, broken, [shape], localize=True)
    assert report.outputs[0].passed and not report.passed
    assert report.first_divergence is not None and report.first_divergence["module"] == "stages.0.add1"
