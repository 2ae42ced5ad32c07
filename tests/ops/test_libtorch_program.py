"""A libtorch program with no Python runs an exported TorchScript archive with holocron's torch op library alone.

``run_archive.cc`` (beside this file) is built (C++20, which torch 2.14's headers need) against the installed torch
wheel's headers and libraries, loads ``libholocron_torch.so`` with ``dlopen``, then ``torch::jit::load``s an archive
scripted here from holocron layers (Add2d, Involution2d, a local LambdaLayer) and writes its outputs; they equal
eager's, bit for bit (the same CPU kernels on the same inputs). The build is cached under ``build/libtorch-program``
per source, command and torch version.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import holocron.ops
from holocron import nn as hnn

REPO = Path(__file__).resolve().parents[2]
SOURCE = Path(__file__).with_name("run_archive.cc")


def _build_program() -> Path:
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler (g++ or c++) on PATH to build the libtorch program")
    torch_dir = Path(torch.__file__).parent
    include, lib = torch_dir / "include", torch_dir / "lib"
    flags = ["-std=c++20", "-O1", f"-I{include}", f"-I{include / 'torch' / 'csrc' / 'api' / 'include'}", f"-L{lib}",
             f"-Wl,-rpath,{lib}", "-ltorch", "-ltorch_cpu", "-lc10", "-ldl"]  # fmt: skip
    key = hashlib.sha256(SOURCE.read_bytes() + repr((flags, torch.__version__)).encode()).hexdigest()[:16]
    program = REPO / "build" / "libtorch-program" / key / "run_archive"
    if program.is_file():
        return program
    program.parent.mkdir(parents=True, exist_ok=True)
    command = [compiler, str(SOURCE), "-o", f"{program}.tmp", *flags]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    Path(f"{program}.tmp").replace(program)
    return program


def test_libtorch_program_runs_the_archive_with_the_library_alone(torch_library: Path, tmp_path: Path) -> None:
    program = _build_program()
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        hnn.Add2d(4, 8, 3, padding=1),
        hnn.Involution2d(8, 3, padding=1, reduction_ratio=2),
        hnn.LambdaLayer(8, 16, 4, r=3),
    ).eval()
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        expected = model(x)
    torch.jit.save(torch.jit.script(model), str(tmp_path / "model.pt"))
    torch.save((x,), tmp_path / "inputs.pt")
    library = holocron.ops.torch_library_path()
    result = subprocess.run(
        [str(program), library, "model.pt", "inputs.pt", "outputs.pt"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    torch.testing.assert_close(torch.load(tmp_path / "outputs.pt"), expected, rtol=0, atol=0)


def test_libtorch_program_without_the_library_cannot_run_the_archive(torch_library: Path, tmp_path: Path) -> None:
    """The check above is not vacuous: without the op library the archive does not load in the program."""
    program = _build_program()
    torch.jit.save(torch.jit.script(torch.nn.Sequential(hnn.Add2d(4, 8, 3, padding=1)).eval()), str(tmp_path / "m.pt"))
    torch.save((torch.randn(1, 4, 8, 8),), tmp_path / "inputs.pt")
    empty = tmp_path / "libempty.so"
    built = subprocess.run(["gcc", "-shared", "-x", "c", "-", "-o", str(empty)], input="", text=True, check=False)
    if built.returncode != 0:
        pytest.skip("no C compiler to build an empty shared library")
    result = subprocess.run(
        [str(program), str(empty), "m.pt", "inputs.pt", "out.pt"], cwd=tmp_path, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "holocron::add2d" in result.stderr
