"""load_model: the three MODEL kinds told apart by content, pickles refused without trust, clear errors."""

from __future__ import annotations

import zipfile

import pytest
import torch
from torch import nn

import holocron.nn as hnn
from holocron.export import ModelLoadError, load_model
from holocron.export.model.kinds import detect_model_kind

SHAPE = (1, 8, 8, 8)


@pytest.fixture(scope="module")
def model() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(hnn.Add2d(8, 4, 3, padding=1), hnn.HardMish()).eval()


@pytest.fixture(scope="module")
def files(model: nn.Module, tmp_path_factory) -> dict[str, str]:
    """One file of each kind, with suffixes that do not give the kind away."""
    folder = tmp_path_factory.mktemp("models")
    paths = {kind: str(folder / f"{kind}.bin") for kind in ("torchscript", "torch_export", "pickle", "state_dict")}
    torch.jit.save(torch.jit.script(model), paths["torchscript"])
    torch.export.save(torch.export.export(model, (torch.randn(SHAPE),)), paths["torch_export"])
    torch.save(model, paths["pickle"])
    torch.save(model.state_dict(), paths["state_dict"])
    return paths


@pytest.mark.parametrize("kind", ["torchscript", "torch_export", "pickle"])
def test_kind_is_detected_from_contents(kind: str, files: dict[str, str]) -> None:
    assert detect_model_kind(files[kind]) == kind


@pytest.mark.parametrize("kind", ["torchscript", "torch_export", "pickle"])
def test_loaded_model_computes_what_was_saved(kind: str, files: dict[str, str], model: nn.Module) -> None:
    loaded = load_model(files[kind], trust_pickle=kind == "pickle")
    assert loaded.kind == kind
    x = torch.randn(SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), model(x))


def test_torch_export_archive_records_its_example_input_shapes(files: dict[str, str]) -> None:
    loaded = load_model(files["torch_export"])
    assert loaded.example_inputs is not None
    assert [tuple(t.shape) for t in loaded.example_inputs] == [SHAPE]


def test_pickle_is_refused_without_trust(files: dict[str, str]) -> None:
    with pytest.raises(ModelLoadError, match="loading a pickle runs arbitrary code"):
        load_model(files["pickle"])


@pytest.mark.parametrize("trust", [False, True])
def test_state_dict_is_named_as_such(trust: bool, files: dict[str, str]) -> None:
    with pytest.raises(ModelLoadError, match=r"holds a dict \(a state_dict\?\), not a module"):
        load_model(files["state_dict"], trust_pickle=trust)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nope.pt")


def test_directory_and_empty_file(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="not a regular file"):
        load_model(tmp_path)
    empty = tmp_path / "empty.pt"
    empty.touch()
    with pytest.raises(ModelLoadError, match="is empty"):
        load_model(empty)


def test_garbage_and_truncated_files(tmp_path, files: dict[str, str]) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"definitely not a model")
    with pytest.raises(ModelLoadError, match="corrupt or unknown format"):
        load_model(garbage)
    truncated = tmp_path / "truncated.pt"
    with open(files["torchscript"], "rb") as handle:
        truncated.write_bytes(handle.read(200))
    with pytest.raises(ModelLoadError, match="corrupt or unknown format"):
        load_model(truncated)


def test_damaged_archive_member(tmp_path, files: dict[str, str]) -> None:
    """A valid zip whose TorchScript code is damaged: torch.jit.load fails, reported as a load error."""
    damaged = tmp_path / "damaged.pt"
    with zipfile.ZipFile(files["torchscript"]) as source, zipfile.ZipFile(damaged, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if "/code/" in info.filename and info.filename.endswith(".py"):
                data = b"def forward(self):\n    return undefined_name(\n"
            target.writestr(info, data)
    with pytest.raises(ModelLoadError, match="cannot load TorchScript archive"):
        load_model(damaged)


def test_unknown_zip(tmp_path) -> None:
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ModelLoadError, match="zip archive but not a TorchScript"):
        load_model(other)
