"""Python started from the repository root imports the source folder ``holocron/``, which lacks ``export`` and
``runtime`` (an install maps them in from the top-level folders): the installed copy must win, or the error must say
what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
_PROBE = (
    "import holocron, holocron.export, holocron.runtime\n"
    "print(holocron.__file__)\n"
    "print(holocron.export.WHERE, holocron.runtime.WHERE)\n"
)


def _run_from_repo_root(code: str, pythonpath: Path | None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with cwd = the repository root, so that its ``holocron/`` comes first on ``sys.path``.

    ``-S`` skips site-packages and so the editable install's import hook: only ``pythonpath`` can supply an installed
    copy.
    """
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def _fake_installed_copy(site: Path) -> None:
    """A stand-in for a non-editable install: ``holocron`` with the mapped ``export`` and ``runtime`` subpackages."""
    package = site / "holocron"
    (package / "export").mkdir(parents=True)
    (package / "runtime").mkdir()
    (package / "__init__.py").write_text('raise AssertionError("the source folder\'s __init__ should run")\n')
    (package / "export" / "__init__.py").write_text('WHERE = "installed export"\n')
    (package / "runtime" / "__init__.py").write_text('WHERE = "installed runtime"\n')


def test_installed_subpackages_win_over_the_source_folder(tmp_path: Path) -> None:
    _fake_installed_copy(tmp_path / "site")
    result = _run_from_repo_root(_PROBE, tmp_path / "site")
    assert result.returncode == 0, result.stderr
    source_init, where = result.stdout.splitlines()
    assert Path(source_init).resolve() == REPO_ROOT / "holocron" / "__init__.py"
    assert where == "installed export installed runtime"


def test_without_an_installed_copy_the_error_says_what_to_do(tmp_path: Path) -> None:
    result = _run_from_repo_root("import holocron.runtime", None)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ModuleNotFoundError: holocron.runtime cannot be imported")
    assert "source folder" in last_line
    assert "pip install -e ." in last_line
