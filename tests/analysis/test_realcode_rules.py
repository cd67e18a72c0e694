"""Issue 12, classes 5, 7, 11, 12, 13 and 14 (TBP005 beside TBP003): the families of false
alarms and missed bugs that public training code showed, each with variants and the silent
twins a nearby correct idiom could be confused with."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tbptt_lint.analysis.api import check_source
from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings

HEADER = """\
import torch
import torch.nn as nn
"""


def codes(source: str) -> list[tuple[str, int]]:
    """The findings a user sees by default (TBP007, off by default, is left out)."""
    findings = check_source(textwrap.dedent(source), "example.py", Settings())
    return [(f.code, f.line) for f in findings if f.code != "TBP007"]


def expected(source: str) -> list[tuple[str, int]]:
    """`# expect: TBP001` comments mark the lines a snippet must be reported on."""
    found = []
    for number, line in enumerate(source.splitlines(), start=1):
        match = re.search(r"# expect: ([A-Z0-9, ]+)", line)
        if match:
            found += [(code.strip(), number) for code in match.group(1).split(",")]
    return sorted(found, key=lambda item: (item[1], item[0]))


def sorted_codes(source: str) -> list[tuple[str, int]]:
    return sorted(codes(source), key=lambda item: (item[1], item[0]))


FOUND: dict[str, str] = {}
SILENT: dict[str, str] = {}

# --------------------------------------------------------------------------------------------
# Class 5: a view is a view only when the indexed state is known to be a tensor.

FOUND["14: a GRU's state tensor indexed by layer at the top of the loop"] = (
    HEADER
    + """
gru = nn.GRU(8, 16, num_layers=2)
hidden = torch.zeros(2, 4, 16)
for x, y in batches:
    for layer in range(2):
        hidden[layer].detach_()  # expect: TBP014
    out, hidden = gru(x, hidden)
    (out - y).pow(2).mean().backward()
"""
)
FOUND["14: an RNNCell's state row detached in a method of the model"] = (
    HEADER
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.RNNCell(8, 16)

    def fit(self, windows):
        h = torch.zeros(4, 16)
        for x, y in windows:
            loss = 0
            for t in range(x.size(0)):
                h = self.cell(x[t], h)
                loss = loss + (h - y[t]).pow(2).mean()
            loss.backward()
            h[0].detach_()  # expect: TBP014
"""
)
FOUND["14: iterating an nn.RNN's state tensor in a function"] = (
    HEADER
    + """
rnn = nn.RNN(8, 16, num_layers=3)

def train(batches):
    hidden = None
    for x, y in batches:
        out, hidden = rnn(x, hidden)
        (out - y).pow(2).mean().backward()
        for layer_state in hidden:
            layer_state.detach_()  # expect: TBP014
"""
)
FOUND["14: a layer of one element of an nn.LSTM's pair"] = (
    HEADER
    + """
lstm = nn.LSTM(8, 16, num_layers=2)
state = None
for x, y in batches:
    out, state = lstm(x, state)
    (out - y).pow(2).mean().backward()
    state[1][0].detach_()  # expect: TBP014
"""
)
FOUND["14: the last step of a recurrent call's output"] = (
    HEADER
    + """
gru = nn.GRU(8, 16)
hidden = None
for x, y in batches:
    output, hidden = gru(x, hidden)
    (output - y).pow(2).mean().backward()
    hidden = hidden.detach()
    output[-1].detach_()  # expect: TBP014
"""
)

SILENT["14: a user's model whose init_hidden returns a pair"] = (
    HEADER
    + """
class RNNModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(8, 16)

    def init_hidden(self, bsz):
        return (torch.zeros(1, bsz, 16), torch.zeros(1, bsz, 16))

    def forward(self, x, hidden):
        out, hidden = self.rnn(x, hidden)
        return out, hidden

model = RNNModel()
hidden = model.init_hidden(4)
for x, y in batches:
    out, hidden = model(x, hidden)
    loss = (out - y).pow(2).mean()
    loss.backward()
    hidden[0].detach_()
    hidden[1].detach_()
"""
)
SILENT["14: a user's model passed in, its state's elements detached in a loop"] = (
    HEADER
    + """
def train(model, loader, optimizer):
    state = model.initial_state(32)
    for x, y in loader:
        logits, state = model(x, state)
        loss = nn.functional.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for i in range(len(state)):
            state[i].detach_()
"""
)
SILENT["14: an LSTMCell's pair, each element detached"] = (
    HEADER
    + """
cell = nn.LSTMCell(8, 16)
hx = (torch.zeros(4, 16), torch.zeros(4, 16))
for x, y in windows:
    loss = 0
    for t in range(x.size(0)):
        hx = cell(x[t], hx)
        loss = loss + (hx[0] - y[t]).pow(2).mean()
    loss.backward()
    hx[0].detach_()
    hx[1].detach_()
"""
)
SILENT["14: a (h, c) literal built before the loop, cut at its top"] = (
    HEADER
    + """
hidden = (torch.zeros(1, 4, 16), torch.zeros(1, 4, 16))
for x, y in batches:
    hidden[0].detach_()
    hidden[1].detach_()
    out, hidden = model(x, hidden)
    (out - y).pow(2).mean().backward()
"""
)
SILENT["14: a list of per-layer pairs from a user's model"] = (
    HEADER
    + """
def train(model, batches):
    hidden = model.init_hidden(20)
    for x, y in batches:
        out, hidden = model(x, hidden)
        (out - y).pow(2).mean().backward()
        for layer in range(len(hidden)):
            hidden[layer][0].detach_()
            hidden[layer][1].detach_()
"""
)
SILENT["14: a parameter of unknown kind"] = (
    HEADER
    + """
def step(rnn, x, y, hidden):
    for t in range(0, x.size(0), 10):
        out, hidden = rnn(x[t:t + 10], hidden)
        (out - y[t:t + 10]).pow(2).mean().backward()
        hidden[0].detach_()
        hidden[1].detach_()
"""
)

# --------------------------------------------------------------------------------------------
# Class 13: an attribute that one method sets to a view, detached in place in another.

FOUND["14: a property gathers an attribute another method sets to a view"] = (
    HEADER
    + """
class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(8, 16)
        self.feed = torch.zeros(1, 4, 16)
        self.hidden = torch.zeros(1, 4, 16)

    @property
    def all_states(self):
        return (self.hidden, self.feed)

    def forward(self, x):
        out, self.hidden = self.rnn(torch.cat([x, self.feed], -1), self.hidden)
        self.feed = out[-1].unsqueeze(0)
        return out

    def detach_state(self):
        for s in self.all_states:
            s.detach_()  # expect: TBP014

model = Decoder()
for x, y in batches:
    model.detach_state()
    out = model(x)
    (out - y).pow(2).mean().backward()
"""
)
SILENT["14: a property gathers whole tensors that a method detaches in place"] = (
    HEADER
    + """
class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(8, 16)
        self.feed = torch.zeros(1, 4, 16)
        self.hidden = torch.zeros(1, 4, 16)

    @property
    def all_states(self):
        return (self.hidden, self.feed)

    def forward(self, x):
        out, self.hidden = self.rnn(torch.cat([x, self.feed], -1), self.hidden)
        self.feed = out[-1:].clone()
        return out

    def detach_state(self):
        for s in self.all_states:
            s.detach_()

model = Decoder()
for x, y in batches:
    model.detach_state()
    out = model(x)
    (out - y).pow(2).mean().backward()
"""
)
FOUND["14: the attribute itself detached in place in another method"] = (
    HEADER
    + """
class Stream(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 16)
        self.last = None

    def forward(self, x, h):
        out, h = self.gru(x, h)
        self.last = out.transpose(0, 1)
        return out, h

    def cut(self):
        if self.last is not None:
            self.last.detach_()  # expect: TBP014
"""
)
FOUND["14: a base class's detach over states a subclass sets to views"] = (
    HEADER
    + """
class DecoderState:
    def detach(self):
        for h in self._all:
            if h is not None:
                h.detach_()  # expect: TBP014


class RNNDecoderState(DecoderState):
    def __init__(self, hidden):
        self.hidden = hidden
        self.input_feed = None

    @property
    def _all(self):
        return self.hidden + (self.input_feed,)

    def update_state(self, hidden, output):
        self.hidden = hidden
        self.input_feed = output.narrow(0, output.size(0) - 1, 1)
"""
)
FOUND["14: a list of attributes built right after a view is stored"] = (
    HEADER
    + """
class Tracker(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRU(8, 16)

    def step(self, x, h):
        out, h = self.cell(x, h)
        self.hidden, self.feed = h, out[-1]
        self.states = [self.hidden, self.feed]
        return out

    def detach(self):
        for s in self.states:
            s.detach_()  # expect: TBP014
"""
)
FOUND["14: a literal of attributes iterated, one of them a view"] = (
    HEADER
    + """
class Seq(nn.Module):
    def remember(self, out, h):
        self.h = h
        self.feed = out.select(0, -1).expand(2, -1, -1)

    def truncate(self):
        for s in (self.h, self.feed):
            s.detach_()  # expect: TBP014
"""
)
FOUND["14: an attribute of an object of the class, detached in the training loop"] = (
    HEADER
    + """
class State:
    def __init__(self, h):
        self.h = h
        self.feed = None

    def update(self, out, h):
        self.h = h
        self.feed = out[-1].unsqueeze(0)

state = State(torch.zeros(1, 4, 16))
for x, y in batches:
    out, h = model(x, state.h)
    state.update(out, h)
    (out - y).pow(2).mean().backward()
    state.feed.detach_()  # expect: TBP014
"""
)

FOUND["14: a method that returns the attributes, one of them a view"] = (
    HEADER
    + """
class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(8, 16)

    def states(self):
        return [self.h, self.c, self.feed]

    def step(self, x):
        out, (self.h, self.c) = self.rnn(x, (self.h, self.c))
        self.feed = out.view(-1, 16)[-4:]
        return out

    def detach(self):
        for s in self.states():
            s.detach_()  # expect: TBP014
"""
)
SILENT["14: a method that takes arguments is not a list of attributes"] = (
    HEADER
    + """
class Decoder(nn.Module):
    def states(self, which):
        return [self.h, self.feed]

    def step(self, out):
        self.feed = out.view(-1, 16)

    def detach(self):
        for s in self.states(0):
            s.detach_()
"""
)


CLASS_13_SILENT = (
    HEADER
    + """
class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(8, 16)
        self.feed = torch.zeros(1, 4, 16)
        self.hidden = torch.zeros(1, 4, 16)

    @property
    def all_states(self):
        return (self.hidden, self.feed)

    def forward(self, x):
        out, self.hidden = self.rnn(torch.cat([x, self.feed], -1), self.hidden)
        self.feed = {feed}
        return out

    def detach_state(self):
        for s in self.all_states:
            s.detach_()
"""
)
for whole in (
    "out[-1].clone().unsqueeze(0).contiguous()",
    "out[-1].detach()",
    "out[-1].data",
    "torch.zeros(1, 4, 16)",
    "out[-1].contiguous()",
    "out[[0, 1]]",
    "out.reshape(-1)",
):
    SILENT[f"14: an attribute set to a whole tensor: {whole}"] = CLASS_13_SILENT.format(feed=whole)

SILENT["14: indexing a list of outputs gives the tensor itself"] = (
    HEADER
    + """
class Decoder(nn.Module):
    def forward(self, x, h):
        outputs = []
        for t in range(x.size(0)):
            h = self.cell(x[t], h)
            outputs.append(h)
        self.feed = outputs[-1]
        return outputs

    def detach_state(self):
        self.feed.detach_()
"""
)
SILENT["14: a list built in __init__ keeps the tensors of that moment"] = (
    HEADER
    + """
class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.zeros(1, 4, 16)
        self.feed = torch.zeros(1, 4, 16)
        self.states = [self.hidden, self.feed]

    def forward(self, out):
        self.feed = out[-1].unsqueeze(0)

    def detach_state(self):
        for s in self.states:
            s.detach_()
"""
)
SILENT["14: the detaching method rebinds the attribute first"] = (
    HEADER
    + """
class Decoder(nn.Module):
    @property
    def all_states(self):
        return (self.hidden, self.feed)

    def forward(self, out, h):
        self.hidden = h
        self.feed = out[-1].unsqueeze(0)

    def detach_state(self):
        self.feed = self.feed.detach()
        for s in self.all_states:
            s.detach_()
"""
)
SILENT["14: another class's attribute of the same name"] = (
    HEADER
    + """
class Producer(nn.Module):
    def forward(self, out):
        self.feed = out[-1].unsqueeze(0)


class Consumer(nn.Module):
    def __init__(self):
        super().__init__()
        self.feed = torch.zeros(4, 16)

    def detach_state(self):
        self.feed.detach_()
"""
)

# --------------------------------------------------------------------------------------------
# Class 7: a loop whose every step's output feeds the loss is not a warm-up.

GLIMPSE = (
    HEADER
    + """
cell = nn.GRUCell(8, 16)
head = nn.Linear(16, 4)
for x, y in batches:
    h = torch.zeros(4, 16)
    {setup}
    for t in range(6):
        h = cell(x[t], h)
        {collect}
    h = cell(x[6], h)
    loss = {loss}
    loss.backward()
"""
)
for collect, setup, loss in (
    ("outputs.append(head(h))", "outputs = []", "torch.stack(outputs).sum() + h.sum()"),
    ("outputs += [h]", "outputs = []", "torch.stack(outputs).sum() + h.sum()"),
    (
        "if t % 2 == 0:\n            outputs.append(head(h))",
        "outputs = []",
        "torch.stack(outputs).sum() + h.sum()",
    ),
    ("outputs[t] = head(h)", "outputs = x.new_zeros(6, 4, 4)", "outputs.sum() + h.sum()"),
    (
        "glimpse_loss = glimpse_loss + (head(h) - y[t]).pow(2).mean()",
        "glimpse_loss = 0",
        "glimpse_loss + h.sum()",
    ),
    (
        "glimpse_loss += (head(h) - y[t]).pow(2).mean()",
        "glimpse_loss = 0",
        "glimpse_loss + h.sum()",
    ),
    (
        "seq = torch.cat([seq, head(h).unsqueeze(0)])",
        "seq = x.new_zeros(0, 4, 4)",
        "seq.sum() + h.sum()",
    ),
    (
        "logits = head(h)\n        log_probs.append(logits.log_softmax(-1))",
        "log_probs = []",
        "torch.stack(log_probs).sum()",
    ),
):
    shown = " ".join(line.strip() for line in collect.splitlines())
    SILENT[f"13: a glimpse loop that keeps every step: {shown}"] = GLIMPSE.format(
        collect=collect, setup=setup, loss=loss
    )

SILENT["13: a recurrent attention model's glimpses, each one scored"] = (
    HEADER
    + """
class Trainer:
    def train_one_epoch(self, loader):
        for x, y in loader:
            h_t, l_t = self.reset()
            log_pi, baselines = [], []
            for t in range(self.num_glimpses - 1):
                h_t, l_t, b_t, p = self.model(x, l_t, h_t)
                baselines.append(b_t)
                log_pi.append(p)
            h_t, l_t, b_t, log_probas, p = self.model(x, l_t, h_t, last=True)
            log_pi.append(p)
            baselines.append(b_t)
            loss = torch.stack(log_pi).sum() + torch.stack(baselines).sum() + log_probas.sum()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
"""
)
SILENT["13: a warm-up whose state is copied under no_grad after it"] = (
    HEADER
    + """
cell = nn.GRUCell(8, 16)
for x, y in batches:
    h = torch.zeros(4, 16)
    for t in range(5):
        h = cell(x[t], h)
    with torch.no_grad():
        h = h.clone()
    loss = 0
    for t in range(5, 15):
        h = cell(x[t], h)
        loss = loss + (h - y[t]).pow(2).mean()
    loss.backward()
"""
)
SILENT["13: a warm-up whose state is cut after it"] = (
    HEADER
    + """
lstm = nn.LSTM(8, 16)
def train(batches, burn_in):
    for x, y in batches:
        state = None
        for t in range(burn_in):
            out, state = lstm(x[t:t + 1], state)
        state = tuple(s.detach() for s in state)
        out, state = lstm(x[burn_in:], state)
        (out - y[burn_in:]).pow(2).mean().backward()
"""
)

FOUND["13: a warm-up that only logs its detached outputs"] = (
    HEADER
    + """
cell = nn.GRUCell(8, 16)
for x, y in batches:
    h = torch.zeros(4, 16)
    seen = []
    for t in range(5):
        h = cell(x[t], h)  # expect: TBP013
        seen.append(h.detach())
        total_norm = h.norm().item()
    loss = 0
    for t in range(5, 15):
        h = cell(x[t], h)
        loss = loss + (h - y[t]).pow(2).mean()
    loss.backward()
"""
)
FOUND["13: a burn-in of an nn.LSTM over slices in a function"] = (
    HEADER
    + """
lstm = nn.LSTM(8, 16)
def train(batches, burn_in):
    for x, y in batches:
        state = None
        for t in range(burn_in):
            _, state = lstm(x[t:t + 1], state)  # expect: TBP013
        out, state = lstm(x[burn_in:], state)
        (out - y[burn_in:]).pow(2).mean().backward()
"""
)
FOUND["13: a warm-up that masks its state at every step"] = (
    HEADER
    + """
cell = nn.LSTMCell(8, 16)
for x, y, done in batches:
    h, c = torch.zeros(4, 16), torch.zeros(4, 16)
    for t in range(10):
        h, c = cell(x[t], (h, c))  # expect: TBP013
        h = h * (1 - done[t])
    loss = 0
    for t in range(10, 20):
        h, c = cell(x[t], (h, c))
        loss = loss + (h - y[t]).pow(2).mean()
    loss.backward()
"""
)

# --------------------------------------------------------------------------------------------
# Class 11: a state cut to be carried on but left out of the recurrent call.

FOUND["15: a GRU called without the state that was just cut"] = (
    HEADER
    + """
gru = nn.GRU(8, 16)
h = torch.zeros(1, 4, 16)
for x, y in batches:
    h = h.detach()
    out, h = gru(x)  # expect: TBP015
    (out - y).pow(2).mean().backward()
"""
)
FOUND["15: an LSTM's pair cut by a comprehension, then left out"] = (
    HEADER
    + """
lstm = nn.LSTM(8, 16)
def train(batches, optimizer):
    hidden = None
    for x, y in batches:
        if hidden is not None:
            hidden = tuple(v.detach() for v in hidden)
        out, hidden = lstm(x)  # expect: TBP015
        loss = (out - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""
)
FOUND["15: `out, (h, c) = lstm(x)` after cutting h and c"] = (
    HEADER
    + """
lstm = nn.LSTM(8, 16)
h, c = torch.zeros(1, 4, 16), torch.zeros(1, 4, 16)
for i in range(0, 100, 10):
    h, c = h.detach(), c.detach()
    out, (h, c) = lstm(x[i:i + 10])  # expect: TBP015
    (out - y[i:i + 10]).pow(2).mean().backward()
"""
)
FOUND["15: self.hidden cut by a repackage helper, the call passes None"] = (
    HEADER
    + """
def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


class Trainer:
    def __init__(self):
        self.rnn = nn.GRU(8, 16)
        self.hidden = None

    def train_epoch(self, batches):
        for x, y in batches:
            if self.hidden is not None:
                self.hidden = repackage_hidden(self.hidden)
            out, self.hidden = self.rnn(x, None)  # expect: TBP015
            (out - y).pow(2).mean().backward()
"""
)
FOUND["15: a cell stepped without its state inside each window"] = (
    HEADER
    + """
cell = nn.GRUCell(8, 16)
h = torch.zeros(4, 16)
for start in range(0, 100, 10):
    h = h.detach()
    loss = 0
    for t in range(start, start + 10):
        h = cell(x[t])  # expect: TBP015
        loss = loss + (h - y[t]).pow(2).mean()
    loss.backward()
"""
)
FOUND["15: hx=None by keyword, the cut at the end of the window"] = (
    HEADER
    + """
rnn = nn.RNN(8, 16)
hidden = torch.zeros(1, 4, 16)
for x, y in batches:
    out, hidden = rnn(x, hx=None)  # expect: TBP015
    loss = (out - y).pow(2).mean()
    loss.backward()
    hidden = hidden.detach()
"""
)

SILENT["15: the state passed by keyword"] = (
    HEADER
    + """
gru = nn.GRU(8, 16)
h = torch.zeros(1, 4, 16)
for x, y in batches:
    h = h.detach()
    out, h = gru(x, hx=h)
    (out - y).pow(2).mean().backward()
"""
)
# Round 6 re-checked this one by running it: `forward` hands its `h=None` straight to the GRU,
# so `net(x)` starts from zeros on every batch and the cut `h` is thrown away (TBP015, as for
# `gru(x)`). Only a forward that may fall back to a state of its own stays silent.
USER_MODEL_DEFAULT = (
    HEADER
    + """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 16)
        self.h = None

    def forward(self, x, h=None):
{forward}

net = Net()
h = None
for x, y in batches:
    if h is not None:
        h = h.detach()
    out, h = {call}
    (out - y).pow(2).mean().backward()
"""
)
FOUND["15: a user's model whose forward hands its default None to the GRU"] = (
    USER_MODEL_DEFAULT.format(
        forward="        return self.gru(x, h)", call="net(x)  # expect: TBP015"
    )
)
FOUND["15: ...the state passed as None"] = USER_MODEL_DEFAULT.format(
    forward="        return self.gru(x, h)", call="net(x, None)  # expect: TBP015"
)
SILENT["15: ...the state passed back in"] = USER_MODEL_DEFAULT.format(
    forward="        return self.gru(x, h)", call="net(x, h)"
)
SILENT["15: a user's model whose forward may default to its own state"] = USER_MODEL_DEFAULT.format(
    forward="""\
        if h is None:
            h = self.h
        out, self.h = self.gru(x, h)
        self.h = self.h.detach()
        return out, self.h""",
    call="net(x)",
)
SILENT["15: no state carried at all"] = (
    HEADER
    + """
gru = nn.GRU(8, 16)
for x, y in batches:
    out, h = gru(x)
    loss = (out - y).pow(2).mean() + h.pow(2).mean()
    loss.backward()
"""
)
SILENT["15: a state cut after the call and used for something else"] = (
    HEADER
    + """
gru = nn.GRU(8, 16)
for x, y in batches:
    out, h = gru(x)
    loss = (out - y).pow(2).mean()
    loss.backward()
    h = h.detach()
    memory.push(h)
"""
)
SILENT["15: the cut state read before the call"] = (
    HEADER
    + """
gru = nn.GRU(8, 16)
h = torch.zeros(1, 4, 16)
for x, y in batches:
    h = h.detach()
    context = h.mean(0, keepdim=True).expand(x.size(0), -1, -1)
    out, h = gru(torch.cat([x, context], -1))
    (out - y).pow(2).mean().backward()
"""
)
SILENT["15: the first batch starts from zeros, the others pass the state"] = (
    HEADER
    + """
gru = nn.GRU(8, 16)
h = None
for i, (x, y) in enumerate(batches):
    if h is not None:
        h = h.detach()
    if i == 0:
        out, h = gru(x)
    else:
        out, h = gru(x, h)
    (out - y).pow(2).mean().backward()
"""
)
SILENT["15: evaluation under no_grad"] = (
    HEADER
    + """
gru = nn.GRU(8, 16)
h = torch.zeros(1, 4, 16)
for x, y in batches:
    h = h.detach()
    with torch.no_grad():
        out, h = gru(x)
    loss = (out - y).pow(2).mean()
    loss.backward()
"""
)

# --------------------------------------------------------------------------------------------
# Class 12: a back-propagated loss accumulated through an expression.

ACCUMULATE = (
    HEADER
    + """
gru = nn.GRU(8, 16)
def train(batches, optimizer, n):
    {init}
    hidden = None
    for x, y in batches:
        if hidden is not None:
            hidden = hidden.detach()
        out, hidden = gru(x, hidden)
        loss = (out - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        {accumulate}{expect}
    return total
"""
)
for init, accumulate in (
    ("total = 0.0", "total += loss / n"),
    ("total = 0.0", "if n:\n            total += loss / n"),
    ("total = 0.0", "total += loss * x.size(1)"),
    ("total = 0.0", "total = total + loss.detach() * 0 + loss"),
    ("total = 0.0", "total -= -loss.mean()"),
    ("total = 0.0", "total = (loss * n).sum() + total"),
    ("total = []", "total.append(loss * n)"),
    ("self_total = torch.zeros(())", "self_total += loss if n else loss.detach()"),
):
    shown = " ".join(line.strip() for line in accumulate.splitlines())
    FOUND[f"6: accumulated through an expression: {shown}"] = ACCUMULATE.format(
        init=init, accumulate=accumulate, expect="  # expect: TBP006"
    )
for init, accumulate in (
    ("total = 0.0", "total += loss.data"),
    ("total = 0.0", "total += loss.item() * x.size(1)"),
    ("total = 0.0", "total = total + float(loss) / n"),
    ("total = 0.0", "total += loss.detach() * n"),
    ("total = []", "total.append(loss.item() * n)"),
    ("total = 0.0", "total += torch.tensor(1.0) * n"),
):
    SILENT[f"6: accumulated as a number: {accumulate}"] = ACCUMULATE.format(
        init=init, accumulate=accumulate, expect=""
    )

FOUND["6: a second accumulator of the loss beside the back-propagated one"] = (
    HEADER
    + """
cell = nn.GRUCell(8, 16)
h = torch.zeros(4, 16)
total = 0.0
for start in range(0, 100, 10):
    h = h.detach()
    loss_sum = 0
    for t in range(start, start + 10):
        h = cell(x[t], h)
        loss = (h - y[t]).pow(2).mean()
        loss_sum = loss_sum + loss
        total += loss  # expect: TBP006
    loss_sum.backward()
"""
)
FOUND["6: a part of a summed loss logged with its graph"] = (
    HEADER
    + """
class Trainer:
    def fit(self, batches):
        self.kl_total = 0.0
        hidden = None
        for x, y in batches:
            if hidden is not None:
                hidden = hidden.detach()
            out, hidden = self.rnn(x, hidden)
            recon = (out - y).pow(2).mean()
            kl = out.pow(2).mean()
            (recon + 0.1 * kl).backward()
            self.kl_total += kl * 0.1  # expect: TBP006
"""
)

SILENT["6: losses appended with a weight and stacked for one backward"] = (
    HEADER
    + """
cell = nn.GRUCell(8, 16)
h = torch.zeros(4, 16)
for start in range(0, 100, 10):
    h = h.detach()
    losses = []
    for t in range(start, start + 10):
        h = cell(x[t], h)
        losses.append((h - y[t]).pow(2).mean() * weights[t])
    torch.stack(losses).sum().backward()
"""
)
SILENT["6: a weighted loss list summed into the loss that is back-propagated"] = (
    HEADER
    + """
cell = nn.GRUCell(8, 16)
h = torch.zeros(4, 16)
for start in range(0, 100, 10):
    h = h.detach()
    step_losses = []
    for t in range(start, start + 10):
        h = cell(x[t], h)
        loss = (h - y[t]).pow(2).mean()
        step_losses.append(loss * weights[t])
    window_loss = sum(step_losses) / len(step_losses)
    window_loss.backward()
"""
)
SILENT["6: a window's own accumulator, made anew each window"] = (
    HEADER
    + """
cell = nn.GRUCell(8, 16)
h = torch.zeros(4, 16)
for start in range(0, 100, 10):
    h = h.detach()
    loss_sum = 0
    shown = 0
    for t in range(start, start + 10):
        h = cell(x[t], h)
        loss = (h - y[t]).pow(2).mean()
        loss_sum = loss_sum + loss / 10
        shown += loss * 2
    loss_sum.backward()
    print(shown.item())
"""
)

FOUND["6: a second accumulator beside a window loss averaged per step"] = (
    HEADER
    + """
def train(model, windows, k):
    h = None
    epoch_loss = 0
    for x, y in windows:
        if h is not None:
            h = h.detach()
        window_loss = 0
        for t in range(k):
            out, h = model(x[t], h)
            loss = (out - y[t]).pow(2).mean()
            window_loss += loss / k
            epoch_loss = epoch_loss + loss  # expect: TBP006
        window_loss.backward()
    return epoch_loss
"""
)
SILENT["6: the token counts that scale a summed loss"] = (
    HEADER
    + """
cell = nn.GRUCell(8, 16)
h = torch.zeros(4, 16)
num_tokens = 0
for start in range(0, 100, 10):
    h = h.detach()
    loss_sum = 0
    for t in range(start, start + 10):
        h = cell(x[t], h)
        ntok = mask[t].sum()
        loss_sum = loss_sum + (h - y[t]).pow(2).mean() * ntok
        num_tokens += ntok
    (loss_sum / 10).backward()
"""
)
SILENT["6: the batch sizes a loss is scaled by"] = (
    HEADER
    + """
def train(model, loader, optimizer):
    seen = 0
    hidden = None
    for x, y in loader:
        if hidden is not None:
            hidden = hidden.detach()
        out, hidden = model(x, hidden)
        bs = x.size(1)
        loss = (out - y).pow(2).mean()
        loss = loss * bs
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += bs
    return seen
"""
)

# --------------------------------------------------------------------------------------------
# Class 14: `retain_graph=True` beside the cut that cuts nothing.

FOUND["5+3: a discarded detach with retain_graph in the same loop"] = (
    HEADER
    + """
rnn = nn.GRU(8, 16)
hidden = None
for x, y in batches:
    out, hidden = rnn(x, hidden)
    loss = (out - y).pow(2).mean()
    loss.backward(retain_graph=True)  # expect: TBP005
    hidden.detach()  # expect: TBP003
"""
)
FOUND["5+3: an LSTM's elements detached in a loop, results thrown away"] = (
    HEADER
    + """
lstm = nn.LSTM(8, 16)
def train(batches, optimizer):
    hidden = None
    for x, y in batches:
        out, hidden = lstm(x, hidden)
        loss = (out - y).pow(2).mean()
        optimizer.zero_grad()
        torch.autograd.backward(loss, retain_graph=True)  # expect: TBP005
        optimizer.step()
        for s in hidden:
            s.detach()  # expect: TBP003
"""
)
FOUND["5+3: a local copy cut, never written back"] = (
    HEADER
    + """
lstm = nn.LSTM(8, 16)
hidden = None
for x, y in batches:
    if hidden is not None:
        h, c = hidden
        h = h.detach()  # expect: TBP003
        c = c.detach()  # expect: TBP003
    out, hidden = lstm(x, hidden)
    (out - y).pow(2).mean().backward(retain_graph=True)  # expect: TBP005
"""
)
FOUND["5+14: a view detached in place with retain_graph"] = (
    HEADER
    + """
gru = nn.GRU(8, 16, num_layers=2)
hidden = torch.zeros(2, 4, 16)
for x, y in batches:
    out, hidden = gru(x, hidden)
    (out - y).pow(2).mean().backward(retain_graph=True)  # expect: TBP005
    hidden[0].detach_()  # expect: TBP014
"""
)

SILENT["5+3: a real cut with retain_graph for a second head"] = (
    HEADER
    + """
rnn = nn.GRU(8, 16)
hidden = None
for x, y in batches:
    out, hidden = rnn(x, hidden)
    (out - y).pow(2).mean().backward(retain_graph=True)
    out.sum().backward()
    hidden = hidden.detach()
"""
)
SILENT["5+3: an in-place cut with retain_graph"] = (
    HEADER
    + """
lstm = nn.LSTM(8, 16)
hidden = None
for x, y in batches:
    out, hidden = lstm(x, hidden)
    (out - y).pow(2).mean().backward(retain_graph=True)
    for s in hidden:
        s.detach_()
"""
)


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    source = FOUND[name]
    assert expected(source)
    assert sorted_codes(source) == expected(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert codes(SILENT[name]) == []


def test_retain_graph_finding_names_the_cut_that_cuts_nothing() -> None:
    (found,) = [
        f
        for f in check_source(
            textwrap.dedent(FOUND["5+3: a discarded detach with retain_graph in the same loop"]),
            "example.py",
            Settings(),
        )
        if f.code == "TBP005"
    ]
    assert "The cut at line 10 leaves the state attached" in found.message


def test_a_loop_variable_over_a_view_gets_no_fix() -> None:
    """Rebinding the loop variable (`layer_state = layer_state.detach()`) would cut nothing."""
    source = textwrap.dedent(FOUND["14: iterating an nn.RNN's state tensor in a function"])
    (found,) = check_source(source, "example.py", Settings())
    assert found.code == "TBP014"
    assert found.fix is None


def test_an_attribute_view_detached_in_place_is_rebound_out_of_place() -> None:
    source = textwrap.dedent(FOUND["14: the attribute itself detached in place in another method"])
    (found,) = check_source(source, "example.py", Settings())
    assert "line 12" in found.message
    assert found.fix is not None
    assert found.fix.edits[0].content == "self.last = self.last.detach()"


def write(root: Path, name: str, text: str) -> None:
    (root / name).write_text(textwrap.dedent(text), encoding="utf-8")


def lint(root: Path) -> list[tuple[str, str, int]]:
    result = lint_paths([root], Settings(project_root=root), jobs=1)
    return sorted((Path(d.path).name, d.code, d.line) for d in result.diagnostics)


def test_a_model_from_another_file_keeps_its_pair_state_whole(tmp_path: Path) -> None:
    write(
        tmp_path,
        "models.py",
        """\
        import torch
        import torch.nn as nn

        class LM(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = nn.LSTM(8, 16)

            def init_hidden(self, bsz):
                return (torch.zeros(1, bsz, 16), torch.zeros(1, bsz, 16))

            def forward(self, x, hidden):
                return self.rnn(x, hidden)
        """,
    )
    write(
        tmp_path,
        "train.py",
        """\
        from models import LM

        model = LM()
        hidden = model.init_hidden(4)
        for x, y in batches:
            out, hidden = model(x, hidden)
            (out - y).pow(2).mean().backward()
            for h in hidden:
                h.detach_()
        """,
    )
    assert lint(tmp_path) == []


def test_a_state_cut_in_a_helper_of_another_file_then_left_out(tmp_path: Path) -> None:
    write(
        tmp_path,
        "utils.py",
        """\
        import torch

        def repackage(h):
            if isinstance(h, torch.Tensor):
                return h.detach()
            return tuple(repackage(v) for v in h)
        """,
    )
    loop = """\
        import torch.nn as nn
        from utils import repackage

        lstm = nn.LSTM(8, 16)
        hidden = None
        for x, y in batches:
            if hidden is not None:
                hidden = repackage(hidden)
            out, hidden = lstm({args})
            (out - y).pow(2).mean().backward()
        """
    write(tmp_path, "bad.py", loop.format(args="x"))
    write(tmp_path, "good.py", loop.format(args="x, hidden"))
    assert lint(tmp_path) == [("bad.py", "TBP015", 9)]


def test_a_loss_accumulated_through_an_expression_in_a_notebook(tmp_path: Path) -> None:
    import json

    cells = [
        "import torch\nimport torch.nn as nn\ngru = nn.GRU(8, 16)\n",
        (
            "total = 0.0\nhidden = None\nfor x, y in batches:\n"
            "    if hidden is not None:\n        hidden = hidden.detach()\n"
            "    out, hidden = gru(x, hidden)\n    loss = (out - y).pow(2).mean()\n"
            "    loss.backward()\n    total += loss / len(batches)\n"
        ),
    ]
    notebook = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": 1}
            for c in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (tmp_path / "train.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    assert [code for _, code, _ in lint(tmp_path)] == ["TBP006"]
