"""State kept on attributes (issue 12, classes 9 and 14): `self.hidden`, `net.hidden`,
`self.decoder.state`, a streaming model's `self.state`; carried across loop iterations, across
calls of a method (a trainer's `train_step`, Lightning's `training_step`), across files, and
into evaluation. Each FOUND case has SILENT twins that cut or reset correctly."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tbptt_lint import testing
from tbptt_lint.analysis.api import check_source
from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings

ALL = Settings(select=("TBP",))


def codes(source: str) -> list[tuple[str, int]]:
    findings = check_source(textwrap.dedent(source), "example.py", ALL)
    return sorted((f.code, f.line) for f in findings)


def expected(source: str) -> list[tuple[str, int]]:
    """`# expect: TBP001` comments mark the lines a snippet must be reported on."""
    return sorted(testing.expected_lines(textwrap.dedent(source)))


HEADER = """\
import torch
import torch.nn as nn
"""
LIGHTNING = """\
import torch
import torch.nn as nn
import torch.nn.functional as F
import pytorch_lightning as pl
"""

# ---------------------------------------------------------------- across loop iterations
FOUND_IN_LOOPS = {
    "a trainer method's loop keeps self.hidden": HEADER
    + """
class Trainer:
    def __init__(self):
        self.lstm = nn.LSTM(8, 16)
        self.hidden = None

    def train(self, batches):
        for x, y in batches:
            out, self.hidden = self.lstm(x, self.hidden)  # expect: TBP001
            loss = (out - y).pow(2).mean()
            loss.backward()
""",
    "module level net.hidden": HEADER
    + """
net = Net()
net.rnn = nn.GRU(8, 16)
for x in batches:
    out, net.hidden = net.rnn(x, net.hidden)  # expect: TBP001
    out.sum().backward()
""",
    "a nested path self.decoder.state": HEADER
    + """
class Seq2Seq:
    def fit(self, batches):
        for x in batches:
            out, self.decoder.state = self.decoder.rnn(x, self.decoder.state)  # expect: TBP001
            self.optimizer.zero_grad()
            out.sum().backward()
            self.optimizer.step()
""",
    "a cell state on the object inside a time loop": HEADER
    + """
class Agent:
    def learn(self, episodes):
        for episode in episodes:
            loss = 0
            for obs in episode:
                self.h = self.cell(obs, self.h)  # expect: TBP001
                loss = loss + self.h.sum()
            loss.backward()
""",
    "a reset method that only runs per epoch": HEADER
    + """
class Trainer:
    def reset_hidden(self):
        self.hidden = None

    def train(self, epochs):
        for epoch in range(epochs):
            self.reset_hidden()
            for x in self.batches:
                out, self.hidden = self.lstm(x, self.hidden)  # expect: TBP001
                out.sum().backward()
""",
    "a helper that does not cut the object's state": HEADER
    + """
def refresh(model):
    model.hidden = model.hidden

for x in batches:
    refresh(model)
    out, model.hidden = model.rnn(x, model.hidden)  # expect: TBP001
    out.sum().backward()
""",
    "a module's output bound alone": HEADER
    + """
class Stateful(nn.Module):
    def forward(self, x):
        out, self.hidden = self.lstm(x, self.hidden)
        return out

model = Stateful()
for x in data:
    out = model(x)  # expect: TBP001
    out.sum().backward()
""",
    "a GRU stepped on its own state as input": HEADER
    + """
class Evolving(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(16, 16)

    def forward(self, x):
        _, self.weight = self.gru(self.weight, self.weight)
        return x @ self.weight.squeeze(0)

model = Evolving()
for x in data:
    out = model(x)  # expect: TBP001
    out.sum().backward()
""",
    "module methods known from torch leave the state alone": HEADER
    + """
for x in batches:
    net.train()
    net.zero_grad()
    out, net.hidden = net.rnn(x, net.hidden)  # expect: TBP001
    out.sum().backward()
""",
}

SILENT_IN_LOOPS = {
    "the trainer's loop cuts self.hidden with a method of its class": HEADER
    + """
class Trainer:
    def repackage(self, h):
        return tuple(v.detach() for v in h)

    def train(self, batches):
        for x in batches:
            if self.hidden is not None:
                self.hidden = self.repackage(self.hidden)
            out, self.hidden = self.lstm(x, self.hidden)
            out.sum().backward()
""",
    "an inline generator cut of self.hidden": HEADER
    + """
class Trainer:
    def train(self, batches):
        for x in batches:
            self.hidden = tuple(h.detach() for h in self.hidden)
            out, self.hidden = self.lstm(x, self.hidden)
            out.sum().backward()
""",
    "re-initialised every batch": HEADER
    + """
class Trainer:
    def train(self, batches):
        for x in batches:
            self.hidden = self.model.init_hidden(x.size(1))
            out, self.hidden = self.model(x, self.hidden)
            out.sum().backward()
""",
    "reset by a method of the class every batch": HEADER
    + """
class Trainer:
    def reset_hidden(self):
        self.hidden = None

    def train(self, batches):
        for x in batches:
            self.reset_hidden()
            out, self.hidden = self.lstm(x, self.hidden)
            out.sum().backward()
""",
    "cut by a method of the model's class every batch": HEADER
    + """
class Net(nn.Module):
    def detach_hidden(self):
        self.hidden = tuple(h.detach() for h in self.hidden)

net = Net()
for x in batches:
    net.detach_hidden()
    out, net.hidden = net.rnn(x, net.hidden)
    out.sum().backward()
""",
    "cut by a function of the file that takes the model": HEADER
    + """
def detach_states(model):
    model.hidden = model.hidden.detach()

for x in batches:
    detach_states(model)
    out, model.hidden = model.rnn(x, model.hidden)
    out.sum().backward()
""",
    "a nested path cut by the owner's own method": HEADER
    + """
class Decoder(nn.Module):
    def detach_state(self):
        self.state = self.state.detach()

class Seq2Seq:
    def __init__(self):
        self.decoder = Decoder()

    def fit(self, batches):
        for x in batches:
            self.decoder.detach_state()
            out, self.decoder.state = self.decoder.rnn(x, self.decoder.state)
            out.sum().backward()
""",
    "a method the analysis cannot follow may reset the state": HEADER
    + """
from mylib import BaseTrainer

class Trainer(BaseTrainer):
    def train(self, batches):
        for x in batches:
            self.start_window()
            out, self.hidden = self.lstm(x, self.hidden)
            out.sum().backward()
""",
    "a function of another library may reset the model's state": HEADER
    + """
from mylib import reset_states

for x in batches:
    reset_states(net)
    out, net.hidden = net.rnn(x, net.hidden)
    out.sum().backward()
""",
    "counters, optimizers and running averages on self are not state": HEADER
    + """
class Trainer:
    def train(self, batches):
        for x, y in batches:
            self.step += 1
            self.optimizer.zero_grad()
            out = self.model(x)
            loss = (out - y).pow(2).mean()
            loss.backward()
            self.optimizer.step()
            self.running = 0.9 * self.running + 0.1 * loss.item()
""",
    "a running statistic updated from a number": HEADER
    + """
class Trainer:
    def smooth(self, average, value):
        return 0.9 * average + 0.1 * value

    def train(self, loader):
        for x, y in loader:
            loss = self.model(x).sum()
            loss.backward()
            self.average = self.smooth(self.average, loss.item())
""",
    "a module's output bound alone, cut in forward": HEADER
    + """
class Stateful(nn.Module):
    def forward(self, x):
        if self.hidden is not None:
            self.hidden = self.hidden.detach()
        out, self.hidden = self.lstm(x, self.hidden)
        return out

model = Stateful()
for x in data:
    out = model(x)
    out.sum().backward()
""",
    "evaluation under no_grad keeps the state on the object": HEADER
    + """
class Trainer:
    def evaluate(self, batches):
        with torch.no_grad():
            for x in batches:
                out, self.hidden = self.lstm(x, self.hidden)
                self.total += out.sum().item()
""",
}


@pytest.mark.parametrize("name", sorted(FOUND_IN_LOOPS))
def test_attribute_state_in_loops_is_found(name: str) -> None:
    source = FOUND_IN_LOOPS[name]
    assert codes(source) == expected(source)


@pytest.mark.parametrize("name", sorted(SILENT_IN_LOOPS))
def test_attribute_state_in_loops_stays_silent(name: str) -> None:
    assert codes(SILENT_IN_LOOPS[name]) == []


# ---------------------------------------------------------------- across calls of a method
FOUND_BETWEEN_CALLS = {
    "a trainer's train_step keeps self.h": HEADER
    + """
class Trainer:
    def __init__(self, model):
        self.cell = nn.GRUCell(8, 16)
        self.h = None

    def train_step(self, x, y):
        self.h = self.cell(x, self.h)  # expect: TBP001
        loss = (self.h - y).pow(2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()
""",
    "Lightning training_step with manual_backward": LIGHTNING
    + """
class Model(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.lstm = nn.LSTM(8, 16)
        self.hidden = None

    def training_step(self, batch, batch_idx):
        x, y = batch
        opt = self.optimizers()
        out, self.hidden = self.lstm(x, self.hidden)  # expect: TBP001
        loss = F.mse_loss(out, y)
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()
""",
    "Lightning training_step returning the loss (automatic optimization)": LIGHTNING
    + """
class Model(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 16)
        self.hidden = None

    def training_step(self, batch, batch_idx):
        x, y = batch
        out, self.hidden = self.gru(x, self.hidden)  # expect: TBP001
        loss = F.mse_loss(out, y)
        self.log("train_loss", loss)
        return {"loss": loss}
""",
    "Lightning training_step through a forward that keeps self.hidden": LIGHTNING
    + """
class Model(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 16)
        self.hidden = None

    def forward(self, x):
        out, self.hidden = self.lstm(x, self.hidden)
        return out

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.mse_loss(self(x), y)  # expect: TBP001
        return loss
""",
    "a base class of the same file adds no hook": LIGHTNING
    + """
class Base(pl.LightningModule):
    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())

class Model(Base):
    def training_step(self, batch, batch_idx):
        x, y = batch
        out, self.hidden = self.lstm(x, self.hidden)  # expect: TBP001
        return F.mse_loss(out, y)
""",
    "a reset in an epoch hook does not cut between batches": LIGHTNING
    + """
class Model(pl.LightningModule):
    def on_train_epoch_start(self):
        self.hidden = None

    def training_step(self, batch, batch_idx):
        x, y = batch
        out, self.hidden = self.lstm(x, self.hidden)  # expect: TBP001
        return F.mse_loss(out, y)
""",
    "loss.backward inside a plain training_step of an nn.Module": HEADER
    + """
class Model(nn.Module):
    def training_step(self, x, y, optimizer):
        out, self.state = self.rnn(x, self.state)  # expect: TBP001
        loss = (out - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
}

SILENT_BETWEEN_CALLS = {
    "train_step cuts the state it keeps": HEADER
    + """
class Trainer:
    def train_step(self, x, y):
        if self.h is not None:
            self.h = self.h.detach()
        self.h = self.cell(x, self.h)
        loss = (self.h - y).pow(2).mean()
        loss.backward()
""",
    "train_step re-initialises the state each call": HEADER
    + """
class Trainer:
    def train_step(self, x, y):
        self.hidden = self.init_hidden(x.size(1))
        out, self.hidden = self.lstm(x, self.hidden)
        (out - y).pow(2).mean().backward()
""",
    "train_step repackages with a tuple of detached tensors": HEADER
    + """
class Trainer:
    def train_step(self, x, y):
        out, self.hidden = self.lstm(x, self.hidden)
        (out - y).pow(2).mean().backward()
        self.hidden = tuple(h.detach() for h in self.hidden)
""",
    "Lightning resets the state in a per-batch hook": LIGHTNING
    + """
class Model(pl.LightningModule):
    def on_train_batch_start(self, batch, batch_idx):
        self.hidden = None

    def training_step(self, batch, batch_idx):
        x, y = batch
        out, self.hidden = self.lstm(x, self.hidden)
        return F.mse_loss(out, y)
""",
    "Lightning cuts the state after each batch": LIGHTNING
    + """
class Model(pl.LightningModule):
    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.hidden = tuple(h.detach() for h in self.hidden)

    def training_step(self, batch, batch_idx):
        x, y = batch
        out, self.hidden = self.lstm(x, self.hidden)
        return F.mse_loss(out, y)
""",
    "Lightning's old TBPTT API hands the state back as hiddens": LIGHTNING
    + """
class Model(pl.LightningModule):
    def training_step(self, batch, batch_idx, hiddens):
        x, y = batch
        out, hiddens = self.lstm(x, hiddens)
        return {"loss": F.mse_loss(out, y), "hiddens": hiddens}
""",
    "Lightning forward cuts the state it keeps": LIGHTNING
    + """
class Model(pl.LightningModule):
    def forward(self, x):
        if self.hidden is not None:
            self.hidden = self.hidden.detach()
        out, self.hidden = self.gru(x, self.hidden)
        return out

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.mse_loss(self(x), y)
""",
    "Lightning manual optimization without a backward call is not ours to judge": LIGHTNING
    + """
class Model(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        x, y = batch
        out, self.hidden = self.lstm(x, self.hidden)
        return F.mse_loss(out, y)
""",
    "a caller's loop cuts the state before each call": HEADER
    + """
class Trainer:
    def fit(self, loader):
        for x, y in loader:
            self.hidden = repackage_hidden(self.hidden)
            self.train_step(x, y)

    def train_step(self, x, y):
        out, self.hidden = self.lstm(x, self.hidden)
        (out - y).pow(2).mean().backward()
""",
    "a write from outside the class may reset it": HEADER
    + """
class Trainer:
    def train_step(self, x, y):
        out, self.hidden = self.lstm(x, self.hidden)
        (out - y).pow(2).mean().backward()

trainer = Trainer()
for x, y in loader:
    trainer.hidden = None
    trainer.train_step(x, y)
""",
    "an unknown hook of a Lightning module may reset it": LIGHTNING
    + """
class Model(pl.LightningModule):
    def reset_states(self):
        self.hidden = None

    def training_step(self, batch, batch_idx):
        x, y = batch
        out, self.hidden = self.lstm(x, self.hidden)
        return F.mse_loss(out, y)
""",
    "a running statistic kept between calls": HEADER
    + """
class Trainer:
    def train_step(self, x, y):
        loss = (self.model(x) - y).pow(2).mean()
        loss.backward()
        self.average = self.ema(self.average, float(loss))
        self.count = self.bump(self.count, 1)
""",
    "a base class of another module may reset it in a hook": LIGHTNING
    + """
from project.base import BaseLit

class Model(BaseLit):
    def training_step(self, batch, batch_idx):
        x, y = batch
        out, self.hidden = self.lstm(x, self.hidden)
        self.manual_backward(F.mse_loss(out, y))
""",
    "a method that only evaluates": HEADER
    + """
class Trainer:
    @torch.no_grad()
    def eval_step(self, x):
        out, self.hidden = self.lstm(x, self.hidden)
        return out
""",
    "a step whose recurrent call runs under no_grad": HEADER
    + """
class Agent:
    def act(self, obs):
        with torch.no_grad():
            logits, self.h = self.policy(obs, self.h)
        loss = self.critic(obs).sum()
        loss.backward()
""",
}


@pytest.mark.parametrize("name", sorted(FOUND_BETWEEN_CALLS))
def test_state_kept_between_calls_is_found(name: str) -> None:
    source = FOUND_BETWEEN_CALLS[name]
    assert codes(source) == expected(source)


@pytest.mark.parametrize("name", sorted(SILENT_BETWEEN_CALLS))
def test_state_kept_between_calls_stays_silent(name: str) -> None:
    assert codes(SILENT_BETWEEN_CALLS[name]) == []


def test_the_message_names_the_method_that_keeps_the_state() -> None:
    source = textwrap.dedent(FOUND_BETWEEN_CALLS["a trainer's train_step keeps self.h"])
    (finding,) = check_source(source, "example.py", ALL)
    assert "from one call of `train_step` to the next" in finding.message
    assert "if self.h is not None" in finding.message


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def lint(root: Path) -> list[tuple[str, str, int]]:
    result = lint_paths([root], Settings(project_root=root, select=("TBP",)), jobs=1)
    return sorted((Path(d.path).name, d.code, d.line) for d in result.diagnostics)


# ---------------------------------------------------------------- a model in another file
STREAMER = """\
import torch.nn as nn

class Streamer(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(8, 16)
        self.state = None

    def forward(self, x):
        out, self.state = self.rnn(x, self.state)
        return out

    def detach_state(self):
        self.state = self.state.detach()

    def reset_state(self):
        self.state = None

    def describe(self):
        return "streamer"

def build_streamer():
    return Streamer()
"""
CUTTING_STREAMER = """\
import torch.nn as nn

class CuttingStreamer(nn.Module):
    def forward(self, x):
        if self.state is not None:
            self.state = self.state.detach()
        out, self.state = self.rnn(x, self.state)
        return out
"""

FOUND_ACROSS_FILES = {
    "a module-level loop": """\
        from models.streamer import Streamer

        model = Streamer()
        for x in loader:
            loss = model(x).sum()  # expect: TBP001
            loss.backward()
        """,
    "the output bound alone": """\
        from models.streamer import Streamer

        model = Streamer()
        for x in loader:
            out = model(x)  # expect: TBP001
            out.sum().backward()
        """,
    "a model of this file holding a layer of the run that keeps state": """\
        import torch.nn as nn
        from models import Streamer

        class Wrapper(nn.Module):
            def __init__(self):
                super().__init__()
                self.recurrent = Streamer()
                self.head = nn.Linear(16, 1)

            def forward(self, x):
                h = self.recurrent(x)
                return self.head(h)

        model = Wrapper()
        for epoch in range(10):
            cost = 0
            for x in loader:
                y = model(x)
                cost = cost + y.sum()
            cost.backward(retain_graph=True)  # expect: TBP005
        """,
    "a trainer holding the model on self": """\
        from models.streamer import Streamer

        class Trainer:
            def __init__(self):
                self.model = Streamer()

            def fit(self, loader):
                for x in loader:
                    loss = self.model(x).sum()  # expect: TBP001
                    loss.backward()
        """,
    "a trainer's step with no loop of its own": """\
        from models.streamer import Streamer

        class Trainer:
            def __init__(self):
                self.model = Streamer()

            def train_step(self, x):
                loss = self.model(x).sum()  # expect: TBP001
                loss.backward()
        """,
    "a model built by a factory of the run": """\
        from models.streamer import build_streamer

        model = build_streamer()
        for x in loader:
            loss = model(x).sum()  # expect: TBP001
            loss.backward()
        """,
    "a model built by a factory of this file": """\
        from models.streamer import Streamer

        def build():
            return Streamer()

        def train(loader):
            model = build()
            for x in loader:
                loss = model(x).sum()  # expect: TBP001
                loss.backward()
        """,
    "a reset only once before the loop": """\
        from models.streamer import Streamer

        model = Streamer()
        model.reset_state()
        for x in loader:
            model.describe()
            loss = model(x).sum()  # expect: TBP001
            loss.backward()
        """,
    "retain_graph covers it": """\
        from models.streamer import Streamer

        model = Streamer()
        for x in loader:
            loss = model(x).sum()
            loss.backward(retain_graph=True)  # expect: TBP005
        """,
}

SILENT_ACROSS_FILES = {
    "detached by its own method every window": """\
        from models.streamer import Streamer

        model = Streamer()
        for x in loader:
            loss = model(x).sum()
            loss.backward()
            model.detach_state()
        """,
    "reset by its own method every window": """\
        from models.streamer import Streamer

        class Trainer:
            def __init__(self):
                self.model = Streamer()

            def fit(self, loader):
                for x in loader:
                    self.model.reset_state()
                    loss = self.model(x).sum()
                    loss.backward()
        """,
    "a trainer step that resets first": """\
        from models.streamer import build_streamer

        class Trainer:
            def __init__(self):
                self.model = build_streamer()

            def train_step(self, x):
                self.model.reset_state()
                loss = self.model(x).sum()
                loss.backward()
        """,
    "the output bound alone, cut inside forward": """\
        from models.cutting import CuttingStreamer

        model = CuttingStreamer()
        for x in loader:
            out = model(x)
            out.sum().backward()
        """,
    "a layer of the run detached after each epoch": """\
        import torch.nn as nn
        from models import Streamer

        class Wrapper(nn.Module):
            def __init__(self):
                super().__init__()
                self.recurrent = Streamer()

            def forward(self, x):
                return self.recurrent(x)

        model = Wrapper()
        for epoch in range(10):
            cost = 0
            for x in loader:
                cost = cost + model(x).sum()
            cost.backward()
            model.recurrent.state = model.recurrent.state.detach()
        """,
    "the model cuts its state inside forward": """\
        from models.cutting import CuttingStreamer

        model = CuttingStreamer()
        for x in loader:
            loss = model(x).sum()
            loss.backward()
        """,
    "state set anew on the object every window": """\
        from models.streamer import Streamer

        model = Streamer()
        for x in loader:
            model.state = None
            loss = model(x).sum()
            loss.backward()
        """,
    "evaluation under no_grad": """\
        import torch
        from models.streamer import Streamer

        model = Streamer()
        with torch.no_grad():
            for x in loader:
                total = model(x).sum().item()
        """,
}


def _run_across_files(tmp_path: Path, loop: str) -> list[tuple[str, str, int]]:
    # The package re-exports the class its module defines.
    write(tmp_path, "models/__init__.py", "from .streamer import Streamer\n")
    write(tmp_path, "models/streamer.py", STREAMER)
    write(tmp_path, "models/cutting.py", CUTTING_STREAMER)
    write(tmp_path, "train.py", loop)
    return [found for found in lint(tmp_path) if found[0] == "train.py"]


@pytest.mark.parametrize("name", sorted(FOUND_ACROSS_FILES))
def test_state_on_a_model_of_another_file_is_found(tmp_path: Path, name: str) -> None:
    loop = FOUND_ACROSS_FILES[name]
    assert _run_across_files(tmp_path, loop) == [
        ("train.py", code, line) for code, line in expected(loop)
    ]


@pytest.mark.parametrize("name", sorted(SILENT_ACROSS_FILES))
def test_state_on_a_model_of_another_file_stays_silent(tmp_path: Path, name: str) -> None:
    assert _run_across_files(tmp_path, SILENT_ACROSS_FILES[name]) == []


# ---------------------------------------------------------------- retain_graph over such a state
FOUND_RETAINED = {
    "a trainer loop": HEADER
    + """
class Trainer:
    def train(self, batches):
        for x in batches:
            out, self.hidden = self.lstm(x, self.hidden)
            out.sum().backward(retain_graph=True)  # expect: TBP005
""",
    "a trainer step between calls": HEADER
    + """
class Trainer:
    def train_step(self, x, y):
        self.h = self.cell(x, self.h)
        loss = (self.h - y).pow(2).mean()
        loss.backward(retain_graph=True)  # expect: TBP005
""",
    "Lightning manual_backward": LIGHTNING
    + """
class Model(pl.LightningModule):
    def training_step(self, batch, batch_idx):
        x, y = batch
        out, self.hidden = self.lstm(x, self.hidden)
        self.manual_backward(F.mse_loss(out, y), retain_graph=True)  # expect: TBP005
""",
}

SILENT_RETAINED = {
    "cut after the backward": HEADER
    + """
class Trainer:
    def train(self, batches):
        for x in batches:
            out, self.hidden = self.lstm(x, self.hidden)
            out.sum().backward(retain_graph=True)
            self.hidden = tuple(h.detach() for h in self.hidden)
""",
    "cut between calls by the step itself": HEADER
    + """
class Trainer:
    def train_step(self, x, y):
        self.h = self.cell(x, self.h)
        loss = (self.h - y).pow(2).mean()
        loss.backward(retain_graph=True)
        self.h = self.h.detach()
""",
}


@pytest.mark.parametrize("name", sorted(FOUND_RETAINED))
def test_retain_graph_over_attribute_state_is_found(name: str) -> None:
    source = FOUND_RETAINED[name]
    assert codes(source) == expected(source)


@pytest.mark.parametrize("name", sorted(SILENT_RETAINED))
def test_retain_graph_over_cut_attribute_state_stays_silent(name: str) -> None:
    assert codes(SILENT_RETAINED[name]) == []


# ---------------------------------------------------------------- unrelated sequences (TBP011)
FOUND_CROSSING = {
    "a trainer's shuffled loader built in __init__": HEADER
    + """
from torch.utils.data import DataLoader

class Trainer:
    def __init__(self, dataset):
        self.loader = DataLoader(dataset, batch_size=8, shuffle=True, drop_last=True)

    def train(self):
        for x, y in self.loader:  # expect: TBP011
            if self.hidden is not None:
                self.hidden = self.hidden.detach()
            out, self.hidden = self.gru(x, self.hidden)
            (out - y).pow(2).mean().backward()
""",
    "Lightning keeps the state while train_dataloader shuffles": LIGHTNING
    + """
from torch.utils.data import DataLoader

class Model(pl.LightningModule):
    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=8, shuffle=True, drop_last=True)

    def training_step(self, batch, batch_idx):
        x, y = batch
        if self.hidden is not None:
            self.hidden = tuple(h.detach() for h in self.hidden)
        out, self.hidden = self.lstm(x, self.hidden)  # expect: TBP011
        return F.mse_loss(out, y)
""",
    "evaluation in the same loop starts from the training state": HEADER
    + """
class Streamer(nn.Module):
    def forward(self, x):
        out, self.state = self.rnn(x, self.state)
        return out

    def detach_state(self):
        self.state = self.state.detach()

model = Streamer()
for epoch in range(10):  # expect: TBP011
    for x in train_batches:
        model.detach_state()
        model(x).sum().backward()
    with torch.no_grad():
        for x in val_batches:  # expect: TBP011
            total = model(x).sum().item()
""",
    "an evaluation method of the trainer": HEADER
    + """
class Streamer(nn.Module):
    def forward(self, x):
        out, self.state = self.rnn(x, self.state)
        return out

    def detach_state(self):
        self.state = self.state.detach()

class Trainer:
    def __init__(self):
        self.model = Streamer()

    def train(self, batches):
        for x in batches:
            self.model.detach_state()
            self.model(x).sum().backward()

    @torch.no_grad()
    def evaluate(self, batches):
        total = 0.0
        for x in batches:  # expect: TBP011
            total += self.model(x).sum().item()
        return total
""",
    "an evaluation loop over the trainer's own attribute state": HEADER
    + """
class Trainer:
    def train(self, batches):
        for x in batches:
            if self.hidden is not None:
                self.hidden = self.hidden.detach()
            out, self.hidden = self.gru(x, self.hidden)
            out.sum().backward()
        with torch.no_grad():
            for x in self.val_batches:  # expect: TBP011
                out, self.hidden = self.gru(x, self.hidden)
""",
}

SILENT_CROSSING = {
    "a trainer's ordered loader": HEADER
    + """
from torch.utils.data import DataLoader

class Trainer:
    def __init__(self, dataset):
        self.loader = DataLoader(dataset, batch_size=8, shuffle=False, drop_last=True)

    def train(self):
        for x, y in self.loader:
            if self.hidden is not None:
                self.hidden = self.hidden.detach()
            out, self.hidden = self.gru(x, self.hidden)
            (out - y).pow(2).mean().backward()
""",
    "a trainer resets the state for every shuffled batch": HEADER
    + """
from torch.utils.data import DataLoader

class Trainer:
    def __init__(self, dataset):
        self.loader = DataLoader(dataset, batch_size=8, shuffle=True)

    def reset(self):
        self.hidden = None

    def train(self):
        for x, y in self.loader:
            self.reset()
            out, self.hidden = self.gru(x, self.hidden)
            (out - y).pow(2).mean().backward()
""",
    "Lightning resets the state per batch under a shuffled loader": LIGHTNING
    + """
from torch.utils.data import DataLoader

class Model(pl.LightningModule):
    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=8, shuffle=True)

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.hidden = None
        out, self.hidden = self.lstm(x, self.hidden)
        return F.mse_loss(out, y)
""",
    "Lightning's ordered loader": LIGHTNING
    + """
from torch.utils.data import DataLoader

class Model(pl.LightningModule):
    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=8, drop_last=True)

    def training_step(self, batch, batch_idx):
        x, y = batch
        if self.hidden is not None:
            self.hidden = tuple(h.detach() for h in self.hidden)
        out, self.hidden = self.lstm(x, self.hidden)
        return F.mse_loss(out, y)
""",
    "evaluation resets the state first": HEADER
    + """
class Streamer(nn.Module):
    def forward(self, x):
        out, self.state = self.rnn(x, self.state)
        return out

    def detach_state(self):
        self.state = self.state.detach()

    def reset_state(self):
        self.state = None

model = Streamer()
for epoch in range(10):
    model.reset_state()
    for x in train_batches:
        model.detach_state()
        model(x).sum().backward()
    model.reset_state()
    with torch.no_grad():
        for x in val_batches:
            total = model(x).sum().item()
""",
    "an evaluation method that sets the state anew": HEADER
    + """
class Streamer(nn.Module):
    def forward(self, x):
        out, self.state = self.rnn(x, self.state)
        return out

    def detach_state(self):
        self.state = self.state.detach()

class Trainer:
    def __init__(self):
        self.model = Streamer()

    def train(self, batches):
        for x in batches:
            self.model.detach_state()
            self.model(x).sum().backward()

    @torch.no_grad()
    def evaluate(self, batches):
        self.model.state = None
        for x in batches:
            self.model(x)
""",
    "an evaluation that resets in a way the analysis cannot follow": HEADER
    + """
from mylib import reset_all

class Trainer:
    def train(self, batches):
        for x in batches:
            if self.hidden is not None:
                self.hidden = self.hidden.detach()
            out, self.hidden = self.gru(x, self.hidden)
            out.sum().backward()
        reset_all(self)
        with torch.no_grad():
            for x in self.val_batches:
                out, self.hidden = self.gru(x, self.hidden)
""",
    "a model whose state is only ever evaluated": HEADER
    + """
class Streamer(nn.Module):
    def forward(self, x):
        out, self.state = self.rnn(x, self.state)
        return out

model = Streamer()
with torch.no_grad():
    for x in val_batches:
        model(x)
""",
}


@pytest.mark.parametrize("name", sorted(FOUND_CROSSING))
def test_attribute_state_crossing_sequences_is_found(name: str) -> None:
    source = FOUND_CROSSING[name]
    assert codes(source) == expected(source)


@pytest.mark.parametrize("name", sorted(SILENT_CROSSING))
def test_attribute_state_that_starts_anew_stays_silent(name: str) -> None:
    assert codes(SILENT_CROSSING[name]) == []


# ---------------------------------------------------------------- forward throws the state away
FOUND_THROWN_AWAY = {
    "forward re-initialises self.hidden that the loop repackages": HEADER
    + """
class Model(nn.Module):
    def init_hidden(self, batch_size):
        return torch.zeros(1, batch_size, 16)

    def forward(self, x):
        self.hidden = self.init_hidden(x.size(1))
        out, self.hidden = self.gru(x, self.hidden)
        return out

model = Model()
for x in batches:
    model.hidden = repackage_hidden(model.hidden)  # expect: TBP015
    model(x).sum().backward()
""",
    "forward calls self.init_state every call while the loop detaches": HEADER
    + """
class Model(nn.Module):
    def init_state(self, batch_size):
        self.state = torch.zeros(1, batch_size, 16)

    def forward(self, x):
        self.init_state(x.size(1))
        out, self.state = self.gru(x, self.state)
        return out

    def detach_state(self):
        self.state = self.state.detach()

model = Model()
for x in batches:
    model(x).sum().backward()
    model.detach_state()  # expect: TBP015
""",
    "a trainer method carries the model's state": HEADER
    + """
class Model(nn.Module):
    def forward(self, x):
        self.hidden = torch.zeros(1, x.size(1), 16)
        out, self.hidden = self.gru(x, self.hidden)
        return out

class Trainer:
    def __init__(self):
        self.model = Model()

    def train(self, batches):
        for x in batches:
            self.model.hidden = self.model.hidden.detach()  # expect: TBP015
            self.model(x).sum().backward()
""",
}

SILENT_THROWN_AWAY = {
    "forward initialises only when there is no state": HEADER
    + """
def repackage_hidden(h):
    return h.detach()

class Model(nn.Module):
    def forward(self, x):
        if self.hidden is None:
            self.hidden = self.init_hidden(x.size(1))
        out, self.hidden = self.gru(x, self.hidden)
        return out

model = Model()
for x in batches:
    model.hidden = repackage_hidden(model.hidden)
    model(x).sum().backward()
""",
    "forward initialises when the batch size changes": HEADER
    + """
class Model(nn.Module):
    def forward(self, x):
        if self.hidden is None or self.hidden.size(1) != x.size(1):
            self.init_state(x.size(1))
        out, self.hidden = self.gru(x, self.hidden)
        return out

    def init_state(self, batch_size):
        self.hidden = torch.zeros(1, batch_size, 16)

model = Model()
for x in batches:
    model.hidden = model.hidden.detach()
    model(x).sum().backward()
""",
    "a stateless forward and a loop that does not carry": HEADER
    + """
class Model(nn.Module):
    def forward(self, x):
        self.hidden = self.init_hidden(x.size(1))
        out, self.hidden = self.gru(x, self.hidden)
        return out

model = Model()
for x in batches:
    model(x).sum().backward()
""",
}


@pytest.mark.parametrize("name", sorted(FOUND_THROWN_AWAY))
def test_state_thrown_away_by_forward_is_found(name: str) -> None:
    source = FOUND_THROWN_AWAY[name]
    assert codes(source) == expected(source)


@pytest.mark.parametrize("name", sorted(SILENT_THROWN_AWAY))
def test_state_kept_by_forward_stays_silent(name: str) -> None:
    assert codes(SILENT_THROWN_AWAY[name]) == []


# ---------------------------------------------------------------- notebooks
def _notebook(*cells: str) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": "code", "metadata": {}, "source": cell.splitlines(keepends=True)}
                for cell in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


NOTEBOOK_MODEL = """\
class Streamer(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 16)
        self.state = None

    def forward(self, x):
        out, self.state = self.gru(x, self.state)
        return out

    def detach_state(self):
        self.state = self.state.detach()
"""
NOTEBOOK_TRAINER = """\
class Trainer:
    def __init__(self):
        self.model = Streamer()

    def train_step(self, x):
        {cut}loss = self.model(x).pow(2).mean()
        loss.backward()
"""


@pytest.mark.parametrize(
    ("cut", "found"),
    [("", [("TBP001", 3, 6)]), ("self.model.detach_state()\n        ", [])],
    ids=["kept between calls", "cut every call"],
)
def test_a_notebook_whose_trainer_keeps_the_model_state(
    tmp_path: Path, cut: str, found: list[tuple[str, int, int]]
) -> None:
    cells = (
        "%matplotlib inline\nimport torch\nimport torch.nn as nn\n",
        NOTEBOOK_MODEL,
        NOTEBOOK_TRAINER.format(cut=cut),
        "trainer = Trainer()\nfor x in stream:\n    trainer.train_step(x)\n",
    )
    write(tmp_path, "train.ipynb", _notebook(*cells))
    result = lint_paths([tmp_path], Settings(project_root=tmp_path, select=("TBP",)), jobs=1)
    assert [(d.code, d.cell, d.line) for d in result.diagnostics] == found
