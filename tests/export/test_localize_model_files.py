"""``holocron-verify --localize`` from MODEL files of the three reference networks: TorchScript, ``.pt2``, pickle.

For each network, one ONNX model (TorchScript exporter, dynamic batch) and a copy with a planted defect of realistic
size in a middle layer: AdderNet ResNet-20 with one Add2d weight element zeroed, RedNet-26 with an Involution2d's
pads shifted by one row (same output shape), LambdaResNet-26 with its Lambda position kernel R spatially flipped.
With every MODEL kind, the defect exits 3 and the first divergence names the edited module; the correct model exits 0
with every module called once either compared or listed with its reason.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

import onnx
import pytest
import torch

from holocron._networks import NETWORKS, calibrate_batchnorm
from holocron.export import to_onnx_proto
from holocron.export.cli import verify as verify_cli


def _defects() -> Any:
    """The planted-defect edits of test_parity_networks.py (the same defects, loaded from that file)."""
    path = Path(__file__).with_name("test_parity_networks.py")
    spec = importlib.util.spec_from_file_location("parity_network_defects", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_PARITY = _defects()
_EDITED: dict[str, str] = _PARITY._EDITED
_DEFECT = {
    "addernet_resnet20": _PARITY._zero_one_weight,
    "rednet26": _PARITY._shift_pads,
    "lambda_resnet26": _PARITY._flip_position_kernel,
}
_KINDS = {"torchscript": "model_ts.pt", "torch_export": "model.pt2", "pickle": "model_pickle.pt"}


@pytest.fixture(scope="module")
def network_files(tmp_path_factory: pytest.TempPathFactory):
    made: dict[str, dict[str, Path]] = {}

    def files(name: str) -> dict[str, Path]:
        if name not in made:
            folder = tmp_path_factory.mktemp(name)
            spec = NETWORKS[name]
            model = calibrate_batchnorm(spec.builder(**spec.narrow_kwargs), spec.test_input_shape)
            example = torch.zeros(spec.test_input_shape)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                proto = to_onnx_proto(model, (example,), exporter="torchscript", dynamic_batch=True)
                torch.jit.save(torch.jit.script(model), folder / _KINDS["torchscript"])
                # torch.export fixes the batch size it was traced with: the tests feed batch 1.
                one = torch.zeros(1, *spec.test_input_shape[1:])
                torch.export.save(torch.export.export(model, (one,)), folder / _KINDS["torch_export"])
            torch.save(model, folder / _KINDS["pickle"])
            onnx.save(proto, folder / "model.onnx")
            onnx.save(_PARITY._edited(proto, _DEFECT[name], _EDITED[name]), folder / "broken.onnx")
            made[name] = {p.name: p for p in folder.iterdir()}
        return made[name]

    return files


@pytest.mark.parametrize("kind", sorted(_KINDS))
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_localize_names_the_edited_module_from_every_model_file(network_files, name, kind, tmp_path, capsys) -> None:
    files = network_files(name)
    shape = ",".join(map(str, (1, *NETWORKS[name].test_input_shape[1:])))
    model = str(files[_KINDS[kind]])
    common = ["--input-shape", shape, "--localize", "--trust-pickle"]
    good_report, broken_report = tmp_path / "good.json", tmp_path / "broken.json"

    assert verify_cli.main([model, str(files["model.onnx"]), *common, "--report", str(good_report)]) == 0
    good = json.loads(good_report.read_text())
    compared = {mod["module"] for mod in good["modules"]}
    listed = {mod["module"]: mod for mod in good["unlocalized"]}
    assert len(compared) > 30 and _EDITED[name] in compared
    called_once = {mod["module"] for mod in good["modules"]} | {
        mod["module"] for mod in good["unlocalized"] if mod["calls"] == 1
    }
    assert not compared & set(listed)
    assert all(listed[module]["reason"] and listed[module]["detail"] for module in called_once - compared)
    assert (
        good["localization_method"]
        == {
            "torchscript": "TorchScript graph",
            "torch_export": "torch.export graph",
            "pickle": "forward hooks",
        }[kind]
    )
    capsys.readouterr()

    assert verify_cli.main([model, str(files["broken.onnx"]), *common, "--report", str(broken_report)]) == 3
    out = capsys.readouterr().out
    first = json.loads(broken_report.read_text())["first_divergence"]
    assert first["module"] == _EDITED[name], out
    assert f"first divergence: module {_EDITED[name]!r}" in out
