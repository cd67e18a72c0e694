"""Real-code round 2: recurrent state that is never carried (TBP015).

Classes taken from mirrors the linter missed, each with FOUND variants and SILENT twins that a
nearby correct idiom could be confused with:

- a step loop that calls a method of the class re-initialising the state kept on `self` on
  every pass, right before the call that reads it and stores the new state back;
- a state fetched, inside the loop, from where the recurrent call's returned states are kept
  (a list of memories), and then not passed to the call: the variable is never read.
"""

from __future__ import annotations

import textwrap

import pytest

from tbptt_lint import testing
from tbptt_lint.analysis.api import check_source
from tbptt_lint.settings import Settings

ALL = Settings(select=("TBP",))


def codes(source: str) -> list[tuple[str, int]]:
    findings = check_source(textwrap.dedent(source), "example.py", ALL)
    return sorted((f.code, f.line) for f in findings)


def expected(source: str) -> list[tuple[str, int]]:
    """`# expect: TBP015` comments mark the lines a snippet must be reported on."""
    return sorted(testing.expected_lines(textwrap.dedent(source)))


HEADER = """\
import torch
import torch.nn as nn
"""

# ----------------------------------------------------------------- per-step attribute reset
STEP_RESET_FOUND = {
    "an LSTM cell's (h, c) reset by a method at the top of every time step": HEADER
    + """
class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(4, 8)
        self.out = nn.Linear(8, 3)

    def reset_state(self, n):
        self.h = torch.zeros(n, 8)
        self.c = torch.zeros(n, 8)

    def forward(self, tokens):
        scores = []
        for t in range(tokens.size(1)):
            self.reset_state(tokens.size(0))  # expect: TBP015
            self.h, self.c = self.cell(tokens[:, t], (self.h, self.c))
            scores.append(self.out(self.h))
        return torch.stack(scores, 1)


net = Tagger()
opt = torch.optim.SGD(net.parameters(), lr=0.1)
for tokens, labels in batches:
    opt.zero_grad()
    net(tokens).sum().backward()
    opt.step()
""",
    "a learned start state set anew in a rollout method, a GRU cell stepped per frame": HEADER
    + """
class Agent(nn.Module):
    def __init__(self):
        super().__init__()
        self.h0 = nn.Parameter(torch.zeros(1, 16))
        self.gru = nn.GRUCell(6, 16)
        self.value = nn.Linear(16, 1)

    def begin(self, n):
        self.memory = self.h0.expand(n, -1)

    def rollout(self, frames):
        values = []
        for step in range(len(frames)):
            self.begin(frames.size(1))  # expect: TBP015
            self.memory = self.gru(frames[step], self.memory)
            values.append(self.value(self.memory))
        return torch.cat(values)


def fit(agent, episodes, optimizer):
    for frames, returns in episodes:
        loss = (agent.rollout(frames) - returns).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
    "a user's cell module, other statements between the reset and the call": HEADER
    + """
class Decay(nn.Module):
    def __init__(self):
        super().__init__()
        self.mix = nn.Linear(12, 6)

    def forward(self, x, s):
        return torch.tanh(self.mix(torch.cat([x, s], -1)))


class Hawkes(nn.Module):
    def __init__(self):
        super().__init__()
        self.step_fn = Decay()

    def clear(self, batch):
        self.level = torch.zeros(batch, 6)
        self.count = 0

    def forward(self, events):
        outs = []
        for i in range(events.shape[0]):
            self.clear(events.shape[1])  # expect: TBP015
            x = events[i] * 2
            self.count += 1
            self.level = self.step_fn(x, self.level)
            outs.append(self.level)
        return torch.stack(outs)


model = Hawkes()
for events in data:
    model(events).mean().backward()
""",
}

STEP_RESET_SILENT = {
    "the reset runs once, before the time loop": HEADER
    + """
class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(4, 8)

    def reset_state(self, n):
        self.h = torch.zeros(n, 8)
        self.c = torch.zeros(n, 8)

    def forward(self, tokens):
        scores = []
        self.reset_state(tokens.size(0))
        for t in range(tokens.size(1)):
            self.h, self.c = self.cell(tokens[:, t], (self.h, self.c))
            scores.append(self.h)
        return torch.stack(scores, 1)


net = Tagger()
for tokens in batches:
    net(tokens).sum().backward()
""",
    "the reset only starts the sequence, under a condition": HEADER
    + """
class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(4, 8)

    def reset_state(self, n):
        self.h = torch.zeros(n, 8)

    def forward(self, tokens):
        outs = []
        for t in range(tokens.size(1)):
            if t == 0:
                self.reset_state(tokens.size(0))
            self.h = self.cell(tokens[:, t], self.h)
            outs.append(self.h)
        return torch.stack(outs, 1)


net = Tagger()
for tokens in batches:
    net(tokens).sum().backward()
""",
    "a trainer starts every batch anew (the loop walks batches, not steps)": HEADER
    + """
class Trainer:
    def __init__(self):
        self.lstm = nn.LSTM(4, 8)

    def begin(self, n):
        self.state = (torch.zeros(1, n, 8), torch.zeros(1, n, 8))

    def evaluate(self, batches):
        total = 0.0
        for x in batches:
            self.begin(x.size(1))
            out, self.state = self.lstm(x, self.state)
            total += out.sum().item()
        return total

    def train(self, batches):
        for x in batches:
            self.begin(x.size(1))
            out, self.state = self.lstm(x, self.state)
            out.sum().backward()
""",
    "every window starts anew (the loop walks windows, sliced)": HEADER
    + """
class Trainer:
    def __init__(self):
        self.gru = nn.GRU(4, 8)

    def begin(self, n):
        self.state = torch.zeros(1, n, 8)

    def train(self, series, bptt):
        for i in range(0, series.size(0), bptt):
            self.begin(series.size(1))
            out, self.state = self.gru(series[i:i + bptt], self.state)
            out.sum().backward()
""",
    "a state injected per step from the loop's own data (teacher-forced states)": HEADER
    + """
class Stepper(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(4, 8)

    def load(self, h):
        self.h = h

    def forward(self, xs, given):
        outs = []
        for t in range(xs.size(0)):
            self.load(given[t])
            self.h = self.cell(xs[t], self.h)
            outs.append(self.h)
        return torch.stack(outs)


net = Stepper()
for xs, given in batches:
    net(xs, given).sum().backward()
""",
    "one state per layer: the callee comes from the loop": HEADER
    + """
class Stack(nn.Module):
    def __init__(self):
        super().__init__()
        self.cells = nn.ModuleList([nn.GRUCell(8, 8) for _ in range(3)])

    def begin(self, n):
        self.h = torch.zeros(n, 8)

    def forward(self, xs):
        for i, cell in enumerate(self.cells):
            self.begin(xs.size(1))
            self.h = cell(xs[i], self.h)
        return self.h


net = Stack()
for xs in batches:
    net(xs).sum().backward()
""",
    "the method called every step leaves the state alone": HEADER
    + """
class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(4, 8)
        self.steps = 0

    def begin(self, n):
        self.h = torch.zeros(n, 8)

    def tick(self, t):
        self.steps = t

    def forward(self, tokens):
        self.begin(tokens.size(0))
        outs = []
        for t in range(tokens.size(1)):
            self.tick(t)
            self.h = self.cell(tokens[:, t], self.h)
            outs.append(self.h)
        return torch.stack(outs, 1)


net = Tagger()
for tokens in batches:
    net(tokens).sum().backward()
""",
    "the method sets the state only when it is missing": HEADER
    + """
class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(4, 8)
        self.h = None

    def ensure(self, n):
        if self.h is None:
            self.h = torch.zeros(n, 8)

    def forward(self, tokens):
        outs = []
        for t in range(tokens.size(1)):
            self.ensure(tokens.size(0))
            self.h = self.cell(tokens[:, t], self.h)
            outs.append(self.h)
        return torch.stack(outs, 1)


net = Tagger()
for tokens in batches:
    net(tokens).sum().backward()
    net.h = None
""",
}


@pytest.mark.parametrize("name", sorted(STEP_RESET_FOUND))
def test_state_reset_by_a_method_every_step_is_found(name: str) -> None:
    source = STEP_RESET_FOUND[name]
    found = [c for c in codes(source) if c[0] == "TBP015"]
    assert found == expected(source)


@pytest.mark.parametrize("name", sorted(STEP_RESET_SILENT))
def test_state_started_anew_where_it_should_stays_silent(name: str) -> None:
    assert [c for c in codes(STEP_RESET_SILENT[name]) if c[0] == "TBP015"] == []


# ----------------------------------------------------- a fetched state left out of the call
FETCHED_FOUND = {
    "the previous memory is fetched from the list the steps fill, then left out": HEADER
    + """
def train(net, chunks, optimizer):
    memories = [net.initial_memory(chunks[0].size(0))]
    total = 0.0
    for k, chunk in enumerate(chunks):
        previous = memories[k]
        memory, loss = net(chunk)  # expect: TBP015
        memories.append(memory)
        total = total + loss
    optimizer.zero_grad()
    total.backward()
    optimizer.step()
""",
    "a no-grad pass threads the state; the replay pass unpacks it and forgets it": HEADER
    + """
class Replayer:
    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer

    def step(self, segments, targets):
        start = self.model.blank(segments[0].size(0))
        trail = [start]
        state = start
        with torch.no_grad():
            for seg in segments[:-1]:
                _, state = self.model(seg, state)
                trail.append(state)
        for i in reversed(range(len(segments))):
            seg, target, carried = segments[i], targets[i], trail[i]
            logits, _ = self.model(seg)  # expect: TBP015
            nn.functional.cross_entropy(logits, target).backward()
        self.optimizer.step()
""",
    "the history is kept on the object": HEADER
    + """
class Runner:
    def __init__(self, cell):
        self.cell = cell
        self.seen = [torch.zeros(4, 8)]

    def fit(self, steps, opt):
        for t in range(len(steps)):
            h_prev = self.seen[-1]
            h = self.cell(steps[t])  # expect: TBP015
            self.seen.append(h)
            opt.zero_grad()
            h.pow(2).mean().backward()
            opt.step()
""",
}

FETCHED_SILENT = {
    "the fetched memory is passed by keyword": HEADER
    + """
def train(net, chunks, optimizer):
    memories = [net.initial_memory(chunks[0].size(0))]
    total = 0.0
    for k, chunk in enumerate(chunks):
        previous = memories[k]
        memory, loss = net(chunk, mems=previous)
        memories.append(memory.detach())
        total = total + loss
    optimizer.zero_grad()
    total.backward()
    optimizer.step()
""",
    "the fetched memory is passed inside a tuple": HEADER
    + """
def train(net, chunks, optimizer):
    memories = [net.initial_memory(chunks[0].size(0))]
    for k, chunk in enumerate(chunks):
        previous = memories[k]
        memory, loss = net(chunk, (previous, None))
        memories.append(memory.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
    "the fetched memory is passed through a dict of keyword arguments": HEADER
    + """
def train(net, chunks, optimizer):
    memories = [net.initial_memory(chunks[0].size(0))]
    for k, chunk in enumerate(chunks):
        previous = memories[k]
        extra = {"mems": previous}
        memory, loss = net(chunk, **extra)
        memories.append(memory.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
    "a log of outputs that starts empty is not a history of states": HEADER
    + """
def train(net, chunks, optimizer):
    outputs = []
    for k, chunk in enumerate(chunks):
        last = outputs[-1] if outputs else None
        out, loss = net(chunk)
        outputs.append(out)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
    "the fetched state is read for something else": HEADER
    + """
def train(net, chunks, optimizer, log):
    memories = [net.initial_memory(chunks[0].size(0))]
    for k, chunk in enumerate(chunks):
        previous = memories[k]
        log.append(previous.norm().item())
        memory, loss = net(chunk)
        memories.append(memory.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
    "every chunk starts anew on purpose: nothing is fetched": HEADER
    + """
def train(net, chunks, optimizer):
    memories = [net.initial_memory(chunks[0].size(0))]
    for chunk in chunks:
        memory, loss = net(chunk)
        memories.append(memory.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
    "the fetch and the call run without gradients": HEADER
    + """
def train(net, chunks, optimizer, loss_fn):
    memories = [net.initial_memory(chunks[0].size(0))]
    with torch.no_grad():
        for k, chunk in enumerate(chunks):
            previous = memories[k]
            memory, _ = net(chunk)
            memories.append(memory)
    out, _ = net(chunks[-1], memories[-1])
    loss_fn(out).backward()
    optimizer.step()
""",
    "an unused name marked as such": HEADER
    + """
def train(net, chunks, optimizer):
    memories = [net.initial_memory(chunks[0].size(0))]
    for k, chunk in enumerate(chunks):
        _unused = memories[k]
        memory, loss = net(chunk)
        memories.append(memory.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
}


@pytest.mark.parametrize("name", sorted(FETCHED_FOUND))
def test_fetched_state_left_out_of_the_call_is_found(name: str) -> None:
    source = FETCHED_FOUND[name]
    found = [c for c in codes(source) if c[0] == "TBP015"]
    assert found == expected(source)


@pytest.mark.parametrize("name", sorted(FETCHED_SILENT))
def test_fetched_state_that_is_used_stays_silent(name: str) -> None:
    assert [c for c in codes(FETCHED_SILENT[name]) if c[0] == "TBP015"] == []


# --------------------------------------- a model's one-step cell called without its state
GRAPH_CELL = """
class GraphCell(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.n_out = n_out
        self.inp = nn.Linear(n_in, 2 * n_out)
        self.rec = nn.Linear(n_out, 2 * n_out)

    def forward(self, x, adj, state=None):
        if state is None:
            state = torch.zeros(x.size(0), self.n_out)
        gate, cand = (adj @ self.inp(x) + self.rec(state)).chunk(2, -1)
        gate = torch.sigmoid(gate)
        return gate * state + (1 - gate) * torch.tanh(cand)
"""

CELL_FOUND = {
    "a torch GRU cell stepped once per call, the snapshots' losses summed": HEADER
    + """
class Forecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRUCell(4, 8)
        self.head = nn.Linear(8, 1)

    def forward(self, frame):
        h = self.gru(frame)  # expect: TBP015
        return self.head(h)


def fit(frames, targets):
    net = Forecaster()
    opt = torch.optim.Adam(net.parameters())
    for epoch in range(10):
        total = 0
        for t in range(len(frames)):
            total = total + (net(frames[t]) - targets[t]).pow(2).mean()
        opt.zero_grad()
        total.backward()
        opt.step()
""",
    "a graph cell of the file, the losses stacked after the loop": HEADER
    + GRAPH_CELL
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.core = GraphCell(3, 16)
        self.out = nn.Linear(16, 1)

    def forward(self, x, adj):
        return self.out(torch.relu(self.core(x, adj)))  # expect: TBP015


model = Model()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(5):
    losses = []
    for x, adj, y in snapshots:
        losses.append((model(x, adj) - y).abs().mean())
    torch.stack(losses).mean().backward()
    optimizer.step()
    optimizer.zero_grad()
""",
    "a cell that fills its state through a helper, called with a keyword": HEADER
    + """
class Cell(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def _start(self, x, h):
        return torch.zeros_like(x) if h is None else h

    def forward(self, x, weight=None, h=None):
        h = self._start(x, h)
        return torch.tanh(self.lin(x) + h)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.step = Cell()

    def forward(self, x, w):
        return self.step(x, weight=w)  # expect: TBP015


def train(seq):
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss = 0
    for i, x in enumerate(seq):
        loss = loss + net(x, None).sum()
    loss.backward()
    opt.step()
""",
}

CELL_SILENT = {
    "the model takes the state, returns it, and the loop threads it": HEADER
    + GRAPH_CELL
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.core = GraphCell(3, 16)
        self.out = nn.Linear(16, 1)

    def forward(self, x, adj, h):
        h = self.core(x, adj, h)
        return self.out(h), h


model = Model()
for epoch in range(5):
    cost, h = 0, None
    for x, adj, y in snapshots:
        y_hat, h = model(x, adj, h)
        cost = cost + (y_hat - y).abs().mean()
    cost.backward()
""",
    "the state is passed by keyword": HEADER
    + GRAPH_CELL
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.core = GraphCell(3, 16)

    def forward(self, x, adj, h=None):
        return self.core(x, adj, state=h)


model = Model()
for epoch in range(5):
    cost, h = 0, None
    for x, adj, y in snapshots:
        h = model(x, adj, h)
        cost = cost + (h - y).abs().mean()
    cost.backward()
""",
    "each batch starts anew, with its own backward": HEADER
    + GRAPH_CELL
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.core = GraphCell(3, 16)

    def forward(self, x, adj):
        return self.core(x, adj)


model = Model()
for x, adj, y in batches:
    (model(x, adj) - y).abs().mean().backward()
""",
    "the layer runs a whole sequence per call and may start it from zeros": HEADER
    + """
class SeqLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(4, 8)

    def forward(self, xs, h=None):
        if h is None:
            h = torch.zeros(xs.size(1), 8)
        for x in xs:
            h = self.cell(x, h)
        return h


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = SeqLayer()

    def forward(self, xs):
        return self.layer(xs)


model = Model()
for epoch in range(3):
    total = 0
    for xs, y in sequences:
        total = total + (model(xs) - y).pow(2).mean()
    total.backward()
""",
    "arguments handed on with **kwargs": HEADER
    + GRAPH_CELL
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.core = GraphCell(3, 16)

    def forward(self, x, adj, **extra):
        return self.core(x, adj, **extra)


model = Model()
for epoch in range(5):
    cost, h = 0, None
    for x, adj, y in snapshots:
        h = model(x, adj, state=h)
        cost = cost + (h - y).abs().mean()
    cost.backward()
""",
    "an optional argument that is not a state (the result does not read it)": HEADER
    + """
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x, mask=None):
        if mask is None:
            mask = torch.ones_like(x)
        self.last_mask = mask
        return torch.relu(self.lin(x))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()

    def forward(self, x):
        return self.block(x)


model = Model()
for epoch in range(5):
    total = 0
    for x, y in pairs:
        total = total + (model(x) - y).pow(2).mean()
    total.backward()
""",
}


@pytest.mark.parametrize("name", sorted(CELL_FOUND))
def test_cell_called_without_its_state_over_a_sequence_is_found(name: str) -> None:
    source = CELL_FOUND[name]
    found = [c for c in codes(source) if c[0] == "TBP015"]
    assert found == expected(source)


@pytest.mark.parametrize("name", sorted(CELL_SILENT))
def test_cell_given_its_state_or_started_per_batch_stays_silent(name: str) -> None:
    assert [c for c in codes(CELL_SILENT[name]) if c[0] == "TBP015"] == []
