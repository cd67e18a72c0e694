"""Issue 12, session 23: failure classes left open by earlier rounds. Every source here is a
runnable program (its label was checked by running it with torch and the tracer first):

1. A helper that cuts the per-layer list it is given by index (`for k in range(len(states)):
   states[k] = states[k].detach()`, or `for i, s in enumerate(states): states[i] =
   s.detach()`) cuts the caller's list in place: called as a statement, it is a cut (no
   TBP001). Cutting only some indices, or rebinding the parameter to a new list, cuts
   nothing the caller holds.
2. A warm-up that is one call in the same body as the window (`_, h = rnn(x[:burn_in], h)`
   then `out, h = rnn(x[burn_in:], h)`), with gradients on and no cut between, lets the
   backward reach the burn-in steps (TBP013). Under `no_grad`, with a cut after it, with
   both calls' outputs kept (one window in two calls) or over another sequence, it is no
   warm-up to report.
3. A method that cuts only part of the state its object keeps (`self.hidden =
   (self.hidden[0].detach(), self.hidden[1])`, or through `h, c = self.hidden`) leaves it
   partly cut: TBP002 where the state is read, whether the method is the model's, called on
   it from a loop (`model.detach_hidden()`), or the trainer's own (`self.detach_hidden()`).
4. A helper or a `forward` that hands back an LSTM's state with only `h` cut (`return
   h.detach(), c`, `return out, (h.detach(), c)`) leaves the state partly cut: TBP002, not
   TBP001, where it is read again.
5. Whether a helper called as a statement cuts in place is a fact of its summary
   (`inplace_cut`: the parameter is cut in place on every way out, whether it is returned or
   not), no longer a guess from the file's text (any `detach_(` in the file silenced every
   discarded helper cut). A helper that only returns the cut, called bare, throws the cut
   away (TBP003) even where another function of the file detaches in place.
6. A state left out by keyword (`net(x, h=None)`, `gru(x, hx=None)`), where the keyword
   has the name of the state the loop cuts and carries: the keyword's name reads nothing,
   so the cut state is thrown away (TBP015), as with a positional `None`.
7. A model's method that copies its per-layer states (`self.states = [s.clone() for s in
   self.states]`, `list(self.states)`) keeps their graphs: it is neither a cut nor a reset,
   so a loop that calls it instead of a cut carries the states (TBP001). A copy of a cut
   (`s.detach().clone()`), a reset, or a function of unknown body stay as they were.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings
from tbptt_lint.testing import expected_sorted, fill, snippet_findings

HEADER = """\
import torch
import torch.nn as nn

torch.manual_seed(0)
stream = torch.randn(60, 2, 4)
"""


FOUND: dict[str, str] = {}
SILENT: dict[str, str] = {}

# ------------------------------------------------- 1. a helper cuts a per-layer list by index

LIST_HELPER = (
    HEADER
    + """
layers = nn.ModuleList([nn.GRU(4, 8), nn.GRU(8, 8)])
opt = torch.optim.SGD(layers.parameters(), lr=0.05)


{helper}


states = [torch.zeros(1, 2, 8) for _ in range(2)]
for i in range(0, 60, 10):
    {before}
    x = stream[i:i + 10]
    for k in range(len(layers)):
        x, states[k] = layers[k](x, states[k]){mark}
    loss = x.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    {after}
"""
)
BY_INDEX = """def detach_all(states):
    for k in range(len(states)):
        states[k] = states[k].detach()"""
BY_ENUMERATE = """def detach_all(states):
    for i, s in enumerate(states):
        states[i] = s.detach()"""
BY_INDEX_RETURNED = BY_INDEX + "\n    return states"
ONLY_FIRST = """def detach_all(states):
    states[0] = states[0].detach()"""
REBOUND = """def detach_all(states):
    states = [s.detach() for s in states]"""

SILENT["index loop: a helper cuts every element, called at the top of the window"] = fill(
    LIST_HELPER, helper=BY_INDEX, before="detach_all(states)", after="pass", mark=""
)
SILENT["index loop: a helper cuts every element, called after the backward"] = fill(
    LIST_HELPER, helper=BY_INDEX, before="pass", after="detach_all(states)", mark=""
)
SILENT["enumerate: a helper cuts every element, called as a statement"] = fill(
    LIST_HELPER, helper=BY_ENUMERATE, before="pass", after="detach_all(states)", mark=""
)
SILENT["index loop: a helper cuts every element, its result assigned"] = fill(
    LIST_HELPER,
    helper=BY_INDEX_RETURNED,
    before="states = detach_all(states)",
    after="pass",
    mark="",
)
FOUND["index loop: a helper cuts only the first layer's state"] = fill(
    LIST_HELPER,
    helper=ONLY_FIRST,
    before="detach_all(states)",
    after="pass",
    mark="  # expect: TBP001",
)
FOUND["index loop: a helper rebinds its parameter to a cut list and returns nothing"] = fill(
    LIST_HELPER,
    helper=REBOUND,
    before="detach_all(states)",
    after="pass",
    mark="  # expect: TBP001",
)
FOUND["index loop: the helper is never called"] = fill(
    LIST_HELPER, helper=BY_INDEX, before="pass", after="pass", mark="  # expect: TBP001"
)

TRAINER_LIST = (
    HEADER
    + """
class Trainer:
    def __init__(self):
        self.layers = nn.ModuleList([nn.GRU(4, 8), nn.GRU(8, 8)])
        self.opt = torch.optim.SGD(self.layers.parameters(), lr=0.05)

    def detach_states(self, states):
        {cut}

    def train(self):
        states = [torch.zeros(1, 2, 8) for _ in self.layers]
        for i in range(0, 60, 10):
            x = stream[i:i + 10]
            for k, layer in enumerate(self.layers):
                x, states[k] = layer(x, states[k]){mark}
            loss = x.pow(2).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            self.detach_states(states)


Trainer().train()
"""
)
SILENT["index loop: a method of the trainer cuts every element of the list it is given"] = fill(
    TRAINER_LIST,
    cut="for k in range(len(states)):\n            states[k] = states[k].detach()",
    mark="",
)
FOUND["index loop: a method of the trainer cuts only the last layer's state"] = fill(
    TRAINER_LIST, cut="states[-1] = states[-1].detach()", mark="  # expect: TBP001"
)

# ------------------------------------------------ 2. a warm-up that is one call in the body

ONE_CALL_WARMUP = (
    HEADER
    + """
rnn = nn.GRU(4, 8, batch_first=True)
opt = torch.optim.SGD(rnn.parameters(), lr=0.1)
burn_in = 5
batches = stream.transpose(0, 1).split(15, dim=1)


def train():
    for x in batches:
        h = torch.zeros(1, 2, 8)
        {warmup}{mark}
        {between}
        out, h = rnn(x[:, burn_in:], h)
        loss = {loss}
        opt.zero_grad()
        loss.backward()
        opt.step()


train()
"""
)
FOUND["one-call warm-up: its output thrown away, gradients on"] = fill(
    ONE_CALL_WARMUP,
    warmup="_, h = rnn(x[:, :burn_in], h)",
    between="pass",
    loss="out.pow(2).mean()",
    mark="  # expect: TBP013",
)
FOUND["one-call warm-up: its output bound to a name read nowhere"] = fill(
    ONE_CALL_WARMUP,
    warmup="warm_out, h = rnn(x[:, :burn_in], h)",
    between="pass",
    loss="out.pow(2).mean()",
    mark="  # expect: TBP013",
)
SILENT["one-call warm-up under no_grad"] = fill(
    ONE_CALL_WARMUP,
    warmup="with torch.no_grad():\n            _, h = rnn(x[:, :burn_in], h)",
    between="pass",
    loss="out.pow(2).mean()",
    mark="",
)
SILENT["one-call warm-up, the state cut after it"] = fill(
    ONE_CALL_WARMUP,
    warmup="_, h = rnn(x[:, :burn_in], h)",
    between="h = h.detach()",
    loss="out.pow(2).mean()",
    mark="",
)
SILENT["a window run in two calls, both outputs in the loss"] = fill(
    ONE_CALL_WARMUP,
    warmup="first, h = rnn(x[:, :burn_in], h)",
    between="pass",
    loss="out.pow(2).mean() + first.pow(2).mean()",
    mark="",
)
SILENT["a context encoded by the same module, not a slice of the window's sequence"] = fill(
    ONE_CALL_WARMUP,
    warmup="_, h = rnn(x.flip(1), h)",
    between="pass",
    loss="out.pow(2).mean()",
    mark="",
)

ONE_CALL_LSTM = (
    HEADER
    + """
lstm = nn.LSTM(4, 8)
opt = torch.optim.SGD(lstm.parameters(), lr=0.1)
h, c = torch.zeros(1, 2, 8), torch.zeros(1, 2, 8)
for i in range(0, 60, 15):
    h, c = h.detach(), c.detach()
    {warmup}{mark}
    out, (h, c) = lstm(stream[i + 5:i + 15], (h, c))
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)
FOUND["one-call warm-up of an LSTM's pair at the top level"] = fill(
    ONE_CALL_LSTM, warmup="_, (h, c) = lstm(stream[i:i + 5], (h, c))", mark="  # expect: TBP013"
)
SILENT["one-call warm-up of an LSTM's pair under no_grad"] = fill(
    ONE_CALL_LSTM,
    warmup="with torch.no_grad():\n        _, (h, c) = lstm(stream[i:i + 5], (h, c))",
    mark="",
)
SILENT["an encoder's state handed to a decoder of another module"] = (
    HEADER
    + """
encoder, decoder = nn.GRU(4, 8), nn.GRU(4, 8)
opt = torch.optim.SGD(list(encoder.parameters()) + list(decoder.parameters()), lr=0.1)
for i in range(0, 60, 15):
    _, h = encoder(stream[i:i + 5], torch.zeros(1, 2, 8))
    out, h = decoder(stream[i + 5:i + 15], h)
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)

# ------------------------------------------------ 3. a method cuts part of the state on self

MODEL_METHOD = (
    HEADER
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 8)
        self.hidden = (torch.zeros(1, 2, 8), torch.zeros(1, 2, 8))

    def detach_hidden(self):
        {cut}

    def forward(self, x):
        out, self.hidden = self.lstm(x, self.hidden)
        return out


model = Model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in stream.split(10):
    model.detach_hidden()
    out = model(x){mark}
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)
FOUND["a model's method cuts h of self.hidden and writes c back"] = fill(
    MODEL_METHOD,
    cut="self.hidden = (self.hidden[0].detach(), self.hidden[1])",
    mark="  # expect: TBP002",
)
FOUND["a model's method cuts c of self.hidden and writes h back"] = fill(
    MODEL_METHOD,
    cut="self.hidden = (self.hidden[0], self.hidden[1].detach())",
    mark="  # expect: TBP002",
)
FOUND["a model's method unpacks self.hidden and cuts only h"] = fill(
    MODEL_METHOD,
    cut="h, c = self.hidden\n        self.hidden = (h.detach(), c)",
    mark="  # expect: TBP002",
)
SILENT["a model's method cuts both parts of self.hidden"] = fill(
    MODEL_METHOD, cut="self.hidden = (self.hidden[0].detach(), self.hidden[1].detach())", mark=""
)
SILENT["a model's method cuts self.hidden with a generator"] = fill(
    MODEL_METHOD, cut="self.hidden = tuple(s.detach() for s in self.hidden)", mark=""
)
SILENT["a model's method cuts h and makes c anew"] = fill(
    MODEL_METHOD,
    cut="self.hidden = (self.hidden[0].detach(), torch.zeros(1, 2, 8))",
    mark="",
)
SILENT["a model's method unpacks self.hidden and cuts both"] = fill(
    MODEL_METHOD, cut="h, c = self.hidden\n        self.hidden = (h.detach(), c.detach())", mark=""
)

TRAINER_METHOD = (
    HEADER
    + """
class Trainer:
    def __init__(self):
        self.lstm = nn.LSTM(4, 8)
        self.opt = torch.optim.SGD(self.lstm.parameters(), lr=0.1)
        self.hidden = (torch.zeros(1, 2, 8), torch.zeros(1, 2, 8))

    def detach_hidden(self):
        {cut}

    def train(self):
        for x in stream.split(10):
            self.detach_hidden()
            out, self.hidden = self.lstm(x, self.hidden){mark}
            loss = out.pow(2).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()


Trainer().train()
"""
)
FOUND["a trainer's own method cuts only h of self.hidden"] = fill(
    TRAINER_METHOD,
    cut="self.hidden = (self.hidden[0].detach(), self.hidden[1])",
    mark="  # expect: TBP002",
)
SILENT["a trainer's own method cuts both parts of self.hidden"] = fill(
    TRAINER_METHOD,
    cut="self.hidden = (self.hidden[0].detach(), self.hidden[1].detach())",
    mark="",
)

# ------------------------------------------------ 4. a helper or forward returns h cut, c not

PAIR_HELPER = (
    HEADER
    + """
lstm = nn.LSTM(4, 8)
opt = torch.optim.SGD(lstm.parameters(), lr=0.1)


def cut(state):
    {body}


state = (torch.zeros(1, 2, 8), torch.zeros(1, 2, 8))
for x in stream.split(10):
    out, state = lstm(x, state){mark}
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    state = cut(state)
"""
)
FOUND["a helper returns h cut and c as it was (unpacked)"] = fill(
    PAIR_HELPER, body="h, c = state\n    return h.detach(), c", mark="  # expect: TBP002"
)
FOUND["a helper returns h cut and c as it was (indexed)"] = fill(
    PAIR_HELPER, body="return state[0].detach(), state[1]", mark="  # expect: TBP002"
)
SILENT["a helper returns both parts cut"] = fill(
    PAIR_HELPER, body="h, c = state\n    return h.detach(), c.detach()", mark=""
)
SILENT["a helper returns h cut and c made anew"] = fill(
    PAIR_HELPER, body="h, c = state\n    return h.detach(), torch.zeros_like(c)", mark=""
)

PAIR_FORWARD = (
    HEADER
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 8)

    def forward(self, x, state):
        out, (h, c) = self.lstm(x, state)
        return out, {returned}


model = Model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
state = (torch.zeros(1, 2, 8), torch.zeros(1, 2, 8))
for x in stream.split(10):
    out, state = model(x, state){mark}
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    {after}
"""
)
FOUND["a forward returns the state with only h cut"] = fill(
    PAIR_FORWARD, returned="(h.detach(), c)", after="pass", mark="  # expect: TBP002"
)
FOUND["a forward returns the state with only c cut"] = fill(
    PAIR_FORWARD, returned="(h, c.detach())", after="pass", mark="  # expect: TBP002"
)
SILENT["a forward returns the state with both parts cut"] = fill(
    PAIR_FORWARD, returned="(h.detach(), c.detach())", after="pass", mark=""
)
SILENT["a forward returns h cut, the loop cuts the whole state"] = fill(
    PAIR_FORWARD,
    returned="(h.detach(), c)",
    after="state = tuple(s.detach() for s in state)",
    mark="",
)

# ------------------------------------------ 5. a helper's in-place cut, a fact of its summary

HELPERS_STATEMENT = (
    HEADER
    + """
{helper}


def freeze(module):
    for p in module.parameters():
        p.detach_()


gru = nn.GRU(4, 8)
opt = torch.optim.SGD(gru.parameters(), lr=0.1)
h = torch.zeros(1, 2, 8)
for x in stream.split(10):
    out, h = gru(x, h)
    opt.zero_grad()
    out.pow(2).mean().backward()
    opt.step()
    {call}
"""
)
FOUND["a helper that only returns the cut, called bare beside an in-place detach"] = fill(
    HELPERS_STATEMENT,
    helper="def rep(h):\n    return h.detach()",
    call="rep(h)  # expect: TBP003",
)
FOUND["a helper that rebinds its parameter to a cut and returns it, called bare"] = fill(
    HELPERS_STATEMENT,
    helper="def rep(h):\n    h = h.detach()\n    return h",
    call="rep(h)  # expect: TBP003",
)
SILENT["a helper that cuts in place and returns its argument, beside another"] = fill(
    HELPERS_STATEMENT, helper="def rep(h):\n    h.detach_()\n    return h", call="rep(h)"
)
SILENT["a helper that cuts in place after a None test and returns it"] = fill(
    HELPERS_STATEMENT,
    helper="def rep(h):\n    if h is None:\n        return None\n    h.detach_()\n    return h",
    call="rep(h)",
)
SILENT["a helper that rebinds its parameter to its own in-place cut and returns it"] = fill(
    HELPERS_STATEMENT, helper="def rep(h):\n    h = h.detach_()\n    return h", call="rep(h)"
)
SILENT["a helper that cuts in place and returns a bare return"] = fill(
    HELPERS_STATEMENT,
    helper="def rep(h):\n    h.detach_()\n    return",
    call="rep(h)",
)
SILENT["a helper that only returns the cut, its result assigned"] = fill(
    HELPERS_STATEMENT, helper="def rep(h):\n    return h.detach()", call="h = rep(h)"
)
SILENT["index loop: a helper cuts every element and returns the list, called bare"] = fill(
    LIST_HELPER, helper=BY_INDEX_RETURNED, before="detach_all(states)", after="pass", mark=""
)
SILENT["enumerate: a helper cuts every element and returns the list, called bare"] = fill(
    LIST_HELPER,
    helper=BY_ENUMERATE + "\n    return states",
    before="pass",
    after="detach_all(states)",
    mark="",
)

# ------------------------------------ 6. a state left out by a keyword of the state's name

KEYWORD_NONE = (
    HEADER
    + """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 8)

    def forward(self, x, {param}=None):
        return self.gru(x, {param})


net = Net()
gru = nn.GRU(4, 8)
opt = torch.optim.SGD(list(net.parameters()) + list(gru.parameters()), lr=0.1)
{state} = torch.zeros(1, 2, 8)
for x in stream.split(10):
    out, {state} = {call}{mark}
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    {state} = {state}.detach()
"""
)
FOUND["a model called with h=None while the loop carries h"] = fill(
    KEYWORD_NONE, param="h", state="h", call="net(x, h=None)", mark="  # expect: TBP015"
)
FOUND["a model called with hidden=None while the loop carries hidden"] = fill(
    KEYWORD_NONE,
    param="hidden",
    state="hidden",
    call="net(x, hidden=None)",
    mark="  # expect: TBP015",
)
FOUND["a torch GRU called with hx=None while the loop carries hx"] = fill(
    KEYWORD_NONE, param="h", state="hx", call="gru(x, hx=None)", mark="  # expect: TBP015"
)
SILENT["a model called with h=h"] = fill(
    KEYWORD_NONE, param="h", state="h", call="net(x, h=h)", mark=""
)
SILENT["a torch GRU called with hx=hx"] = fill(
    KEYWORD_NONE, param="h", state="hx", call="gru(x, hx=hx)", mark=""
)
SILENT["a model called with h=None on the first window only"] = fill(
    KEYWORD_NONE,
    param="h",
    state="h",
    call="net(x, h=None) if x is stream[:10] else net(x, h=h)",
    mark="",
)

# ---------------------------------------------- 7. a copy of the states is no cut or reset

STATES_COPY = (
    HEADER
    + """
from mylib import detach_all


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.cells = nn.ModuleList([nn.GRUCell(4, 8), nn.GRUCell(8, 8)])
        self.states = [torch.zeros(2, 8), torch.zeros(2, 8)]

    def keep_states(self):
        {body}

    def forward(self, xs):
        outs = []
        for x in xs:
            for i, cell in enumerate(self.cells):
                self.states[i] = cell(x, self.states[i])
                x = self.states[i]
            outs.append(x)
        return torch.stack(outs)


model = Model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in stream.split(10):
    model.keep_states()
    out = model(x){mark}
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)
FOUND["a model's method clones its states in a list comprehension"] = fill(
    STATES_COPY, body="self.states = [s.clone() for s in self.states]", mark="  # expect: TBP001"
)
FOUND["a model's method copies its states to a device"] = fill(
    STATES_COPY,
    body="self.states = [s.to(s.device) for s in self.states]",
    mark="  # expect: TBP001",
)
FOUND["a model's method copies its list of states"] = fill(
    STATES_COPY, body="self.states = list(self.states)", mark="  # expect: TBP001"
)
SILENT["a model's method clones its states cut"] = fill(
    STATES_COPY, body="self.states = [s.detach().clone() for s in self.states]", mark=""
)
SILENT["a model's method clones its states and cuts the clones"] = fill(
    STATES_COPY, body="self.states = [s.clone().detach() for s in self.states]", mark=""
)
SILENT["a model's method makes its states anew"] = fill(
    STATES_COPY, body="self.states = [torch.zeros_like(s) for s in self.states]", mark=""
)
SILENT["a model's method hands its states to a function of unknown body"] = fill(
    STATES_COPY, body="self.states = detach_all(self.states)", mark=""
)

# Files of a run: (files, expected (file, code, line) findings).
RUNS: dict[str, tuple[dict[str, str], list[tuple[str, str, int]]]] = {}
XFILE_TRAIN = """\
import torch
import torch.nn as nn
from utils import detach_all

stream = torch.randn(60, 2, 4)
layers = nn.ModuleList([nn.GRU(4, 8), nn.GRU(8, 8)])
opt = torch.optim.SGD(layers.parameters(), lr=0.05)
states = [torch.zeros(1, 2, 8) for _ in range(2)]
for i in range(0, 60, 10):
    x = stream[i:i + 10]
    for k in range(len(layers)):
        x, states[k] = layers[k](x, states[k])
    loss = x.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    detach_all(states)
"""
RUNS["index loop: a helper of another file cuts every element"] = (
    {"utils.py": BY_INDEX + "\n", "train.py": XFILE_TRAIN},
    [],
)
RUNS["index loop: a helper of another file cuts only the first element"] = (
    {"utils.py": ONLY_FIRST + "\n", "train.py": XFILE_TRAIN},
    [("train.py", "TBP001", 12)],
)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_runs(name: str, tmp_path: Path) -> None:
    files, wanted = RUNS[name]
    for file_name, text in files.items():
        (tmp_path / file_name).write_text(text, encoding="utf-8")
    result = lint_paths([tmp_path], Settings(project_root=tmp_path), jobs=1)
    assert not result.internal_errors, result.internal_errors
    assert sorted((Path(d.path).name, d.code, d.line) for d in result.diagnostics) == wanted


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    source = FOUND[name]
    assert expected_sorted(source), "a FOUND case marks its lines"
    assert snippet_findings(source) == expected_sorted(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert snippet_findings(SILENT[name]) == []
