"""Helpers for the CLI tests (imported by basename: tests/ is not a package).

The fake analysis stands in for the real one so that the output layer, selection, noqa and exit
codes can be tested on their own: it reports a finding wherever the source calls one of the
marker functions below, and turns Python syntax errors into SourceSyntaxError.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tbptt_lint.analysis import SourceSyntaxError
from tbptt_lint.diagnostics import Finding

# marker call -> the code the fake reports for it (one per severity, plus the off-by-default one)
FAKE_MARKERS = {
    "bug_call": "TBP001",
    "partial_call": "TBP002",
    "warn_call": "TBP004",
    "nofix_call": "TBP007",
    "data_call": "TBP008",
}
MARKER_PATTERN = re.compile(r"\b(" + "|".join(FAKE_MARKERS) + r")\([^)\n]*\)")

# The snippet the real analysis guarantees to report as TBP001 on line 8 (`rnn(x, hidden)`).
TBP001_SNIPPET = """\
import torch
import torch.nn as nn

rnn = nn.LSTM(8, 16)
opt = torch.optim.SGD(rnn.parameters(), lr=0.1)
hidden = None
for x, y in batches:
    out, hidden = rnn(x, hidden)
    loss = ((out - y) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
TBP001_LINE = 8


def fake_check_source(
    source: str, path: str, settings: object, index: object = None, module_name: object = None
) -> list[Finding]:
    try:
        ast.parse(source)
    except SyntaxError as error:
        raise SourceSyntaxError(error.msg, error.lineno or 1, error.offset or 1) from None
    findings = []
    for number, line in enumerate(source.splitlines(), start=1):
        for match in MARKER_PATTERN.finditer(line):
            code = FAKE_MARKERS[match.group(1)]
            findings.append(
                Finding(
                    code=code,
                    message=f"fake {code} at `{match.group(0)}`",
                    line=number,
                    column=match.start() + 1,
                    end_line=number,
                    end_column=match.end() + 1,
                )
            )
    return findings


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
