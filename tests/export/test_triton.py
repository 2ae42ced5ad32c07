"""Triton model repositories: Triton's own config schema, and the onnxruntime backend's steps emulated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers import run_cli

from holocron import nn as hnn
from holocron.export import to_onnx_proto
from holocron.export.errors import OutputExistsError
from holocron.export.triton import DEFAULT_SERVER_REPOSITORY, TritonOptions, config_pbtxt, write_repository

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
text_format = pytest.importorskip("google.protobuf.text_format")

MAX_BATCH = 4


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        hnn.Add2d(4, 8, 3, padding=1), torch.nn.BatchNorm2d(8), hnn.Involution2d(8, 3, padding=1, groups=2)
    ).eval()


@pytest.fixture(scope="module")
def exported() -> tuple[torch.nn.Module, onnx.ModelProto]:
    model = _model()
    return model, to_onnx_proto(model, (torch.randn(1, 4, 8, 8),), dynamic_batch=True)


def _library() -> Path:
    from holocron.runtime import library_path

    return Path(library_path())


def _parse(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def _server_session(repo: Path, config: model_config_pb2.ModelConfig, version: int = 1) -> ort.InferenceSession:
    """What Triton's onnxruntime backend does, with ``repo`` mounted at /models: register each library the config
    names, then open ``NAME/VERSION/model.onnx``."""
    options = ort.SessionOptions()
    for operation in config.model_operations.op_library_filename:
        assert operation.startswith(DEFAULT_SERVER_REPOSITORY + "/")
        local = repo / operation.removeprefix(DEFAULT_SERVER_REPOSITORY + "/")
        assert local.is_file(), f"config names {operation}, which is not in the repository"
        options.register_custom_ops_library(str(local))
    model_file = repo / config.name / str(version) / "model.onnx"
    return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])


def test_config_matches_triton_schema_and_model(tmp_path: Path, exported) -> None:
    _, proto = exported
    options = TritonOptions("adder", max_batch_size=MAX_BATCH, instance_kind="cpu", instances=2)
    slot = write_repository(proto, tmp_path / "repo", options, library=_library())
    config = _parse(slot / "config.pbtxt")

    assert config.name == "adder"
    assert config.backend == "onnxruntime"
    assert config.max_batch_size == MAX_BATCH
    assert config.HasField("dynamic_batching")
    assert [(g.count, g.kind) for g in config.instance_group] == [(2, model_config_pb2.ModelInstanceGroup.KIND_CPU)]
    assert [i.name for i in config.input] == [i.name for i in proto.graph.input]
    assert [o.name for o in config.output] == [o.name for o in proto.graph.output]
    assert [list(i.dims) for i in config.input] == [[4, 8, 8]]
    assert [list(o.dims) for o in config.output] == [[8, 8, 8]]
    assert {i.data_type for i in (*config.input, *config.output)} == {model_config_pb2.TYPE_FP32}
    library = _library().name
    assert list(config.model_operations.op_library_filename) == [f"/models/adder/{library}"]
    assert (slot / library).read_bytes() == _library().read_bytes()
    assert sorted(p.name for p in slot.iterdir()) == sorted(["1", "config.pbtxt", library])
    assert [p.name for p in (tmp_path / "repo").iterdir()] == ["adder"], "no staging folder may remain"


@pytest.mark.parametrize("batch", [1, MAX_BATCH])
def test_emulated_backend_run_equals_eager(tmp_path: Path, exported, batch: int) -> None:
    model, proto = exported
    write_repository(proto, tmp_path, TritonOptions("m", max_batch_size=MAX_BATCH), library=_library())
    session = _server_session(tmp_path, _parse(tmp_path / "m" / "config.pbtxt"))
    x = torch.randn(batch, 4, 8, 8)
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_unbatched_config_keeps_full_dims_and_gpu_kind(exported) -> None:
    _, proto = exported
    text = config_pbtxt(proto, TritonOptions("m", instance_kind="gpu"), "/opt/lib/libholocron_ort.so")
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.max_batch_size == 0
    assert not config.HasField("dynamic_batching")
    assert list(config.input[0].dims) == [-1, 4, 8, 8]
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert list(config.model_operations.op_library_filename) == ["/opt/lib/libholocron_ort.so"]


def test_batching_needs_dynamic_batch(tmp_path: Path) -> None:
    static = to_onnx_proto(_model(), (torch.randn(1, 4, 8, 8),))
    with pytest.raises(ValueError, match="dynamic batch"):
        write_repository(static, tmp_path, TritonOptions("m", max_batch_size=2), library=_library())
    assert list(tmp_path.iterdir()) == []


def test_second_model_leaves_first_untouched(tmp_path: Path, exported) -> None:
    _, proto = exported
    first = write_repository(proto, tmp_path, TritonOptions("first"), library=_library())
    before = {p.relative_to(tmp_path): (p.stat().st_mtime_ns, p.read_bytes()) for p in first.rglob("*") if p.is_file()}
    write_repository(proto, tmp_path, TritonOptions("second", model_version=3), library=_library())
    after = {p.relative_to(tmp_path): (p.stat().st_mtime_ns, p.read_bytes()) for p in first.rglob("*") if p.is_file()}
    assert before == after
    assert (tmp_path / "second" / "3" / "model.onnx").is_file()


def test_existing_model_needs_overwrite_and_keeps_other_versions(tmp_path: Path, exported) -> None:
    _, proto = exported
    write_repository(proto, tmp_path, TritonOptions("m", model_version=1), library=_library())
    with pytest.raises(OutputExistsError, match="--force"):
        write_repository(proto, tmp_path, TritonOptions("m", model_version=2), library=_library())
    write_repository(proto, tmp_path, TritonOptions("m", model_version=2), library=_library(), overwrite=True)
    assert sorted(p.name for p in (tmp_path / "m").iterdir() if p.is_dir()) == ["1", "2"]


def test_overwrite_replaces_a_symlink_without_writing_through(tmp_path: Path, exported) -> None:
    _, proto = exported
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("user data")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "m").symlink_to(elsewhere, target_is_directory=True)
    write_repository(proto, repo, TritonOptions("m"), library=_library(), overwrite=True)
    assert not (repo / "m").is_symlink()
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]


def test_model_without_holocron_nodes_gets_no_library(tmp_path: Path) -> None:
    plain = to_onnx_proto(torch.nn.Conv2d(3, 4, 3).eval(), (torch.randn(1, 3, 8, 8),))
    slot = write_repository(plain, tmp_path, TritonOptions("conv", instance_kind="cpu"), library=None)
    config = _parse(slot / "config.pbtxt")
    assert not config.HasField("model_operations")
    assert sorted(p.name for p in slot.iterdir()) == ["1", "config.pbtxt"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model_name": "../x"}, "model_name"),
        ({"model_name": ""}, "model_name"),
        ({"model_name": "m", "model_version": 0}, "model_version"),
        ({"model_name": "m", "instances": 0}, "instances"),
        ({"model_name": "m", "max_batch_size": -1}, "max_batch_size"),
        ({"model_name": "m", "instance_kind": "tpu"}, "instance_kind"),
    ],
)
def test_invalid_options_name_the_argument(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TritonOptions(**kwargs)


def test_to_triton_exports_verifies_and_writes(tmp_path: Path) -> None:
    from holocron.export.triton import to_triton

    model = _model()
    slot = to_triton(
        model, torch.randn(1, 4, 8, 8), tmp_path, model_name="net", max_batch_size=MAX_BATCH, instance_kind="cpu"
    )
    config = _parse(slot / "config.pbtxt")
    assert config.max_batch_size == MAX_BATCH
    session = _server_session(tmp_path, config)
    x = torch.randn(MAX_BATCH, 4, 8, 8)
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-4, atol=1e-4)
    with pytest.raises(OutputExistsError):
        to_triton(model, torch.randn(1, 4, 8, 8), tmp_path, model_name="net")


@pytest.fixture(scope="module")
def torchscript_file(tmp_path_factory) -> tuple[torch.nn.Module, Path]:
    model = _model()
    path = tmp_path_factory.mktemp("triton-cli") / "adder net.pt"
    torch.jit.save(torch.jit.script(model), str(path))
    return model, path


def test_cli_writes_a_repository_that_the_emulated_backend_serves(tmp_path: Path, torchscript_file) -> None:
    model, path = torchscript_file
    repo = tmp_path / "repo"
    args = (path, "--format", "triton", "-o", repo, "--input-shape", "1,4,8,8", "--max-batch-size", MAX_BATCH)
    result = run_cli(*args, "--instance-kind", "cpu", "--instances", 3, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    slot = repo / "adder_net"  # the file name, with the character Triton dislikes replaced
    config = _parse(slot / "config.pbtxt")
    assert (config.name, config.max_batch_size) == ("adder_net", MAX_BATCH)
    assert [(g.count, g.kind) for g in config.instance_group] == [(3, model_config_pb2.ModelInstanceGroup.KIND_CPU)]
    session = _server_session(repo, config)
    for batch in (1, MAX_BATCH):
        x = torch.randn(batch, 4, 8, 8)
        (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-4, atol=1e-4)

    # A second model joins the repository and leaves the first as it was; the first again needs --force.
    before = {p: p.read_bytes() for p in slot.rglob("*") if p.is_file()}
    second = run_cli(
        path, "--format", "triton", "-o", repo, "--input-shape", "1,4,8,8", "--model-name", "b", cwd=tmp_path
    )
    assert second.returncode == 0, second.stderr
    assert {p: p.read_bytes() for p in slot.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in repo.iterdir()) == ["adder_net", "b"]
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 1
    assert "--force" in again.stderr


@pytest.mark.parametrize(
    ("flags", "flag"),
    [
        (("--format", "onnx", "--instances", "2"), "--instances"),
        (("--format", "triton", "--instances", "0"), "--instances"),
        (("--format", "triton", "--model-version", "1e3"), "--model-version"),
        (("--format", "triton", "--model-name", "../up"), "--model-name"),
        (("--format", "triton", "--max-batch-size", "-4"), "--max-batch-size"),
    ],
)
def test_cli_triton_usage_errors_exit_2_naming_the_flag(tmp_path: Path, torchscript_file, flags, flag: str) -> None:
    _, path = torchscript_file
    result = run_cli(path, "--input-shape", "1,4,8,8", "-o", tmp_path / "out", *flags, cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert flag in result.stderr
    assert not (tmp_path / "out").exists()
