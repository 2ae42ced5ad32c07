"""bench_ops.py's floor figures: benchmarks/floor.cc builds and reports every mix, and the floor column follows the
instruction set the kernels run (HOLOCRON_CPU_ISA); its side-by-side instruction-set rows run two instruction sets."""

import platform
import shutil

import pytest


@pytest.mark.skipif(platform.machine() != "x86_64", reason="floor.cc is x86-64 assembly")
@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler")
def test_floor_program_reports_every_mix(bench_ops) -> None:
    rates = bench_ops.measure_floor()
    assert isinstance(rates, dict), rates
    assert "avx2" in rates  # every x86-64 machine this project runs on has AVX2 with FMA
    for isa, mixes in rates.items():
        assert set(mixes) == {"fma", "min+fma", "sub+and+add"}, (isa, mixes)
        assert all(value > 0 for value in mixes.values()), (isa, mixes)


@pytest.mark.parametrize(
    ("cap", "expected"),
    [(None, "avx512"), ("avx512", "avx512"), ("avx2", "avx2"), ("baseline", None), ("avx3", "avx512")],
)
def test_floor_column_follows_the_cap(bench_ops, monkeypatch, cap: str | None, expected: str | None) -> None:
    rates = {"avx2": {"fma": 2.0}, "avx512": {"fma": 4.0}}
    if cap is None:
        monkeypatch.delenv("HOLOCRON_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("HOLOCRON_CPU_ISA", cap)
    assert bench_ops.active_isa(rates) == expected


def test_floor_column_without_avx512_figures(bench_ops, monkeypatch) -> None:
    monkeypatch.delenv("HOLOCRON_CPU_ISA", raising=False)
    assert bench_ops.active_isa({"avx2": {"fma": 2.0}}) == "avx2"


@pytest.mark.skipif(platform.machine() != "x86_64", reason="instruction-set caps are x86-64 only")
def test_isa_pair_runs_two_instruction_sets_in_one_process(bench_ops, tmp_path) -> None:
    """bench_ops' side-by-side rows: two copies of the op library in one process, each on its own instruction set
    (the narrower fixed by the cap while its first session runs), with the same results."""
    import numpy as np

    case = next(case for case in bench_ops.cases() if case.op_type == "Involution2d")
    model = bench_ops.node_model(case.op_type, case.inputs, case.weights, case.attributes)
    pair = bench_ops.IsaPair("avx2", "baseline", tmp_path)
    outputs = {isa: pair.session(isa, model, 1, case.inputs).run(None, case.inputs)[0] for isa in ("avx2", "baseline")}
    assert {isa: pair.running_isa(isa) for isa in ("avx2", "baseline")} == {"avx2": "avx2", "baseline": "baseline"}
    np.testing.assert_allclose(outputs["avx2"], outputs["baseline"], rtol=1e-4, atol=1e-4)
