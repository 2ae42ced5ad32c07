"""Triton repositories for the PyTorch (libtorch) backend: Triton's config schema, and what the server does with
them (the op library preloaded into a process that never imports holocron, then ``model.pt`` run by libtorch)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from helpers import one_line_error, readme_commands, run_cli

from holocron import nn as hnn
from holocron._networks import NETWORKS, calibrate_batchnorm
from holocron.export.errors import ExportError
from holocron.export.pipeline import to_triton
from holocron.export.triton import DEFAULT_SERVER_REPOSITORY, TritonOptions

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
text_format = pytest.importorskip("google.protobuf.text_format")

pytestmark = pytest.mark.usefixtures("torch_library")

MAX_BATCH = 4
KIND_CPU = model_config_pb2.ModelInstanceGroup.KIND_CPU


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        hnn.Add2d(4, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        hnn.Involution2d(8, 3, padding=1, groups=2),
        hnn.LambdaLayer(8, 8, dim_k=4, r=3, num_heads=2),
    ).eval()


class _TwoOutputs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.adder = hnn.Add2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.adder(x), (x * y).sum(dim=1)


def _parse(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def _serve(
    repo: Path, config: model_config_pb2.ModelConfig, inputs: list[torch.Tensor], tmp_path: Path, *, preload: bool
) -> subprocess.CompletedProcess[str]:
    """What Triton's PyTorch backend does with ``repo`` mounted at /models, in a fresh process that never imports
    holocron: the server was started with ``LD_PRELOAD`` of the library the config names (and libtorch on the
    library path); it loads ``NAME/1/model.pt`` with ``torch.jit.load`` and calls it with the inputs in the config's
    order. The outputs are saved to ``tmp_path/served.pt`` in the config's output order."""
    (library,) = config.model_operations.op_library_filename
    assert library.startswith(DEFAULT_SERVER_REPOSITORY + "/")
    local = repo / library.removeprefix(DEFAULT_SERVER_REPOSITORY + "/")
    assert local.is_file(), f"config names {library}, which is not in the repository"
    torch.save(inputs, tmp_path / "inputs.pt")
    script = textwrap.dedent(
        f"""
        import sys
        import torch
        model = torch.jit.load({str(repo / config.name / "1" / "model.pt")!r})
        inputs = torch.load({str(tmp_path / "inputs.pt")!r})
        with torch.inference_mode():
            returned = model(*inputs)
        outputs = [returned] if isinstance(returned, torch.Tensor) else list(returned)
        torch.save([t.clone() for t in outputs], {str(tmp_path / "served.pt")!r})
        assert not any(name == "holocron" or name.startswith("holocron.") for name in sys.modules)
        """
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOLOCRON_")}
    if preload:
        env["LD_LIBRARY_PATH"] = str(Path(torch.__file__).parent / "lib")
        env["LD_PRELOAD"] = str(local)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300, check=False
    )


def test_repository_matches_triton_schema_and_the_preloading_server_equals_eager(tmp_path: Path) -> None:
    model = _model()
    slot = to_triton(model, torch.randn(1, 4, 8, 8), tmp_path / "repo", model_name="net", backend="pytorch",
                     max_batch_size=MAX_BATCH)  # fmt: skip
    assert sorted(p.relative_to(slot).as_posix() for p in slot.rglob("*")) == [
        "1", "1/model.pt", "config.pbtxt", "libholocron_torch.so"
    ]  # fmt: skip
    import holocron.ops

    assert (slot / "libholocron_torch.so").read_bytes() == Path(holocron.ops.torch_library_path()).read_bytes()
    config = _parse(slot / "config.pbtxt")
    assert (config.name, config.backend, config.max_batch_size) == ("net", "pytorch", MAX_BATCH)
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
        ("INPUT__0", model_config_pb2.TYPE_FP32, [4, 8, 8])
    ]
    assert [(o.name, o.data_type, list(o.dims)) for o in config.output] == [
        ("OUTPUT__0", model_config_pb2.TYPE_FP32, [8, 8, 8])
    ]
    assert config.HasField("dynamic_batching")
    assert [(g.count, g.kind) for g in config.instance_group] == [(1, KIND_CPU)]
    server_library = f"{DEFAULT_SERVER_REPOSITORY}/net/libholocron_torch.so"
    assert list(config.model_operations.op_library_filename) == [server_library]
    # The comment tells the operator how the PyTorch backend gets the ops (it does not read model_operations).
    assert f"LD_PRELOAD={server_library}" in (slot / "config.pbtxt").read_text()

    for batch in (1, MAX_BATCH):
        x = torch.randn(batch, 4, 8, 8)
        served = _serve(tmp_path / "repo", config, [x], tmp_path, preload=True)
        assert served.returncode == 0, served.stderr
        (got,) = torch.load(tmp_path / "served.pt")
        with torch.no_grad():
            assert torch.equal(got, model(x))  # the same kernels as eager, bit for bit

    # The control: the same server process without the preload cannot load the model.
    bare = _serve(tmp_path / "repo", config, [torch.randn(1, 4, 8, 8)], tmp_path, preload=False)
    assert bare.returncode != 0
    assert "holocron::add2d" in bare.stderr


def test_positional_names_and_types_of_a_two_input_two_output_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _TwoOutputs().eval()
    x, y = torch.randn(1, 3, 6, 6), torch.randn(1, 3, 6, 6)
    slot = to_triton(model, (x, y), tmp_path, model_name="two", backend="pytorch", instance_kind="cpu")
    config = _parse(slot / "config.pbtxt")
    assert [(i.name, list(i.dims)) for i in config.input] == [("INPUT__0", [1, 3, 6, 6]), ("INPUT__1", [1, 3, 6, 6])]
    assert [(o.name, list(o.dims)) for o in config.output] == [("OUTPUT__0", [1, 4, 6, 6]), ("OUTPUT__1", [1, 6, 6])]
    served = _serve(tmp_path, config, [x, y], tmp_path, preload=True)
    assert served.returncode == 0, served.stderr
    got = torch.load(tmp_path / "served.pt")
    with torch.no_grad():
        expected = model(x, y)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


def test_model_without_holocron_ops_gets_no_library_and_keeps_its_instance_kind(tmp_path: Path) -> None:
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    slot = to_triton(plain, torch.randn(1, 3, 8, 8), tmp_path, model_name="plain", backend="pytorch")
    assert sorted(p.name for p in slot.iterdir()) == ["1", "config.pbtxt"]
    config = _parse(slot / "config.pbtxt")
    assert not config.HasField("model_operations")
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_AUTO


def test_gpu_instances_are_refused_for_a_model_calling_holocron_ops(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"`instance_kind` 'gpu'.*CPU kernels only"):
        to_triton(_model(), torch.randn(1, 4, 8, 8), tmp_path, model_name="m", backend="pytorch", instance_kind="gpu")
    assert list(tmp_path.iterdir()) == []


def test_missing_torch_library_is_an_export_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import holocron.ops
    from holocron.ops import TorchLibraryNotBuiltError

    def not_built() -> str:
        raise TorchLibraryNotBuiltError("holocron's torch op library (libholocron_torch.so) is not installed")

    monkeypatch.setattr(holocron.ops, "torch_library_path", not_built)
    with pytest.raises(ExportError, match="PyTorch backend needs holocron's torch op library"):
        to_triton(_model(), torch.randn(1, 4, 8, 8), tmp_path, model_name="m", backend="pytorch")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"backend": "tensorflow"}, "`backend` must be 'onnxruntime' or 'pytorch'"),
        ({"backend": "pytorch", "op_library": False}, "`op_library=False` applies to the onnxruntime backend only"),
        ({"backend": "pytorch", "opset": 18}, "`opset` applies only to ONNX exports"),
        ({"backend": "pytorch", "exporter": "dynamo"}, "`exporter` applies only to ONNX exports"),
        ({"backend": "pytorch", "custom_ops": False}, "`custom_ops` applies only to ONNX exports"),
    ],
)
def test_invalid_pytorch_backend_arguments_name_the_argument(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        to_triton(_model(), torch.randn(1, 4, 8, 8), tmp_path, model_name="m", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_a_model_returning_a_dict_is_refused(tmp_path: Path) -> None:
    class Named(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"y": x + 1}

    with pytest.raises(ExportError, match="a tensor or a tuple of tensors; this one returns dict"):
        to_triton(Named(), torch.randn(1, 3), tmp_path, model_name="m", backend="pytorch", verify=False)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """``model.pt`` as the README's commands expect: a scripted RedNet-26 at its narrow test width."""
    spec = NETWORKS["rednet26"]
    model = calibrate_batchnorm(spec.builder(**spec.narrow_kwargs), spec.test_input_shape)
    folder = tmp_path_factory.mktemp("readme-triton")
    torch.jit.save(torch.jit.script(model), folder / "model.pt")
    return model, folder


def test_the_readme_pytorch_backend_command_runs_as_written(model_file, tmp_path: Path) -> None:
    model, folder = model_file
    (args,) = readme_commands("### Triton's PyTorch backend", "holocron-export")
    assert "--backend" in args and args[args.index("--backend") + 1] == "pytorch"
    result = run_cli(*args, "--quiet", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "pinned to the CPU" in result.stderr  # --instance-kind auto, said as a note
    name = args[args.index("--model-name") + 1]
    config = _parse(folder / "repo" / name / "config.pbtxt")
    assert (config.backend, config.max_batch_size) == ("pytorch", int(args[args.index("--max-batch-size") + 1]))
    x = torch.randn(2, 3, 64, 64)
    served = _serve(folder / "repo", config, [x], tmp_path, preload=True)
    assert served.returncode == 0, served.stderr
    (got,) = torch.load(tmp_path / "served.pt")
    with torch.no_grad():
        assert torch.equal(got, model(x))


@pytest.mark.parametrize(
    ("flags", "flag"),
    [
        (("--backend", "pytorch", "--opset", "18"), "--opset applies only to ONNX exports"),
        (("--backend", "pytorch", "--no-custom-ops"), "--no-custom-ops applies only to ONNX exports"),
        (("--backend", "pytorch", "--no-op-library"), "--no-op-library applies to --backend onnxruntime only"),
        (("--backend", "tensorflow"), "--backend"),
    ],
)
def test_cli_pytorch_backend_usage_errors_exit_2(model_file, tmp_path: Path, flags, flag: str) -> None:
    _, folder = model_file
    result = run_cli(folder / "model.pt", "--format", "triton", "-o", tmp_path / "repo", "--input-shape", "1,3,64,64",
                     *flags, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert flag in one_line_error(result)
    assert not (tmp_path / "repo").exists()


def test_cli_backend_needs_the_triton_format(model_file, tmp_path: Path) -> None:
    _, folder = model_file
    result = run_cli(folder / "model.pt", "--backend", "pytorch", "--input-shape", "1,3,64,64", cwd=tmp_path)
    assert result.returncode == 2
    assert "--backend applies only to --format triton" in one_line_error(result)


def test_cli_gpu_instances_exit_1_naming_the_flag_and_write_nothing(model_file, tmp_path: Path) -> None:
    _, folder = model_file
    result = run_cli(folder / "model.pt", "--format", "triton", "--backend", "pytorch", "-o", tmp_path / "repo",
                     "--input-shape", "1,3,64,64", "--instance-kind", "gpu", "--quiet", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1
    line = one_line_error(result)
    assert "--instance-kind gpu" in line and "--backend onnxruntime" in line
    assert "instance_kind" not in line
    assert not (tmp_path / "repo" / "model").exists()


def test_options_reject_an_unknown_backend() -> None:
    with pytest.raises(ValueError, match="`backend`"):
        TritonOptions("m", backend="tf")  # type: ignore[arg-type]
