"""Issue 12, round 2: losses summed as tensors (TBP006) where the backward is not in the loop
that sums them, and the discarded cuts (TBP003) and retain_graph band-aids (TBP005) that
public code hides in helpers. Each class has FOUND variants and the SILENT twins a nearby
correct idiom could be confused with."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tbptt_lint import testing
from tbptt_lint.analysis.api import check_source
from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings

HEADER = """\
import torch
import torch.nn as nn
"""


def codes(source: str, select: tuple[str, ...] = ("TBP",)) -> list[tuple[str, int]]:
    settings = Settings(select=select, extend_select=("TBP007",))
    findings = check_source(textwrap.dedent(source), "example.py", settings)
    return sorted((f.code, f.line) for f in findings)


def expected(source: str) -> list[tuple[str, int]]:
    """`# expect: TBP006` comments mark the lines a snippet must be reported on."""
    return sorted(testing.expected_lines(source))


FOUND: dict[str, str] = {}
SILENT: dict[str, str] = {}

# --------------------------------------------------------------------------------------------
# Class A: the loss is handed to a function or method that runs its backward, and the caller
# then sums the loss tensor.

FOUND["A: a method of a model built in the function back-propagates its argument"] = (
    HEADER
    + """
class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 8)
        self.v = nn.Linear(8, 1)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.v(out)

    def update(self, objective, opt):
        opt.zero_grad()
        objective.backward()
        opt.step()


def fit(batches):
    critic = Critic()
    opt = torch.optim.SGD(critic.parameters(), lr=0.1)
    running = torch.zeros(())
    for x, target in batches:
        value_loss = (critic(x) - target).pow(2).mean()
        critic.update(value_loss, opt)
        running += value_loss  # expect: TBP006
    return running
"""
)
FOUND["A: a function of the file back-propagates a keyword argument, summed into a list"] = (
    HEADER
    + """
def apply_gradients(optimizer, objective=None):
    optimizer.zero_grad()
    objective.backward()
    optimizer.step()


def train(model, optimizer, epochs, loader):
    history = []
    for _ in range(epochs):
        for x, y in loader:
            err = nn.functional.l1_loss(model(x), y)
            apply_gradients(optimizer, objective=err)
            history.append(err)  # expect: TBP006
    return torch.stack(history).mean()
"""
)
FOUND["A: self's own step method, with the loss scaled before the sum"] = (
    HEADER
    + """
class Agent:
    def __init__(self, net, optim):
        self.net = net
        self.optim = optim

    def learn_from(self, objective):
        self.optim.zero_grad()
        (objective * 1.0).backward()
        self.optim.step()

    def train(self, replay, iterations, batch_size):
        mean_loss = 0.0
        for _ in range(iterations):
            states, returns = replay.sample()
            objective = (self.net(states) - returns).pow(2).mean()
            self.learn_from(objective)
            mean_loss = mean_loss + objective / iterations  # expect: TBP006
        return mean_loss
"""
)
FOUND["A: an object of unknown class, whose method every class of the run agrees on"] = (
    HEADER
    + """
class PolicyNet(nn.Module):
    def optimise(self, objective, optim, clip=None):
        optim.zero_grad()
        objective.backward()
        optim.step()


class ValueNet(nn.Module):
    def optimise(self, objective, optim, clip=None):
        objective.backward()
        optim.step()
        optim.zero_grad()


class Learner:
    def run(self, sampler, steps):
        total = torch.tensor(0.0)
        for _ in range(steps):
            batch = sampler.sample()
            objective = self.compute_objective(batch)
            self.body.optimise(objective, self.optim)
            total += objective  # expect: TBP006
        return total / steps
"""
)

SILENT["A: the helper's loss summed as a number, a detached tensor or a float"] = (
    HEADER
    + """
class Critic(nn.Module):
    def update(self, objective, opt):
        opt.zero_grad()
        objective.backward()
        opt.step()


def fit(batches):
    critic = Critic()
    opt = torch.optim.SGD(critic.parameters(), lr=0.1)
    running = torch.zeros(())
    as_numbers = 0.0
    history = []
    for x, target in batches:
        value_loss = (critic(x) - target).pow(2).mean()
        critic.update(value_loss, opt)
        running += value_loss.detach()
        as_numbers += value_loss.item()
        history.append(float(value_loss))
    return running, as_numbers, history
"""
)
SILENT["A: the helper back-propagates another argument than the one summed"] = (
    HEADER
    + """
def step_on(objective, weights, optimizer):
    optimizer.zero_grad()
    objective.backward()
    optimizer.step()


def train(model, loader, optimizer):
    seen = torch.zeros(())
    for x, y, weights in loader:
        objective = (model(x) - y).pow(2).mean()
        step_on(objective, weights, optimizer)
        seen += weights
    return seen
"""
)
SILENT["A: the helper makes its own loss from what it is given"] = (
    HEADER
    + """
def train_on(batch, model, optimizer):
    batch = batch.float()
    loss = model(batch).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def train(model, loader, optimizer):
    total = torch.zeros(())
    for batch in loader:
        train_on(batch, model, optimizer)
        total += batch
    return total
"""
)
SILENT["A: classes of the run disagree on what the method back-propagates"] = (
    HEADER
    + """
class PolicyNet(nn.Module):
    def optimise(self, objective, optim):
        optim.zero_grad()
        objective.backward()
        optim.step()


class Tracker:
    def optimise(self, objective, optim):
        self.best = min(self.best, objective)


class Learner:
    def run(self, sampler, steps):
        total = torch.tensor(0.0)
        for _ in range(steps):
            objective = self.compute_objective(sampler.sample())
            self.body.optimise(objective, self.optim)
            total += objective
        return total / steps
"""
)
SILENT["A: the total is made anew in the loop that calls the helper"] = (
    HEADER
    + """
def backprop(objective):
    objective.backward()


def train(model, loader, optimizer):
    for xs, ys in loader:
        window_total = 0.0
        for x, y in zip(xs, ys):
            part = (model(x) - y).pow(2).mean()
            window_total = window_total + part
        backprop(window_total)
        optimizer.step()
        optimizer.zero_grad()
"""
)

# --------------------------------------------------------------------------------------------
# Class B: a function or method runs the backward and hands the loss back, graph and all; the
# caller sums what it is handed.

FOUND["B: a trainer method returns the normalised loss it back-propagated"] = (
    HEADER
    + """
class Trainer:
    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer

    def epoch(self, batches):
        epoch_total = 0
        for src, tgt in batches:
            step_loss = self.one_batch(src, tgt)
            epoch_total += step_loss  # expect: TBP006
        return epoch_total

    def one_batch(self, src, tgt):
        raw = self.model.loss(src, tgt)
        per_token = raw / tgt.numel()
        per_token.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        return per_token
"""
)
FOUND["B: a module whose forward back-propagates and returns the loss"] = (
    HEADER
    + """
class ReplayLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(4, 4)

    def forward(self, x):
        h = torch.zeros(x.size(1), 4)
        for t in range(x.size(0)):
            h = self.cell(x[t], h)
        out = h.pow(2).mean()
        out.backward()
        return out


lm = ReplayLM()
opt = torch.optim.Adam(lm.parameters())
for step in range(100):
    accumulated = []
    for micro in range(4):
        part = lm(torch.randn(6, 2, 4))
        accumulated.append(part)  # expect: TBP006
    opt.step()
    opt.zero_grad()
    print(sum(accumulated).item())
"""
)
FOUND["B: a function returns the sum of the losses it back-propagated"] = (
    HEADER
    + """
def replay_backprop(model, segments, weight):
    summed = 0.0
    for segment in segments:
        weighted = model(segment) * weight
        weighted.backward()
        summed += weighted  # expect: TBP006
    return summed


def train(model, optimizer, loader):
    log_total = torch.zeros(())
    for segments in loader:
        result = replay_backprop(model, segments, 0.5)
        optimizer.step()
        optimizer.zero_grad()
        log_total = log_total + result  # expect: TBP006
    return log_total
"""
)

SILENT["B: the helper hands back a number, or the loss cut"] = (
    HEADER
    + """
class Trainer:
    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer

    def epoch(self, batches):
        total_a = 0
        total_b = 0
        for src, tgt in batches:
            total_a += self.as_number(src, tgt)
            total_b += self.cut_first(src, tgt)
        return total_a, total_b

    def as_number(self, src, tgt):
        loss = self.model.loss(src, tgt)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def cut_first(self, src, tgt):
        loss = self.model.loss(src, tgt)
        loss.backward()
        self.optimizer.step()
        loss = loss.detach()
        return loss
"""
)
SILENT["B: the caller sums the handed-back loss as a number"] = (
    HEADER
    + """
class ReplayLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(4, 4)

    def forward(self, x):
        h = torch.zeros(x.size(1), 4)
        for t in range(x.size(0)):
            h = self.cell(x[t], h)
        out = h.pow(2).mean()
        out.backward()
        return out


lm = ReplayLM()
opt = torch.optim.Adam(lm.parameters())
for step in range(100):
    total = 0.0
    for micro in range(4):
        part = lm(torch.randn(6, 2, 4))
        total += part.item()
    opt.step()
    opt.zero_grad()
"""
)
SILENT["B: a helper that only computes the loss, summed and back-propagated by the caller"] = (
    HEADER
    + """
def window_loss(model, x, y):
    return (model(x) - y).pow(2).mean()


def train(model, optimizer, loader):
    for xs, ys in loader:
        total = 0.0
        for x, y in zip(xs, ys):
            total = total + window_loss(model, x, y)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
"""
)
SILENT["B: an object of unknown class called like a module"] = (
    HEADER
    + """
class ReplayLM(nn.Module):
    def forward(self, x):
        out = self.net(x).mean()
        out.backward()
        return out


def train(model, loader):
    total = 0.0
    for x in loader:
        part = model(x)
        total += part
    return total
"""
)

# --------------------------------------------------------------------------------------------
# Class C: the same name is back-propagated in more than one loop (two branches of an epoch),
# and summed in each.

FOUND["C: two branches, each with its loop, back-propagate and sum the same name"] = (
    HEADER
    + """
def run_epoch(model, optimizer, loader, pretrain):
    kept = []
    if pretrain:
        for x, y in loader:
            optimizer.zero_grad()
            err = model.reconstruction(x)
            err.backward()
            optimizer.step()
            kept.append(err)  # expect: TBP006
    else:
        for x, y in loader:
            optimizer.zero_grad()
            err = model.supervised(x, y)
            err.backward()
            optimizer.step()
            kept.append(err)  # expect: TBP006
    return sum(kept)
"""
)
FOUND["C: a validation-free second pass over the data sums with the graph too"] = (
    HEADER
    + """
cell = nn.GRUCell(4, 8)
opt = torch.optim.SGD(cell.parameters(), lr=0.1)
first = second = 0.0
for x in stream_a:
    h = cell(x)
    err = h.pow(2).mean()
    opt.zero_grad()
    err.backward()
    opt.step()
    first = first + err.item()
for x in stream_b:
    h = cell(x)
    err = h.abs().mean()
    opt.zero_grad()
    err.backward()
    opt.step()
    second = second + err  # expect: TBP006
"""
)
SILENT["C: two loops, each summing a number"] = (
    HEADER
    + """
def run_epoch(model, optimizer, loader, pretrain):
    kept = []
    if pretrain:
        for x, y in loader:
            optimizer.zero_grad()
            err = model.reconstruction(x)
            err.backward()
            optimizer.step()
            kept.append(err.item())
    else:
        for x, y in loader:
            optimizer.zero_grad()
            err = model.supervised(x, y)
            err.backward()
            optimizer.step()
            kept.append(err.detach())
    return sum(kept)
"""
)

# --------------------------------------------------------------------------------------------
# Class D: after the loop the back-propagated name is rebound to the total (`loss = total /
# n`), which made the total look like the very value that is back-propagated.

FOUND["D: the mean of the total is bound to the loss's own name after the loop"] = (
    HEADER
    + """
def train(model, optimizer, loader, n):
    total = torch.tensor(0.0)
    for x, y in loader:
        loss = (model(x) - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss  # expect: TBP006
    loss = total / n
    return loss.item()
"""
)
FOUND["D: the same in nested loops of a method, through a helper"] = (
    HEADER
    + """
class Algo:
    def step_net(self, objective):
        self.optim.zero_grad()
        objective.backward()
        self.optim.step()

    def train(self):
        total = torch.tensor(0.0)
        for _ in range(self.iterations):
            batch = self.sample()
            for _ in range(self.repeats):
                objective = self.objective(batch)
                self.step_net(objective)
                total += objective  # expect: TBP006
        objective = total / (self.iterations * self.repeats)
        return objective.item()
"""
)
SILENT["D: the total is back-propagated once after the loop (full-batch accumulation)"] = (
    HEADER
    + """
def train(model, optimizer, loader, n):
    total = torch.tensor(0.0)
    for x, y in loader:
        loss = (model(x) - y).pow(2).mean()
        total += loss
    loss = total / n
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
"""
)
SILENT["D: a per-window total back-propagated in the loop, and its mean logged after"] = (
    HEADER
    + """
cell = nn.GRUCell(4, 8)
opt = torch.optim.SGD(cell.parameters(), lr=0.1)
h = torch.zeros(2, 8)
for xs in windows:
    h = h.detach()
    loss = 0.0
    for x in xs:
        h = cell(x, h)
        step_loss = h.pow(2).mean()
        loss = loss + step_loss
    opt.zero_grad()
    loss.backward()
    opt.step()
loss = loss / len(windows)
print(loss.item())
"""
)

# --------------------------------------------------------------------------------------------
# Class E (TBP007, off by default): a function that makes its state anew, runs one loop over
# the steps and back-propagates once after it is one sequence per call, not full BPTT over a
# stream. What the function cannot tell (the state comes in, or an outer loop carries it)
# is still reported.

FOUND["E: a loop over a whole stream at the top level of a script"] = (
    HEADER
    + """
cell = nn.GRUCell(4, 8)
h = torch.zeros(2, 8)
total = 0.0
for t in range(stream.size(0)):
    h = cell(stream[t], h)
    total = total + h.pow(2).mean()
total.backward()  # expect: TBP007
"""
)
FOUND["E: a function whose state is reset once before epochs of steps"] = (
    HEADER
    + """
def fit(cell, stream, epochs):
    h = torch.zeros(2, 8)
    total = 0.0
    for _ in range(epochs):
        for t in range(stream.size(0)):
            h = cell(stream[t], h)
            total = total + h.pow(2).mean()
    total.backward()  # expect: TBP007
"""
)
SILENT["E: a per-batch helper that runs one sequence and back-propagates it"] = (
    HEADER
    + """
def fit_sequence(cell, head, x, y, optimizer):
    h = torch.zeros(x.size(1), 8)
    loss = 0.0
    for t in range(x.size(0)):
        h = cell(x[t], h)
        loss = loss + (head(h) - y[t]).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""
)

# --------------------------------------------------------------------------------------------
# Class F (TBP003): a helper rebinds its own parameter to the parameter's `detach()` and
# nothing reads it afterwards, so the caller's state is never cut.

FOUND["F: a wrapper's method cuts its parameter and returns a flag"] = (
    HEADER
    + """
class SegmentRunner(nn.Module):
    def forward(self, segments):
        state = None
        outs = []
        for i, segment in enumerate(segments):
            out, state = self.cell(segment, state)
            outs.append(out)
            self.truncate(state, i)
        return torch.stack(outs)

    def truncate(self, state, i):
        if i % self.k2:
            return False
        state = state.detach()  # expect: TBP003
        return True
"""
)
FOUND["F: a plain function that cuts its argument and returns nothing"] = (
    HEADER
    + """
def cut_history(hidden):
    hidden = hidden.detach()  # expect: TBP003


def train(gru, loader, optimizer):
    h = None
    for x, y in loader:
        if h is not None:
            cut_history(h)
        out, h = gru(x, h)
        loss = (out - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward(retain_graph=True)  # expect: TBP005
        optimizer.step()
"""
)
SILENT["F: the cut parameter is returned, stored or used"] = (
    HEADER
    + """
def cut_and_return(hidden):
    hidden = hidden.detach()
    return hidden


class Runner:
    def keep(self, state):
        state = state.detach()
        self.state = state

    def step(self, x, state):
        state = state.detach()
        return self.cell(x, state)

    def in_a_loop(self, states):
        for state in states:
            state = state.detach()
"""
)
SILENT["F: a parameter cut in place, or a local cut that is read"] = (
    HEADER
    + """
def cut_in_place(hidden):
    hidden.detach_()


def cut_in_place_rebound(hidden):
    hidden = hidden.detach_()


def train(gru, loader, optimizer):
    h = None
    for x, y in loader:
        if h is not None:
            cut_in_place(h)
        out, h = gru(x, h)
        loss = (out - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        cut_in_place_rebound(h)


def cut_each(model, x):
    h = model.init(x)
    h = h.detach()
    return model(x, h)


def closure_reads(hidden):
    hidden = hidden.detach()
    return lambda: hidden
"""
)


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    source = FOUND[name]
    assert expected(source)
    assert codes(source) == expected(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert codes(SILENT[name]) == []


# ------------------------------------------------------------------- across files of a run
def write(root: Path, name: str, text: str) -> None:
    (root / name).write_text(textwrap.dedent(text), encoding="utf-8")


def findings(root: Path) -> list[tuple[str, str, int]]:
    result = lint_paths([root], Settings(project_root=root), jobs=1)
    assert not result.internal_errors, result.internal_errors
    return sorted((Path(d.path).name, d.code, d.line) for d in result.diagnostics)


NETS = """\
import torch
import torch.nn as nn


class QNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 8)
        self.q = nn.Linear(8, 2)

    def forward(self, obs):
        out, _ = self.lstm(obs)
        return self.q(out)

    def train_step(self, loss, optim, clip=None):
        optim.zero_grad()
        loss.backward()
        optim.step()
        return loss
"""

CALLER = """\
import torch
from nets import QNet


def train(batches):
    net = QNet()
    optim = torch.optim.SGD(net.parameters(), lr=0.01)
    total = torch.tensor(0.0)
    for obs, target in batches:
        loss = (net(obs) - target).pow(2).mean()
        net.train_step(loss, optim)
        total += {added}
    return total
"""


def test_a_method_of_another_file_back_propagates_the_summed_loss(tmp_path: Path) -> None:
    write(tmp_path, "nets.py", NETS)
    write(tmp_path, "bad.py", CALLER.format(added="loss"))
    write(tmp_path, "good.py", CALLER.format(added="loss.item()"))
    assert findings(tmp_path) == [("bad.py", "TBP006", 12)]


def test_an_object_of_unknown_class_with_a_method_of_another_file(tmp_path: Path) -> None:
    write(tmp_path, "nets.py", NETS)
    loop = """\
        from nets import QNet


        class Algorithm:
            def train(self, batches):
                total = 0.0
                for obs, target in batches:
                    loss = self.calc_loss(obs, target)
                    self.net.train_step(loss, self.optim)
                    total += {added}
                return total
        """
    write(tmp_path, "bad.py", loop.format(added="loss"))
    write(tmp_path, "good.py", loop.format(added="float(loss)"))
    assert findings(tmp_path) == [("bad.py", "TBP006", 10)]


def test_a_cut_helper_of_a_file_without_a_backward(tmp_path: Path) -> None:
    write(
        tmp_path,
        "wrapper.py",
        """\
        import torch.nn as nn


        class Wrapper(nn.Module):
            def manage(self, memory, step):
                if step == 0:
                    return True
                memory = memory.detach()
                return False
        """,
    )
    write(
        tmp_path,
        "fine.py",
        """\
        def cut(memory):
            memory = memory.detach()
            return memory
        """,
    )
    assert findings(tmp_path) == [("wrapper.py", "TBP003", 8)]


def test_a_function_of_another_file_hands_back_what_it_back_propagated(tmp_path: Path) -> None:
    write(
        tmp_path,
        "steps.py",
        """\
        def fit_batch(model, optimizer, x, y):
            loss = (model(x) - y).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss
        """,
    )
    loop = """\
        from steps import fit_batch


        def train(model, optimizer, loader):
            epoch_loss = 0
            for x, y in loader:
                epoch_loss += {added}
            return epoch_loss
        """
    write(tmp_path, "bad.py", loop.format(added="fit_batch(model, optimizer, x, y)"))
    write(tmp_path, "good.py", loop.format(added="fit_batch(model, optimizer, x, y).item()"))
    assert findings(tmp_path) == [("bad.py", "TBP006", 7)]
