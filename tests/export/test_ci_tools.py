"""The tools CI already runs, with holocron's kernels: README's "Parity in CI" commands as written, ``polygraphy run
--holocron-onnxrt`` (Polygraphy plugin entry point) and the ``torch.onnx.verification`` recipe."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import onnx
import onnxruntime
import pytest
import torch

from holocron._networks import NETWORKS, calibrate_batchnorm
from holocron.export import session_initializer, to_onnx_proto
from holocron.export.cli import verify as verify_cli

pytestmark = pytest.mark.usefixtures("require_kernels")

REPO = Path(__file__).resolve().parents[2]
NAME = "addernet_resnet20"


def _section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def _network() -> torch.nn.Module:
    spec = NETWORKS[NAME]
    return calibrate_batchnorm(spec.builder(**spec.narrow_kwargs), spec.test_input_shape)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out as README's CI job expects: ``model.pt`` (TorchScript) and ``dist/model.onnx``."""
    folder = tmp_path_factory.mktemp("ci-job")
    model = _network()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(model), folder / "model.pt")
        proto = to_onnx_proto(model, (torch.zeros(1, 3, 32, 32),), exporter="torchscript", dynamic_batch=True)
    (folder / "dist").mkdir()
    onnx.save(proto, folder / "dist" / "model.onnx")
    return folder


def test_the_readme_ci_commands_run_as_written(shipped, monkeypatch, capsys) -> None:
    (yaml,) = _blocks(_section("Parity in CI"), "yaml")
    commands = [line.strip() for line in yaml.splitlines() if line.strip().startswith("holocron-verify ")]
    assert len(commands) == 3
    monkeypatch.chdir(shipped)
    cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    for command in commands:
        argv = shlex.split(command, comments=True)
        try:
            status = verify_cli.main(argv[1:])
        except SystemExit as exit_:
            status = int(exit_.code or 0)
        captured = capsys.readouterr()
        if "--providers" in argv and not cuda:
            # No CUDA here: one line naming the flag, nothing run.
            lines = captured.err.strip().splitlines()
            assert status == 2 and len(lines) == 1 and "--providers: CUDAExecutionProvider is not available" in lines[0]
            assert captured.out == ""
            continue
        assert status == 0, (command, captured.out, captured.err)
        assert "PASSED" in captured.out
    assert (shipped / "parity.json").is_file() and (shipped / "parity.xml").read_bytes().startswith(b"<?xml")


def _polygraphy() -> list[str]:
    found = shutil.which("polygraphy", path=str(Path(sys.executable).parent)) or shutil.which("polygraphy")
    if found is None:
        if os.environ.get("HOLOCRON_REQUIRE_RUNTIME") == "1":
            pytest.fail("polygraphy is not installed (pip install -e .[interop])")
        pytest.skip("polygraphy is not installed")
    return [found]


def test_polygraphy_runs_the_readme_command_with_the_kernels(shipped, tmp_path) -> None:
    (bash,) = [block for block in _blocks(_section("Parity in CI"), "bash") if "polygraphy" in block]
    argv = shlex.split(bash.strip())
    assert argv[:2] == ["polygraphy", "run"] and "--holocron-onnxrt" in argv
    ran = subprocess.run([*_polygraphy(), *argv[1:]], cwd=shipped, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "holocron-onnxrt" in ran.stdout and "PASSED" in ran.stdout
    # Without its fallback functions, the model runs only where holocron's kernels are registered.
    bare = onnx.load(shipped / "dist" / "model.onnx")
    del bare.functions[:]
    onnx.save(bare, tmp_path / "bare.onnx")
    with_kernels = subprocess.run(
        [*_polygraphy(), "run", str(tmp_path / "bare.onnx"), "--holocron-onnxrt"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert with_kernels.returncode == 0, with_kernels.stdout + with_kernels.stderr
    plain = subprocess.run(
        [*_polygraphy(), "run", str(tmp_path / "bare.onnx"), "--onnxrt"], capture_output=True, text=True, timeout=300
    )
    assert plain.returncode != 0


def test_torch_onnx_verification_recipe_needs_and_takes_the_initializer() -> None:
    (recipe,) = [block for block in _blocks(_section("Parity in CI"), "python") if "verify_onnx_program" in block]
    model = _network()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(recipe, "README.md", "exec"), {"model": model, "x": x})
        from torch.onnx.verification import verify_onnx_program

        from holocron.export.onnx.ops import custom_translation_table

        program = torch.onnx.export(model, (x,), dynamo=True, custom_translation_table=custom_translation_table())
        assert program is not None
        with pytest.raises(Exception, match="holocron"):  # the default session does not know the holocron ops
            verify_onnx_program(program, (x,))


def test_the_session_initializer_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="providers: NoSuchExecutionProvider is not available"):
        session_initializer(providers=["NoSuchExecutionProvider"])
    with pytest.raises(TypeError, match="use_kernels must be True or False"):
        session_initializer(use_kernels="yes")  # type: ignore[arg-type]
