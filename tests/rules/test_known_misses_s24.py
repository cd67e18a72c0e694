"""Issue 12, session 24: known misses left by session 23, fixed as classes. Every FOUND source
here is reported otherwise (or not at all) by the code before the fix:

1. A per-layer cut of only one part of each layer's `(h, c)`, over a list of pairs or two
   lists zipped together (`[(h.detach(), c) for h, c in states]`, `[(h.detach(), c) for h, c
   in zip(hs, cs)]`, `states[k] = (h.detach(), c)` for every `k`, a new list filled with
   `append((h.detach(), c))`, or `hs = [h.detach() for h in hs]` beside an uncut `cs`) leaves
   each layer's state partly cut: TBP002 where the layers' loop unpacks it again (`for cell,
   (h, c) in zip(cells, states)`), not TBP001 on both parts. A list is known to hold tuples of
   one shape, and `zip` hands each name of a loop's target its own list's element.
2. A cut by index over a loop that skips some indices (`for j in range(1, len(states)):
   states[j] = states[j].detach()`, `range(len(states) - 1)`, `range(0, len(states), 2)`,
   `states[j].detach_()` over such a range) leaves the others uncut: TBP002, no longer a full
   cut. A range whose start or step is of unknown value, or an `enumerate` over a slice or
   from another start, cannot be told: silent; so can a list cut in part by two stores
   (`states[0]` and `range(1, len(states))`, or each layer by a constant index), which
   before read as partly cut (a false TBP002).
3. A model whose `forward(self, x, h=None)` does more than `return self.gru(x, h)` (embeds
   first, runs a linear head after, returns `out, h_new`), as plain assignments that read
   `h` only in the one torch recurrent call and hand its new state back last, starts from
   zeros when called without `h`: a loop that cuts `h` and then calls `net(x)` throws it away
   (TBP015). A forward that falls back to a state under `if h is None:`, reads `h` again or
   hands back something else is not read.
"""

from __future__ import annotations

import pytest

from tbptt_lint.testing import expected_sorted, fill, snippet_findings

HEADER = """\
import torch
import torch.nn as nn

torch.manual_seed(0)
stream = torch.randn(60, 2, 4)
"""


FOUND: dict[str, str] = {}
SILENT: dict[str, str] = {}

# ------------------------------------------ 1. a per-layer partial cut of each (h, c) pair

PAIRS = (
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
            h, c = cell(inp, (h, c)){mark}
            new.append((h, c))
            inp = h
        states = new
        outs.append(inp)
    loss = torch.stack(outs).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    {cut}
"""
)
PAIR_CUTS = {
    "a comprehension over the pairs": (
        "states = [(h.detach(), c) for h, c in states]",
        "states = [(h.detach(), c.detach()) for h, c in states]",
    ),
    "a comprehension indexing each pair": (
        "states = [(s[0].detach(), s[1]) for s in states]",
        "states = [(s[0].detach(), s[1].detach()) for s in states]",
    ),
    "an index loop storing each pair back": (
        "for k in range(len(states)):\n        h, c = states[k]\n"
        "        states[k] = (h.detach(), c)",
        "for k in range(len(states)):\n        h, c = states[k]\n"
        "        states[k] = (h.detach(), c.detach())",
    ),
    "a new list filled by append": (
        "kept = []\n    for h, c in states:\n        kept.append((h.detach(), c))\n"
        "    states = kept",
        "kept = []\n    for h, c in states:\n        kept.append((h.detach(), c.detach()))\n"
        "    states = kept",
    ),
    "a comprehension over two lists zipped": (
        "hs = [s[0] for s in states]\n    cs = [s[1] for s in states]\n"
        "    states = [(h.detach(), c) for h, c in zip(hs, cs)]",
        "hs = [s[0] for s in states]\n    cs = [s[1] for s in states]\n"
        "    states = [(h.detach(), c.detach()) for h, c in zip(hs, cs)]",
    ),
    "a comprehension cutting only c": (
        "states = [(h, c.detach()) for (h, c) in states]",
        "states = [tuple(t.detach() for t in hc) for hc in states]",
    ),
}
for _name, (_partial, _whole) in PAIR_CUTS.items():
    FOUND[f"per-layer pairs, only one part cut: {_name}"] = fill(
        PAIRS, cut=_partial, mark="  # expect: TBP002"
    )
    SILENT[f"per-layer pairs, both parts cut: {_name}"] = fill(PAIRS, cut=_whole, mark="")
SILENT["per-layer pairs made anew every window"] = fill(
    PAIRS, cut="states = [(torch.zeros(2, 8), torch.zeros(2, 8)) for _ in cells]", mark=""
)

TWO_LISTS = (
    HEADER
    + """
cells = nn.ModuleList([nn.LSTMCell(4, 8), nn.LSTMCell(8, 8)])
opt = torch.optim.SGD(cells.parameters(), lr=0.05)
hs = [torch.zeros(2, 8) for _ in range(2)]
cs = [torch.zeros(2, 8) for _ in range(2)]
for i in range(0, 60, 10):
    for t in range(i, i + 10):
        x = stream[t]
        new = []
        for cell, h, c in zip(cells, hs, cs):
            h, c = cell(x, (h, c)){mark}
            new.append((h, c))
            x = h
        hs = [h for h, c in new]
        cs = [c for h, c in new]
    loss = x.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    {cut}
"""
)
FOUND["two per-layer lists zipped: only the h list cut"] = fill(
    TWO_LISTS, cut="hs = [h.detach() for h in hs]", mark="  # expect: TBP002"
)
FOUND["two per-layer lists zipped: only the c list cut"] = fill(
    TWO_LISTS, cut="cs = [c.detach() for c in cs]", mark="  # expect: TBP002"
)
SILENT["two per-layer lists zipped: both lists cut"] = fill(
    TWO_LISTS,
    cut="hs = [h.detach() for h in hs]\n    cs = [c.detach() for c in cs]",
    mark="",
)
SILENT["two per-layer lists zipped: both cut through a zip"] = fill(
    TWO_LISTS,
    cut="hs = [h.detach() for h, c in zip(hs, cs)]\n    cs = [c.detach() for h, c in zip(hs, cs)]",
    mark="",
)

INDEXED_LISTS = (
    HEADER
    + """
cells = nn.ModuleList([nn.LSTMCell(4, 8), nn.LSTMCell(8, 8)])
opt = torch.optim.SGD(cells.parameters(), lr=0.05)
hs = [torch.zeros(2, 8) for _ in range(2)]
cs = [torch.zeros(2, 8) for _ in range(2)]
for i in range(0, 60, 10):
    for t in range(i, i + 10):
        x = stream[t]
        for k, cell in enumerate(cells):
            hs[k], cs[k] = cell(x, (hs[k], cs[k])){mark}
            x = hs[k]
    loss = x.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    {cut}
"""
)
FOUND["indexed per-layer lists: cut through pairs zipped, only h"] = fill(
    INDEXED_LISTS,
    cut="new = [(h.detach(), c) for h, c in zip(hs, cs)]\n"
    "    hs = [h for h, c in new]\n    cs = [c for h, c in new]",
    mark="  # expect: TBP002",
)
SILENT["indexed per-layer lists: cut through pairs zipped, both"] = fill(
    INDEXED_LISTS,
    cut="new = [(h.detach(), c.detach()) for h, c in zip(hs, cs)]\n"
    "    hs = [h for h, c in new]\n    cs = [c for h, c in new]",
    mark="",
)

# ---------------------------------------------- 2. a cut by index that skips some indices

INDEX_CUT = (
    HEADER
    + """
layers = nn.ModuleList([nn.GRU(4, 8), nn.GRU(8, 8), nn.GRU(8, 8)])
opt = torch.optim.SGD(layers.parameters(), lr=0.05)
states = [torch.zeros(1, 2, 8) for _ in range(3)]
start = 0
for i in range(0, 60, 10):
    x = stream[i:i + 10]
    for k in range(len(layers)):
        x, states[k] = layers[k](x, states[k]){mark}
    loss = x.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    for j in {loop}:
        {cut}
"""
)
ASSIGNED = "states[j] = states[j].detach()"
IN_PLACE = "states[j].detach_()"
for _loop in ("range(1, len(states))", "range(len(states) - 1)", "range(0, len(states), 2)"):
    FOUND[f"index cut over {_loop}"] = fill(
        INDEX_CUT, loop=_loop, cut=ASSIGNED, mark="  # expect: TBP002"
    )
FOUND["in-place index cut over range(1, len(states))"] = fill(
    INDEX_CUT, loop="range(1, len(states))", cut=IN_PLACE, mark="  # expect: TBP002"
)
for _loop in ("range(len(states))", "range(0, len(states))", "range(0, len(states), 1)"):
    SILENT[f"index cut over {_loop}"] = fill(INDEX_CUT, loop=_loop, cut=ASSIGNED, mark="")
SILENT["in-place index cut over range(len(states))"] = fill(
    INDEX_CUT, loop="range(len(states))", cut=IN_PLACE, mark=""
)
SILENT["index cut from a start of unknown value"] = fill(
    INDEX_CUT, loop="range(start, len(states))", cut=ASSIGNED, mark=""
)
SILENT["index cut over an enumerate of a slice"] = fill(
    INDEX_CUT.replace("for j in {loop}:", "for j, _s in {loop}:"),
    loop="enumerate(states[1:])",
    cut=ASSIGNED,
    mark="",
)
SILENT["index cut over an enumerate of the whole list"] = fill(
    INDEX_CUT.replace("for j in {loop}:", "for j, s in {loop}:"),
    loop="enumerate(states)",
    cut="states[j] = s.detach()",
    mark="",
)
# Two stores that cut a list in part each may cut it whole together: cannot be told.
SILENT["index cut skipping the first layer, then the first layer cut"] = fill(
    INDEX_CUT,
    loop="range(1, len(states))",
    cut=ASSIGNED + "\n    states[0] = states[0].detach()",
    mark="",
)
SILENT["the first layer cut, then an index cut skipping it"] = fill(
    INDEX_CUT.replace(
        "    for j in {loop}:\n        {cut}",
        "    {cut}\n    for j in {loop}:\n        states[j] = states[j].detach()",
    ),
    loop="range(1, len(states))",
    cut="states[0] = states[0].detach()",
    mark="",
)
SILENT["each layer cut by a constant index"] = fill(
    INDEX_CUT.replace("    for j in {loop}:\n        {cut}", "    {cut}"),
    loop="",
    cut="states[0] = states[0].detach()\n    states[1] = states[1].detach()\n"
    "    states[2] = states[2].detach()",
    mark="",
)

HELPER_SKIPS = (
    HEADER
    + """
layers = nn.ModuleList([nn.GRU(4, 8), nn.GRU(8, 8), nn.GRU(8, 8)])
opt = torch.optim.SGD(layers.parameters(), lr=0.05)


def detach_all(states):
    for k in {loop}:
        states[k] = states[k].detach()


states = [torch.zeros(1, 2, 8) for _ in range(3)]
for i in range(0, 60, 10):
    x = stream[i:i + 10]
    for k in range(len(layers)):
        x, states[k] = layers[k](x, states[k]){mark}
    loss = x.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    detach_all(states)
"""
)
# As a helper that cuts only `states[0]` (session 23): it cuts nothing the caller holds.
FOUND["a helper's index cut skips the first layer"] = fill(
    HELPER_SKIPS, loop="range(1, len(states))", mark="  # expect: TBP001"
)
SILENT["a helper's index cut covers every layer"] = fill(
    HELPER_SKIPS, loop="range(len(states))", mark=""
)

# ------------------------------- 3. TBP015 through a forward that embeds, steps and projects

FORWARD_MODEL = (
    HEADER
    + """
tokens = torch.randint(0, 20, (60, 2))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 4)
        self.gru = nn.GRU(4, 8)
        self.head = nn.Linear(8, 20)

    def forward(self, x, h=None):
{body}


net = Net()
opt = torch.optim.SGD(net.parameters(), lr=0.1)
h = None
for i in range(0, 50, 10):
    x, y = tokens[i:i + 10], tokens[i + 1:i + 11]
    if h is not None:
        h = h.detach()
    {call}{mark}
    loss = nn.functional.cross_entropy(logits.reshape(-1, 20), y.reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)
FORWARDS = {
    "embed, step, project": (
        "        e = self.embed(x)\n        out, h_new = self.gru(e, h)\n"
        "        return self.head(out), h_new"
    ),
    "the state passed by keyword, the output named": (
        "        e = self.embed(x)\n        out, hidden = self.gru(e, hx=h)\n"
        "        logits = self.head(out)\n        return logits, hidden"
    ),
    "embed, then the module's result whole": (
        "        e = self.embed(x)\n        return self.gru(e, h)"
    ),
}
LEFT_OUT = "logits, h = net(x)"
PASSED = "logits, h = net(x, h)"
for _name, _body in FORWARDS.items():
    FOUND[f"forward that does more ({_name}): the cut state left out"] = fill(
        FORWARD_MODEL, body=_body, call=LEFT_OUT, mark="  # expect: TBP015"
    )
    SILENT[f"forward that does more ({_name}): the cut state passed"] = fill(
        FORWARD_MODEL, body=_body, call=PASSED, mark=""
    )
SILENT["forward that falls back to a state of its own under an if"] = fill(
    FORWARD_MODEL,
    body="        e = self.embed(x)\n        if h is None:\n            h = self.h0\n"
    "        out, h_new = self.gru(e, h)\n        return self.head(out), h_new",
    call=LEFT_OUT,
    mark="",
)
SILENT["forward that reads the state again"] = fill(
    FORWARD_MODEL,
    body="        e = self.embed(x) + (0 if h is None else h.mean())\n"
    "        out, h_new = self.gru(e, h)\n        return self.head(out), h_new",
    call=LEFT_OUT,
    mark="",
)
SILENT["forward that hands back the output's state, not the new state"] = fill(
    FORWARD_MODEL,
    body="        e = self.embed(x)\n        out, h_new = self.gru(e, h)\n"
    "        return self.head(out), out[-1:]",
    call=LEFT_OUT,
    mark="",
)


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    source = FOUND[name]
    assert expected_sorted(source), "a FOUND case marks its lines"
    assert snippet_findings(source) == expected_sorted(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert snippet_findings(SILENT[name]) == []
