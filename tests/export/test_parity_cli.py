"""holocron-verify and holocron-export --localize on a reference network: exit codes, report fields, messages."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import onnx
import pytest
import torch

from holocron._networks import NETWORKS, calibrate_batchnorm
from holocron.export import to_onnx_proto
from holocron.export.cli import export as export_cli
from holocron.export.cli import verify as verify_cli

pytestmark = pytest.mark.usefixtures("require_kernels")

NAME = "addernet_resnet20"
SHAPE = (1, *NETWORKS[NAME].test_input_shape[1:])
SHAPE_TEXT = ",".join(map(str, SHAPE))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("parity-cli")
    spec = NETWORKS[NAME]
    model = calibrate_batchnorm(spec.builder(**spec.narrow_kwargs), spec.test_input_shape)
    torch.save(model, folder / "model.pkl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = to_onnx_proto(model, (torch.zeros(SHAPE),), exporter="torchscript")
        torch.jit.save(torch.jit.script(model), folder / "scripted.pt")
    (folder / "good.onnx").write_bytes(proto.SerializeToString())
    node = next(n for n in proto.graph.node if n.name == "/stages/stages.4/add2/Add2d")
    pads = next(a for a in node.attribute if a.name == "pads")
    pads.ints[:] = [0, 1, 2, 1]
    (folder / "broken.onnx").write_bytes(proto.SerializeToString())
    return {p.stem: p for p in folder.iterdir()}


def _verify(files: dict[str, Path], artifact: str, *flags: str) -> int:
    return verify_cli.main([str(files["model"]), str(files[artifact]), "--trust-pickle", *flags])


@pytest.mark.parametrize("flags", [(), ("--no-kernels",), ("--input-shape", SHAPE_TEXT, "--seed", "5")])
def test_a_correct_onnx_artifact_passes(files, flags, capsys) -> None:
    assert _verify(files, "good", *flags) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "criterion: float64-referenced" in out
    assert ("onnx-fallback" if flags == ("--no-kernels",) else "holocron-kernels") in out


def test_a_torchscript_artifact_passes(files, capsys) -> None:
    assert _verify(files, "scripted", "--input-shape", SHAPE_TEXT) == 0
    assert "execution path torchscript" in capsys.readouterr().out


def test_a_broken_artifact_diverges_and_the_report_names_the_module(files, tmp_path, capsys) -> None:
    report_path = tmp_path / "parity.json"
    assert _verify(files, "broken", "--localize", "--report", str(report_path)) == 3
    captured = capsys.readouterr()
    assert "first divergence: module 'stages.4.add2'" in captured.out
    assert captured.err.startswith("holocron-verify: error: verification failed")
    report = json.loads(report_path.read_text())
    assert report["passed"] is False and isinstance(report["outputs"], list)
    first = report["first_divergence"]
    assert first["module"] == "stages.4.add2"
    assert set(first) >= {"module", "onnx_value", "max_abs_err", "reference_err", "criterion"}
    assert first["max_abs_err"] > first["bound"]


def test_explicit_tolerances_are_the_strict_elementwise_criterion(files, tmp_path) -> None:
    report_path = tmp_path / "strict.json"
    assert _verify(files, "good", "--atol", "0", "--rtol", "0", "--report", str(report_path)) == 3
    report = json.loads(report_path.read_text())
    assert report["criterion"] == "elementwise" and report["outputs"][0]["atol"] == 0.0


@pytest.mark.parametrize(
    ("flags", "artifact", "message"),
    [
        (("--atol", "-1"), "good", "--atol"),
        (("--input-shape", "1,x"), "good", "--input-shape"),
        (("--localize",), "scripted", "--localize only apply to an ONNX ARTIFACT"),
    ],
)
def test_usage_errors_exit_2_before_loading(files, flags, artifact, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _verify(files, artifact, *flags)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_load_failures_exit_1(files, tmp_path, capsys) -> None:
    assert _verify(files, "good", "--input-shape", SHAPE_TEXT) == 0
    missing = verify_cli.main([str(files["model"]), str(tmp_path / "missing.onnx"), "--trust-pickle"])
    assert missing == 1
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    assert verify_cli.main([str(files["model"]), str(garbage), "--trust-pickle"]) == 1
    assert "cannot read ONNX model" in capsys.readouterr().err


def test_holocron_export_localize(files, tmp_path, capsys) -> None:
    report_path = tmp_path / "export.json"
    status = export_cli.main(
        [str(files["model"]), "--trust-pickle", "--input-shape", SHAPE_TEXT, "-o", str(tmp_path / "out.onnx"),
         "--exporter", "torchscript", "--localize", "--report", str(report_path)]
    )  # fmt: skip
    assert status == 0, capsys.readouterr().err
    report = json.loads(report_path.read_text())
    assert report["passed"] is True and report["localized"] is True and report["first_divergence"] is None
    assert onnx.load(str(tmp_path / "out.onnx")).graph.output[0].name == report["outputs"][0]["name"]
