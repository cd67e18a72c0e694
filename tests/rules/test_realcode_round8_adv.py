"""Issue 12, round 8: an adversarial pass of 79 small runnable training programs (labels
checked by running each with torch and the tracer first). The classes it found:

- A training-step function of the file that cuts the state it is given before reading it
  (`h = h.detach()` at its top, under `if h is not None:` too, or `gru(x, h.detach())`)
  and hands back the live state is called as `h = train_window(x, h)`: the state it returns
  is stale, but no graph of an earlier window reaches the function's own backward (no
  TBP001). One that reads the state uncut first still leaks.
- A list made anew on every pass of a loop inside the window (`new = []` per time step, filled
  with each layer's `(h, c)`) lives for less than a window: it accumulates no graph across
  windows (no TBP006), where a list made once before the windows does. And what TBP006's
  unsafe fix appends is `.item()` only for a name a plain `name.backward()` starts from
  (torch requires one number there); anything else is cut with `.detach()`, where `.item()`
  would raise on a state or an output.
- TBP001's unsafe fix cuts the carried names after the backward; for a name a `for` loop takes
  anew from a list each pass (`for cell, (h, c) in zip(cells, states)`) that cut never reaches
  the next call, and `--fix` inserted it once per round, ten times. No fix is offered there,
  and the fixer throws away a round in which no fix removed its finding (and does not apply a
  fix again once it came back as often as it was applied).
- `list(map(torch.Tensor.detach_, state))` (or a lambda calling `t.detach_()`) as a
  statement cuts each part of the state in place; a bare `map(...)` is lazy and cuts nothing,
  and `torch.Tensor.detach` (out of place) throws the cut parts away.
- `net = nn.DataParallel(Net())` (DistributedDataParallel too) is a `Net`, as `net =
  nn.DataParallel(net)` already was: its calls run `Net.forward`, so a state carried uncut
  through it is TBP001, and a forward that returns it cut is silent.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from tbptt_lint.analysis.api import check_source
from tbptt_lint.settings import Settings
from tbptt_lint.testing import expected_sorted, fill, snippet_findings

HEADER = """\
import torch
import torch.nn as nn

stream = torch.randn(40, 2, 4)
"""


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


# ----------------------- 2. a list made anew per time step, filled with the layers' states

LAYER_STATES = (
    HEADER
    + """
cells = nn.ModuleList([nn.LSTMCell(4, 8), nn.LSTMCell(8, 8)])
opt = torch.optim.SGD(cells.parameters(), lr=0.1)
states = [(torch.zeros(2, 8), torch.zeros(2, 8)) for _ in cells]
{before}
for x in stream.split(10):
    outs = []
    for t in range(x.size(0)):
        inp = x[t]
        {reset}
        for cell, (h, c) in zip(cells, states):
            h, c = cell(inp, (h, c))
            new.append((h, c))
            inp = h
        states = new
        outs.append(inp)
    loss = torch.stack(outs).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    states = [(h.detach(), c.detach()) for h, c in states]
"""
)
SILENT["per-layer states gathered in a list made anew at every time step"] = fill(
    LAYER_STATES, before="", reset="new = []", mark=""
)
SILENT["per-layer states gathered in a list made anew by a comprehension"] = fill(
    LAYER_STATES, before="", reset="new = list()", mark=""
)
FOUND["layer outputs also kept in a list made once, before every window"] = fill(
    LAYER_STATES.replace(
        "            inp = h\n", "            inp = h\n            history.append(h){mark}\n"
    ),
    before="history = []",
    reset="new = []",
    mark="  # expect: TBP006",
)


# ------------------------------------------------ 4. an in-place cut mapped over the state

MAPPED = (
    HEADER
    + """
lstm = nn.LSTM(4, 8)
opt = torch.optim.SGD(lstm.parameters(), lr=0.1)
state = (torch.zeros(1, 2, 8), torch.zeros(1, 2, 8))
for x in stream.split(10):
    out, state = lstm(x, state){mark}
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    {cut}
"""
)
SILENT["list(map(torch.Tensor.detach_, state)) cuts each part in place"] = fill(
    MAPPED, mark="", cut="list(map(torch.Tensor.detach_, state))"
)
SILENT["tuple(map(lambda t: t.detach_(), state)) cuts each part in place"] = fill(
    MAPPED, mark="", cut="tuple(map(lambda t: t.detach_(), state))"
)
FOUND["a bare map(torch.Tensor.detach_, state) is lazy and cuts nothing"] = fill(
    MAPPED, mark="  # expect: TBP001", cut="map(torch.Tensor.detach_, state)"
)
FOUND["list(map(torch.Tensor.detach, state)) throws the cut parts away"] = fill(
    MAPPED, mark="  # expect: TBP001", cut="list(map(torch.Tensor.detach, state))"
)


# ---------------------------------- 5. a model wrapped by DataParallel as it is built

WRAPPED = (
    HEADER
    + """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 8)
        self.head = nn.Linear(8, 1)

    def forward(self, x, h):
        out, h = self.rnn(x, h)
        return self.head(out), {returned}


net = nn.DataParallel(Net(){to})
opt = torch.optim.SGD(net.parameters(), lr=0.1)
h = torch.zeros(1, 2, 8)
for x in stream.split(10):
    {cut}
    y, h = net(x, h){mark}
    loss = y.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)
FOUND["nn.DataParallel(Net()): the state carried uncut"] = fill(
    WRAPPED, returned="h", to="", cut="pass", mark="  # expect: TBP001"
)
FOUND["nn.DataParallel(Net().to(device)): the state carried uncut"] = fill(
    WRAPPED, returned="h", to='.to("cpu")', cut="pass", mark="  # expect: TBP001"
)
SILENT["nn.DataParallel(Net()): the state cut per window"] = fill(
    WRAPPED, returned="h", to="", cut="h = h.detach()", mark=""
)
SILENT["nn.DataParallel(Net()): the wrapped forward returns the state cut"] = fill(
    WRAPPED, returned="h.detach()", to="", cut="pass", mark=""
)


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    source = FOUND[name]
    assert expected_sorted(source), "a FOUND case marks its lines"
    assert snippet_findings(source) == expected_sorted(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert snippet_findings(SILENT[name]) == []


def fix_edits(source: str, code: str) -> list[str]:
    findings = check_source(textwrap.dedent(source), "example.py", Settings(select=(code,)))
    return [edit.content for f in findings if f.fix for edit in f.fix.edits]


def test_tbp006_fix_cuts_a_state_with_detach_not_item() -> None:
    """`h.item()` raises on a state of 16 numbers: the fix appends `.detach()`."""
    source = FOUND["layer outputs also kept in a list made once, before every window"]
    assert fix_edits(source, "TBP006") == [".detach()"]


def test_tbp006_fix_keeps_item_for_the_loss_backward_starts_from() -> None:
    source = (
        HEADER
        + """
gru = nn.GRU(4, 8)
opt = torch.optim.SGD(gru.parameters(), lr=0.1)
h = torch.zeros(1, 2, 8)
history = []
for x in stream.split(10):
    out, h = gru(x, h.detach())
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward(retain_graph=False)
    opt.step()
    history.append(loss)
"""
    )
    assert fix_edits(source, "TBP006") == [".item()"]


# ----------------------------------- 3. a cut of a state the loop takes anew from a list

LOOP_TARGET_STATE = (
    HEADER
    + """
cells = nn.ModuleList([nn.LSTMCell(4, 8), nn.LSTMCell(8, 8)])
opt = torch.optim.SGD(cells.parameters(), lr=0.1)
states = [(torch.zeros(2, 8), torch.zeros(2, 8)) for _ in cells]
for x in stream.split(10):
    outs = []
    for t in range(x.size(0)):
        inp = x[t]
        new = []
        for cell, (h, c) in zip(cells, states):
            h, c = cell(inp, (h, c))
            new.append((h, c))
            inp = h
        states = new
        outs.append(inp)
    loss = torch.stack(outs).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)


def test_no_cut_fix_for_a_state_a_loop_takes_anew() -> None:
    """`h, c = h.detach(), c.detach()` after the backward never reaches the next window: `for
    cell, (h, c) in zip(cells, states)` takes them from `states` again. No fix is offered
    (it was inserted ten times over, one per round of `--fix`)."""
    assert {code for code, _ in snippet_findings(LOOP_TARGET_STATE)} == {"TBP001"}
    assert fix_edits(LOOP_TARGET_STATE, "TBP001") == []


def test_cut_fix_still_offered_for_a_state_the_loop_carries() -> None:
    source = (
        HEADER
        + """
gru = nn.GRU(4, 8)
opt = torch.optim.SGD(gru.parameters(), lr=0.1)
h = torch.zeros(1, 2, 8)
for i, x in enumerate(stream.split(10)):
    out, h = gru(x, h)
    out.pow(2).mean().backward()
    opt.step()
    opt.zero_grad()
"""
    )
    assert [edit.strip() for edit in fix_edits(source, "TBP001")] == ["h = h.detach()"]


def test_fixer_drops_a_fix_that_does_not_remove_its_finding() -> None:
    """A fix whose finding comes back after it was applied is not applied round after round:
    the round that changed nothing is thrown away."""
    from pathlib import Path

    from tbptt_lint.diagnostics import UNSAFE, Edit, Finding, Fix
    from tbptt_lint.fixer import fix_document

    def check(text: str, notebook: object) -> tuple[list[Finding], list[Any], list[str]]:
        line = len(text.splitlines())
        edit = Edit("h = h.detach()\n", (line + 1, 1), (line + 1, 1))
        fix = Fix("Cut `h`", UNSAFE, (edit,))
        return [Finding("TBP001", "`h` is carried", 1, 1, 1, 2, fix)], [], []

    source = "h = step(h)\n"
    outcome = fix_document(Path("x.py"), source.encode(), source, None, check, unsafe=True)
    assert outcome.fixed == source.encode()
