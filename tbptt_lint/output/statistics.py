"""`--statistics`: how many findings each rule produced, most frequent first, as ruff prints."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from tbptt_lint.catalog import BY_CODE as CATALOG_BY_CODE
from tbptt_lint.diagnostics import Diagnostic, applicable


@dataclass(frozen=True)
class RuleCount:
    code: str
    name: str
    count: int
    fixable: bool


def count_by_rule(diagnostics: Sequence[Diagnostic], unsafe_fixes: bool = False) -> list[RuleCount]:
    """`fixable`: some finding has a fix `--fix` would apply (unsafe ones with `unsafe_fixes`),
    as `[*]` marks in the text output."""
    counts = Counter(d.code for d in diagnostics)
    fixable = {d.code for d in diagnostics if applicable(d.fix, unsafe_fixes)}
    rows = [
        RuleCount(
            code, CATALOG_BY_CODE[code].name if code in CATALOG_BY_CODE else "", n, code in fixable
        )
        for code, n in counts.items()
    ]
    return sorted(rows, key=lambda row: (-row.count, row.code))


def render_text(diagnostics: Sequence[Diagnostic], unsafe_fixes: bool = False) -> str:
    rows = count_by_rule(diagnostics, unsafe_fixes)
    if not rows:
        return ""
    count_width = max(len(str(row.count)) for row in rows)
    code_width = max(len(row.code) for row in rows)
    any_fixable = any(row.fixable for row in rows)
    lines = []
    for row in rows:
        marker = ("[*] " if row.fixable else "[ ] ") if any_fixable else ""
        lines.append(f"{row.count:>{count_width}}\t{row.code:<{code_width}}\t{marker}{row.name}")
    return "".join(line + "\n" for line in lines)


def render_json(diagnostics: Sequence[Diagnostic], unsafe_fixes: bool = False) -> str:
    rows = [
        {"code": row.code, "name": row.name, "count": row.count, "fixable": row.fixable}
        for row in count_by_rule(diagnostics, unsafe_fixes)
    ]
    return json.dumps(rows, indent=2) + "\n"
