"""verify / compare_outputs: the comparison criterion, the error measures, the report and the input handling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from holocron.export import ExportError, to_onnx_proto, verify
from holocron.export.cli.flags import parse_input_shape
from holocron.export.model.inputs import make_inputs
from holocron.export.parity.criteria import compare_outputs

SHAPE = (2, 3, 6, 6)


def test_error_measures_on_a_worked_example() -> None:
    eager = np.array([1.0, 2.0, 0.0, -4.0])
    onnx_out = np.array([1.00001, 2.0004, 1e-6, -4.0])
    # abs errors: 1e-5, 4e-4, 1e-6, 0 -> max 4e-4; relative errors where |eager| > atol: 1e-5, 2e-4, 0 -> max 2e-4.
    result = compare_outputs("y", eager, onnx_out, atol=1e-5, rtol=1e-4)
    assert result.max_abs_error == pytest.approx(4e-4)
    assert result.max_rel_error == pytest.approx(2e-4)
    assert not result.passed  # 4e-4 > 1e-5 + 1e-4 * 2
    assert compare_outputs("y", eager, onnx_out, atol=1e-5, rtol=3e-4).passed  # 4e-4 <= 1e-5 + 3e-4 * 2


def test_exact_match_passes_with_zero_errors() -> None:
    values = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    result = compare_outputs("y", values, values.copy(), atol=0.0, rtol=0.0)
    assert result.passed
    assert (result.max_abs_error, result.max_rel_error) == (0.0, 0.0)


def test_shape_mismatch_fails_without_error_values() -> None:
    result = compare_outputs("y", np.zeros((2, 3)), np.zeros((3, 2)), atol=1.0, rtol=1.0)
    assert not result.passed
    assert result.max_abs_error is None and result.max_rel_error is None
    assert (result.shape, result.onnx_shape) == ((2, 3), (3, 2))


def test_non_finite_values_must_agree() -> None:
    eager = np.array([np.nan, np.inf, 1.0])
    assert compare_outputs("y", eager, eager.copy(), atol=1e-5, rtol=1e-4).passed
    mismatch = compare_outputs("y", eager, np.array([np.nan, -np.inf, 1.0]), atol=1e-5, rtol=1e-4)
    assert not mismatch.passed and mismatch.nonfinite_mismatches == 1
    assert not compare_outputs("y", eager, np.array([0.0, np.inf, 1.0]), atol=1e-5, rtol=1e-4).passed


@pytest.fixture(scope="module")
def conv() -> tuple[nn.Module, object]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    return model, to_onnx_proto(model, make_inputs([SHAPE]), exporter="torchscript")


def test_verify_passes_for_the_exported_model_and_fails_for_another(conv) -> None:
    model, proto = conv
    assert verify(model, proto, [SHAPE]).passed
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        other = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    report = verify(other, proto, [SHAPE])
    assert not report.passed
    assert "FAIL" in report.format_table()


def test_verify_reads_a_file_and_takes_tensors_or_shapes(conv, tmp_path) -> None:
    model, proto = conv
    path = tmp_path / "conv.onnx"
    path.write_bytes(proto.SerializeToString())
    x = torch.randn(SHAPE)
    report = verify(model, path, [x])
    assert report.passed and report.input_shapes == (SHAPE,)


def test_report_json_agrees_with_the_table(conv) -> None:
    model, proto = conv
    report = verify(model, proto, [SHAPE], seed=7)
    data = json.loads(report.to_json())
    assert data["passed"] is True and data["seed"] == 7
    assert data["execution_path"] == "standard-onnx"
    assert data["criterion"] == "float64-referenced" and data["first_divergence"] is None
    header, rule, row, summary, criterion = report.format_table().splitlines()
    assert header.split()[0] == "output" and set(rule) <= {"-", " "}
    output = data["outputs"][0]
    assert row.split()[0] == output["name"]
    assert summary.startswith("PASSED")
    assert criterion.startswith("criterion: float64-referenced")
    assert row.split()[1] == "x".join(map(str, output["shape"]))
    eager_err, exported_err, ratio, bound, scale = (float(cell) for cell in row.split()[2:7])
    assert eager_err == pytest.approx(output["eager_error"], rel=1e-3)
    assert exported_err == pytest.approx(output["exported_error"], rel=1e-3)
    assert ratio == pytest.approx(output["ratio"], abs=6e-3)
    assert bound == pytest.approx(output["bound"], rel=1e-3)
    assert scale == pytest.approx(output["scale"], rel=1e-3)
    assert row.split()[-1] == "PASS"


def test_explicit_tolerances_give_the_elementwise_table(conv) -> None:
    model, proto = conv
    report = verify(model, proto, [SHAPE], atol=1e-5)
    data = report.to_dict()
    assert data["criterion"] == "elementwise"
    assert (data["outputs"][0]["atol"], data["outputs"][0]["rtol"]) == (1e-5, 1e-4)  # rtol keeps its default
    header, _, row, _, _ = report.format_table().splitlines()
    assert header.split()[2:4] == ["max", "abs"]
    assert float(row.split()[2]) == pytest.approx(data["outputs"][0]["max_abs_error"], rel=1e-3)


@pytest.mark.parametrize(
    ("inputs", "error", "match"),
    [
        ([SHAPE, SHAPE], ValueError, r"takes 1 input\(s\) \(input\) but 2 were given"),
        ([(2, 3, 7, 6)], ValueError, "has shape 2,3,7,6 but the ONNX model expects 2,3,6,6"),
        ([(2, 3, 6)], ValueError, "has shape 2,3,6 but the ONNX model expects"),
        (["abc"], TypeError, "must be a tensor, or a non-empty sequence"),
        ([(2, 0, 6, 6)], ValueError, "dimension below 1"),
    ],
)
def test_inputs_that_do_not_fit_are_named(conv, inputs, error, match) -> None:
    model, proto = conv
    with pytest.raises(error, match=match):
        verify(model, proto, inputs[0] if inputs == ["abc"] else inputs)


def test_negative_tolerance_is_refused(conv) -> None:
    model, proto = conv
    with pytest.raises(ValueError, match="atol and rtol must be >= 0"):
        verify(model, proto, [SHAPE], atol=-1.0)


def test_requiring_kernels_without_the_library_is_an_error(conv, monkeypatch, tmp_path) -> None:
    import holocron.runtime

    monkeypatch.setenv(holocron.runtime.LIBRARY_ENV, str(tmp_path / "missing.so"))
    model, proto = conv
    with pytest.raises(ExportError, match=r"use_kernels=True but holocron\.runtime"):
        verify(model, proto, [SHAPE], use_kernels=True)
    assert verify(model, proto, [SHAPE]).passed  # auto mode falls back to a plain session


def test_seeded_inputs_are_reproducible() -> None:
    first = make_inputs([SHAPE, (4,)], seed=3)
    again = make_inputs([SHAPE, (4,)], seed=3)
    other = make_inputs([SHAPE, (4,)], seed=4)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
    given = torch.ones(2, 2)
    assert make_inputs([given])[0] is given


@pytest.mark.parametrize("text", ["", "1,,3", "1,3,x", "1.5,3", " , "])
def test_malformed_shape_text(text: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        parse_input_shape(text)


def test_shape_text() -> None:
    assert parse_input_shape("1,3,224,224") == (1, 3, 224, 224)
    assert parse_input_shape(" 2 , 16 ") == (2, 16)
    with pytest.raises(ValueError, match="below 1"):
        parse_input_shape("1,0,3")
