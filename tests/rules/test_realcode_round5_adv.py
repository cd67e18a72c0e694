"""Issue 12, round 5: an adversarial pass. Cases written in forms the earlier rounds did not
use, each label checked first by running a mirror with torch; the classes the linter got wrong,
each with SILENT variants and the FOUND twins a real bug nearby still gives.

- A cut helper defined in an enclosing function (`def detach_all(h)` in `main`, called by
  `run_epoch` defined beside it) is in the nested function's scope, and one that calls itself
  (`tuple(detach_all(v) for v in h)`) is summarised as a module-level one is: from the guess
  that it cuts, taken back by the passes when false.
- A function that runs a pass of windows and cuts its state parameter at the top of each
  window returns the state cut for the next call, whatever the cut's form: `hidden =
  repackage_hidden(hidden)`, `hidden = tuple(h.detach() for h in hidden)`, not only
  `hidden.detach()`. `hidden = run_windows(chunk, hidden)` carries no graph.
- A state passed to a cell as fields of an object (`(state.h, state.c)`) is passed back when
  the loop rebinds the object (`state = LSTMState(h, c)`), not only its fields (TBP015).
- A method of an object built from a torch class (`scaler.unscale_(optimizer)`,
  `scaler.update()`) clears no gradients: a GradScaler loop that never calls `zero_grad()`
  is TBP012 in a trainer's method as at the top level.
- A loss kept with its graph in a moving average (`smooth = smooth * 0.999 + loss * 0.001`)
  or in an entry of a dict of meters (`stats["loss"] += loss`) is accumulated (TBP006); a sum
  made under `torch.no_grad()` holds no graph (`total_loss[0] += loss * n` in PyG's
  distributed example), while a list appended to there still keeps each loss whole.
- A local bound to a view (`h = out[:, -1].unsqueeze(0)`) and detached in place in the same
  block (`h.detach_()`) raises "Can't detach views in-place" (TBP014), whatever the tensor
  was; a copy (`.clone()`), a tuple's element or a rebinding in between is no view.
- A method other than `forward` that steps state kept on its object (`self.hx, self.cx =
  self.cell(obs, (self.hx, self.cx))` in an agent's `act`) is a recurrent step wherever it is
  called (`self.act(obs)`, `agent.act(obs)`): a loop that back-propagates what it returns
  and never cuts those attributes is TBP001; a cut, a reset method or `no_grad` is not.
- A state rebound to what a body outside the run makes of it alone (`hidden =
  repackage_hidden(hidden)` imported from a module the run lacks, `H.repack(hidden)`,
  `model.repackage(hidden)` on an object of such a class) is unknown: that rebinding is how
  states get cut, and the body that would tell is not there. A function of the file, torch's,
  or a class of the file still tell.
- A state a loop only ever cuts (`hidden = tuple(h.detach() for h in hidden)`) and passes to a
  torch sequence module whose new state it throws away (`out, _ = lstm(x, hidden)`) is never
  carried: every window starts from the same state (TBP015). A fixed start that the loop does
  not cut (`lstm(x, h0)` on every batch) is no such sign.
- States set to None together (`ha = hc = None`, `h, c = None, None`) are None together: a
  guard on one of them (`if ha is not None:` cutting both) covers the other.
"""

from __future__ import annotations

import pytest

from tbptt_lint.testing import expected_sorted, snippet_findings

HEADER = """\
import torch
import torch.nn as nn
"""


FOUND: dict[str, str] = {}
SILENT: dict[str, str] = {}

# ------------------------------------------------------- helpers of an enclosing function

NESTED = (
    HEADER
    + """

def main(seq):
    lstm = nn.LSTM(4, 8)
    head = nn.Linear(8, 1)
    opt = torch.optim.SGD(list(lstm.parameters()) + list(head.parameters()), lr=0.1)

{helper}

    def run_epoch(hidden):
        for i in range(0, seq.size(0), 10):
            hidden = detach_all(hidden)
            out, hidden = lstm(seq[i:i + 10], hidden){mark}
            loss = head(out).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return hidden

    run_epoch((torch.zeros(1, 2, 8), torch.zeros(1, 2, 8)))
"""
)

RECURSIVE_TUPLE = """\
    def detach_all(h):
        if isinstance(h, torch.Tensor):
            return h.detach()
        return tuple(detach_all(v) for v in h)"""

SILENT["a recursive cut helper of the enclosing function"] = NESTED.format(
    helper=RECURSIVE_TUPLE, mark=""
)
SILENT["...one line, rebuilding the container's own type"] = NESTED.format(
    helper="""\
    def detach_all(h):
        return h.detach() if isinstance(h, torch.Tensor) else type(h)(detach_all(v) for v in h)""",
    mark="",
)
SILENT["...not recursive"] = NESTED.format(
    helper="""\
    def detach_all(h):
        return tuple(s.detach() for s in h)""",
    mark="",
)
FOUND["a recursive helper of the enclosing function that copies, not cuts"] = NESTED.format(
    helper=RECURSIVE_TUPLE.replace("h.detach()", "h.clone()"), mark="  # expect: TBP001"
)
FOUND["...that hands the state back as it is"] = NESTED.format(
    helper="""\
    def detach_all(h):
        return h""",
    mark="  # expect: TBP001",
)

# ------------------------------------------- a pass of windows that cuts its state parameter

CHUNKS = (
    HEADER
    + """
lstm = nn.LSTM(4, 8)
head = nn.Linear(8, 1)
opt = torch.optim.SGD(list(lstm.parameters()) + list(head.parameters()), lr=0.1)


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def copy_hidden(h):
    return tuple(v.clone() for v in h)


def run_windows(chunk, hidden):
    for i in range(0, chunk.size(0), 10):
        hidden = {cut}
        out, hidden = lstm(chunk[i:i + 10], hidden){inner}
        loss = head(out).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return hidden


stream = torch.randn(300, 2, 4)
hidden = torch.zeros(1, 2, 8), torch.zeros(1, 2, 8)
for chunk in stream.split(100):
    hidden = run_windows(chunk, hidden){mark}
"""
)

SILENT["chunks of one stream, each cut per window by a generator of detaches"] = CHUNKS.format(
    cut="tuple(h.detach() for h in hidden)", inner="", mark=""
)
SILENT["...by a recursive helper of the file"] = CHUNKS.format(
    cut="repackage_hidden(hidden)", inner="", mark=""
)
SILENT["...by a list of detaches"] = CHUNKS.format(
    cut="[h.detach() for h in hidden]", inner="", mark=""
)
FOUND["...by a helper that copies, which keeps the graph"] = CHUNKS.format(
    cut="copy_hidden(hidden)",
    inner="  # expect: TBP001",
    mark="  # expect: TBP001",
)
FOUND["...by a generator of copies"] = CHUNKS.format(
    cut="tuple(h.clone() for h in hidden)",
    inner="  # expect: TBP001",
    mark="  # expect: TBP001",
)

# ------------------------------------------------------ state fields of an object (TBP015)

FIELDS = (
    HEADER
    + """
from collections import namedtuple

LSTMState = namedtuple("LSTMState", ["h", "c"])

cell = nn.LSTMCell(4, 8)
opt = torch.optim.SGD(cell.parameters(), lr=0.1)
seq = torch.randn(30, 2, 4)
state = LSTMState(torch.zeros(2, 8), torch.zeros(2, 8))
for w in range(0, 30, 10):
    state = {cut}
    loss = 0.0
    for t in range(w, w + 10):
        h, c = cell(seq[t], (state.h, state.c)){mark}
        {store}
        loss = loss + h.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)

SILENT["a namedtuple's fields passed to a cell, the tuple rebuilt from its result"] = FIELDS.format(
    cut="state._replace(h=state.h.detach(), c=state.c.detach())",
    store="state = LSTMState(h, c)",
    mark="",
)
SILENT["...cut by a comprehension, rebuilt by `_make`"] = FIELDS.format(
    cut="LSTMState(*[s.detach() for s in state])",
    store="state = LSTMState._make((h, c))",
    mark="",
)
FOUND["...the result kept apart, the tuple never rebuilt"] = FIELDS.format(
    cut="LSTMState(state.h.detach(), state.c.detach())",
    store="out = h",
    mark="  # expect: TBP015",
)

DATACLASS = (
    HEADER
    + """
from dataclasses import dataclass


@dataclass
class RecurrentState:
    h: torch.Tensor
    c: torch.Tensor

    def detach(self) -> "RecurrentState":
        return RecurrentState(self.h.detach(), self.c.detach())


def train(seq):
    cell = nn.LSTMCell(4, 8)
    opt = torch.optim.SGD(cell.parameters(), lr=0.1)
    state = RecurrentState(torch.zeros(2, 8), torch.zeros(2, 8))
    for w in range(0, seq.size(0), 10):
        state = state.detach()
        loss = 0.0
        for t in range(w, w + 10):
            {step}
            loss = loss + state.h.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
"""
)

SILENT["a dataclass state rebuilt from the cell's result"] = DATACLASS.format(
    step="state = RecurrentState(*cell(seq[t], (state.h, state.c)))"
)


# ------------------------------------------------------------- GradScaler methods (TBP012)

SCALER = (
    HEADER
    + """

class Trainer:
    def __init__(self, model):
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        self.scaler = {scaler}

    def train_epoch(self, loader):
        self.model.train()
        for x, y in loader:
            {clear}
            with torch.autocast("cuda"):
                loss = nn.functional.mse_loss(self.model(x), y)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.scaler.step(self.optimizer){mark}
            self.scaler.update()
"""
)

FOUND["a trainer's GradScaler loop that unscales and never clears"] = SCALER.format(
    scaler="torch.amp.GradScaler()", clear="pass", mark="  # expect: TBP012"
)
FOUND["...the scaler imported from torch.cuda.amp"] = SCALER.replace(
    "import torch.nn as nn\n", "import torch.nn as nn\nfrom torch.cuda.amp import GradScaler\n"
).format(scaler="GradScaler()", clear="pass", mark="  # expect: TBP012")
SILENT["...clearing with the model's zero_grad(set_to_none=True)"] = SCALER.format(
    scaler="torch.amp.GradScaler()", clear="self.model.zero_grad(set_to_none=True)", mark=""
)
SILENT["...clearing with the optimizer's zero_grad"] = SCALER.format(
    scaler="torch.amp.GradScaler()", clear="self.optimizer.zero_grad()", mark=""
)
SILENT["...a scaler of the user's, whose unscale_ may clear"] = SCALER.replace(
    "import torch.nn as nn\n", "import torch.nn as nn\nfrom mylib import LossScaler\n"
).format(scaler="LossScaler()", clear="pass", mark="")

# --------------------------------------- moving averages and dict meters (TBP006)

METER = (
    HEADER
    + """
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
smooth = 0.0
stats = {{"loss": 0.0, "n": 0}}
for epoch in range(2):
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        {accumulate}{mark}
"""
)

FOUND["a moving average of the loss with its graph"] = METER.format(
    accumulate="smooth = smooth * 0.999 + loss * 0.001", mark="  # expect: TBP006"
)
FOUND["...the factor first"] = METER.format(
    accumulate="smooth = 0.98 * smooth + 0.02 * loss", mark="  # expect: TBP006"
)
FOUND["a dict meter summing the loss with its graph"] = METER.format(
    accumulate='stats["loss"] += loss', mark="  # expect: TBP006"
)
FOUND["...by reassignment"] = METER.format(
    accumulate='stats["loss"] = stats["loss"] + loss * x.size(0)', mark="  # expect: TBP006"
)
SILENT["a moving average of the loss as a number"] = METER.format(
    accumulate="smooth = smooth * 0.999 + loss.item() * 0.001", mark=""
)
SILENT["a dict meter summing the loss as a number"] = METER.format(
    accumulate='stats["loss"] += loss.item()', mark=""
)
SILENT["a dict meter made anew in every pass"] = METER.format(
    accumulate='stats = {"loss": 0.0}; stats["loss"] += loss', mark=""
)
SILENT["a dict meter summed under no_grad"] = METER.format(
    accumulate='with torch.no_grad():\n            stats["loss"] += loss * x.size(0)', mark=""
)
SILENT["a running total summed under no_grad"] = METER.format(
    accumulate="with torch.no_grad():\n            smooth += loss * x.size(0)", mark=""
)
FOUND["a list of losses appended under no_grad, which keeps each graph"] = METER.replace(
    "smooth = 0.0", "history = []"
).format(
    accumulate="with torch.no_grad():\n            history.append(loss)",
    mark="  # expect: TBP006",
)
SILENT["a weighted sum of two other names"] = METER.format(
    accumulate="smooth = loss.item() * 0.5 + smooth_prev * 0.5", mark=""
).replace("smooth = 0.0", "smooth = smooth_prev = 0.0")

ACCUMULATED_IN_DICT = (
    HEADER
    + """
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
acc = {"loss": 0.0}
for i, (x, y) in enumerate(loader):
    loss = nn.functional.mse_loss(model(x), y)
    acc["loss"] = acc["loss"] + loss
    if (i + 1) % 4 == 0:
        optimizer.zero_grad()
        acc["loss"].backward()
        optimizer.step()
        acc["loss"] = 0.0
"""
)
SILENT["gradient accumulation in a dict entry, back-propagated and reset"] = ACCUMULATED_IN_DICT


# ------------------------------------------------- a local bound to a view, detached in place

VIEW_LOCAL = (
    HEADER
    + """
gru = nn.GRU(4, 8, batch_first=True)
head = nn.Linear(8, 1)
opt = torch.optim.SGD([*gru.parameters(), *head.parameters()], lr=0.1)
h = None
for s in range(0, 30, 10):
    out, last = gru(data[:, s:s + 10], h)
    h = {view}
    {between}
    h.detach_(){mark}
    loss = head(out).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)

FOUND["the last output step, unsqueezed, detached in place"] = VIEW_LOCAL.format(
    view="out[:, -1].unsqueeze(0)", between="pass", mark="  # expect: TBP014"
)
FOUND["...the state transposed"] = VIEW_LOCAL.format(
    view="last.transpose(0, 1).transpose(0, 1)", between="pass", mark="  # expect: TBP014"
)
SILENT["...a copy of it"] = VIEW_LOCAL.format(
    view="out[:, -1].unsqueeze(0).clone()", between="pass", mark=""
)
SILENT["...the whole state"] = VIEW_LOCAL.format(view="last", between="pass", mark="")
SILENT["...rebound on one branch in between"] = VIEW_LOCAL.format(
    view="out[:, -1].unsqueeze(0)",
    between="if s == 0:\n        h = torch.zeros(1, 2, 8)",
    mark="",
)
SILENT["...an element of an LSTM's pair"] = VIEW_LOCAL.replace("nn.GRU", "nn.LSTM").format(
    view="last[0]", between="pass", mark=""
)


# ----------------------------------------------- a method that steps state kept on its object

AGENT = (
    HEADER
    + """

class Agent:
    def __init__(self):
        self.net = nn.LSTMCell(4, 8)
        self.value = nn.Linear(8, 1)
        self.optim = torch.optim.RMSprop([*self.net.parameters(), *self.value.parameters()])
        self.reset()

    def reset(self):
        self.hx = torch.zeros(1, 8)
        self.cx = torch.zeros(1, 8)

    def act(self, obs):
        self.hx, self.cx = self.net(obs, (self.hx, self.cx))
        return self.value(self.hx)

    def train(self, n_updates=3, n_steps=5):
        for update in range(n_updates):
            {start}
            values = []
            for step in range(n_steps):
                values.append(self.act(torch.randn(1, 4))){mark}
            loss = torch.cat(values).pow(2).mean()
            self.optim.zero_grad()
            loss.backward()
            self.optim.step()
"""
)

FOUND["an agent's act steps its LSTM state on self, never cut between updates"] = AGENT.format(
    start="pass", mark="  # expect: TBP001, TBP001"
)
SILENT["...cut at the start of every update"] = AGENT.format(
    start="self.hx, self.cx = self.hx.detach(), self.cx.detach()", mark=""
)
SILENT["...reset at the start of every update"] = AGENT.format(start="self.reset()", mark="")

AGENT_OUTSIDE = (
    HEADER
    + """

class Agent(nn.Module):
    def __init__(self):
        super().__init__()
        self.core = nn.GRUCell(4, 8)
        self.head = nn.Linear(8, 2)
        self.h = torch.zeros(1, 8)

    def step(self, obs):
        self.h = self.core(obs, self.h)
        return self.head(self.h)


agent = Agent()
opt = torch.optim.Adam(agent.parameters())
for update in range(3):
    {start}
    logits = [agent.step(torch.randn(1, 4)) for _ in range(5)]{mark}
    loss = torch.stack(logits).logsumexp(-1).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)

FOUND["an agent object's step method called by a script's update loop"] = AGENT_OUTSIDE.format(
    start="pass", mark="  # expect: TBP001"
)
SILENT["...the state cut by the script"] = AGENT_OUTSIDE.format(
    start="agent.h = agent.h.detach()", mark=""
)


# ------------------------------------------- a state rebound through a body outside the run

OPAQUE = (
    HEADER
    + """
{imports}

def repackage_in_file(h):
    print(h.norm())
    return h


model = {build}
opt = torch.optim.SGD(model.parameters(), lr=1.0)
hidden = None
for x, y in batches:
    if hidden is not None:
        hidden = {rebind}
    output, hidden = model(x, hidden){mark}
    loss = output.mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)

SILENT["a helper imported from a module the run lacks"] = OPAQUE.format(
    imports="from utils import repackage_hidden",
    build="nn.LSTM(4, 8)",
    rebind="repackage_hidden(hidden)",
    mark="",
)
SILENT["...called through its module"] = OPAQUE.format(
    imports="import helpers as H", build="nn.LSTM(4, 8)", rebind="H.repack(hidden)", mark=""
)
SILENT["...a method of a model whose class the run lacks"] = OPAQUE.format(
    imports="from models import LanguageModel",
    build="LanguageModel()",
    rebind="model.repackage(hidden)",
    mark="",
)
FOUND["...a function of the file that hands the state back as it is"] = OPAQUE.format(
    imports="from utils import repackage_hidden",
    build="nn.LSTM(4, 8)",
    rebind="repackage_in_file(hidden)",
    mark="  # expect: TBP001",
)
FOUND["...a torch function, which keeps the graph"] = OPAQUE.format(
    imports="from utils import repackage_hidden",
    build="nn.GRU(4, 8)",
    rebind="torch.tanh(hidden)",
    mark="  # expect: TBP001",
)


# ------------------------------------- a state cut to be carried, its new value thrown away

DISCARDED = (
    HEADER
    + """
lstm = nn.LSTM(4, 8)
head = nn.Linear(8, 1)
opt = torch.optim.SGD([*lstm.parameters(), *head.parameters()], lr=0.1)
hidden = (torch.zeros(1, 2, 8), torch.zeros(1, 2, 8))
h, c = hidden
for i in range(0, stream.size(0), 10):
    {cut}
    {step}{mark}
    {after}
    loss = head(out).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)

FOUND["the new state thrown into `_` after a cut"] = DISCARDED.format(
    cut="hidden = tuple(s.detach() for s in hidden)",
    step="out, _ = lstm(stream[i:i + 10], hidden)",
    after="pass",
    mark="  # expect: TBP015",
)
FOUND["...the pair cut one by one, the new pair kept under other names"] = DISCARDED.format(
    cut="h = h.detach()\n    c = c.detach()",
    step="out, (h_n, c_n) = lstm(stream[i:i + 10], (h, c))",
    after="pass",
    mark="  # expect: TBP015",
)
SILENT["...the new state bound back"] = DISCARDED.format(
    cut="hidden = tuple(s.detach() for s in hidden)",
    step="out, hidden = lstm(stream[i:i + 10], hidden)",
    after="pass",
    mark="",
)
SILENT["...bound under another name, then copied back"] = DISCARDED.format(
    cut="hidden = tuple(s.detach() for s in hidden)",
    step="out, new_hidden = lstm(stream[i:i + 10], hidden)",
    after="hidden = new_hidden",
    mark="",
)
SILENT["a fixed start on every batch, never cut"] = DISCARDED.format(
    cut="pass", step="out, _ = lstm(stream[i:i + 10], hidden)", after="pass", mark=""
)


# --------------------------------------------- states set to None together, guarded by one

COMPANIONS = (
    HEADER
    + """
actor = nn.LSTM(4, 8)
critic = nn.LSTM(4, 8)
a_opt = torch.optim.Adam(actor.parameters())
c_opt = torch.optim.Adam(critic.parameters())
{init}
for i in range(0, stream.size(0), 8):
    x = stream[i:i + 8]
    if ha is not None:
        ha = tuple(t.detach() for t in ha)
        {cut_critic}
    a_out, ha = actor(x, ha)
    c_out, hc = critic(x, hc){mark}
    c_loss = c_out.pow(2).mean()
    c_opt.zero_grad()
    c_loss.backward()
    c_opt.step()
    a_loss = (a_out * c_out.detach()).mean()
    a_opt.zero_grad()
    a_loss.backward()
    a_opt.step()
"""
)

SILENT["two states set to None in one statement, both cut under one's guard"] = COMPANIONS.format(
    init="ha = hc = None", cut_critic="hc = tuple(t.detach() for t in hc)", mark=""
)
SILENT["...set by a tuple of Nones"] = COMPANIONS.format(
    init="ha, hc = None, None", cut_critic="hc = tuple(t.detach() for t in hc)", mark=""
)
FOUND["...the second never cut"] = COMPANIONS.format(
    init="ha = hc = None", cut_critic="pass", mark="  # expect: TBP001"
)


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    source = FOUND[name]
    assert expected_sorted(source), "a FOUND case marks its lines"
    assert snippet_findings(source) == expected_sorted(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert snippet_findings(SILENT[name]) == []
