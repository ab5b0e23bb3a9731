"""Policy test results as JUnit XML, the report CI systems read."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree as ET

from ._run import CaseResult

__all__ = ["FileReport", "junit_xml"]

FileReport = tuple[str, Sequence[CaseResult], float]  # file name, results, seconds


def junit_xml(reports: Sequence[FileReport]) -> str:
    """One ``<testsuite>`` per file, one ``<testcase>`` per case; a failed
    case has a ``<failure>`` listing every difference."""
    suites = ET.Element("testsuites", name="pdp test")
    total = failed = 0
    for name, results, seconds in reports:
        failures = sum(1 for r in results if not r.passed)
        total += len(results)
        failed += failures
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=name,
            tests=str(len(results)),
            failures=str(failures),
            errors="0",
            time=f"{seconds:.6f}",
        )
        each = seconds / len(results) if results else 0.0
        for result in results:
            case = ET.SubElement(
                suite, "testcase", classname=name, name=result.case.name, time=f"{each:.6f}"
            )
            if not result.passed:
                failure = ET.SubElement(case, "failure", message=result.problems[0])
                failure.text = "\n".join([*result.problems, f"got: {result.got}"])
    suites.set("tests", str(total))
    suites.set("failures", str(failed))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)
