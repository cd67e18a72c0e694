"""Issue 12, round 8 (forms): state carried across windows in forms the analysis missed. Each
label was checked by running the program with torch first (an uncut carried state raises
"Trying to backward through the graph a second time"; the silent twins run clean).

- A state held in a dataclass or NamedTuple of the file: `state = State(h, c)` (or
  `s._replace(h=...)`, `dataclasses.replace(s, h=...)`) makes each field a name of its own
  (`state.h`), handed its new value through the local it is built from. Carried uncut it is
  TBP001, one field cut TBP002; every field cut, or the class's own `detach()` (its body
  builds a new record of cut fields), is silent; a class of unknown body stays unknown.
- A state handed on by a rename: `out, h_new = gru(x, h_prev)` ... `h_prev = h_new` (also
  `h_prev, c_prev = h_new, c_new` and the swap `h_prev, h_new = h_new, h_prev`) is the state
  the call reads, handed its new value through a local, as `self.hidden = h.detach()` already
  was: carried uncut it is TBP001, one part cut TBP002, every part cut silent.
- A loop that calls a method of the file that runs a backward (`hidden =
  self.train_window(x, hidden)`), or a function of the file from inside another function,
  held no backward the block filter saw (only imported helpers counted): the loop was not
  read. The step method that reads its state uncut is TBP001; one that cuts it first, or
  hands it back cut, is silent.
- `stats['loss'] = stats.get('loss', 0) + loss` keeps every window's graph in the dict, as
  `stats['loss'] += loss` does (TBP006); `.item()` or `.detach()` added is silent.
"""

from __future__ import annotations

import pytest

from tbptt_lint.testing import expected_sorted, fill, snippet_findings

HEADER = """\
import torch
import torch.nn as nn

stream = torch.randn(40, 2, 4)
"""


FOUND: dict[str, str] = {}
SILENT: dict[str, str] = {}

# ------------------------------------------------------- 2. a state handed on by a rename

RENAMED_GRU = (
    HEADER
    + """
gru = nn.GRU(4, 8)
opt = torch.optim.SGD(gru.parameters(), lr=0.1)
h_prev = torch.zeros(1, 2, 8)
h_new = None
for t in range(0, 40, 10):
    out, h_new = gru(stream[t : t + 10], h_prev){mark}
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    {handoff}
"""
)
FOUND["rename: `h_prev = h_new`"] = fill(
    RENAMED_GRU, handoff="h_prev = h_new", mark="  # expect: TBP001"
)
FOUND["rename: the swap `h_prev, h_new = h_new, h_prev`"] = fill(
    RENAMED_GRU, handoff="h_prev, h_new = h_new, h_prev", mark="  # expect: TBP001"
)
SILENT["rename: `h_prev = h_new.detach()`"] = fill(
    RENAMED_GRU, handoff="h_prev = h_new.detach()", mark=""
)
SILENT["rename: the swap with a cut"] = fill(
    RENAMED_GRU, handoff="h_prev, h_new = h_new.detach(), None", mark=""
)
SILENT["rename: the state made anew each window"] = fill(
    RENAMED_GRU, handoff="h_prev = torch.zeros(1, 2, 8)", mark=""
)
SILENT["rename: an observation handed back by a rollout function (no recurrent module)"] = (
    HEADER
    + """
gru = nn.GRU(4, 8)
opt = torch.optim.SGD(gru.parameters(), lr=0.1)


def roll_out(net, first):
    seen = [first]
    for _ in range(3):
        seen.append(torch.randn(2, 4))
    return torch.stack(seen), seen[-1]


def main():
    init_state = torch.randn(2, 4)
    for step in range(4):
        states, current_state = roll_out(gru, init_state)
        init_state = current_state
        out, _ = gru(states, torch.zeros(1, 2, 8))
        loss = out.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


main()
"""
)

RENAMED_LSTM = (
    HEADER
    + """
lstm = nn.LSTM(4, 8)
opt = torch.optim.SGD(lstm.parameters(), lr=0.1)


def train():
    h_prev = torch.zeros(1, 2, 8)
    c_prev = torch.zeros(1, 2, 8)
    for x in stream.split(10):
        out, (h_new, c_new) = lstm(x, (h_prev, c_prev)){mark}
        loss = out.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        {handoff}


train()
"""
)
FOUND["rename: `h_prev, c_prev = h_new, c_new`"] = fill(
    RENAMED_LSTM, handoff="h_prev, c_prev = h_new, c_new", mark="  # expect: TBP001, TBP001"
)
FOUND["rename: one part of the pair cut"] = fill(
    RENAMED_LSTM, handoff="h_prev, c_prev = h_new.detach(), c_new", mark="  # expect: TBP002"
)
FOUND["rename: two statements, neither cut"] = fill(
    RENAMED_LSTM,
    handoff="h_prev = h_new\n        c_prev = c_new",
    mark="  # expect: TBP001, TBP001",
)
SILENT["rename: both parts cut"] = fill(
    RENAMED_LSTM, handoff="h_prev, c_prev = h_new.detach(), c_new.detach()", mark=""
)
SILENT["rename: two statements, both cut"] = fill(
    RENAMED_LSTM, handoff="h_prev = h_new.detach()\n        c_prev = c_new.detach()", mark=""
)
SILENT["rename: the handed-on pair cut in place"] = fill(
    RENAMED_LSTM,
    handoff="h_new.detach_()\n        c_new.detach_()\n        h_prev, c_prev = h_new, c_new",
    mark="",
)


# ------------------------------- 3. a step method (or a step function called in a function)

STEP_METHOD = (
    HEADER
    + """

class Trainer:
    def __init__(self):
        self.gru = nn.GRU(4, 8)
        self.opt = torch.optim.SGD(self.gru.parameters(), lr=0.1)

    def train_window(self, x, hidden):
        {body}
        loss = out.pow(2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return hidden

    def fit(self):
        hidden = torch.zeros(1, 2, 8)
        for t in range(0, 40, 10):
            hidden = self.train_window(stream[t : t + 10], hidden){mark}


Trainer().fit()
"""
)
FOUND["step method: the state read uncut"] = fill(
    STEP_METHOD, body="out, hidden = self.gru(x, hidden)", mark="  # expect: TBP001"
)
SILENT["step method: the state cut at its top"] = fill(
    STEP_METHOD, body="hidden = hidden.detach()\n        out, hidden = self.gru(x, hidden)", mark=""
)
SILENT["step method: the state cut where the model reads it"] = fill(
    STEP_METHOD, body="out, hidden = self.gru(x, hidden.detach())", mark=""
)
SILENT["step method: the state handed back cut"] = fill(
    STEP_METHOD, body="out, hidden = self.gru(x, hidden)", mark=""
).replace("        return hidden", "        return hidden.detach()")

STEP_FUNCTION_IN_FIT = (
    HEADER
    + """
gru = nn.GRU(4, 8)
opt = torch.optim.SGD(gru.parameters(), lr=0.1)


def train_window(x, hidden):
    {body}
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return hidden


def fit():
    hidden = torch.zeros(1, 2, 8)
    for x in stream.split(10):
        hidden = train_window(x, hidden){mark}


fit()
"""
)
FOUND["step function called in a function: the state read uncut"] = fill(
    STEP_FUNCTION_IN_FIT, body="out, hidden = gru(x, hidden)", mark="  # expect: TBP001"
)
SILENT["step function called in a function: the state cut at its top"] = fill(
    STEP_FUNCTION_IN_FIT, body="hidden = hidden.detach()\n    out, hidden = gru(x, hidden)", mark=""
)
SILENT["step function called in a function: a fresh state each window"] = fill(
    STEP_FUNCTION_IN_FIT, body="out, hidden = gru(x, hidden)", mark=""
).replace(
    "        hidden = train_window(x, hidden)", "        train_window(x, torch.zeros(1, 2, 8))"
)


# ----------------------------------------- 1. a state held in a dataclass or NamedTuple

DATACLASS_STATE = """\
from dataclasses import dataclass

import torch
import torch.nn as nn

stream = torch.randn(40, 2, 4)


@dataclass
class State:
    h: torch.Tensor
    c: torch.Tensor

    def detach(self):
        return State(self.h.detach(), self.c.detach())


lstm = nn.LSTM(4, 8)
opt = torch.optim.SGD(lstm.parameters(), lr=0.1)
state = State(torch.zeros(1, 2, 8), torch.zeros(1, 2, 8))
for t in range(0, 40, 10):
    out, (h, c) = lstm(stream[t : t + 10], (state.h, state.c)){mark}
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    {handoff}
"""
FOUND["dataclass: `state = State(h, c)`"] = fill(
    DATACLASS_STATE, handoff="state = State(h, c)", mark="  # expect: TBP001, TBP001"
)
FOUND["dataclass: `State(h=h, c=c)` by keyword"] = fill(
    DATACLASS_STATE, handoff="state = State(c=c, h=h)", mark="  # expect: TBP001, TBP001"
)
FOUND["dataclass: `State(h.detach(), c)`"] = fill(
    DATACLASS_STATE, handoff="state = State(h.detach(), c)", mark="  # expect: TBP002"
)
FOUND["dataclass: `dataclasses.replace` cuts one field"] = fill(
    DATACLASS_STATE,
    handoff="state = State(h, c)\n    state = dataclasses.replace(state, h=state.h.detach())",
    mark="  # expect: TBP002",
).replace(
    "from dataclasses import dataclass\n", "import dataclasses\nfrom dataclasses import dataclass\n"
)
SILENT["dataclass: `State(h.detach(), c.detach())`"] = fill(
    DATACLASS_STATE, handoff="state = State(h.detach(), c.detach())", mark=""
)
SILENT["dataclass: its `detach()` method"] = fill(
    DATACLASS_STATE, handoff="state = State(h, c).detach()", mark=""
)
SILENT["dataclass: its `detach()` method, a statement later"] = fill(
    DATACLASS_STATE, handoff="state = State(h, c)\n    state = state.detach()", mark=""
)
SILENT["dataclass: a class of unknown body (imported)"] = (
    fill(DATACLASS_STATE, handoff="state = State(h, c)", mark="")
    .replace("@dataclass\nclass State:", "class _Unused:")
    .replace(
        "import torch.nn as nn\n", "import torch.nn as nn\nfrom mylib.states import State\n", 1
    )
)
SILENT["dataclass: a `__post_init__` that cuts the fields"] = fill(
    DATACLASS_STATE, handoff="state = State(h, c)", mark=""
).replace(
    "    def detach(self):",
    "    def __post_init__(self):\n"
    "        self.h = self.h.detach()\n"
    "        self.c = self.c.detach()\n\n"
    "    def detach(self):",
)

NAMEDTUPLE_STATE = """\
from typing import NamedTuple

import torch
import torch.nn as nn

stream = torch.randn(40, 2, 4)


class LSTMState(NamedTuple):
    h: torch.Tensor
    c: torch.Tensor


lstm = nn.LSTM(4, 8)
opt = torch.optim.SGD(lstm.parameters(), lr=0.1)


def train():
    s = LSTMState(torch.zeros(1, 2, 8), torch.zeros(1, 2, 8))
    for x in stream.split(10):
        out, (h, c) = lstm(x, (s.h, s.c)){mark}
        loss = out.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        s = LSTMState(h, c)
        {handoff}


train()
"""
FOUND["NamedTuple: `s = LSTMState(h, c)`"] = fill(
    NAMEDTUPLE_STATE, handoff="pass", mark="  # expect: TBP001, TBP001"
)
FOUND["NamedTuple: `s._replace(h=s.h.detach())`"] = fill(
    NAMEDTUPLE_STATE, handoff="s = s._replace(h=s.h.detach())", mark="  # expect: TBP002"
)
SILENT["NamedTuple: `s._replace` cuts both fields"] = fill(
    NAMEDTUPLE_STATE, handoff="s = s._replace(h=s.h.detach(), c=s.c.detach())", mark=""
)
SILENT["NamedTuple: made anew of cut parts"] = fill(
    NAMEDTUPLE_STATE, handoff="s = LSTMState(s.h.detach(), s.c.detach())", mark=""
)
SILENT["NamedTuple: made anew each window"] = fill(
    NAMEDTUPLE_STATE,
    handoff="s = LSTMState(torch.zeros(1, 2, 8), torch.zeros(1, 2, 8))",
    mark="",
)


# ------------------------------ 5. a loss kept in a dict through `.get(key, 0)` (TBP006)

STATS_GET = (
    HEADER
    + """
gru = nn.GRU(4, 8)
opt = torch.optim.SGD(gru.parameters(), lr=0.1)
stats = {}
for x in stream.split(10):
    h = torch.zeros(1, 2, 8)
    out, h = gru(x, h)
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    {sum}{mark}
"""
)
FOUND["stats: `stats['loss'] = stats.get('loss', 0) + loss`"] = fill(
    STATS_GET, sum="stats['loss'] = stats.get('loss', 0) + loss", mark="  # expect: TBP006"
)
FOUND["stats: `.get` with its default first"] = fill(
    STATS_GET, sum='stats["loss"] = loss + stats.get("loss", 0.0)', mark="  # expect: TBP006"
)
SILENT["stats: `.item()` added"] = fill(
    STATS_GET, sum="stats['loss'] = stats.get('loss', 0) + loss.item()", mark=""
)
SILENT["stats: `.detach()` added"] = fill(
    STATS_GET, sum="stats['loss'] = stats.get('loss', 0) + loss.detach()", mark=""
)
SILENT["stats: another entry read"] = fill(
    STATS_GET, sum="stats['loss'] = stats.get('count', 0) + loss", mark=""
)


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    source = FOUND[name]
    assert expected_sorted(source), "a FOUND case marks its lines"
    assert snippet_findings(source) == expected_sorted(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert snippet_findings(SILENT[name]) == []
