"""Issue 12, round 4: findings in files that run no backward themselves, so that the prefilter
never let them be parsed.

A. A loop sums a loss (TBP006) that a method of another file back-propagates, called on an
   object whose class the file never imports (`self.net.train_step(loss, self.optim)`), or
   a function of another module called through the module (`steps.optimise(loss, opt)`).
B. A model's step loop re-initialises the state it keeps on `self` on every pass (TBP015),
   in a model file that holds no backward: the class alone shows it.

Each class has FOUND variants (several files linted together, as a user runs the tool) and
the SILENT twins a nearby correct idiom could be confused with."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tbptt_lint import testing
from tbptt_lint.analysis.api import summarize_source
from tbptt_lint.analysis.index import ProjectIndex
from tbptt_lint.analysis.step_resets import may_reset_per_step
from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def findings(root: Path) -> list[tuple[str, str, int]]:
    result = lint_paths([root], Settings(project_root=root), jobs=1)
    assert not result.internal_errors, result.internal_errors
    return sorted((Path(d.path).name, d.code, d.line) for d in result.diagnostics)


def expected(files: dict[str, str]) -> list[tuple[str, str, int]]:
    """`# expect: TBP006` comments mark the lines a file must be reported on."""
    found = []
    for name, text in files.items():
        for code, number in testing.expected_lines(textwrap.dedent(text)):
            found.append((Path(name).name, code, number))
    return sorted(found)


# --------------------------------------------------------------------------------------------
# Class A: the loss is back-propagated by a helper of another file that the summing file
# reaches through an object or a module, not through a name it imports.

NET = """\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 8)
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out)

    def train_step(self, loss, optim, lr_scheduler=None, global_net=None):
        optim.zero_grad()
        loss.backward()
        optim.step()
        return loss
"""

# The algorithm builds its net through a registry, so it imports the package, not the class.
SLM_ALGORITHM = """\
import torch
from lab import net


class Algorithm:
    def init_nets(self):
        NetClass = getattr(net, self.spec["type"])
        self.net = NetClass()
        self.optim = torch.optim.Adam(self.net.parameters())

    def train(self):
        total_loss = torch.tensor(0.0)
        for _ in range(self.training_iter):
            batch = self.sample()
            for _ in range(self.training_batch_iter):
                loss = self.calc_loss(batch)
                self.net.train_step(loss, self.optim, global_net=None)
                total_loss += {added}
        return (total_loss / self.training_iter).item()
"""

FOUND: dict[str, dict[str, str]] = {}
SILENT: dict[str, dict[str, str]] = {}

FOUND["A: a method called on an attribute whose class comes from a registry"] = {
    "lab/__init__.py": "",
    "lab/net.py": NET,
    "lab/algorithm.py": SLM_ALGORITHM.replace("{added}", "loss  # expect: TBP006"),
}
FOUND["A: a subclass's loop sums what its base class's net back-propagates"] = {
    "lab/__init__.py": "",
    "lab/net.py": NET,
    "lab/sil.py": """\
        import torch
        from lab.algorithm import ActorCritic


        class SIL(ActorCritic):
            def train(self):
                total_sil_loss = torch.tensor(0.0)
                for _ in range(self.training_iter):
                    batch = self.replay_sample()
                    for _ in range(self.training_batch_iter):
                        policy_loss, val_loss = self.calc_sil_losses(batch)
                        sil_loss = policy_loss + val_loss
                        self.net.train_step(sil_loss, self.optim)
                        total_sil_loss += sil_loss  # expect: TBP006
                return total_sil_loss.item()
        """,
}
FOUND["A: the loss is handed by keyword, and summed by reassignment"] = {
    "models.py": """\
        import torch.nn as nn


        class Learner(nn.Module):
            def update(self, batch, objective=None, optimizer=None):
                optimizer.zero_grad()
                objective.backward()
                optimizer.step()
        """,
    "agent.py": """\
        class Agent:
            def learn(self, batches):
                running = 0
                for batch in batches:
                    loss = self.compute_loss(batch)
                    self.learner.update(batch, objective=loss, optimizer=self.opt)
                    running = running + loss  # expect: TBP006
                return running
        """,
}
FOUND["A: a method hands back the loss it back-propagated, kept in a list"] = {
    "trainer.py": """\
        class Trainer:
            def fit_batch(self, x, y):
                loss = (self.model(x) - y).pow(2).mean()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                return loss
        """,
    "loop.py": """\
        def run(engine, loader):
            losses = []
            for x, y in loader:
                batch_loss = engine.fit_batch(x, y)
                losses.append(batch_loss)  # expect: TBP006
            return losses
        """,
}
FOUND["A: a function of a module the file imports, called through the module"] = {
    "steps.py": """\
        def optimise(loss, optimizer):
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        """,
    "train.py": """\
        import steps


        def train(model, optimizer, loader):
            epoch_loss = 0.0
            for x, y in loader:
                loss = (model(x) - y).abs().mean()
                steps.optimise(loss, optimizer)
                epoch_loss += loss * x.size(0)  # expect: TBP006
            return epoch_loss
        """,
}

SILENT["A: the summed loss is a number"] = {
    "lab/__init__.py": "",
    "lab/net.py": NET,
    "lab/algorithm.py": SLM_ALGORITHM.replace("{added}", "loss.item()"),
}
SILENT["A: what is summed is not what the helper back-propagated"] = {
    "lab/__init__.py": "",
    "lab/net.py": NET,
    "lab/algorithm.py": SLM_ALGORITHM.replace("{added}", "batch['rewards'].sum()"),
}
SILENT["A: another class's method of that name back-propagates something else"] = {
    "lab/__init__.py": "",
    "lab/net.py": NET,
    "lab/aux.py": """\
        class AuxNet:
            def train_step(self, loss, optim, lr_scheduler=None, global_net=None):
                optim.zero_grad()
                self.aux_loss().backward()
                optim.step()
                return float(loss)
        """,
    "lab/algorithm.py": SLM_ALGORITHM.replace("{added}", "loss"),
}
SILENT["A: the object is built in __init__ from a class whose method runs no backward"] = {
    "lab/__init__.py": "",
    "lab/net.py": NET,
    "lab/recorder.py": """\
        class Recorder:
            def train_step(self, loss, optim, lr_scheduler=None, global_net=None):
                self.history.append(float(loss))
                return loss
        """,
    "lab/algorithm.py": SLM_ALGORITHM.replace("{added}", "loss")
    .replace(
        "    def init_nets(self):",
        "    def __init__(self):\n        self.net = Recorder()\n\n    def init_nets(self):",
    )
    .replace("from lab import net", "from lab import net\nfrom lab.recorder import Recorder"),
}
SILENT["A: the file defines the method itself, without a backward"] = {
    "lab/__init__.py": "",
    "lab/net.py": NET,
    "lab/algorithm.py": SLM_ALGORITHM.replace("{added}", "loss")
    + """

class Recorder:
    def train_step(self, loss, optim, lr_scheduler=None, global_net=None):
        return loss
""",
}
SILENT["A: a function of that name called through a module that does not define it"] = {
    "steps.py": """\
        def optimise(loss, optimizer):
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        """,
    "train.py": """\
        import schedules


        def train(model, optimizer, loader):
            epoch_loss = 0.0
            for x, y in loader:
                loss = (model(x) - y).abs().mean()
                schedules.optimise(loss, optimizer)
                epoch_loss += loss
            return epoch_loss
        """,
}

# --------------------------------------------------------------------------------------------
# Class B: a model file with no backward whose step loop resets the state it carries on self.

MODEL = """\
import torch
import torch.nn as nn


class CTLSTM(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.rec = nn.Linear(2 * hidden_size, 7 * hidden_size)

    def init_states(self, batch_size):
        self.h_d = torch.zeros(batch_size, self.hidden_size)
        self.c_bar = torch.zeros(batch_size, self.hidden_size)

    def recurrence(self, x_t, h_tm1, c_bar_tm1):
        return c_bar_tm1, c_bar_tm1, h_tm1

    def forward(self, events):
        batch_size = events.size(1)
        outputs = []
        {before}for t in range(events.size(0)):
            {reset}
            c, self.c_bar, o_t = self.recurrence(events[t], self.h_d, self.c_bar)
            self.h_d = o_t * torch.tanh(c)
            outputs.append(self.h_d)
        return torch.stack(outputs)
"""

# The training script that uses the model (its own backward is correct).
TRAIN = """\
import torch
from model import CTLSTM


def train(loader):
    model = CTLSTM(8)
    optimizer = torch.optim.Adam(model.parameters())
    for events in loader:
        loss = model(events).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""


def model_file(reset: str, before: str = "") -> str:
    """MODEL with `reset` as the loop's first statement and `before` ahead of the loop."""
    return MODEL.replace("{reset}", reset).replace("{before}", before)


FOUND["B: the reset method runs first on every pass of forward's step loop"] = {
    "model.py": model_file("self.init_states(batch_size)  # expect: TBP015"),
    "train.py": TRAIN,
}
FOUND["B: a model file alone, with no training script in the run"] = {
    "model.py": model_file("self.init_states(batch_size)  # expect: TBP015"),
}
FOUND["B: the reset takes no argument, and the step is picked into a local"] = {
    "rnn.py": """\
        import torch
        import torch.nn as nn


        class Stepper(nn.Module):
            def __init__(self):
                super().__init__()
                self.cell = nn.GRUCell(4, 8)

            def reset(self):
                self.h = torch.zeros(1, 8)

            def forward(self, x):
                outs = []
                for t in range(x.size(1)):
                    self.reset()  # expect: TBP015
                    x_t = x[:, t]
                    self.h = self.cell(x_t, self.h)
                    outs.append(self.h)
                return torch.stack(outs, 1)
        """,
}
FOUND["B: an LSTM cell's pair kept on self, reset inside a sampling loop"] = {
    "decoder.py": """\
        import torch
        import torch.nn as nn


        class Decoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.cell = nn.LSTMCell(4, 8)

            def begin(self, batch):
                self.h = torch.zeros(batch, 8)
                self.c = torch.zeros(batch, 8)

            def sample(self, tokens, batch):
                for step in range(tokens.size(0)):
                    self.begin(batch)  # expect: TBP015
                    self.h, self.c = self.cell(tokens[step], (self.h, self.c))
                return self.h
        """,
}

SILENT["B: the state is initialised once, before the loop"] = {
    "model.py": model_file("pass", before="self.init_states(batch_size)\n        "),
    "train.py": TRAIN,
}
SILENT["B: the reset is conditional (a new sequence starts)"] = {
    "model.py": model_file("if t % 16 == 0:\n                self.init_states(batch_size)"),
}
SILENT["B: the method called per pass sets other attributes"] = {
    "model.py": model_file("self.count_step(batch_size)")
    + """
    def count_step(self, batch_size):
        self.steps = batch_size
""",
}
SILENT["B: a state loaded per pass on purpose"] = {
    "model.py": model_file("self.load_states(saved[t])")
    + """
    def load_states(self, states):
        self.h_d, self.c_bar = states
""",
}
SILENT["B: a loop over batches, each one a sequence of its own"] = {
    "stream.py": """\
        import torch
        import torch.nn as nn


        class Streamer(nn.Module):
            def __init__(self):
                super().__init__()
                self.cell = nn.GRUCell(4, 8)

            def reset(self, batch):
                self.h = torch.zeros(batch, 8)

            def encode_all(self, batches):
                codes = []
                for x in batches:
                    self.reset(x.size(0))
                    self.h = self.cell(x, self.h)
                    codes.append(self.h)
                return codes
        """,
}


@pytest.mark.parametrize("name", sorted(FOUND))
def test_found(name: str, tmp_path: Path) -> None:
    files = FOUND[name]
    write_tree(tmp_path, files)
    assert expected(files), "a FOUND case names its lines"
    assert findings(tmp_path) == expected(files)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str, tmp_path: Path) -> None:
    write_tree(tmp_path, SILENT[name])
    assert findings(tmp_path) == []


# ------------------------------------------------------------------------- the cheap tests


def test_a_file_that_sums_nothing_records_no_calls() -> None:
    summary = summarize_source("def f(net, x):\n    return net.train_step(x)\n", "f")
    assert summary.called_methods == frozenset()


def test_a_file_that_runs_its_own_backward_records_no_calls() -> None:
    source = "def f(net, xs):\n    t = 0\n    for x in xs:\n        x.backward()\n        t += x\n"
    summary = summarize_source(source, "f")
    assert summary.may_hold_findings
    assert summary.called_methods == frozenset()


def test_a_file_is_checked_only_when_it_calls_a_loss_helper_of_the_run() -> None:
    net = summarize_source(textwrap.dedent(NET), "lab.net")
    caller = summarize_source(
        "def f(agent, xs):\n    t = 0\n    for x in xs:\n        agent.train_step(x, o)\n"
        "        t += x\n",
        "lab.algo",
    )
    other = summarize_source(
        "def f(agent, xs):\n    t = 0\n    for x in xs:\n        agent.act(x)\n        t += x\n",
        "lab.other",
    )
    index = ProjectIndex.from_summaries([net, caller, other])
    assert index.dotted_loss_helpers().methods == frozenset({"train_step"})
    assert index.needs_check(caller)
    assert not index.needs_check(other)


def test_a_module_function_counts_only_through_its_module() -> None:
    steps = summarize_source(
        "def optimise(loss, opt):\n    loss.backward()\n    opt.step()\n", "pkg.steps"
    )
    loop = (
        "{imp}\ndef f(xs, o):\n    t = 0\n    for x in xs:\n"
        "        {mod}.optimise(x, o)\n        t += x\n"
    )
    through = summarize_source(loop.format(imp="from pkg import steps", mod="steps"), "a")
    elsewhere = summarize_source(loop.format(imp="import sched", mod="sched"), "b")
    index = ProjectIndex.from_summaries([steps, through, elsewhere])
    assert index.needs_check(through)
    assert not index.needs_check(elsewhere)


@pytest.mark.parametrize(
    ("source", "admitted"),
    [
        (model_file("self.init_states(batch_size)"), True),
        # Nothing stores back what a call read from `self`.
        (
            model_file("self.init_states(batch_size)").replace("self.c_bar, o_t", "c_bar, o_t"),
            False,
        ),
        # The method called per pass is not defined in the file (a base class's).
        (model_file("self.init_states(batch_size)").replace("def init_states", "def other"), False),
        # `self.log(...)` sets nothing the loop carries.
        (model_file("self.log(t)") + "\n    def log(self, t):\n        self.last = t\n", False),
    ],
)
def test_a_model_file_is_admitted_for_a_per_step_reset(source: str, admitted: bool) -> None:
    assert may_reset_per_step(source) is admitted
