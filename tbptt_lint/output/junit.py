"""A JUnit XML report: one testsuite per file, one failing testcase per finding."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence

from tbptt_lint.diagnostics import Diagnostic
from tbptt_lint.output.context import ReportContext

TOOL_NAME = "tbptt-lint"


def render(diagnostics: Sequence[Diagnostic], context: ReportContext) -> str:
    count = str(len(diagnostics))
    root = ElementTree.Element(
        "testsuites", name=TOOL_NAME, tests=count, failures=count, errors="0"
    )
    if not diagnostics:
        # CI dashboards reject an empty report; a single passing case says the run was clean.
        suite = ElementTree.SubElement(
            root, "testsuite", name=TOOL_NAME, tests="1", failures="0", errors="0"
        )
        ElementTree.SubElement(suite, "testcase", name="No errors found", classname=TOOL_NAME)
        root.set("tests", "1")
    by_file: dict[str, list[Diagnostic]] = {}
    for diagnostic in diagnostics:
        by_file.setdefault(diagnostic.path, []).append(diagnostic)
    for path, items in by_file.items():
        shown = context.display_path(path)
        suite = ElementTree.SubElement(
            root,
            "testsuite",
            name=shown,
            tests=str(len(items)),
            failures=str(len(items)),
            errors="0",
        )
        for diagnostic in items:
            case = ElementTree.SubElement(
                suite,
                "testcase",
                name=f"org.{TOOL_NAME}.{diagnostic.code}",
                classname=shown,
                line=str(diagnostic.line),
                column=str(diagnostic.column),
            )
            failure = ElementTree.SubElement(
                case, "failure", message=diagnostic.message, type=diagnostic.severity.value
            )
            failure.text = f"line {diagnostic.line}, col {diagnostic.column}, {diagnostic.message}"
    ElementTree.indent(root)
    body = ElementTree.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
