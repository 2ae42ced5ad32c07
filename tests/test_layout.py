"""The package layout holds: export/ in one-way layers, no import circle, no private name imported across modules,
no export module over 400 lines. Each rule is checked on the real tree and shown to catch a planted defect."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Source folder -> the package it is installed as (pyproject's wheel.packages mapping).
PACKAGES = {"holocron": "holocron", "export": "holocron.export", "runtime": "holocron.runtime"}
#: export/'s layers along the data flow; a module may import its own group or groups of a lower rank only.
LAYERS = {
    "errors": 0,
    "files": 1,
    "model": 2,
    "onnx": 3,
    "torchscript": 3,
    "triton": 3,
    "parity": 4,
    "pipeline": 5,
    "cli": 6,
}
MAX_EXPORT_LINES = 400


def _modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every Python file of the three source folders under ``root``."""
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root / folder).with_suffix("").parts
            if "src" in parts or "tests" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((package, *parts))
            if folder == "holocron" and parts[:1] in (("export",), ("runtime",)):
                continue  # installed copies mapped in, if any
            found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str, int]]:
    """(imported project module, imported name or '', line) for every import in the file, nested ones included."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names if alias.name in modules]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in modules:
                    found.append((submodule, "", node.lineno))
                elif source in modules:
                    found.append((source, alias.name, node.lineno))
                elif node.level:  # a relative import of nothing the tree holds
                    found.append((f"?{source}", alias.name, node.lineno))
    return found


def _graph(root: Path) -> dict[str, list[tuple[str, str, int]]]:
    modules = _modules(root)
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def circles(root: Path) -> list[list[str]]:
    """Every import circle among the modules (one per strongly connected component of more than one module)."""
    graph = {
        name: sorted({target for target, _, _ in edges if target != name and not target.startswith("?")})
        for name, edges in _graph(root).items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, []):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return components


def unresolved_imports(root: Path) -> list[str]:
    """``module:line imports X`` for every relative import, lazy ones included, that names no module of the tree."""
    return [
        f"{name}:{line} imports {target[1:]}.{imported}"
        for name, edges in _graph(root).items()
        for target, imported, line in edges
        if target.startswith("?")
    ]


def private_imports(root: Path) -> list[str]:
    """``module:line imports other._name`` for every private name imported from another module."""
    return [
        f"{name}:{line} imports {target}.{imported}"
        for name, edges in _graph(root).items()
        for target, imported, line in edges
        if imported.startswith("_") and not imported.startswith("__") and target != name
    ]


def _layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["holocron", "export"] else None


def upward_imports(root: Path) -> list[str]:
    """Imports inside export/ that go against the data flow (to a later layer or a sibling group of one layer)."""
    found = []
    for name, edges in _graph(root).items():
        here = _layer(name)
        if here is None:
            continue
        for target, _, line in edges:
            there = _layer(target)
            if there is None or there == here:
                continue
            if LAYERS[there] >= LAYERS[here]:
                found.append(f"{name}:{line} imports {target} ({there} is not below {here})")
    return found


def long_modules(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root)}: {count} lines"
        for path in sorted((root / "export").rglob("*.py"))
        if (count := len(path.read_text().splitlines())) > MAX_EXPORT_LINES
    ]


RULES = {
    "circles": circles,
    "private": private_imports,
    "upward": upward_imports,
    "long": long_modules,
    "unresolved": unresolved_imports,
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_tree_follows_the_rule(rule: str) -> None:
    assert RULES[rule](REPO) == []


def test_every_export_module_has_a_layer() -> None:
    layers = {_layer(name) for name in _modules(REPO)} - {None}
    layers.discard("__init__")
    assert layers <= set(LAYERS), f"modules outside the declared layers: {sorted(layers - set(LAYERS))}"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for folder in PACKAGES:
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / "__init__.py").write_text("")
    for relative, text in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


PLANTED = {
    "circles": {
        "export/onnx/graph.py": "def f():\n    from .finalize import g\n",  # a lazy import still counts
        "export/onnx/finalize.py": "from .graph import f\n",
    },
    "private": {"export/parity/api.py": "from .session import _load\n", "export/parity/session.py": "_load = 1\n"},
    "upward": {"export/errors.py": "from .parity.report import Report\n", "export/parity/report.py": "Report = 1\n"},
    "long": {"export/pipeline.py": "x = 1\n" * (MAX_EXPORT_LINES + 1)},
    "unresolved": {
        "export/pipeline/__init__.py": "",
        "export/pipeline/run.py": "def f():\n    from .model import demo\n",
    },
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_catches_a_planted_defect(rule: str, tmp_path: Path) -> None:
    for folder in ("model", "onnx", "parity", "cli"):
        (tmp_path / "export" / folder).mkdir(parents=True)
        (tmp_path / "export" / folder / "__init__.py").write_text("")
    assert RULES[rule](_tree(tmp_path, PLANTED[rule])) != []
