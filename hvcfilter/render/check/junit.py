"""``check --format junit``: JUnit XML, the test report every CI system shows.

One ``<testsuite>`` per spec file, inside one ``<testsuites>`` for the run.
A file with no findings is one passing ``<testcase>``; otherwise each
finding is a ``<testcase>`` (``classname`` the file, ``name`` the code,
rule name and key path). A finding that fails the check, an error, or a
warning with ``--strict``, carries a ``<failure>``; an unreadable file
(HVF001) an ``<error>``; the rest pass, with their message in
``<system-out>`` so the report still shows them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hvcfilter.diagnostics import Diagnostic, Severity
from hvcfilter.lint import FileReport, LintReport
from hvcfilter.utf8 import valid_unicode

__all__ = ["render_junit"]

_UNREADABLE = "HVF001"


def _case_name(diag: Diagnostic) -> str:
    loc = diag.location
    where = loc.key or (f"line {loc.line}" if loc.line is not None else "file")
    return f"{diag.code} {diag.name} at {where}"


def _text(diag: Diagnostic) -> str:
    text = f"{diag.location}: {diag.severity.label}: {diag.message}"
    return text + (f"\nhint: {diag.hint}" if diag.hint else "")


def _suite(file: FileReport, worst: Severity) -> tuple[ET.Element, int, int]:
    suite = ET.Element("testsuite", name=file.path)
    failures = errors = 0
    if not file.diagnostics:
        ET.SubElement(suite, "testcase", classname=file.path, name="hvcfilter check")
    for diag in file.diagnostics:
        case = ET.SubElement(suite, "testcase", classname=file.path, name=_case_name(diag))
        if diag.code == _UNREADABLE:
            errors += 1
            tag = "error"
        elif diag.severity >= worst:
            failures += 1
            tag = "failure"
        else:
            ET.SubElement(case, "system-out").text = _text(diag)
            continue
        element = ET.SubElement(case, tag, type=diag.code, message=diag.message)
        element.text = _text(diag)
    tests = max(len(file.diagnostics), 1)
    suite.attrib.update(tests=str(tests), failures=str(failures), errors=str(errors))
    suite.set("skipped", "0")
    return suite, failures, errors


def render_junit(report: LintReport, *, color: bool = False, strict: bool = False) -> str:
    """A JUnit XML report; ``strict`` makes warnings failures, as it does the exit code.

    ``color`` is ignored.
    """
    worst = Severity.WARNING if strict else Severity.ERROR
    root = ET.Element("testsuites", name="hvcfilter check")
    total = failures = errors = 0
    for file in report.files:
        suite, file_failures, file_errors = _suite(file, worst)
        root.append(suite)
        total += int(suite.get("tests", "0"))
        failures += file_failures
        errors += file_errors
    root.attrib.update(tests=str(total), failures=str(failures), errors=str(errors))
    ET.indent(root)
    xml = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"
    return valid_unicode(xml)  # a UTF-8 XML document cannot hold a non-UTF-8 file name
