"""A JSON list of findings with ruff's field names, plus `severity` (and `cell` in notebooks)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from tbptt_lint.diagnostics import Diagnostic, Fix
from tbptt_lint.output.context import ReportContext


def _location(position: tuple[int, int]) -> dict[str, int]:
    return {"row": position[0], "column": position[1]}


def fix_to_json(fix: Fix | None) -> dict[str, Any] | None:
    if fix is None:
        return None
    return {
        "applicability": fix.applicability,
        "message": fix.message,
        "edits": [
            {
                "content": edit.content,
                "location": _location(edit.location),
                "end_location": _location(edit.end_location),
            }
            for edit in fix.edits
        ],
    }


def diagnostic_to_json(diagnostic: Diagnostic) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if diagnostic.cell is not None:
        item["cell"] = diagnostic.cell
    item.update(
        code=diagnostic.code,
        end_location=_location((diagnostic.end_line, diagnostic.end_column)),
        filename=os.path.abspath(diagnostic.path),
        fix=fix_to_json(diagnostic.fix),
        location=_location((diagnostic.line, diagnostic.column)),
        message=diagnostic.message,
        noqa_row=diagnostic.line,
        severity=diagnostic.severity.value,
        url=diagnostic.url,
    )
    return item


def render(diagnostics: Sequence[Diagnostic], context: ReportContext) -> str:
    return json.dumps([diagnostic_to_json(d) for d in diagnostics], indent=2) + "\n"
