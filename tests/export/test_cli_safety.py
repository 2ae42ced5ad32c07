"""holocron-export against hostile and careless input: no code run from an untrusted file, no file lost or special file
replaced, usage errors found before the model is loaded (exit 2, one line naming the flag), stderr holding only our
line."""

from __future__ import annotations

import builtins
import io
import os
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch
from helpers import one_line_error, run_cli
from torch import nn

from holocron.export import ModelLoadError, load_model
from holocron.export.errors import UnsafePickleError
from holocron.export.model.archives import check_archive

SHAPE = (2, 3, 4, 4)


class _CreatesFile:
    """Pickles as a call to ``open(marker, "w")``: unpickling it creates the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (builtins.open, (self.marker, "w"))


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, Path]:
    """A TorchScript archive, a static and a dynamic-batch .pt2 archive, and a fake TorchScript archive."""
    folder = tmp_path_factory.mktemp("safety-models")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    paths = {name: folder / name for name in ("model.pt", "static.pt2", "dynamic.pt2", "fake.pt")}
    torch.jit.save(torch.jit.script(model), str(paths["model.pt"]))
    torch.export.save(torch.export.export(model, (torch.randn(SHAPE),)), paths["static.pt2"])
    batch = torch.export.Dim("batch")
    dynamic = torch.export.export(model, (torch.randn(SHAPE),), dynamic_shapes=({0: batch},))
    torch.export.save(dynamic, paths["dynamic.pt2"])
    # Recognized as a TorchScript archive from its listing, but torch.jit.load fails on it: a check that reaches the
    # loader exits 1 ("cannot load"), one made before loading exits 2.
    with zipfile.ZipFile(paths["fake.pt"], "w") as archive:
        archive.writestr("fake/constants.pkl", b"\x80\x02).")
        archive.writestr("fake/code/__torch__.py", "not python(")
        archive.writestr("fake/data.pkl", b"\x80\x02}.")
    return paths


def _crafted_archive(source: Path, target: Path, marker: Path) -> Path:
    """``source`` (a .pt2 archive) with sample inputs whose unpickling creates ``marker``."""
    payload = io.BytesIO()
    torch.save(((_CreatesFile(str(marker)),), {}), payload)
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as crafted:
        for info in original.infolist():
            data = payload.getvalue() if "sample_inputs" in info.filename else original.read(info)
            crafted.writestr(info, data)
    return target


# --- finding 1: code execution through the pickles of an archive -------------------------------------------------


@pytest.mark.parametrize("name", ["evil.pt2", "evil.pt", "evil"])
def test_crafted_archive_runs_nothing_without_trust_pickle(archives, tmp_path, name) -> None:
    marker = tmp_path / "MARKER"
    crafted = _crafted_archive(archives["static.pt2"], tmp_path / name, marker)
    result = run_cli(crafted, "-o", "out.onnx", cwd=tmp_path)
    line = one_line_error(result)
    assert result.returncode == 1
    assert "--trust-pickle" in line and "trust_pickle" not in line
    assert "builtins.open" in line or "io.open" in line
    assert not marker.exists(), "the archive's payload ran"
    assert not (tmp_path / "out.onnx").exists()


def test_load_model_refuses_crafted_archive(archives, tmp_path) -> None:
    marker = tmp_path / "MARKER"
    crafted = _crafted_archive(archives["static.pt2"], tmp_path / "evil.bin", marker)
    with pytest.raises(UnsafePickleError, match="pass trust_pickle=True only if you trust"):
        load_model(crafted)
    assert not marker.exists()


def test_genuine_archives_pass_the_archive_check(archives) -> None:
    check_archive(archives["static.pt2"], "torch_export")
    check_archive(archives["dynamic.pt2"], "torch_export")
    check_archive(archives["model.pt"], "torchscript")
    assert load_model(archives["static.pt2"]).kind == "torch_export"


def test_trusted_pickle_with_unimportable_class_suggests_pythonpath(tmp_path) -> None:
    (tmp_path / "user_models.py").write_text(
        textwrap.dedent("""
            import torch

            class Tiny(torch.nn.Module):
                def forward(self, x):
                    return x + 1
        """)
    )
    subprocess.run(
        [sys.executable, "-c", "import torch, user_models; torch.save(user_models.Tiny(), 'tiny.pth')"],
        cwd=tmp_path, check=True, env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    result = run_cli(tmp_path / "tiny.pth", "--trust-pickle", "--input-shape", "1,3", "-o", "out.onnx", cwd=run_dir)
    assert result.returncode == 1
    line = one_line_error(result)
    assert "No module named 'user_models'" in line and "PYTHONPATH" in line
    with pytest.raises(ModelLoadError, match="PYTHONPATH"):
        load_model(tmp_path / "tiny.pth", trust_pickle=True)


# --- findings 2 and 3: lost data, special files ------------------------------------------------------------------


def _model_copy(archives, tmp_path) -> tuple[Path, bytes]:
    model = tmp_path / "model.pt"
    shutil.copy(archives["model.pt"], model)
    return model, model.read_bytes()


@pytest.mark.parametrize("how", ["same path", "symlink", "hard link"])
def test_report_on_model_is_refused_before_anything_is_written(archives, tmp_path, how) -> None:
    model, original = _model_copy(archives, tmp_path)
    report = {"same path": model, "symlink": tmp_path / "link.json", "hard link": tmp_path / "hard.json"}[how]
    if how == "symlink":
        report.symlink_to(model)
    elif how == "hard link":
        os.link(model, report)
    result = run_cli(model, "--input-shape", "2,3,4,4", "-o", "out.onnx", "--report", report, "--force", cwd=tmp_path)
    assert result.returncode == 2
    line = one_line_error(result)
    assert "--report" in line and "MODEL" in line
    assert model.read_bytes() == original
    assert not (tmp_path / "out.onnx").exists()


def test_report_equal_to_output_is_refused(archives, tmp_path) -> None:
    model, _ = _model_copy(archives, tmp_path)
    result = run_cli(model, "--input-shape", "2,3,4,4", "-o", "same", "--report", "same", "--atol", "0", cwd=tmp_path)
    assert result.returncode == 2
    line = one_line_error(result)
    assert "--report" in line and "-o" in line
    assert not (tmp_path / "same").exists()


@pytest.mark.parametrize("flag", ["-o", "--report"])
@pytest.mark.parametrize("kind", ["fifo", "socket", "directory"])
def test_special_files_are_never_replaced_even_with_force(archives, tmp_path, flag, kind) -> None:
    model, _ = _model_copy(archives, tmp_path)
    special = tmp_path / "special"
    server = None
    if kind == "fifo":
        os.mkfifo(special)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(special))
    else:
        special.mkdir()
    try:
        paths = {"-o": tmp_path / "out.onnx", "--report": tmp_path / "report.json", flag: special}
        result = run_cli(model, "--input-shape", "2,3,4,4", *[x for item in paths.items() for x in item], "--force",
                         cwd=tmp_path)  # fmt: skip
        assert result.returncode == 2
        line = one_line_error(result)
        assert flag in line and "only a regular file or a new path" in line
        still = {"fifo": stat.S_ISFIFO, "socket": stat.S_ISSOCK, "directory": stat.S_ISDIR}[kind]
        assert still(special.lstat().st_mode)
        assert not (tmp_path / "out.onnx").exists() and not (tmp_path / "report.json").exists()
    finally:
        if server is not None:
            server.close()


def test_device_node_is_refused_by_the_python_api() -> None:
    from holocron.export.files import check_writable

    with pytest.raises(ValueError, match="character device"):
        check_writable("/dev/null", overwrite=True)


def test_force_replaces_a_symlink_never_its_target(tmp_path) -> None:
    from holocron.export import OutputExistsError
    from holocron.export.files import write_bytes_atomically

    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "out.onnx"
    link.symlink_to(target)
    with pytest.raises(OutputExistsError, match="symbolic link"):
        write_bytes_atomically(link, b"new", overwrite=False)
    write_bytes_atomically(link, b"new", overwrite=True)
    assert not link.is_symlink() and link.read_bytes() == b"new"
    assert target.read_text() == "keep me"
    dangling = tmp_path / "dangling.onnx"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputExistsError):
        write_bytes_atomically(dangling, b"new", overwrite=False)


# --- finding 10: CLI consistency --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--input-shape", "2,3,4,4", "--opset", "7"], "--opset"),
        (["--input-shape", "2,3,4,4", "--opset", "99"], "--opset"),
        (["--input-shape", "2,3,4,4", "--opset", "21"], "--opset"),  # a TorchScript MODEL: torchscript exporter
        ([], "--input-shape"),
        (["--input-shape", "1,1e20"], "--input-shape"),
        (["--input-shape", "1," + "1" + "0" * 20], "--input-shape"),
        (["--input-shape", "1,\u0663,4,4"], "--input-shape"),  # ARABIC-INDIC DIGIT THREE
        (["--input-shape", "2,3,4,4", "--seed", "1e23"], "--seed"),
        (["--input-shape", "2,3,4,4", "--seed", str(10**23)], "--seed"),
        (["--input-shape", "2,3,4,4", "--atol", "inf"], "--atol"),
        (["--input-shape", "2,3,4,4", "--rtol", "nan"], "--rtol"),
    ],
)
def test_usage_errors_exit_2_before_loading(archives, tmp_path, args, flag) -> None:
    # fake.pt is only recognized, never loadable: reaching the loader would exit 1.
    result = run_cli(archives["fake.pt"], *args, "-o", "out.onnx", cwd=tmp_path)
    line = one_line_error(result)
    assert result.returncode == 2, line
    assert flag in line
    assert not list(tmp_path.iterdir())


def test_static_batch_archive_with_dynamic_batch_says_how_to_save_it(archives, tmp_path) -> None:
    result = run_cli(archives["static.pt2"], "--dynamic-batch", "-o", "out.onnx", cwd=tmp_path)
    line = one_line_error(result)
    assert result.returncode == 2
    assert "--dynamic-batch" in line and "dynamic_shapes" in line
    assert not list(tmp_path.iterdir())


def test_pt2_with_torchscript_exporter_is_a_usage_error(archives, tmp_path) -> None:
    result = run_cli(archives["dynamic.pt2"], "--exporter", "torchscript", "-o", "out.onnx", cwd=tmp_path)
    assert result.returncode == 2
    assert "--exporter" in one_line_error(result)


def test_existing_output_message_names_force_not_the_python_argument(archives, tmp_path) -> None:
    (tmp_path / "out.onnx").write_text("keep me")
    result = run_cli(archives["model.pt"], "--input-shape", "2,3,4,4", "-o", "out.onnx", cwd=tmp_path)
    line = one_line_error(result)
    assert result.returncode == 1
    assert "pass --force to replace it" in line and "overwrite" not in line
    assert (tmp_path / "out.onnx").read_text() == "keep me"


def test_stderr_holds_only_our_line_when_torch_logs(tmp_path) -> None:
    """A custom op without a fake implementation makes torch.export log ``E... always_classified is unsupported``."""
    (tmp_path / "no_fake.py").write_text(
        textwrap.dedent("""
            import torch

            @torch.library.custom_op("holocron_test_no_fake::twice", mutates_args=())
            def twice(x: torch.Tensor) -> torch.Tensor:
                return x * 2

            class NoFake(torch.nn.Module):
                def forward(self, x):
                    return twice(x)
        """)
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    subprocess.run(
        [sys.executable, "-c", "import torch, no_fake; torch.save(no_fake.NoFake(), 'no_fake.pth')"],
        cwd=tmp_path, check=True, env=env,
    )  # fmt: skip
    result = run_cli("no_fake.pth", "--trust-pickle", "--input-shape", "1,3", "-o", "out.onnx", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "no fake impl" in one_line_error(result)
    assert not (tmp_path / "out.onnx").exists()
