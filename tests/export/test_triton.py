"""Triton model repositories: Triton's own config schema, and the onnxruntime backend's steps emulated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers import readme_commands, run_cli

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
    with pytest.raises(OutputExistsError, match="overwrite=True") as refused:
        write_repository(proto, tmp_path, TritonOptions("m", model_version=2), library=_library())
    assert "--force" in refused.value.cli_message
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


def test_to_triton_exports_verifies_and_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from holocron.export.parity import api
    from holocron.export.pipeline import run as pipeline_run
    from holocron.export.pipeline import to_triton

    model = _model()
    verified: list[tuple[int, ...]] = []
    real_verify = api.verify

    def recording_verify(model, proto, shapes, **kwargs):  # the pipeline's verification, recorded
        verified.append(tuple(shapes[0]))
        return real_verify(model, proto, shapes, **kwargs)

    monkeypatch.setattr(pipeline_run, "verify", recording_verify)
    slot = to_triton(
        model, torch.randn(1, 4, 8, 8), tmp_path, model_name="net", max_batch_size=MAX_BATCH, instance_kind="cpu"
    )
    assert verified == [(1, 4, 8, 8), (MAX_BATCH, 4, 8, 8)]
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
    result = run_cli(*args, "--instance-kind", "cpu", "--instances", 3, "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    # Verified at the smallest and the largest batch the server forms, one table each.
    summaries = [line for line in result.stdout.splitlines() if line.startswith("PASSED: ")]
    assert [line.split(" at input ")[1].split(",")[0] for line in summaries] == ["1x4x8x8", f"{MAX_BATCH}x4x8x8"]
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


def _readme_example_model() -> torch.nn.Module:
    """The model of the README's "Example" section."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        hnn.Add2d(16, 16, 3, padding=1),
        torch.nn.GroupNorm(4, 16),
        hnn.Involution2d(16, 3, padding=1, groups=4),
        torch.nn.GroupNorm(4, 16),
        hnn.LambdaLayer(16, 16, dim_k=8, r=3, num_heads=4),
    ).eval()


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
@pytest.mark.parametrize("batching", [0, MAX_BATCH])
def test_config_of_the_readme_example_has_static_output_dims(tmp_path: Path, exporter: str, batching: int) -> None:
    from holocron.export.pipeline import to_triton

    x = torch.randn(1, 16, 16, 16)
    slot = to_triton(
        _readme_example_model(), x, tmp_path, model_name="m", max_batch_size=batching, exporter=exporter, verify=False
    )
    config = _parse(slot / "config.pbtxt")
    expected = [16, 16, 16] if batching else [1, 16, 16, 16]
    assert [list(out.dims) for out in config.output] == [expected]
    assert [list(inp.dims) for inp in config.input] == [expected]


def test_default_instance_kind_fits_a_cpu_only_host(exported) -> None:
    _, proto = exported
    config = text_format.Parse(config_pbtxt(proto, TritonOptions("m"), None), model_config_pb2.ModelConfig())
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_AUTO


def test_repository_without_op_library_serves_on_the_fallback(tmp_path: Path, exported) -> None:
    """The variant for Triton releases before 25.03: no library, no model_operations; a plain onnxruntime session
    (what such a server opens) runs the holocron nodes' fallback functions, equal to eager."""
    model, proto = exported
    slot = write_repository(
        proto, tmp_path, TritonOptions("m", max_batch_size=MAX_BATCH, op_library=False), library=None
    )
    config = _parse(slot / "config.pbtxt")
    assert not config.HasField("model_operations")
    assert sorted(p.name for p in slot.iterdir()) == ["1", "config.pbtxt"]
    session = ort.InferenceSession(str(slot / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 4, 8, 8)
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-4, atol=1e-4)


def test_server_repository_moves_the_library_path(exported) -> None:
    _, proto = exported
    text = config_pbtxt(proto, TritonOptions("m", server_repository="/mnt/models"), None)
    assert "op_library_filename" not in text  # no library given: nothing named
    options = TritonOptions("m", server_repository="/mnt/models/")
    from holocron.export.triton import server_library_path

    assert server_library_path(options, "libholocron_ort.so") == "/mnt/models/m/libholocron_ort.so"
    with pytest.raises(ValueError, match="server_repository"):
        TritonOptions("m", server_repository="mnt/models")


def test_cli_no_op_library_and_server_repository(tmp_path: Path, torchscript_file) -> None:
    _, path = torchscript_file
    common = (path, "--format", "triton", "--input-shape", "1,4,8,8", "--quiet")
    plain = run_cli(*common, "-o", tmp_path / "old", "--no-op-library", "--no-verify", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    config = _parse(tmp_path / "old" / "adder_net" / "config.pbtxt")
    assert not config.HasField("model_operations")
    kserve = run_cli(
        *common, "-o", tmp_path / "kserve", "--server-repository", "/mnt/models", "--no-verify", cwd=tmp_path
    )
    assert kserve.returncode == 0, kserve.stderr
    config = _parse(tmp_path / "kserve" / "adder_net" / "config.pbtxt")
    assert list(config.model_operations.op_library_filename) == ["/mnt/models/adder_net/libholocron_ort.so"]
    both = run_cli(*common, "-o", tmp_path / "x", "--no-op-library", "--op-library-path", "/a.so", cwd=tmp_path)
    assert both.returncode == 2
    assert "--no-op-library" in both.stderr


def test_the_readme_onnxruntime_command_runs_as_written(tmp_path: Path) -> None:
    """README's ``holocron-export ... --format triton`` line, as written, on a scripted RedNet-26 (narrow width) saved
    as ``model.pt``; the repository it writes is then served by the emulated onnxruntime backend."""
    from holocron._networks import NETWORKS, calibrate_batchnorm

    (args,) = readme_commands("## Serving with Triton", "holocron-export")
    spec = NETWORKS["rednet26"]
    model = calibrate_batchnorm(spec.builder(**spec.narrow_kwargs), spec.test_input_shape)
    torch.jit.save(torch.jit.script(model), tmp_path / "model.pt")
    result = run_cli(*args, "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    name = args[args.index("--model-name") + 1]
    config = _parse(tmp_path / "repo" / name / "config.pbtxt")
    assert (config.backend, config.max_batch_size) == ("onnxruntime", int(args[args.index("--max-batch-size") + 1]))
    instances = int(args[args.index("--instances") + 1])
    assert [(g.count, g.kind) for g in config.instance_group] == [
        (instances, model_config_pb2.ModelInstanceGroup.KIND_GPU)
    ]
    session = _server_session(tmp_path / "repo", config)
    x = torch.randn(2, 3, 224, 224)  # the README's --input-shape, at another batch size
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-4, atol=1e-4)
