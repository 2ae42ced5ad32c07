"""The benchmark scripts as modules: each imports its siblings (_models, _timing) from benchmarks/, which is put on
sys.path while the module is loaded and used."""

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(name: str) -> Iterator[ModuleType]:
    """benchmarks/<name>.py imported as module ``name``, then removed again with benchmarks/ from sys.path."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="module")
def bench_ops() -> Iterator[ModuleType]:
    yield from load_benchmark("bench_ops")


@pytest.fixture(scope="module")
def bench_networks() -> Iterator[ModuleType]:
    yield from load_benchmark("bench_networks")
