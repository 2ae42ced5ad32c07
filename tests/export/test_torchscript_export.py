"""to_torchscript: archives that torch.jit.load reads back and that match eager PyTorch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import holocron.nn as hnn
from holocron.export import ExportError, OutputExistsError, to_torchscript, verify_torchscript
from holocron.export.model.inputs import make_inputs
from holocron.export.torchscript import TracingFallbackWarning

SHAPE = (2, 8, 8, 8)


@pytest.fixture(scope="module")
def model() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(
            hnn.Add2d(8, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            hnn.Involution2d(8, 3, padding=1, groups=2),
            hnn.LambdaLayer(8, 8, dim_k=4, r=3, num_heads=2),
            hnn.DropBlock2d(p=0.3, block_size=3),
            hnn.GlobalAvgPool2d(flatten=True),
        ).eval()


def test_round_trip_matches_eager(model: nn.Module, tmp_path) -> None:
    path = to_torchscript(model, tmp_path / "model.pt")
    loaded = torch.jit.load(str(path))
    (x,) = make_inputs([SHAPE], seed=5)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    # The archive runs at another batch size too (scripting keeps shapes symbolic).
    (x3,) = make_inputs([(3, *SHAPE[1:])], seed=6)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x3), model(x3))
    assert verify_torchscript(model, path, [SHAPE]).passed


def test_archive_is_saved_in_eval_mode_and_the_caller_keeps_its_mode(model: nn.Module, tmp_path) -> None:
    model.train()
    try:
        path = to_torchscript(model, tmp_path / "model.pt")
        assert model.training
    finally:
        model.eval()
    loaded = torch.jit.load(str(path))
    assert not loaded.training
    (x,) = make_inputs([SHAPE])
    with torch.no_grad():
        # DropBlock is active in training mode: equality with eval-mode eager shows the archive is in eval mode.
        torch.testing.assert_close(loaded(x), model(x))


def test_existing_archive_kept_without_overwrite(tmp_path) -> None:
    path = to_torchscript(nn.ReLU(), tmp_path / "a.pt")
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="already exists"):
        to_torchscript(nn.Sigmoid(), path)
    assert path.read_bytes() == before
    to_torchscript(nn.Sigmoid(), path, overwrite=True)
    assert path.read_bytes() != before
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]


class NotScriptable(nn.Module):
    """``forward`` takes ``*args``, which torch.jit.script rejects; tracing handles it."""

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return torch.relu(args[0]) * 2


def test_tracing_fallback_only_with_example_inputs_and_with_a_warning(tmp_path) -> None:
    with pytest.raises(ExportError, match=r"torch\.jit\.script failed"):
        to_torchscript(NotScriptable(), tmp_path / "no.pt")
    assert not list(tmp_path.iterdir())

    example = make_inputs([SHAPE])
    with pytest.warns(TracingFallbackWarning, match=r"torch\.jit\.trace"):
        path = to_torchscript(NotScriptable(), tmp_path / "traced.pt", example_inputs=example)
    assert verify_torchscript(NotScriptable(), path, [SHAPE]).passed


def test_verify_torchscript_detects_a_different_model(model: nn.Module, tmp_path) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        other = hnn.Add2d(8, 8, 3, padding=1).eval()
    path = to_torchscript(other, tmp_path / "other.pt")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        reference = hnn.Add2d(8, 8, 3, padding=1).eval()
    report = verify_torchscript(reference, path, [SHAPE])
    assert not report.passed
    assert report.outputs[0].max_abs_error > 1e-3
