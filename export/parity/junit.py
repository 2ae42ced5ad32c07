"""The verification report as JUnit XML, which CI systems show as test cases (``holocron-verify --junit``).

One ``<testsuite>`` per report: a ``<testcase>`` per model output (class ``outputs``) and per compared module (class
``modules``), failing with the error and the bound of the criterion; each module called but not compared is a
skipped test case giving the reason, and a localization that was asked for but not done is one skipped case too.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from .criteria import ModuleComparison, OutputComparison
from .report import VerificationReport

__all__ = ["junit_xml"]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3e}"


def _output_failure(out: OutputComparison) -> str:
    if out.shape != out.onnx_shape:
        return f"shape {out.onnx_shape} instead of {out.shape}"
    if out.criterion == "elementwise":
        return (
            f"max abs err {_number(out.max_abs_error)}, max rel err {_number(out.max_rel_error)} "
            f"(atol {out.atol:g}, rtol {out.rtol:g})"
        )
    extra = f", {out.nonfinite_mismatches} NaN/inf mismatches" if out.nonfinite_mismatches else ""
    return f"error {_number(out.exported_error)} > bound {_number(out.bound)} ({out.criterion}){extra}"


def _module_failure(mod: ModuleComparison) -> str:
    text = f"error {_number(mod.max_abs_err)} > bound {_number(mod.bound)} ({mod.criterion})"
    text += f", ONNX value {mod.onnx_value!r}"
    if mod.fused_modules:
        text += f"; includes {', '.join(mod.fused_modules)} (fused into it by the exporter)"
    return text


def junit_xml(report: VerificationReport, suite: str = "holocron-verify") -> bytes:
    """The report as a JUnit XML document (UTF-8, with declaration).

    Args:
        report: the verification report.
        suite: the test suite's name (CI shows it as the group of the test cases).

    Returns:
        The document's bytes.
    """
    root = ElementTree.Element("testsuites")
    cases: list[ElementTree.Element] = []

    def add(group: str, name: str, *, failure: str | None = None, skipped: str | None = None) -> None:
        """One test case: passed, or with a ``failure`` or ``skipped`` child saying why."""
        case = ElementTree.Element("testcase", classname=f"{suite}.{group}", name=name)
        if failure is not None:
            ElementTree.SubElement(case, "failure", message=failure, type="divergence").text = failure
        if skipped is not None:
            ElementTree.SubElement(case, "skipped", message=skipped)
        cases.append(case)

    for out in report.outputs:
        add("outputs", out.name, failure=None if out.passed else _output_failure(out))
    for mod in report.modules:
        add("modules", mod.module, failure=None if mod.passed else _module_failure(mod))
    for unlocalized in report.unlocalized:
        add("modules", unlocalized.module, skipped=f"not compared: {unlocalized.detail}")
    if report.localization_note:
        add("modules", "localization", skipped=f"not localized: {report.localization_note}")
    failures = sum(case.find("failure") is not None for case in cases)
    skipped = sum(case.find("skipped") is not None for case in cases)
    attributes = {"name": suite, "tests": str(len(cases)), "failures": str(failures), "errors": "0"}
    testsuite = ElementTree.SubElement(root, "testsuite", {**attributes, "skipped": str(skipped)})
    properties = ElementTree.SubElement(testsuite, "properties")
    for name, value in (
        ("criterion", report.criterion),
        ("execution_path", report.execution_path),
        ("providers", ",".join(report.providers)),
        ("seed", str(report.seed)),
        ("input_shapes", ";".join("x".join(map(str, shape)) for shape in report.input_shapes)),
    ):
        ElementTree.SubElement(properties, "property", name=name, value=value)
    testsuite.extend(cases)
    root.set("tests", str(len(cases)))
    root.set("failures", str(failures))
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
