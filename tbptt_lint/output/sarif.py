"""SARIF 2.1.0, in the shape GitHub code scanning accepts."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tbptt_lint import __version__
from tbptt_lint.diagnostics import Diagnostic, Severity, rule_url
from tbptt_lint.output.context import ReportContext
from tbptt_lint.output.rule_docs import full_description

if TYPE_CHECKING:
    from tbptt_lint.rules.base import Rule

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
INFORMATION_URI = "https://github.com/tbptt-lint/tbptt-lint"
LEVEL_FOR_SEVERITY = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def artifact_uri(path: str, context: ReportContext) -> str:
    """Relative to the working directory with forward slashes, which GitHub resolves against the
    checkout; a file outside it gets an absolute file:// URI."""
    shown = context.display_path(path)
    if os.path.isabs(shown):
        return Path(shown).as_uri()
    return shown.replace(os.sep, "/")


def rule_descriptor(rule: type[Rule]) -> dict[str, Any]:
    # The short explanation and a link to the rule page: the whole pages made a log of one
    # finding over 100 KB, and code scanning shows the page from `helpUri` anyway.
    summary = rule.summary()
    url = rule_url(rule.code)
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": full_description(rule)},
        "help": {
            "text": f"{summary} See {url}",
            "markdown": f"# {rule.code} ({rule.name})\n\n{summary}\n\n[Rule page]({url})",
        },
        "helpUri": url,
        "defaultConfiguration": {"level": LEVEL_FOR_SEVERITY[rule.severity]},
        "properties": {"tags": [rule.name]},
    }


def _result(
    diagnostic: Diagnostic, rule_index: dict[str, int], context: ReportContext
) -> dict[str, Any]:
    end_column = diagnostic.end_column
    if diagnostic.end_line == diagnostic.line:
        end_column = max(end_column, diagnostic.column)
    result: dict[str, Any] = {
        "ruleId": diagnostic.code,
        "level": LEVEL_FOR_SEVERITY[diagnostic.severity],
        "message": {"text": diagnostic.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": artifact_uri(diagnostic.path, context)},
                    "region": {
                        "startLine": diagnostic.line,
                        "startColumn": diagnostic.column,
                        "endLine": max(diagnostic.end_line, diagnostic.line),
                        "endColumn": end_column,
                    },
                }
            }
        ],
    }
    if diagnostic.code in rule_index:
        result["ruleIndex"] = rule_index[diagnostic.code]
    if diagnostic.cell is not None:
        result["properties"] = {"cell": diagnostic.cell}
    return result


def render(diagnostics: Sequence[Diagnostic], context: ReportContext) -> str:
    from tbptt_lint.rules import ALL_RULES  # the help texts live on the rule classes

    rule_index = {rule.code: index for index, rule in enumerate(ALL_RULES)}
    log = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "tbptt-lint",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [rule_descriptor(rule) for rule in ALL_RULES],
                    }
                },
                "results": [_result(d, rule_index, context) for d in diagnostics],
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"
