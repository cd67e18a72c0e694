"""Issue 12, round 6: the classes the round-5 adversarial pass noticed and left alone. Every
case is a whole program; each label was checked by running it with torch (a leak raises
"Trying to backward through the graph a second time"; a step after a clear applies no
gradient) before the linter was run on it.

- A state kept in an entry of a local dict under a constant key (`state["h"]`, `state['h'],
  state['c']` of an LSTM) is followed as a name of its own: carried uncut it is TBP001, cut
  in one of two entries TBP002; cut entry by entry, by a dict comprehension, in place
  (`state["h"].detach_()`) or made anew per window, it is silent.
- A partial cut in a comprehension over per-layer states (`[(h.detach(), c) for h, c in
  hidden]`) leaves every layer's `c` uncut (TBP002), also when the layers are stepped one by
  one through the list (`x, hidden[l] = cell(x, hidden[l])`).
- A closure that declares the state `nonlocal` (or a function of a script that declares it
  `global`) and steps it carries it from call to call as `out, h = f(x, h)` would (TBP001),
  unless the closure, or the loop that calls it, cuts it.
- Per-layer state kept on a list of the object (`self.states[i] = layer(x, self.states[i])`)
  is a state of the object like `self.hidden`: carried across calls or windows with no cut it
  is TBP001; cut (`[s.detach() for s in self.states]`, a loop of `s.detach_()`) or made anew
  per window it is silent.
- `zero_grad()` (`optimizer.zero_grad(set_to_none=True)`, `model.zero_grad()`) between the
  backward and the step of the same pass wipes the gradients the step was to apply
  (TBP012); the clear before the backward, after the step, or before a second backward is
  the normal order.
"""

from __future__ import annotations

import textwrap

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

# ----------------------------------------------------------------- 1. state in a dict entry

DICT_GRU = (
    HEADER
    + """
gru = nn.GRU(4, 8)
head = nn.Linear(8, 1)
opt = torch.optim.SGD(list(gru.parameters()) + list(head.parameters()), lr=0.1)
state = {"h": torch.zeros(1, 2, 8)}
for i in range(0, 40, 10):
    {cut}
    out, state["h"] = gru(stream[i:i + 10], state["h"]){mark}
    loss = head(out).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)
FOUND["dict entry: a GRU's state carried uncut"] = fill(
    DICT_GRU, cut="pass", mark="  # expect: TBP001"
)
SILENT["dict entry: cut entry by entry"] = fill(
    DICT_GRU, cut='state["h"] = state["h"].detach()', mark=""
)
SILENT["dict entry: cut by a dict comprehension"] = fill(
    DICT_GRU, cut="state = {k: v.detach() for k, v in state.items()}", mark=""
)
SILENT["dict entry: cut in place"] = fill(DICT_GRU, cut='state["h"].detach_()', mark="")
SILENT["dict entry: made anew per window"] = fill(
    DICT_GRU, cut='state = {"h": torch.zeros(1, 2, 8)}', mark=""
)

DICT_LSTM = (
    HEADER
    + """
lstm = nn.LSTM(4, 8)
head = nn.Linear(8, 1)
opt = torch.optim.SGD(list(lstm.parameters()) + list(head.parameters()), lr=0.1)
state = {'h': torch.zeros(1, 2, 8), 'c': torch.zeros(1, 2, 8)}
for i in range(0, 40, 10):
    {cut}
    out, (state['h'], state['c']) = lstm(stream[i:i + 10], (state['h'], state['c'])){mark}
    loss = head(out).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)
FOUND["dict entries: an LSTM's (h, c) carried uncut"] = fill(
    DICT_LSTM, cut="pass", mark="  # expect: TBP001, TBP001"
)
FOUND["dict entries: only h of an LSTM's (h, c) cut"] = fill(
    DICT_LSTM, cut="state['h'] = state['h'].detach()", mark="  # expect: TBP002"
)
FOUND["dict entries: only c cut"] = fill(
    DICT_LSTM, cut="state['c'] = state['c'].detach()", mark="  # expect: TBP002"
)
SILENT["dict entries: both cut in one statement"] = fill(
    DICT_LSTM, cut="state['h'], state['c'] = state['h'].detach(), state['c'].detach()", mark=""
)
SILENT["dict entries: cut by a dict comprehension"] = fill(
    DICT_LSTM, cut="state = {k: v.detach() for k, v in state.items()}", mark=""
)
SILENT["dict entries: both cut in place"] = fill(
    DICT_LSTM, cut="state['h'].detach_(), state['c'].detach_()", mark=""
)

SILENT["dict entries: cut by a loop over the keys"] = fill(
    DICT_LSTM, cut="for k in state:\n        state[k] = state[k].detach()", mark=""
)
SILENT["dict entries: cut by update()"] = fill(
    DICT_LSTM, cut="state.update({k: v.detach() for k, v in state.items()})", mark=""
)
SILENT["dict entries: cut in place by a helper given the dict"] = fill(
    DICT_LSTM,
    cut="detach_all_(state)",
    mark="",
).replace(
    "for i in range(0, 40, 10):",
    "def detach_all_(d):\n    for v in d.values():\n        v.detach_()\n\n\n"
    "for i in range(0, 40, 10):",
)

DICT_VIA_LOCAL = (
    HEADER
    + """
gru = nn.GRU(4, 8)
head = nn.Linear(8, 1)
opt = torch.optim.SGD(list(gru.parameters()) + list(head.parameters()), lr=0.1)
state = {"h": torch.zeros(1, 2, 8), "step": 0}
for i in range(0, 40, 10):
    out, h = gru(stream[i:i + 10], state["h"]){mark}
    state["h"] = {store}
    loss = head(out).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)
FOUND["dict entry: stored back through a local, uncut"] = fill(
    DICT_VIA_LOCAL, store="h", mark="  # expect: TBP001"
)
SILENT["dict entry: stored back through a local, cut"] = fill(
    DICT_VIA_LOCAL, store="h.detach()", mark=""
)

# ------------------------------------------------- 2. a partial cut inside a comprehension

LAYERS_INDEXED = (
    HEADER
    + """
cells = nn.ModuleList([nn.LSTM(4, 4), nn.LSTM(4, 4)])
head = nn.Linear(4, 1)
opt = torch.optim.SGD(list(cells.parameters()) + list(head.parameters()), lr=0.1)
hidden = [(torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)) for _ in cells]
for i in range(0, 40, 10):
    {cut}
    x = stream[i:i + 10]
    for l, cell in enumerate(cells):
        x, hidden[l] = cell(x, hidden[l]){mark}
    loss = head(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)
FOUND["comprehension: only h of each layer's (h, c) cut"] = fill(
    LAYERS_INDEXED, cut="hidden = [(h.detach(), c) for h, c in hidden]", mark="  # expect: TBP002"
)
FOUND["comprehension: only c of each layer's (h, c) cut"] = fill(
    LAYERS_INDEXED, cut="hidden = [(h, c.detach()) for (h, c) in hidden]", mark="  # expect: TBP002"
)
FOUND["per-layer list: stepped by index, never cut"] = fill(
    LAYERS_INDEXED, cut="pass", mark="  # expect: TBP001"
)
SILENT["comprehension: both parts of each layer cut"] = fill(
    LAYERS_INDEXED, cut="hidden = [(h.detach(), c.detach()) for h, c in hidden]", mark=""
)
SILENT["comprehension: each layer's tuple cut whole"] = fill(
    LAYERS_INDEXED, cut="hidden = [tuple(t.detach() for t in hc) for hc in hidden]", mark=""
)
SILENT["per-layer list: made anew per window"] = fill(
    LAYERS_INDEXED,
    cut="hidden = [(torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)) for _ in cells]",
    mark="",
)

STACK_MODEL = (
    HEADER
    + """

class Stack(nn.Module):
    def __init__(self):
        super().__init__()
        self.cells = nn.ModuleList([nn.LSTM(4, 4), nn.LSTM(4, 4)])

    def forward(self, x, hidden):
        new_hidden = {}
        for k, cell in enumerate(self.cells):
            x, new_hidden[k] = cell(x, hidden[k])
        return x, new_hidden


model = Stack()
head = nn.Linear(4, 1)
opt = torch.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=0.1)
hidden = {k: (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)) for k in range(2)}
for i in range(0, 40, 10):
    hidden = {cut}
    out, hidden = model(stream[i:i + 10], hidden){mark}
    loss = head(out).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)
FOUND["dict comprehension: only v[0] of each (h, c) cut"] = fill(
    STACK_MODEL,
    cut="{k: (v[0].detach(), v[1]) for k, v in hidden.items()}",
    mark="  # expect: TBP002",
)
SILENT["dict comprehension: both parts cut"] = fill(
    STACK_MODEL, cut="{k: (v[0].detach(), v[1].detach()) for k, v in hidden.items()}", mark=""
)

# ------------------------------------------------------ 3. state shared with a closure

NONLOCAL = (
    HEADER
    + """

def main():
    gru = nn.GRU(4, 8)
    head = nn.Linear(8, 1)
    opt = torch.optim.SGD(list(gru.parameters()) + list(head.parameters()), lr=0.1)
    hidden = torch.zeros(1, 2, 8)

    def step(x):
        nonlocal hidden
        {inner}
        out, hidden = gru(x, hidden)
        return head(out).pow(2).mean()

    for i in range(0, 40, 10):
        {outer}
        loss = step(stream[i:i + 10]){mark}
        opt.zero_grad()
        loss.backward()
        opt.step()


main()
"""
)
FOUND["nonlocal: a closure steps the state, nothing cuts it"] = fill(
    NONLOCAL, inner="pass", outer="pass", mark="  # expect: TBP001"
)
SILENT["nonlocal: the closure cuts it before its step"] = fill(
    NONLOCAL, inner="hidden = hidden.detach()", outer="pass", mark=""
)
SILENT["nonlocal: the loop cuts it before calling the closure"] = fill(
    NONLOCAL, inner="pass", outer="hidden = hidden.detach()", mark=""
)
SILENT["nonlocal: the loop re-makes it per window"] = fill(
    NONLOCAL, inner="pass", outer="hidden = torch.zeros(1, 2, 8)", mark=""
)

NONLOCAL_LSTM = (
    HEADER
    + """

def train():
    lstm = nn.LSTM(4, 8)
    head = nn.Linear(8, 1)
    opt = torch.optim.Adam(list(lstm.parameters()) + list(head.parameters()))
    hidden = None

    def window(x):
        nonlocal hidden
        if hidden is not None:
            {cut}
        out, hidden = lstm(x, hidden)
        loss = head(out).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for i in range(0, 40, 10):
        window(stream[i:i + 10]){mark}


train()
"""
)
FOUND["nonlocal: an LSTM's pair stepped and back-propagated in the closure"] = fill(
    NONLOCAL_LSTM, cut="pass", mark="  # expect: TBP001"
)
SILENT["nonlocal: the closure cuts the pair under a None guard"] = fill(
    NONLOCAL_LSTM, cut="hidden = tuple(t.detach() for t in hidden)", mark=""
)

GLOBAL = (
    HEADER
    + """
gru = nn.GRU(4, 8)
head = nn.Linear(8, 1)
opt = torch.optim.SGD(list(gru.parameters()) + list(head.parameters()), lr=0.1)
hidden = torch.zeros(1, 2, 8)


def train_step(x):
    global hidden
    {cut}
    out, hidden = gru(x, hidden)
    loss = head(out).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


for i in range(0, 40, 10):
    train_step(stream[i:i + 10]){mark}
"""
)
FOUND["global: a script's step function carries the state"] = fill(
    GLOBAL, cut="pass", mark="  # expect: TBP001"
)
SILENT["global: the step function cuts it first"] = fill(
    GLOBAL, cut="hidden = hidden.detach()", mark=""
)

GLOBAL_PAIR = (
    HEADER
    + """
lstm = nn.LSTM(4, 8)
head = nn.Linear(8, 1)
opt = torch.optim.SGD(list(lstm.parameters()) + list(head.parameters()), lr=0.1)
h, c = torch.zeros(1, 2, 8), torch.zeros(1, 2, 8)


def forward_window(x):
    global h, c
    {cut}
    out, (h, c) = lstm(x, (h, c))
    return head(out).pow(2).mean()


for i in range(0, 40, 10):
    loss = forward_window(stream[i:i + 10]){mark}
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)
FOUND["global: both parts of an LSTM's pair, back-propagated by the script"] = fill(
    GLOBAL_PAIR, cut="pass", mark="  # expect: TBP001, TBP001"
)
SILENT["global: both parts cut in the function"] = fill(
    GLOBAL_PAIR, cut="h, c = h.detach(), c.detach()", mark=""
)

# --------------------------------------------------- 4. per-layer state on an attribute list

ATTRIBUTE_STACK = (
    HEADER
    + """

class Stack(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.GRUCell(4, 4), nn.GRUCell(4, 4)])
        self.{attr} = [torch.zeros(2, 4) for _ in self.layers]

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            self.{attr}[i] = layer(x, self.{attr}[i])
            x = self.{attr}[i]
        return x


model = Stack()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for i in range(0, 40, 10):
    {cut}
    loss = 0
    for t in range(i, i + 10):
        loss = loss + model(stream[t]).pow(2).mean(){mark}
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)
FOUND["attribute list: a stack's per-layer states carried across windows"] = fill(
    ATTRIBUTE_STACK, attr="states", cut="pass", mark="  # expect: TBP001"
)
FOUND["attribute list: named hidden"] = fill(
    ATTRIBUTE_STACK, attr="hidden", cut="pass", mark="  # expect: TBP001"
)
SILENT["attribute list: cut by a list comprehension"] = fill(
    ATTRIBUTE_STACK, attr="states", cut="model.states = [s.detach() for s in model.states]", mark=""
)
SILENT["attribute list: each cut in place"] = fill(
    ATTRIBUTE_STACK,
    attr="states",
    cut="for s in model.states:\n        s.detach_()",
    mark="",
)
SILENT["attribute list: made anew per window"] = fill(
    ATTRIBUTE_STACK,
    attr="states",
    cut="model.states = [torch.zeros(2, 4) for _ in model.layers]",
    mark="",
)

STACK_WITH_METHOD = ATTRIBUTE_STACK.replace(
    "        return x\n",
    "        return x\n\n    def detach_states(self):\n{method}\n",
    1,
).replace("    {cut}\n", "    model.detach_states()\n", 1)
SILENT["attribute list: a method of the model cuts them by a comprehension"] = fill(
    STACK_WITH_METHOD,
    attr="states",
    method="        self.states = [s.detach() for s in self.states]",
    mark="",
)
SILENT["attribute list: a method of the model cuts each in place"] = fill(
    STACK_WITH_METHOD,
    attr="states",
    method="        for s in self.states:\n            s.detach_()",
    mark="",
)
FOUND["attribute list: a method of the model that throws each detach away"] = fill(
    STACK_WITH_METHOD,
    attr="states",
    method="        for s in self.states:\n            s.detach()  # expect: TBP003",
    mark="  # expect: TBP001",
)

TRAINER_LAYERS = (
    HEADER
    + """

class Trainer:
    def __init__(self):
        self.layers = nn.ModuleList([nn.GRUCell(4, 4), nn.GRUCell(4, 4)])
        self.head = nn.Linear(4, 1)
        self.hidden = [torch.zeros(2, 4) for _ in self.layers]
        params = list(self.layers.parameters()) + list(self.head.parameters())
        self.opt = torch.optim.SGD(params, lr=0.1)

    def train(self, stream):
        for i in range(0, stream.size(0), 10):
            {cut}
            loss = 0
            for t in range(i, i + 10):
                x = stream[t]
                for l, layer in enumerate(self.layers):
                    self.hidden[l] = layer(x, self.hidden[l]){mark}
                    x = self.hidden[l]
                loss = loss + self.head(x).pow(2).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()


Trainer().train(stream)
"""
)
FOUND["attribute list: a trainer steps self.hidden[l] and never cuts it"] = fill(
    TRAINER_LAYERS, cut="pass", mark="  # expect: TBP001"
)
SILENT["attribute list: the trainer cuts every layer's state per window"] = fill(
    TRAINER_LAYERS, cut="self.hidden = [h.detach() for h in self.hidden]", mark=""
)
SILENT["attribute list: the trainer cuts them by index"] = fill(
    TRAINER_LAYERS,
    cut=(
        "for l in range(len(self.hidden)):\n"
        "                self.hidden[l] = self.hidden[l].detach()"
    ),
    mark="",
)
SILENT["attribute list: the trainer cuts them by index, over enumerate"] = fill(
    TRAINER_LAYERS,
    cut="for l, h in enumerate(self.hidden):\n                self.hidden[l] = h.detach()",
    mark="",
)
SILENT["attribute list: the trainer re-makes them per window"] = fill(
    TRAINER_LAYERS, cut="self.hidden = [torch.zeros(2, 4) for _ in self.layers]", mark=""
)

# ------------------------------------------ 5. zero_grad() between the backward and the step

CLEAR_ORDER = (
    HEADER
    + """
lstm = nn.LSTM(4, 8)
head = nn.Linear(8, 1)
opt = torch.optim.SGD(list(lstm.parameters()) + list(head.parameters()), lr=0.1)
hidden = None
for i in range(0, 40, 10):
    if hidden is not None:
        hidden = tuple(h.detach() for h in hidden)
    out, hidden = lstm(stream[i:i + 10], hidden)
    loss = head(out).pow(2).mean()
{body}
"""
)
FOUND["clear order: zero_grad() between backward and step"] = fill(
    CLEAR_ORDER,
    body="""\
    loss.backward()
    opt.zero_grad()  # expect: TBP012
    opt.step()""",
)
FOUND["clear order: zero_grad(set_to_none=True) between backward and step"] = fill(
    CLEAR_ORDER,
    body="""\
    loss.backward()
    opt.zero_grad(set_to_none=True)  # expect: TBP012
    opt.step()""",
)
FOUND["clear order: the models' zero_grad() between backward and step"] = fill(
    CLEAR_ORDER,
    body="""\
    loss.backward()
    lstm.zero_grad()  # expect: TBP012
    head.zero_grad()
    opt.step()""",
)
FOUND["clear order: under the same condition as the step"] = fill(
    CLEAR_ORDER,
    body="""\
    loss.backward()
    if i % 20 == 0:
        opt.zero_grad()  # expect: TBP012
        opt.step()""",
)
SILENT["clear order: zero_grad() before the backward"] = fill(
    CLEAR_ORDER,
    body="""\
    opt.zero_grad()
    loss.backward()
    opt.step()""",
)
SILENT["clear order: zero_grad() after the step"] = fill(
    CLEAR_ORDER,
    body="""\
    loss.backward()
    opt.step()
    opt.zero_grad()""",
)
SILENT["clear order: accumulation, cleared right after the periodic step"] = fill(
    CLEAR_ORDER,
    body="""\
    loss.backward()
    if i % 20 == 10:
        opt.step()
        opt.zero_grad()""",
)
SILENT["clear order: a second backward after the clear"] = fill(
    CLEAR_ORDER,
    body="""\
    loss.backward(retain_graph=True)
    opt.zero_grad()
    (2 * loss).backward()
    opt.step()""",
)
SILENT["clear order: the clear on the other branch"] = fill(
    CLEAR_ORDER,
    body="""\
    if i % 20 == 0:
        loss.backward()
    else:
        opt.zero_grad()
    opt.step()""",
)

CLEAR_ORDER_METHOD = (
    HEADER
    + """

class Trainer:
    def __init__(self):
        self.model = nn.GRU(4, 8)
        self.optimizer = torch.optim.Adam(self.model.parameters())

    def fit(self, stream):
        hidden = torch.zeros(1, 2, 8)
        for i in range(0, stream.size(0), 10):
            out, hidden = self.model(stream[i:i + 10], hidden.detach())
            loss = out.pow(2).mean()
            loss.backward()
            {clear}
            self.optimizer.step()
            {after}


Trainer().fit(stream)
"""
)
FOUND["clear order: a trainer's model.zero_grad() before its optimizer's step"] = fill(
    CLEAR_ORDER_METHOD, clear="self.model.zero_grad()  # expect: TBP012", after="pass"
)
SILENT["clear order: a trainer's clear after its step"] = fill(
    CLEAR_ORDER_METHOD, clear="pass", after="self.model.zero_grad()"
)


def test_a_list_stepped_by_index_is_advised_a_list_cut() -> None:
    """`tuple(...)` or a tuple-making `repackage_hidden` would break `self.hidden[l] = ...`."""
    source = textwrap.dedent(fill(TRAINER_LAYERS, cut="pass", mark=""))
    (finding,) = check_source(source, "example.py", Settings(select=("TBP",)))
    assert "`self.hidden = [s.detach() for s in self.hidden]`" in finding.message
    assert "tuple(s.detach() for s in self.hidden)" not in finding.message


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    source = FOUND[name]
    assert expected_sorted(source), "a FOUND case marks its lines"
    assert snippet_findings(source) == expected_sorted(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert snippet_findings(SILENT[name]) == []
