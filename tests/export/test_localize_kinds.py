"""Localization from every MODEL kind, on a small model with the awkward cases: a module called twice, a container
returning a tuple, an identity, a module called inside control flow, a BatchNorm the exporter fuses.

Each recorder (forward hooks, the TorchScript graph, the ``.pt2`` graph) must agree with the live module's hooks on
the recorded outputs, and a planted defect in the ONNX model must be named at the module that holds it, whatever the
MODEL kind. Also: strict and best-effort localization, the reasons in the report, JUnit XML, and ``providers``.
"""

from __future__ import annotations

import json
import warnings
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import Tensor, nn

from holocron.export import junit_xml, to_onnx_proto
from holocron.export.cli import verify as verify_cli
from holocron.export.parity.api import verify, verify_files
from holocron.export.parity.eager import make_recorder
from holocron.export.parity.graph_recording import GraphRecorder
from holocron.export.parity.recording import HookRecorder, LocalizationUnavailableError
from holocron.export.parity.script_recording import ScriptRecorder

SHAPE = (2, 3, 8, 8)


class _Pair(nn.Module):
    """Returns a tuple: not one tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 4, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y = self.a(x)
        return y, -y


class _Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU()  # called twice
        self.body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Tanh())
        self.skip = nn.Identity()
        self.pair = _Pair()
        self.head = nn.Linear(4, 5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.bn(self.conv(x)))
        x = self.act(self.body(x)) + self.skip(x)
        first, second = self.pair(x)
        return self.head((first * second).mean((2, 3)))


@pytest.fixture(scope="module")
def toy() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = _Toy()
        with torch.no_grad():
            model.bn.running_mean.uniform_(-0.5, 0.5)
            model.bn.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope="module")
def files(toy: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("localize-kinds")
    example = torch.zeros(SHAPE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = to_onnx_proto(toy, (example,), exporter="torchscript")
        torch.jit.save(torch.jit.script(toy), folder / "scripted.pt")
        torch.jit.save(torch.jit.script(toy), folder / "artifact.pt")
        torch.export.save(torch.export.export(toy, (example,)), folder / "program.pt2")
    torch.save(toy, folder / "pickled.pt")
    onnx.save(proto, folder / "good.onnx")
    broken = onnx.ModelProto()
    broken.CopyFrom(proto)
    node = next(n for n in broken.graph.node if n.name.startswith("/body/body.0/"))
    weight = next(init for init in broken.graph.initializer if init.name == node.input[1])
    values = numpy_helper.to_array(weight).copy()
    values.flat[values.size // 2] = 0.0  # one weight element of body.0 zeroed
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    onnx.save(broken, folder / "broken.onnx")
    unscoped = onnx.ModelProto()
    unscoped.CopyFrom(proto)
    for index, node in enumerate(unscoped.graph.node):
        node.name = f"n{index}"
    onnx.save(unscoped, folder / "unscoped.onnx")
    return {p.name: p for p in folder.iterdir()}


def _exit(argv: list[str]) -> int:
    """holocron-verify's exit status, whether it returns it or argparse exits with it."""
    try:
        return verify_cli.main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def _record(recorder, model: nn.Module):
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x)
        result, recording = recorder.run((x,))
    assert torch.equal(result, expected)  # the recorded run is the model's own run
    return recording


def test_the_recorder_follows_the_model_kind(toy, files) -> None:
    assert isinstance(make_recorder(toy), HookRecorder)
    assert isinstance(make_recorder(torch.jit.load(files["scripted.pt"])), ScriptRecorder)
    assert isinstance(make_recorder(torch.export.load(files["program.pt2"]).module()), GraphRecorder)


@pytest.mark.parametrize("kind", ["scripted.pt", "program.pt2"])
def test_model_file_recorders_agree_with_forward_hooks(toy, files, kind) -> None:
    hooks = _record(HookRecorder(toy), toy)
    loaded = torch.jit.load(files[kind]) if kind.endswith(".pt") else torch.export.load(files[kind]).module()
    recording = _record(make_recorder(loaded), loaded)
    assert recording.calls["act"] == 2 and hooks.calls["act"] == 2
    assert "pair" in recording.unrecorded and recording.unrecorded["pair"][0] == "not-one-tensor"
    compared = [name for name in hooks.outputs if recording.calls.get(name) == 1 and name in recording.outputs]
    assert {"conv", "bn", "body", "body.0", "body.1", "head", "pair.a"} <= set(compared)
    for name in compared:
        np.testing.assert_array_equal(recording.outputs[name], hooks.outputs[name], err_msg=name)
    assert recording.fed_by["bn"] == "conv"
    assert recording.order.index("conv") < recording.order.index("bn") < recording.order.index("head")


def test_a_module_called_under_torchscript_control_flow_is_listed_with_its_reason() -> None:
    class Gated(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Conv2d(3, 3, 1)
            self.out = nn.Conv2d(3, 3, 1)

        def forward(self, x: Tensor) -> Tensor:
            if bool(x.sum() > -1e9):
                x = self.inner(x)
            return self.out(x)

    scripted = torch.jit.script(Gated().eval())
    recording = _record(ScriptRecorder(scripted), scripted)
    assert recording.unrecorded["inner"] == ("not-recorded", "called inside TorchScript control flow (prim::If)")
    assert "out" in recording.outputs


@pytest.mark.parametrize("kind", ["scripted.pt", "program.pt2", "pickled.pt"])
def test_every_model_kind_localizes_a_planted_defect(files, kind) -> None:
    good = verify_files(files[kind], files["good.onnx"], localize=True, trust_pickle=True)
    assert good.passed and good.localized, good.format_table()
    assert len(good.modules) >= 6
    reasons = {mod.module: mod.reason for mod in good.unlocalized}
    assert reasons["act"] == "called-repeatedly" and reasons["pair"] == "not-one-tensor"
    assert reasons["conv"] == "fused"  # the TorchScript exporter folds bn into conv's node
    fused = next(mod for mod in good.modules if mod.module == "bn")
    assert fused.match == "fused" and fused.fused_modules == ("conv",)
    broken = verify_files(files[kind], files["broken.onnx"], localize=True, trust_pickle=True)
    assert not broken.passed
    assert broken.first_divergence is not None and broken.first_divergence["module"] == "body.0"


def test_strict_localization_refuses_what_cannot_be_localized(toy, files) -> None:
    with pytest.raises(LocalizationUnavailableError, match="localize='best-effort'"):
        verify(toy, files["unscoped.onnx"], [SHAPE], localize=True)
    report = verify(toy, files["unscoped.onnx"], [SHAPE], localize="best-effort")
    assert report.passed and not report.localized
    assert "names no module scopes" in report.localization_note
    assert "localization: not done (the ONNX model names no module scopes" in report.format_table()
    with pytest.raises(ValueError, match="localize must be True, False or 'best-effort'"):
        verify(toy, files["good.onnx"], [SHAPE], localize="yes")  # type: ignore[arg-type]


def test_the_cli_localize_flag_is_strict_alone_and_best_effort_on_request(files, capsys) -> None:
    model, unscoped = str(files["scripted.pt"]), str(files["unscoped.onnx"])
    assert _exit([model, unscoped, "--localize"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--localize cannot localize" in err[0] and "--localize=best-effort" in err[0]
    assert _exit([model, unscoped, "--localize=best-effort"]) == 0
    assert "localization: not done" in capsys.readouterr().out
    assert _exit([model, unscoped, "--localize=all"]) == 2
    assert "--localize" in capsys.readouterr().err
    scripted_artifact = str(files["artifact.pt"])
    shape = ["--input-shape", ",".join(map(str, SHAPE))]
    assert _exit([model, scripted_artifact, *shape, "--localize=best-effort"]) == 0
    assert "a TorchScript ARTIFACT has no exporter scopes" in capsys.readouterr().out
    assert _exit([model, scripted_artifact, *shape, "--localize"]) == 2
    assert "only apply to an ONNX ARTIFACT" in capsys.readouterr().err


def test_the_report_lists_each_unlocalized_module_with_its_reason(files, tmp_path, capsys) -> None:
    report_path, junit_path = tmp_path / "parity.json", tmp_path / "parity.xml"
    argv = [str(files["program.pt2"]), str(files["broken.onnx"]), "--localize"]
    assert _exit([*argv, "--report", str(report_path), "--junit", str(junit_path)]) == 3
    out = capsys.readouterr().out
    assert "localization (torch.export graph)" in out and "first divergence: module 'body.0'" in out
    assert "not compared, called-repeatedly (1): act (called 2 times)" in out
    data = json.loads(report_path.read_text())
    assert data["localization_method"] == "torch.export graph"
    assert data["unlocalized_modules"] == len(data["unlocalized"])
    by_name = {entry["module"]: entry for entry in data["unlocalized"]}
    assert by_name["conv"] == {
        "module": "conv",
        "reason": "fused",
        "detail": "fused into 'bn' by the exporter",
        "calls": 1,
        "fused_into": "bn",
    }
    assert data["first_divergence"]["module"] == "body.0" and data["first_divergence"]["match"] == "module-output"
    suite = ElementTree.parse(junit_path).getroot().find("testsuite")
    assert suite is not None
    cases = {(case.get("classname"), case.get("name")): case for case in suite.iter("testcase")}
    failed = {name for (_, name), case in cases.items() if case.find("failure") is not None}
    assert ("holocron-verify.outputs", "output") in cases
    assert "body.0" in failed and "conv" not in failed
    skipped = cases[("holocron-verify.modules", "act")].find("skipped")
    assert skipped is not None and skipped.get("message") == "not compared: called 2 times"
    assert int(suite.get("failures", "0")) == len(failed) and int(suite.get("skipped", "0")) == len(data["unlocalized"])


def test_junit_xml_of_a_passing_report_has_no_failure(toy, files) -> None:
    report = verify(toy, files["good.onnx"], [SHAPE], localize=True)
    root = ElementTree.fromstring(junit_xml(report))
    assert root.get("failures") == "0" and root.find(".//failure") is None
    assert len(root.findall(".//testcase")) == len(report.outputs) + len(report.modules) + len(report.unlocalized)


def test_an_unavailable_provider_is_an_error_not_a_cpu_fallback(toy, files, capsys) -> None:
    with pytest.raises(ValueError, match="providers: NoSuchExecutionProvider is not available"):
        verify(toy, files["good.onnx"], [SHAPE], providers=["NoSuchExecutionProvider"])
    with pytest.raises(TypeError, match="providers must be a sequence"):
        verify(toy, files["good.onnx"], [SHAPE], providers="CPUExecutionProvider")  # type: ignore[arg-type]
    report = verify(toy, files["good.onnx"], [SHAPE], providers=["CPUExecutionProvider"])
    assert report.providers == ("CPUExecutionProvider",)
    argv = [str(files["scripted.pt"]), str(files["good.onnx"])]
    assert _exit([*argv, "--providers", "NoSuchExecutionProvider,CPUExecutionProvider"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "--providers: NoSuchExecutionProvider is not available" in lines[0]
    assert captured.out == ""  # nothing ran
    assert _exit([*argv, "--providers", "CPUExecutionProvider"]) == 0
    assert _exit([*argv, "--providers", ","]) == 2
    assert "--providers" in capsys.readouterr().err


def test_a_defect_in_a_module_the_dynamo_exporter_fused_names_both_modules(toy) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = to_onnx_proto(toy, (torch.zeros(SHAPE),), exporter="dynamo")
    good = verify(toy, proto, [SHAPE], localize=True)
    assert good.passed
    assert next(mod for mod in good.unlocalized if mod.module == "conv").fused_into == "bn"
    conv = next(node for node in proto.graph.node if node.op_type == "Conv")  # conv's node, in bn's scope
    weight = next(init for init in proto.graph.initializer if init.name == conv.input[1])
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * np.float32(1 + 1e-3), weight.name))
    broken = verify(toy, proto, [SHAPE], localize=True)
    first = broken.first_divergence
    assert first is not None and first["module"] == "bn", broken.format_table()
    assert first["match"] == "fused" and first["fused_modules"] == ["conv"]
    assert "the exporter fused 'conv' into it: the defect may be in 'conv' or 'bn'" in broken.format_table()
