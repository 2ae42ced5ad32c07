"""holocron-export through a subprocess: every MODEL kind, its failures, and its all-or-nothing output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from helpers import custom_op_chain, one_line_error, run_cli
from torch import nn

from holocron.export.onnx.graph import holocron_nodes

SHAPE = (1, 16, 16, 16)


def _build_model() -> nn.Module:
    return custom_op_chain(16, SHAPE, activation=True, pool=True)


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return _build_model()


@pytest.fixture(scope="module")
def model_files(model: nn.Module, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli-models")
    files = {"torchscript": folder / "model.pt", "torch_export": folder / "model.pt2", "pickle": folder / "pickled.pt"}
    torch.jit.save(torch.jit.script(model), str(files["torchscript"]))
    torch.export.save(torch.export.export(model, (torch.randn(SHAPE),)), files["torch_export"])
    torch.save(model, files["pickle"])
    return files


def _eager(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def test_torchscript_model_to_onnx_runs_in_plain_onnxruntime(model, model_files, tmp_path) -> None:
    result = run_cli(
        model_files["torchscript"], "--format", "onnx", "-o", "out.onnx", "--input-shape", "1,16,16,16",
        "--report", "report.json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr

    session = onnxruntime.InferenceSession(str(tmp_path / "out.onnx"))
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    (y,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(y, _eager(model, x), atol=1e-5, rtol=1e-4)

    exported = onnx.load(tmp_path / "out.onnx")
    holocron_ops = sorted(n.op_type for n in holocron_nodes(exported))
    assert holocron_ops == ["Add2d", "Involution2d", "Lambda"]

    # The JSON report parses and agrees with the printed table.
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] is True
    table = result.stdout.splitlines()
    rule = next(i for i, line in enumerate(table) if line and set(line) <= {"-", " "})
    cells = table[rule + 1].split()  # the one output's row
    assert cells[0] == report["outputs"][0]["name"]
    assert cells[1] == "x".join(map(str, report["outputs"][0]["shape"]))
    # default criterion: eager float32's error and the export's error, both against float64
    assert float(cells[2]) == pytest.approx(report["outputs"][0]["eager_error"], rel=1e-3)
    assert float(cells[3]) == pytest.approx(report["outputs"][0]["exported_error"], rel=1e-3)
    assert cells[-1] == "PASS"
    assert any(line.startswith("PASSED") and report["execution_path"] in line for line in table)


def test_torch_export_archive_uses_its_recorded_shapes(model_files, tmp_path) -> None:
    result = run_cli(model_files["torch_export"], "--no-custom-ops", "-o", "std.onnx", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    exported = onnx.load(tmp_path / "std.onnx")
    assert not holocron_nodes(exported)
    assert "PASSED" in result.stdout and "standard-onnx" in result.stdout


def test_trusted_pickle_to_torchscript(model, model_files, tmp_path) -> None:
    result = run_cli(
        model_files["pickle"], "--trust-pickle", "--format", "torchscript", "--input-shape", "2,16,16,16",
        "-o", "scripted.pt", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    loaded = torch.jit.load(str(tmp_path / "scripted.pt"))
    x = torch.randn(2, *SHAPE[1:])
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_pickle_refused_without_flag(model_files, tmp_path) -> None:
    result = run_cli(model_files["pickle"], "--input-shape", "1,16,16,16", "-o", "out.onnx", cwd=tmp_path)
    assert result.returncode == 1
    assert "loading a pickle runs arbitrary code" in one_line_error(result)
    assert not list(tmp_path.iterdir())


def test_default_output_path_and_existing_output_kept_without_force(model_files, tmp_path) -> None:
    source = tmp_path / "model.pt"
    shutil.copy(model_files["torchscript"], source)
    existing = tmp_path / "model.onnx"  # the default output of model.pt for --format onnx
    existing.write_text("keep me")
    result = run_cli(source, "--input-shape", "1,16,16,16", "--exporter", "torchscript", cwd=tmp_path)
    assert result.returncode == 1
    assert "already exists" in one_line_error(result)
    assert existing.read_text() == "keep me"

    result = run_cli(source, "--input-shape", "1,16,16,16", "--exporter", "torchscript", "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    onnx.checker.check_model(onnx.load(existing))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.pt"]


@pytest.mark.parametrize(
    ("make_model", "args", "status", "message"),
    [
        (None, ["missing.pt", "--input-shape", "1,16,16,16"], 1, "does not exist"),
        ("corrupt", ["corrupt.pt", "--input-shape", "1,16,16,16"], 1, "corrupt or unknown format"),
        ("torchscript", ["model.pt", "--input-shape", "1,16,x,16"], 2, "input shape '1,16,x,16' is malformed"),
        ("torchscript", ["model.pt", "--input-shape", "1,16,16,16", "--input-shape", "1,16,16,16"], 1,
         "the model takes 1 input(s) but 2 --input-shape value(s) were given"),
        ("torchscript", ["model.pt", "--input-shape", "1,3,16,16"], 1, "the model rejects inputs of shape 1,3,16,16"),
        ("torchscript", ["model.pt"], 2, "--input-shape is required"),
        ("torchscript", ["model.pt", "--demo"], 2, "MODEL and --demo are mutually exclusive"),
    ],
)  # fmt: skip
def test_failures_are_one_line_and_leave_no_output(model_files, tmp_path, make_model, args, status, message) -> None:
    if make_model == "corrupt":
        (tmp_path / "corrupt.pt").write_bytes(b"\x00not a model at all")
    elif make_model == "torchscript":
        shutil.copy(model_files["torchscript"], tmp_path / "model.pt")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli(*args, "-o", "out.onnx", cwd=tmp_path)
    assert result.returncode == status
    assert message in one_line_error(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_failed_verification_exits_3_writes_report_not_model(model_files, tmp_path) -> None:
    # Zero tolerance: float32 results of onnxruntime and PyTorch differ in the last bits for this model.
    result = run_cli(
        model_files["torchscript"], "--input-shape", "1,16,16,16", "--exporter", "torchscript", "--atol", "0",
        "--rtol", "0", "-o", "out.onnx", "--report", "report.json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 3
    assert "verification failed" in one_line_error(result)
    assert "FAIL" in result.stdout
    assert json.loads((tmp_path / "report.json").read_text())["passed"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_demo_exports_and_verifies(tmp_path) -> None:
    result = run_cli("--demo", "--exporter", "torchscript", "--dynamic-batch", "-o", "demo.onnx", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "PASSED" in result.stdout
    exported = onnx.load(tmp_path / "demo.onnx")
    # The demo is AdderNet ResNet-20: 18 Add2d 3x3 layers and 2 Add2d 1x1 shortcuts, one holocron node each.
    assert [n.op_type for n in holocron_nodes(exported)] == ["Add2d"] * 20
    assert [d.dim_value for d in exported.graph.input[0].type.tensor_type.shape.dim][1:] == [3, 32, 32]


@pytest.mark.parametrize("name", ["holocron-export", "holocron-verify"])
def test_version_flag(name: str, tmp_path: Path) -> None:
    import holocron

    result = run_cli("--version", cwd=tmp_path, name=name)
    assert (result.returncode, result.stdout.strip()) == (0, f"{name} {holocron.__version__}")


def test_stage_lines_on_stderr_unless_quiet(model_files, tmp_path) -> None:
    args = (model_files["torchscript"], "-o", "out.onnx", "--input-shape", "1,16,16,16", "--localize")
    loud = run_cli(*args, cwd=tmp_path)
    assert loud.returncode == 0, loud.stderr
    stages = [line.split("] ", 1)[1] for line in loud.stderr.splitlines()]
    assert stages == [
        f"loading {model_files['torchscript']}",
        "exporting to ONNX",
        "verifying against eager PyTorch at input 1x16x16x16 with localization",
        "writing out.onnx",
    ]
    quiet = run_cli(*args, "--force", "--quiet", cwd=tmp_path)
    assert (quiet.returncode, quiet.stderr) == (0, "")


def test_python_export_prints_no_warnings_of_ours(model, tmp_path, recwarn) -> None:
    """A TorchScript-exporter export from Python leaves no warning raised by holocron's own code."""
    import warnings

    from holocron.export import to_onnx_proto

    warnings.simplefilter("always")
    to_onnx_proto(model, (torch.randn(SHAPE),), exporter="torchscript")
    ours = [w for w in recwarn if "/holocron/" in w.filename.replace("\\", "/")]
    assert ours == [], [f"{w.filename}:{w.lineno}: {w.message}" for w in ours]
