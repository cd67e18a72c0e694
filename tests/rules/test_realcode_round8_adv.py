"""Issue 12, round 8: an adversarial pass of 79 small runnable training programs (labels
checked by running each with torch and the tracer first). The classes it found:

- A training-step function of the file that cuts the state it is given before reading it
  (`h = h.detach()` at its top, under `if h is not None:` too, or `gru(x, h.detach())`)
  and hands back the live state is called as `h = train_window(x, h)`: the state it returns
  is stale, but no graph of an earlier window reaches the function's own backward (no
  TBP001). One that reads the state uncut first still leaks.
"""

from __future__ import annotations

import re
import textwrap

import pytest

from tbptt_lint.analysis.api import check_source
from tbptt_lint.settings import Settings

HEADER = """\
import torch
import torch.nn as nn

stream = torch.randn(40, 2, 4)
"""


def codes(source: str) -> list[tuple[str, int]]:
    findings = check_source(textwrap.dedent(source), "example.py", Settings(select=("TBP",)))
    return sorted((f.code, f.line) for f in findings)


def expected(source: str) -> list[tuple[str, int]]:
    found = []
    for number, line in enumerate(source.splitlines(), start=1):
        match = re.search(r"# expect: ([A-Z0-9, ]+)", line)
        if match:
            found += [(code.strip(), number) for code in match.group(1).split(",")]
    return sorted(found)


def fill(template: str, **parts: str) -> str:
    for name, text in parts.items():
        template = template.replace("{" + name + "}", text)
    return template


FOUND: dict[str, str] = {}
SILENT: dict[str, str] = {}

# ------------------------------- 1. a step function that cuts the state it is given first

STEP_FUNCTION = (
    HEADER
    + """
gru = nn.GRU(4, 8)
opt = torch.optim.SGD(gru.parameters(), lr=0.1)


def train_window(x, h):
    {body}
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return h


h = torch.zeros(1, 2, 8)
for x in stream.split(10):
    h = train_window(x, h){mark}
"""
)
SILENT["step function: the state rebound to its cut first"] = fill(
    STEP_FUNCTION, body="h = h.detach()\n    out, h = gru(x, h)", mark=""
)
SILENT["step function: the state cut where the model reads it"] = fill(
    STEP_FUNCTION, body="out, h = gru(x, h.detach())", mark=""
)
SILENT["step function: the state cut under `if h is not None:`"] = fill(
    STEP_FUNCTION, body="if h is not None:\n        h = h.detach()\n    out, h = gru(x, h)", mark=""
)
SILENT["step function: the state cut in place first"] = fill(
    STEP_FUNCTION, body="h.detach_()\n    out, h = gru(x, h)", mark=""
)
SILENT["step function: the state passed by keyword, cut first"] = (
    fill(STEP_FUNCTION, body="h = h.detach()\n    out, h = gru(x, h)", mark="")
    .replace("train_window(x, h)", "train_window(x, h=h)")
    .replace("def train_window(x, h=h)", "def train_window(x, h)")
)
FOUND["step function: the state read uncut"] = fill(
    STEP_FUNCTION, body="out, h = gru(x, h)", mark="  # expect: TBP001"
)
FOUND["step function: the state read uncut before its cut"] = fill(
    STEP_FUNCTION,
    body="out, h = gru(x, h)\n    h2 = h.detach()",
    mark="  # expect: TBP001",
)
FOUND["step function: the state cut on one read, read uncut on another"] = fill(
    STEP_FUNCTION,
    body="out, _ = gru(x, h.detach())\n    out, h = gru(x, h)",
    mark="  # expect: TBP001",
)
FOUND["step function: the state cut only when a flag says so"] = fill(
    STEP_FUNCTION,
    body="if x.sum() > 0:\n        h = h.detach()\n    out, h = gru(x, h)",
    mark="  # expect: TBP001",
)


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    source = FOUND[name]
    assert expected(source), "a FOUND case marks its lines"
    assert codes(source) == expected(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert codes(SILENT[name]) == []
