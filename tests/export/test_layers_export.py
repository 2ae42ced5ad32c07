"""Every non-loss layer of holocron.nn, in several configurations, through both ONNX exporters.

Each export must pass ``onnx.checker.check_model(full_check=True)`` and, run in a plain onnxruntime (the holocron
ops executing their standard-ONNX fallback functions), match eager PyTorch within float32 tolerances (atol 1e-5,
rtol 1e-4) on seeded random inputs.

The configurations of one layer are exported together, as parallel branches of one model with one output each:
the dynamo exporter has a fixed cost of about a second per export, and the comparison stays per configuration.
"""

from __future__ import annotations

from collections.abc import Callable

import onnx
import pytest
import torch
from torch import nn

import holocron.nn as hnn
from holocron.export import to_onnx_proto, verify
from holocron.export.model.inputs import make_inputs
from holocron.export.onnx.finalize import ensure_schemas_registered

SHAPE = (1, 8, 12, 12)


class JitCall(nn.Module):
    """Holds a ConcatDownsample2dJit (a TorchScript class, not a module) and calls it, as a model using it would."""

    def __init__(self, scale_factor: int) -> None:
        super().__init__()
        self.down = hnn.ConcatDownsample2dJit(scale_factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(x)


#: layer name -> its configurations (id, builder), all applied to a SHAPE input. Losses and the loss wrapper are
#: not layers one exports.
LAYER_CASES: dict[str, list[tuple[str, Callable[[], nn.Module]]]] = {
    "HardMish": [("default", lambda: hnn.HardMish())],
    "NLReLU": [("beta1", lambda: hnn.NLReLU()), ("beta0.5", lambda: hnn.NLReLU(beta=0.5))],
    "FReLU": [("k3", lambda: hnn.FReLU(8)), ("k5", lambda: hnn.FReLU(8, kernel_size=5))],
    "NormConv2d": [
        ("k3-p1", lambda: hnn.NormConv2d(8, 8, 3, padding=1)),
        ("s2-g2-reflect", lambda: hnn.NormConv2d(8, 4, 3, stride=2, padding=1, groups=2, padding_mode="reflect")),
    ],
    "Add2d": [
        ("k3-p1", lambda: hnn.Add2d(8, 4, 3, padding=1)),
        (
            "s2-d2-g2-nobias-normalized",
            lambda: hnn.Add2d(8, 8, 3, stride=2, padding=2, dilation=2, groups=2, bias=False, normalize_slices=True),
        ),
        ("replicate", lambda: hnn.Add2d(8, 4, 3, padding=1, padding_mode="replicate")),
    ],
    "SlimConv2d": [
        ("k3-p1", lambda: hnn.SlimConv2d(8, 3, padding=1)),
        ("s2-r2", lambda: hnn.SlimConv2d(8, 3, stride=2, padding=1, r=2)),
    ],
    "PyConv2d": [
        ("2levels", lambda: hnn.PyConv2d(8, 8, 3, num_levels=2, padding=1)),
        ("3levels", lambda: hnn.PyConv2d(8, 16, 3, num_levels=3, padding=1)),
    ],
    "Involution2d": [
        ("k3-p1", lambda: hnn.Involution2d(8, 3, padding=1)),
        ("s2-g2-r2", lambda: hnn.Involution2d(8, 3, padding=1, stride=2, groups=2, reduction_ratio=2)),
        ("d2-g4", lambda: hnn.Involution2d(8, 3, padding=2, dilation=2, groups=4)),
    ],
    "DropBlock2d": [("p0.2-b3", lambda: hnn.DropBlock2d(p=0.2, block_size=3))],
    "ConcatDownsample2d": [("x2", lambda: hnn.ConcatDownsample2d(2)), ("x3", lambda: hnn.ConcatDownsample2d(3))],
    "ConcatDownsample2dJit": [("x2", lambda: JitCall(2)), ("x3", lambda: JitCall(3))],
    "GlobalAvgPool2d": [("keepdims", lambda: hnn.GlobalAvgPool2d()), ("flatten", lambda: hnn.GlobalAvgPool2d(True))],
    "GlobalMaxPool2d": [("keepdims", lambda: hnn.GlobalMaxPool2d()), ("flatten", lambda: hnn.GlobalMaxPool2d(True))],
    "BlurPool2d": [("k3-s2", lambda: hnn.BlurPool2d(8)), ("k5-s1", lambda: hnn.BlurPool2d(8, kernel_size=5, stride=1))],
    "SPP": [("3-5", lambda: hnn.SPP([3, 5])), ("5", lambda: hnn.SPP([5]))],
    "ZPool": [("dim1", lambda: hnn.ZPool()), ("dim2", lambda: hnn.ZPool(dim=2))],
    "SAM": [("default", lambda: hnn.SAM(8))],
    "LambdaLayer": [
        ("local-r3", lambda: hnn.LambdaLayer(8, 8, dim_k=4, r=3, num_heads=2)),
        ("global-u2", lambda: hnn.LambdaLayer(8, 8, dim_k=4, n=SHAPE[2] * SHAPE[3], num_heads=4, dim_u=2)),
    ],
    "TripletAttention": [("default", lambda: hnn.TripletAttention())],
}

EXPORTERS = ("dynamo", "torchscript")


class Branches(nn.Module):
    """Applies each layer to the same input; one output per layer."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(layer(x) for layer in self.layers)


def build_branches(layer_name: str, seeded: Callable[..., nn.Module]) -> tuple[Branches, list[str]]:
    """The configurations of ``layer_name`` as one model, and their ids in output order."""
    cases = LAYER_CASES[layer_name]
    return seeded(lambda: Branches([build() for _, build in cases])), [case_id for case_id, _ in cases]


def test_cases_cover_every_non_loss_layer() -> None:
    losses = {name for name in hnn.__all__ if "Loss" in name or "CrossEntropy" in name or name.endswith("Wrapper")}
    layers = {name for name in hnn.__all__ if name != "functional"} - losses
    assert set(LAYER_CASES) == layers


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("layer_name", sorted(LAYER_CASES))
def test_layer_exports_and_matches_eager(layer_name: str, exporter: str, seeded) -> None:
    model, case_ids = build_branches(layer_name, seeded)
    proto = to_onnx_proto(model, make_inputs([SHAPE], seed=1), exporter=exporter)

    ensure_schemas_registered()
    onnx.checker.check_model(proto, full_check=True)
    report = verify(model, proto, [SHAPE], atol=1e-5, rtol=1e-4, seed=2, use_kernels=False)
    assert len(report.outputs) == len(case_ids)
    assert report.execution_path in ("onnx-fallback", "standard-onnx")
    failed = [case_id for case_id, out in zip(case_ids, report.outputs, strict=True) if not out.passed]
    assert not failed, f"{layer_name} {failed} via {exporter}:\n{report.format_table()}"
