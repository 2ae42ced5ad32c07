"""Whole-model pickles made under upstream holocron (``pylocron``), exported and verified by the command lines.

Each model has the shape of a network of upstream's zoo that uses a class whose state differs from ours (a RedNet's
Involution2d stages, a ReXNet/Darknet-style stem with NLReLU and BlurPool2d, a LambdaResNet block): our layers, each
with the instance state upstream pickles carry (``upstream_state``), saved whole with ``torch.save``. Containers are
``torch.nn`` ones, so the pickle names only classes that exist here. ``holocron-export --trust-pickle`` exports each one
(kernels, verified against the pickle's own eager forward) and ``holocron-verify`` passes the artifact.

A model that fails in ``forward`` is named where it fails: the module's path and class, not only the input shape.
"""

from __future__ import annotations

import copy
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers import one_line_error, run_cli
from torch import nn
from upstream_state import CASES, as_upstream

from holocron import nn as hnn

Layer = nn.Module | str  # a torch layer, or the id of a case of ``upstream_state.CASES``


def _stem() -> list[Layer]:
    return [nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)]


def _rednet() -> list[Layer]:
    head = [hnn.GlobalAvgPool2d(flatten=True), nn.Linear(8, 10)]
    return [*_stem(), nn.ReLU(), "Involution2d-s2", nn.BatchNorm2d(8), nn.ReLU(), "Involution2d-g2-d2", *head]


def _darknet() -> list[Layer]:
    blur = ["BlurPool2d", nn.Conv2d(8, 4, 1), "BlurPool2d-k5-s1"]
    return [*_stem(), "NLReLU-0.2.1", *blur, hnn.GlobalAvgPool2d(flatten=True)]


def _lambda_resnet() -> list[Layer]:
    middle = [nn.BatchNorm2d(32), nn.ReLU(), nn.Conv2d(32, 8, 1)]
    return [*_stem(), nn.ReLU(), "LambdaLayer-local", *middle, "LambdaLayer-global"]


# model -> input shape (the global Lambda layer is built for 8x8 = 64 positions)
MODELS: dict[str, tuple[Callable[[], list[Layer]], str]] = {
    "rednet": (_rednet, "1,3,16,16"),
    "darknet": (_darknet, "1,3,16,16"),
    "lambda_resnet": (_lambda_resnet, "1,3,8,8"),
}


def _models(name: str) -> tuple[nn.Sequential, nn.Sequential]:
    """The model built with our layers (BatchNorm calibrated), and the same weights with upstream's instance state."""
    build, shape = MODELS[name]
    torch.manual_seed(0)
    layers = build()
    ours = _calibrated(nn.Sequential(*(CASES[x][0]() if isinstance(x, str) else x for x in layers)), shape)
    upstream = copy.deepcopy(ours)
    for index, layer in enumerate(layers):
        if isinstance(layer, str):
            upstream[index] = as_upstream(upstream[index], CASES[layer][1])
    return ours, upstream


def _calibrated(model: nn.Module, shape: str) -> nn.Module:
    """BatchNorm statistics from a few batches, so verification compares a model with realistic activations."""
    sizes = [int(size) for size in shape.split(",")]
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, *sizes[1:]))
    return model.eval()


def _layout(module: nn.Module) -> list[tuple[str, set[str]]]:
    return [(name, {*sub.__dict__, *sub._buffers, *sub._parameters}) for name, sub in module.named_modules()]


@pytest.mark.parametrize("name", list(MODELS))
def test_upstream_model_pickle_exports_and_verifies(tmp_path: Path, name: str) -> None:
    shape = MODELS[name][1]
    ours, upstream = _models(name)
    assert _layout(upstream) != _layout(ours)  # the file really holds upstream's state
    torch.save(upstream, tmp_path / "model.pth")

    exported = run_cli("model.pth", "--trust-pickle", "--input-shape", shape, "-o", "model.onnx", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    verified = run_cli("model.pth", "model.onnx", "--trust-pickle", "--input-shape", shape, cwd=tmp_path,
                       name="holocron-verify")  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_forward_failure_names_the_module_and_the_likely_cause(tmp_path: Path) -> None:
    model = _models("darknet")[0]
    del model[4].__dict__["dilation"]  # as if pickled from a Conv2d class that kept no dilation
    torch.save(model, tmp_path / "model.pth")
    result = run_cli("model.pth", "--trust-pickle", "--input-shape", "1,3,16,16", "-o", "model.onnx", cwd=tmp_path)
    assert result.returncode == 1
    line = one_line_error(result)
    assert "the model fails in module '4' (Conv2d) on inputs of shape 1,3,16,16" in line
    assert "'Conv2d' object has no attribute 'dilation'" in line
    assert "pickled from another version of torch.nn.modules.conv.Conv2d" in line
    assert not (tmp_path / "model.onnx").exists()


def test_forward_failure_in_a_layer_names_it(tmp_path: Path) -> None:
    torch.save(_models("darknet")[0], tmp_path / "model.pth")
    result = run_cli("model.pth", "--trust-pickle", "--input-shape", "1,5,16,16", "-o", "model.onnx", cwd=tmp_path)
    assert result.returncode == 1
    line = one_line_error(result)
    assert "the model fails in module '0' (Conv2d) on inputs of shape 1,5,16,16" in line
    assert "pickled from another version" not in line


def test_pickle_of_upstream_zoo_code_points_to_upstream_beside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A class of upstream's zoo (holocron.models), which this package does not ship, defined here only while saving
    zoo = types.ModuleType("holocron.models")
    zoo_model = type("ZooNet", (nn.Sequential,), {"__module__": "holocron.models"})
    zoo.ZooNet = zoo_model  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "holocron.models", zoo)
    torch.save(zoo_model(nn.Conv2d(3, 4, 1)), tmp_path / "model.pth")
    monkeypatch.delitem(sys.modules, "holocron.models")

    env = {k: v for k, v in os.environ.items() if k != "HOLOCRON_UPSTREAM_PATH"}
    result = run_cli("model.pth", "--trust-pickle", "--input-shape", "1,3,8,8", "-o", "model.onnx", cwd=tmp_path,
                     env=env)  # fmt: skip
    assert result.returncode == 1
    line = one_line_error(result)
    assert "'holocron.models'" in line and "HOLOCRON_UPSTREAM_PATH" in line, line
    assert "PYTHONPATH" not in line
