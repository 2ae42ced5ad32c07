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
    failures = skipped = 0
    for out in report.outputs:
        case = ElementTree.Element("testcase", classname=f"{suite}.outputs", name=out.name)
        if not out.passed:
            failures += 1
            message = _output_failure(out)
            ElementTree.SubElement(case, "failure", message=message, type="divergence").text = message
        cases.append(case)
    for mod in report.modules:
        case = ElementTree.Element("testcase", classname=f"{suite}.modules", name=mod.module)
        if not mod.passed:
            failures += 1
            message = _module_failure(mod)
            ElementTree.SubElement(case, "failure", message=message, type="divergence").text = message
        cases.append(case)
    for unlocalized in report.unlocalized:
        case = ElementTree.Element("testcase", classname=f"{suite}.modules", name=unlocalized.module)
        ElementTree.SubElement(case, "skipped", message=f"not compared: {unlocalized.detail}")
        skipped += 1
        cases.append(case)
    if report.localization_note:
        case = ElementTree.Element("testcase", classname=f"{suite}.modules", name="localization")
        ElementTree.SubElement(case, "skipped", message=f"not localized: {report.localization_note}")
        skipped += 1
        cases.append(case)
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
