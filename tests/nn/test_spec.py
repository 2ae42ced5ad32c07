"""The public layers follow the reference spec: class list, bases and constructor signatures.

The spec is read from ``../shared/spec/holocron-nn.md`` relative to the repository root; without it these tests skip.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from holocron import nn as hnn

SPEC_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "holocron-nn.md"
SECTION = re.compile(r"^### (\w+)\n\n```python\n(.+?)\n```\n\nBases: `(\w+)`", re.MULTILINE)


def _spec_sections() -> dict[str, tuple[str, str]]:
    if not SPEC_PATH.is_file():
        pytest.skip(f"spec not found at {SPEC_PATH}")
    return {name: (signature, base) for name, signature, base in SECTION.findall(SPEC_PATH.read_text())}


def _normalize_annotation(annotation: str) -> str:
    """One spelling for an annotation: parsed and unparsed, module prefixes dropped."""
    text = ast.unparse(ast.parse(annotation, mode="eval"))
    return re.sub(r"\b(?:torch\.nn|nn|torch|typing)\.", "", text)


def _spec_parameters(signature: str) -> list[tuple[str, str, str | None, object]]:
    """(name, kind, annotation, default) of each parameter of a spec signature line such as ``Cls(a: int = 1)``."""
    function = ast.parse(f"def {signature}: pass").body[0]
    arguments = function.args
    parameters = []
    defaults = [None] * (len(arguments.args) - len(arguments.defaults)) + list(arguments.defaults)
    for arg, default in zip(arguments.args, defaults, strict=True):
        value = inspect.Parameter.empty if default is None else ast.literal_eval(default)
        parameters.append((arg.arg, "POSITIONAL_OR_KEYWORD", ast.unparse(arg.annotation), value))
    if arguments.vararg is not None:
        parameters.append((arguments.vararg.arg, "VAR_POSITIONAL", ast.unparse(arguments.vararg.annotation), None))
    for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
        value = inspect.Parameter.empty if default is None else ast.literal_eval(default)
        parameters.append((arg.arg, "KEYWORD_ONLY", ast.unparse(arg.annotation), value))
    if arguments.kwarg is not None:
        parameters.append((arguments.kwarg.arg, "VAR_KEYWORD", ast.unparse(arguments.kwarg.annotation), None))
    return [(name, kind, _normalize_annotation(annotation), default) for name, kind, annotation, default in parameters]


def _actual_parameters(cls: type) -> list[tuple[str, str, str | None, object]]:
    parameters = []
    for parameter in inspect.signature(cls).parameters.values():
        annotation = parameter.annotation
        assert isinstance(annotation, str), f"{cls.__name__}.{parameter.name} has no source annotation"
        default = None if parameter.kind in {parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD} else parameter.default
        parameters.append((parameter.name, parameter.kind.name, _normalize_annotation(annotation), default))
    return parameters


def test_spec_lists_exactly_the_exported_classes():
    exported = set(hnn.__all__) - {"functional"}
    assert len(exported) == 26
    assert set(_spec_sections()) == exported
    assert hnn.functional is not None


@pytest.mark.parametrize("name", sorted(set(hnn.__all__) - {"functional"}))
def test_constructor_signature_and_base_follow_spec(name):
    signature, base = _spec_sections()[name]
    cls = getattr(hnn, name)
    assert signature.startswith(f"{name}(")
    assert _actual_parameters(cls) == _spec_parameters(signature)
    assert [parent.__name__ for parent in cls.__bases__] == [base]
