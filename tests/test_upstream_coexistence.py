"""Upstream holocron (``pylocron``) beside this package, in fresh environments (see README, "Upstream holocron beside
this package").

Beside (another folder: ``HOLOCRON_UPSTREAM_PATH``, or upstream installed in the environment and this package in
editable mode), ``holocron.nn`` is ours and upstream's other sub-packages are reached in upstream's folder. In one
folder, the mix is refused at import with a message saying how to separate them. Needs upstream's wheel (downloaded
once into ``build/upstream-wheels``, or skipped); the environments reuse this interpreter's torch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

import holocron

UPSTREAM = "pylocron==0.3.0"
REPO = Path(__file__).resolve().parents[1]
OURS = Path(holocron._upstream.__file__).resolve().parent
SITE = sysconfig.get_paths()["purelib"]  # this environment's site-packages: torch, and our editable install's hook


@pytest.fixture(scope="module")
def upstream_wheel() -> Path:
    cache = REPO / "build" / "upstream-wheels"
    found = sorted(cache.glob("pylocron-0.3.0-*.whl"))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        download = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:"]
        result = subprocess.run([*download, UPSTREAM, "-d", str(cache)], capture_output=True, text=True, timeout=300)
        found = sorted(cache.glob("pylocron-0.3.0-*.whl"))
        if result.returncode != 0 or not found:
            pytest.skip(f"upstream's wheel ({UPSTREAM}) could not be downloaded: {result.stderr.strip()[-300:]}")
    return found[0]


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True, capture_output=True, timeout=300)


def _venv(root: Path) -> tuple[Path, Path]:
    """A bare virtual environment (no pip: this interpreter's pip installs into it): its python, its site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return python, Path(site)


def _run(python: Path | str, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "HOLOCRON_UPSTREAM_PATH"}}
    return subprocess.run(
        [str(python), "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**environ, **env},
        cwd="/",
    )


# Upstream's zoo runs on our layers: our nn, upstream's sub-packages, one training step of upstream's optimizer
BESIDE_CHECK = """
    import importlib.util, os, sys
    import torch
    import holocron, holocron.nn as hnn
    ours, upstream = sys.argv[1:] if len(sys.argv) > 2 else (os.path.dirname(holocron._upstream.__file__), None)
    upstream = os.path.realpath(UPSTREAM)
    def origin(name):
        return os.path.realpath(importlib.util.find_spec(name).origin)
    assert origin("holocron.nn").startswith(os.path.realpath(OURS)), origin("holocron.nn")
    assert origin("holocron.nn.modules.conv").startswith(os.path.realpath(OURS))
    for name in ("holocron.models", "holocron.trainer", "holocron.optim", "holocron.ops.boxes"):
        assert origin(name).startswith(upstream), (name, origin(name))
    from holocron.optim import LAMB
    model = torch.nn.Sequential(hnn.Involution2d(8, 3, padding=1), hnn.BlurPool2d(8), hnn.GlobalAvgPool2d(True))
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = LAMB(model.parameters(), lr=1e-2)
    model(torch.randn(2, 8, 8, 8)).square().sum().backward()
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    try:
        import holocron.models
    except ModuleNotFoundError as error:  # upstream's code ran; it needs upstream's own dependencies
        assert error.name.split(".")[0] in {"torchvision", "huggingface_hub", "tqdm", "PIL", "matplotlib"}, error
    print("beside ok")
"""


def _beside_check(ours: Path, upstream: Path) -> str:
    return BESIDE_CHECK.replace("OURS", repr(str(ours))).replace("UPSTREAM", repr(str(upstream)))


def test_upstream_in_a_target_folder_named_by_the_environment(tmp_path, upstream_wheel):
    target = tmp_path / "upstream"
    _pip("install", "--no-deps", "--target", str(target), str(upstream_wheel))
    result = _run(sys.executable, _beside_check(OURS, target / "holocron"), HOLOCRON_UPSTREAM_PATH=str(target))
    assert result.returncode == 0, result.stderr
    assert "beside ok" in result.stdout
    # Without the variable (and no upstream installed), upstream's sub-packages are simply absent
    result = _run(sys.executable, "import importlib.util; assert importlib.util.find_spec('holocron.models') is None")
    assert result.returncode == 0, result.stderr


def test_bad_upstream_folder_is_explained(tmp_path):
    result = _run(sys.executable, "import holocron", HOLOCRON_UPSTREAM_PATH=str(tmp_path))
    assert result.returncode != 0
    assert "HOLOCRON_UPSTREAM_PATH" in result.stderr
    assert "pip install --no-deps --target DIR pylocron" in result.stderr


@pytest.mark.skipif(not (OURS.parent / "export").is_dir(), reason="needs this package installed in editable mode")
def test_upstream_installed_beside_an_editable_install(tmp_path, upstream_wheel):
    python, site = _venv(tmp_path / "env")
    _pip("--python", str(python), "install", "--no-deps", str(upstream_wheel))
    # Our editable install (its import hook) and torch, from this environment
    (site / "holocron_dev.pth").write_text(f"import site; site.addsitedir({SITE!r})\n")
    result = _run(python, _beside_check(OURS, site / "holocron"))
    assert result.returncode == 0, result.stderr
    assert "beside ok" in result.stdout


def _copy_ours(site: Path) -> None:
    """Our package's files written into ``site/holocron`` file by file, over what is there (as pip installs them)."""
    shutil.copytree(OURS, site / "holocron", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))


@pytest.mark.parametrize("order", ["ours-last", "upstream-last"])
def test_both_in_one_folder_is_refused_with_the_fix(tmp_path, upstream_wheel, order):
    python, site = _venv(tmp_path / "env")
    (site / "torch_from_outer.pth").write_text(SITE + "\n")  # a plain path: torch, not our editable install
    if order == "ours-last":
        _pip("--python", str(python), "install", "--no-deps", str(upstream_wheel))
        _copy_ours(site)
    else:
        _copy_ours(site)
        _pip("--python", str(python), "install", "--no-deps", str(upstream_wheel))
    if order == "ours-last":
        code = "import holocron.nn"
    else:
        # Upstream's __init__ now runs first. With upstream's dependencies installed, its layers import
        # holocron.nn.functional (our folder shadows its functional.py), whose check raises; without them (no
        # torchvision here) upstream's import fails first on its own missing dependency. So run that check directly:
        # our file survived upstream's install and sees the mix.
        check = site / "holocron" / "_upstream.py"
        code = f"""
            import importlib.util
            spec = importlib.util.spec_from_file_location("holocron_check", {str(check)!r})
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            module.upstream_package_dir()
        """
        assert (site / "holocron" / "nn" / "functional" / "__init__.py").read_text().count("upstream_package_dir()")
    result = _run(python, code)
    assert result.returncode != 0
    assert "installed in the same folder" in result.stderr, result.stderr[-2000:]
    assert "pip uninstall -y holocron pylocron" in result.stderr


def _readme_block(heading: str) -> str:
    """The first bash block after ``heading`` in the README."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(heading) :]
    return section[section.index("```bash\n") + len("```bash\n") : section.index("```\n", section.index("```bash"))]


def test_readme_commands_for_upstream_beside(tmp_path, upstream_wheel):
    commands = _readme_block("### Upstream holocron beside this package")
    assert "pip install --no-deps --target upstream-holocron pylocron==0.3.0" in commands
    environ = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "HOLOCRON_UPSTREAM_PATH"}}
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ['PATH']}"
    # pip resolves pylocron==0.3.0 from the wheel already downloaded, without the network
    environ.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(upstream_wheel.parent), PIP_QUIET="1")
    result = subprocess.run(
        ["bash", "-e", "-c", commands], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "holocron.optim.lamb"
    assert (tmp_path / "upstream-holocron" / "holocron" / "models").is_dir()
