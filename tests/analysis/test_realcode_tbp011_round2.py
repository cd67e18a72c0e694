"""TBP011 on real code, second round: four ways state crosses sequences that were missed.

- State handed back to an attribute through a local: `out, h = rnn(x, self.h)` followed by
  `self.h = h.detach()` keeps `self.h` from call to call as surely as `out, self.h = rnn(x,
  self.h)` does, in a training loop and inside a module's `forward` (which then leaves the
  state cut for the next call: no TBP001).
- Evaluation state into training: inside an epoch loop, a loop without backward that runs
  after the training loop leaves its final state where the next epoch's first training batch
  reads it, when nothing resets the state in between.
- Batches visited in random order: a loop over `torch.randperm(n)` or
  `np.random.permutation(n)`, or over (or indexing) an array shuffled in place before it,
  does not visit continuations.
- A whole pass in a function: `hidden = run_epoch(hidden)`, where the function runs a window
  loop over the state it is given (cut per window, with a backward) and returns it, carries
  the state from the end of one pass into the next.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tbptt_lint.analysis.api import check_source
from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings

HEADER = """\
import random

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader
"""


def findings(source: str) -> list[tuple[str, int]]:
    found = check_source(textwrap.dedent(source), "example.py", Settings())
    return [(f.code, f.line) for f in found]


def tbp011_lines(source: str) -> list[int]:
    return [line for code, line in findings(source) if code == "TBP011"]


def expected_lines(source: str) -> list[int]:
    return [
        number
        for number, line in enumerate(source.splitlines(), start=1)
        if re.search(r"# expect: TBP011\b", line)
    ]


# ------------------------------------------------------ state handed back through a local
HANDED_BACK_FOUND = {
    "a module keeping its cut state, never reset between epochs": HEADER
    + """
class Streaming(nn.Module):
    def __init__(self):
        super().__init__()
        self.core = nn.GRU(4, 8, batch_first=True)
        self.state = torch.zeros(1, 2, 8)

    def forward(self, x):
        seq, last = self.core(x, self.state)
        self.state = last.detach()
        return seq


def fit(series, passes):
    net = Streaming()
    optimizer = torch.optim.Adam(net.parameters())
    for _ in range(passes):  # expect: TBP011
        for start in range(0, series.size(1), 6):
            out = net(series[:, start:start + 6])
            loss = out.pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
""",
    "an LSTM pair kept on a trainer, across a shuffled loader": HEADER
    + """
class Trainer:
    def __init__(self, dataset):
        self.lstm = nn.LSTM(4, 8, batch_first=True)
        self.carry = None
        self.batches = DataLoader(dataset, batch_size=4, shuffle=True, drop_last=True)

    def run(self, optimizer):
        for x, y in self.batches:  # expect: TBP011
            out, pair = self.lstm(x, self.carry)
            self.carry = (pair[0].detach(), pair[1].detach())
            loss = (out[:, -1] - y).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
""",
    "another object's attribute, at module level, across a random sampler": HEADER
    + """
from torch.utils.data import RandomSampler

model = nn.Module()
model.rnn = nn.GRU(4, 8)
model.memory = None
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
feed = DataLoader(dataset, batch_size=2, sampler=RandomSampler(dataset), drop_last=True)
for chunk in feed:  # expect: TBP011
    out, fresh_memory = model.rnn(chunk, model.memory)
    model.memory = fresh_memory.detach()
    optimizer.zero_grad()
    out.sum().backward()
    optimizer.step()
""",
}

HANDED_BACK_SILENT = {
    "the module's state reset at the start of every pass": HEADER
    + """
class Streaming(nn.Module):
    def __init__(self):
        super().__init__()
        self.core = nn.GRU(4, 8, batch_first=True)
        self.state = torch.zeros(1, 2, 8)

    def reset(self):
        self.state = torch.zeros(1, 2, 8)

    def forward(self, x):
        seq, last = self.core(x, self.state)
        self.state = last.detach()
        return seq


def fit(series, passes):
    net = Streaming()
    optimizer = torch.optim.Adam(net.parameters())
    for _ in range(passes):
        net.reset()
        for start in range(0, series.size(1), 6):
            out = net(series[:, start:start + 6])
            loss = out.pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
""",
    "the trainer's state reset for every shuffled batch": HEADER
    + """
class Trainer:
    def __init__(self, dataset):
        self.lstm = nn.LSTM(4, 8, batch_first=True)
        self.carry = None
        self.batches = DataLoader(dataset, batch_size=4, shuffle=True, drop_last=True)

    def run(self, optimizer):
        for x, y in self.batches:
            self.carry = None
            out, pair = self.lstm(x, self.carry)
            self.carry = (pair[0].detach(), pair[1].detach())
            loss = (out[:, -1] - y).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
""",
    "the new state stored on another attribute than the one read": HEADER
    + """
class Trainer:
    def __init__(self, dataset):
        self.lstm = nn.LSTM(4, 8, batch_first=True)
        self.start = None
        self.last = None
        self.batches = DataLoader(dataset, batch_size=4, shuffle=True, drop_last=True)

    def run(self, optimizer):
        for x, y in self.batches:
            out, pair = self.lstm(x, self.start)
            self.last = (pair[0].detach(), pair[1].detach())
            loss = (out[:, -1] - y).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
""",
    "an ordered loader: consecutive batches continue each other": HEADER
    + """
model = nn.Module()
model.rnn = nn.GRU(4, 8)
model.memory = None
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
feed = DataLoader(dataset, batch_size=2, shuffle=False, drop_last=True)
for chunk in feed:
    out, fresh_memory = model.rnn(chunk, model.memory)
    model.memory = fresh_memory.detach()
    optimizer.zero_grad()
    out.sum().backward()
    optimizer.step()
""",
}


@pytest.mark.parametrize("name", sorted(HANDED_BACK_FOUND))
def test_state_handed_back_through_a_local_is_found(name: str) -> None:
    source = HANDED_BACK_FOUND[name]
    assert tbp011_lines(source) == expected_lines(source)


@pytest.mark.parametrize("name", sorted(HANDED_BACK_SILENT))
def test_state_handed_back_through_a_local_silent(name: str) -> None:
    assert findings(HANDED_BACK_SILENT[name]) == []


def test_module_that_cuts_its_state_on_the_way_out_is_no_tbp001() -> None:
    source = HANDED_BACK_FOUND["a module keeping its cut state, never reset between epochs"]
    assert [code for code, _ in findings(source)] == ["TBP011"]


def test_module_in_another_file_keeps_its_state(tmp_path: Path) -> None:
    (tmp_path / "nets.py").write_text(
        textwrap.dedent(
            """\
            import torch.nn as nn


            class Recurrent(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.cell = nn.RNN(3, 5, batch_first=True)
                    self.h = None

                def forward(self, x):
                    y, h = self.cell(x, self.h)
                    self.h = h.detach()
                    return y
            """
        )
    )
    (tmp_path / "run.py").write_text(
        textwrap.dedent(
            """\
            import torch

            from nets import Recurrent


            def main(stream, optimizer, epochs):
                net = Recurrent()
                for epoch in range(epochs):
                    for i in range(0, stream.size(1), 5):
                        loss = net(stream[:, i:i + 5]).sum()
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
            """
        )
    )
    result = lint_paths([tmp_path], Settings(project_root=tmp_path), jobs=1)
    assert [(Path(d.path).name, d.code, d.line) for d in result.diagnostics] == [
        ("run.py", "TBP011", 8)
    ]


# ------------------------------------------------------- evaluation state into training
EVALUATION_FOUND = {
    "a detector's state left by its validation pass": HEADER
    + """
class Detector:
    def __init__(self):
        self.net = nn.LSTM(3, 6, batch_first=True)
        self.state = None

    def forget(self):
        self.state = None

    def train_passes(self, training, checking, optimizer, epochs):
        for _ in range(epochs):
            for x, y in training:  # expect: TBP011
                out, state = self.net(x, self.state)
                self.state = tuple(s.detach() for s in state)
                optimizer.zero_grad()
                (out[:, -1] - y).pow(2).mean().backward()
                optimizer.step()
            self.forget()
            for x, y in checking:
                out, state = self.net(x, self.state)
                self.state = tuple(s.detach() for s in state)
                (out[:, -1] - y).pow(2).mean().item()
""",
    "a local state, the check pass under no_grad, in a while loop": HEADER
    + """
def loop(gru, train_chunks, held_out, optimizer, rounds):
    h = None
    done = 0
    while done < rounds:
        for chunk in train_chunks:  # expect: TBP011
            out, h = gru(chunk, h)
            h = h.detach()
            optimizer.zero_grad()
            out.mean().backward()
            optimizer.step()
        h = None
        with torch.no_grad():
            for chunk in held_out:
                out, h = gru(chunk, h)
        done += 1
""",
}

EVALUATION_SILENT = {
    "the state reset before every training pass": HEADER
    + """
class Detector:
    def __init__(self):
        self.net = nn.LSTM(3, 6, batch_first=True)
        self.state = None

    def forget(self):
        self.state = None

    def train_passes(self, training, checking, optimizer, epochs):
        for _ in range(epochs):
            self.forget()
            for x, y in training:
                out, state = self.net(x, self.state)
                self.state = tuple(s.detach() for s in state)
                optimizer.zero_grad()
                (out[:, -1] - y).pow(2).mean().backward()
                optimizer.step()
            self.forget()
            for x, y in checking:
                out, state = self.net(x, self.state)
                self.state = tuple(s.detach() for s in state)
                (out[:, -1] - y).pow(2).mean().item()
""",
    "the state reset after the check pass": HEADER
    + """
def loop(gru, train_chunks, held_out, optimizer, rounds):
    h = None
    for _ in range(rounds):
        for chunk in train_chunks:
            out, h = gru(chunk, h)
            h = h.detach()
            optimizer.zero_grad()
            out.mean().backward()
            optimizer.step()
        h = None
        with torch.no_grad():
            for chunk in held_out:
                out, h = gru(chunk, h)
        h = None
""",
    "a burn-in before training, continuing the same stream": HEADER
    + """
def loop(gru, warm_chunks, train_chunks, optimizer):
    h = None
    with torch.no_grad():
        for chunk in warm_chunks:
            out, h = gru(chunk, h)
    for chunk in train_chunks:
        out, h = gru(chunk, h)
        h = h.detach()
        optimizer.zero_grad()
        out.mean().backward()
        optimizer.step()
""",
    "the check pass keeps a state of its own": HEADER
    + """
def loop(gru, train_chunks, held_out, optimizer, rounds):
    for _ in range(rounds):
        h = None
        for chunk in train_chunks:
            out, h = gru(chunk, h)
            h = h.detach()
            optimizer.zero_grad()
            out.mean().backward()
            optimizer.step()
        check_h = None
        with torch.no_grad():
            for chunk in held_out:
                out, check_h = gru(chunk, check_h)
""",
}


@pytest.mark.parametrize("name", sorted(EVALUATION_FOUND))
def test_evaluation_state_into_training_is_found(name: str) -> None:
    source = EVALUATION_FOUND[name]
    assert tbp011_lines(source) == expected_lines(source)


@pytest.mark.parametrize("name", sorted(EVALUATION_SILENT))
def test_evaluation_state_into_training_silent(name: str) -> None:
    assert tbp011_lines(EVALUATION_SILENT[name]) == []


# -------------------------------------------------------------------- random order
RANDOM_ORDER_FOUND = {
    "indices drawn by torch.randperm, through a name": HEADER
    + """
def fit(rnn, batches, optimizer, epochs):
    for epoch in range(epochs):
        state = None
        visit = torch.randperm(len(batches))
        for k in visit:  # expect: TBP011
            out, state = rnn(batches[k], state)
            state = state.detach()
            optimizer.zero_grad()
            out.sum().backward()
            optimizer.step()
""",
    "np.random.permutation, enumerated": HEADER
    + """
def fit(rnn, batches, optimizer):
    state = None
    for step, k in enumerate(np.random.permutation(len(batches))):  # expect: TBP011
        out, state = rnn(batches[k], state)
        state = state.detach()
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
""",
    "an array of batches shuffled in place, indexed by the loop": HEADER
    + """
def fit(rnn, blocks, optimizer, epochs):
    carry = None
    for epoch in range(epochs):
        carry = None
        np.random.shuffle(blocks)
        for b in range(blocks.shape[0]):  # expect: TBP011
            x = torch.as_tensor(blocks[b, :, :])
            out, carry = rnn(x, carry)
            carry = carry.detach()
            optimizer.zero_grad()
            out.sum().backward()
            optimizer.step()
""",
    "a list shuffled in place, iterated": HEADER
    + """
def fit(rnn, pieces, optimizer):
    carry = None
    random.shuffle(pieces)
    for piece in pieces:  # expect: TBP011
        out, carry = rnn(piece, carry)
        carry = carry.detach()
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
""",
}

RANDOM_ORDER_SILENT = {
    "a fresh state for every randomly drawn batch": HEADER
    + """
def fit(rnn, batches, optimizer, epochs):
    for epoch in range(epochs):
        for k in torch.randperm(len(batches)).tolist():
            state = None
            out, state = rnn(batches[k], state)
            optimizer.zero_grad()
            out.sum().backward()
            optimizer.step()
""",
    "the permutation only picks what to log": HEADER
    + """
def fit(rnn, batches, optimizer):
    state = None
    shown = np.random.permutation(len(batches))[:3]
    for k in range(len(batches)):
        out, state = rnn(batches[k], state)
        state = state.detach()
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
    print(shown)
""",
    "a list shuffled in place, but a reset per item": HEADER
    + """
def fit(rnn, pieces, optimizer):
    random.shuffle(pieces)
    for piece in pieces:
        carry = None
        for t in range(0, piece.size(1), 4):
            out, carry = rnn(piece[:, t:t + 4], carry)
            carry = carry.detach()
            optimizer.zero_grad()
            out.sum().backward()
            optimizer.step()
""",
    "shuffled after the loop, for the next run": HEADER
    + """
def fit(rnn, pieces, optimizer):
    carry = None
    for piece in pieces:
        out, carry = rnn(piece, carry)
        carry = carry.detach()
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
    random.shuffle(pieces)
""",
}


@pytest.mark.parametrize("name", sorted(RANDOM_ORDER_FOUND))
def test_random_order_is_found(name: str) -> None:
    source = RANDOM_ORDER_FOUND[name]
    assert tbp011_lines(source) == expected_lines(source)


@pytest.mark.parametrize("name", sorted(RANDOM_ORDER_SILENT))
def test_random_order_silent(name: str) -> None:
    assert tbp011_lines(RANDOM_ORDER_SILENT[name]) == []


# ------------------------------------------------------------ a whole pass in a function
PASS_FOUND = {
    "a top-level pass function, results unpacked, in a while loop": HEADER
    + """
def one_pass(state):
    series = torch.randn(2, 40, 1)
    for t in range(0, 40, 8):
        opt.zero_grad()
        if state is not None:
            state.detach_()
        out, state = net(series[:, t:t + 8], state)
        out.pow(2).mean().backward()
        opt.step()
    return out.mean().item(), state


net = nn.RNN(1, 4, batch_first=True)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
state = None
n = 0
while n < 4:  # expect: TBP011
    score, state = one_pass(state)
    n += 1
""",
    "a nested pass function, keyword argument, in a for loop": HEADER
    + """
def main(net, opt, epochs):
    def epoch_over(series, h=None):
        for t in range(0, series.size(1), 8):
            h = h.detach() if h is not None else None
            out, h = net(series[:, t:t + 8], h)
            opt.zero_grad()
            out.sum().backward()
            opt.step()
        return h

    series = torch.randn(2, 40, 1)
    h = None
    for epoch in range(epochs):  # expect: TBP011
        h = epoch_over(series, h=h)
""",
}

PASS_SILENT = {
    "the state reset before every pass": HEADER
    + """
def main(net, opt, epochs):
    def epoch_over(series, h=None):
        for t in range(0, series.size(1), 8):
            h = h.detach() if h is not None else None
            out, h = net(series[:, t:t + 8], h)
            opt.zero_grad()
            out.sum().backward()
            opt.step()
        return h

    series = torch.randn(2, 40, 1)
    for epoch in range(epochs):
        h = None
        h = epoch_over(series, h=h)
""",
    "each pass given the next chunk of a stream": HEADER
    + """
def main(net, opt, chunks):
    def windows_of(chunk, h):
        for t in range(0, chunk.size(1), 8):
            h = h.detach() if h is not None else None
            out, h = net(chunk[:, t:t + 8], h)
            opt.zero_grad()
            out.sum().backward()
            opt.step()
        return h

    h = None
    for chunk in chunks:
        h = windows_of(chunk, h)
""",
    "a function that only steps, without windows of its own": HEADER
    + """
def main(net, opt, series, epochs):
    def step(h):
        out, h = net(series, h)
        return h

    h = None
    for epoch in range(epochs):
        h = step(h)
        opt.zero_grad()
        h.sum().backward()
        opt.step()
        h = h.detach()
""",
}


@pytest.mark.parametrize("name", sorted(PASS_FOUND))
def test_state_carried_between_passes_of_a_function_is_found(name: str) -> None:
    source = PASS_FOUND[name]
    assert tbp011_lines(source) == expected_lines(source)


@pytest.mark.parametrize("name", sorted(PASS_SILENT))
def test_state_carried_between_passes_of_a_function_silent(name: str) -> None:
    assert tbp011_lines(PASS_SILENT[name]) == []
