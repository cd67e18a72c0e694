"""The loop model on the idioms people really write: what must be found, what must stay silent."""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst
import pytest

from tbptt_lint import testing
from tbptt_lint.analysis.api import check_source
from tbptt_lint.analysis.context import ASSUMED_CUT, FileContext
from tbptt_lint.analysis.names import ImportMap
from tbptt_lint.analysis.summaries import summarise_module
from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings


def codes(source: str, settings: Settings | None = None) -> list[tuple[str, int]]:
    findings = check_source(textwrap.dedent(source), "example.py", settings or Settings())
    return [(f.code, f.line) for f in findings]


def expected(source: str) -> list[tuple[str, int]]:
    """`# expect: TBP001` comments mark the lines a snippet must be reported on."""
    return testing.expected_lines(source)


HEADER = """\
import torch
import torch.nn as nn
"""

FOUND = {
    "module carries self.hidden through forward": (
        HEADER
        + """
class Stateful(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 16)
        self.hidden = None

    def forward(self, x):
        out, self.hidden = self.lstm(x, self.hidden)
        return out

model = Stateful()
for i in range(0, 100, 10):
    loss = model(data[i:i + 10]).pow(2).mean()  # expect: TBP001
    loss.backward()
""",
    ),
    "cells of a ModuleList": (
        HEADER
        + """
cells = nn.ModuleList([nn.GRUCell(8, 16), nn.GRUCell(16, 16)])
for start in range(0, 100, 10):
    h1 = h1.detach()
    loss = 0
    for t in range(start, start + 10):
        h1 = cells[0](x[t], h1)
        h2 = cells[1](h1, h2)  # expect: TBP001
        loss = loss + h2.sum()
    loss.backward()
""",
    ),
    "iterating a GRU state tensor yields views": (
        HEADER
        + """
gru = nn.GRU(8, 16, num_layers=2)
hidden = None
for x in batches:
    out, hidden = gru(x, hidden)
    out.sum().backward()
    for h in hidden:
        h.detach_()  # expect: TBP014
""",
    ),
    "an element of an LSTM state indexed again is a view": (
        HEADER
        + """
lstm = nn.LSTM(8, 16, num_layers=2)
hidden = None
for x in batches:
    out, hidden = lstm(x, hidden)
    out.sum().backward()
    hidden[0][-1].detach_()  # expect: TBP014
""",
    ),
    "a .data cut before a cell loop is reported on the .data line": (
        HEADER
        + """
cell = nn.GRUCell(8, 16)
for start in range(0, 100, 10):
    h = h.data  # expect: TBP008
    loss = 0
    for t in range(start, start + 10):
        h = cell(x[t], h)
        loss = loss + h.sum()
    loss.backward()
""",
    ),
    "detach results of tuple elements thrown away": (
        HEADER
        + """
lstm = nn.LSTM(8, 16)
hidden = None
for x in batches:
    out, hidden = lstm(x, hidden)
    out.sum().backward()
    hidden[0].detach()  # expect: TBP003
    hidden[1].detach()  # expect: TBP003
""",
    ),
    "detach results thrown away in a for loop": (
        HEADER
        + """
lstm = nn.LSTM(8, 16)
hidden = None
for x in batches:
    out, hidden = lstm(x, hidden)
    out.sum().backward()
    for h in hidden:
        h.detach()  # expect: TBP003
""",
    ),
    "a random sampler bound to a name": (
        HEADER
        + """
from torch.utils.data import DataLoader, RandomSampler
sampler = RandomSampler(dataset)
loader = DataLoader(dataset, batch_size=8, sampler=sampler, drop_last=True)
hidden = None
for x, y in loader:  # expect: TBP011
    if hidden is not None:
        hidden = hidden.detach()
    out, hidden = model(x, hidden)
    (out - y).pow(2).mean().backward()
""",
    ),
    "a local training step that calls backward and returns the state": (
        HEADER
        + """
def train_step(x, hidden):
    out, hidden = model(x, hidden)
    out.sum().backward()
    return hidden

hidden = None
for x in batches:
    hidden = train_step(x, hidden)  # expect: TBP001
""",
    ),
    "a helper named like a cut that does not cut": (
        HEADER
        + """
def detach_hidden(h):
    return h

hidden = None
for x in batches:
    hidden = detach_hidden(hidden)
    out, hidden = model(x, hidden)  # expect: TBP001
    out.sum().backward()
""",
    ),
}

FOUND["forward re-initialises the state the loop carries in"] = (
    HEADER
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 16)

    def forward(self, x, hidden):
        hidden = torch.zeros(1, x.size(1), 16)
        return self.gru(x, hidden)

model = Model()
hidden = torch.zeros(1, 4, 16)
for i in range(0, 100, 10):
    hidden = hidden.detach()
    out, hidden = model(x[i:i + 10], hidden)  # expect: TBP015
    out.sum().backward()
""",
)
FOUND["a local copy of the state is cut and never written back"] = (
    HEADER
    + """
lstm = nn.LSTM(8, 16)
hidden = None
for x in batches:
    if hidden is not None:
        h, c = hidden
        h = h.detach()  # expect: TBP003
        c = c.detach()  # expect: TBP003
    out, hidden = lstm(x, hidden)
    out.sum().backward()
""",
)

FOUND["the shifted target of the last window runs past the end"] = (
    """
hidden = None
for i in range(0, data.size(0), 35):
    x, y = data[i:i + 35], data[i + 1:i + 36]  # expect: TBP009
    if hidden is not None:
        hidden = hidden.detach()
    out, hidden = model(x, hidden)
    criterion(out, y).backward()
""",
)
FOUND["the range stops one window before the end"] = (
    """
hidden = None
for i in range(0, n - bptt, bptt):  # expect: TBP009
    x, y = data[i:i + bptt], target[i:i + bptt]
    if hidden is not None:
        hidden = hidden.detach()
    out, hidden = model(x, hidden)
    criterion(out, y).backward()
""",
)

FOUND["a model passed in whose forward returns its state uncut"] = (
    HEADER
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 16)

    def forward(self, x, hidden):
        out, hidden = self.gru(x, hidden)
        return out.pow(2).mean(), hidden

def fit(model, batches, optimizer):
    hidden = None
    for x in batches:
        loss, hidden = model(x, hidden)  # expect: TBP001
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
)
FOUND["a forward that cuts the output it returns but not the state"] = (
    HEADER
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 16)

    def training_step(self, x, hiddens):
        out, hiddens = self.lstm(x, hiddens)
        return out.detach(), out.sum(), hiddens

def fit(model, batches, optimizer):
    hiddens = None
    for x in batches:
        _, loss, hiddens = model.training_step(x, hiddens)  # expect: TBP001
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
)
# Summaries start by assuming every function cuts (for recursive helpers); a forward whose
# state goes through an object of unknown class must not take that guess about itself as
# the cut.
FOUND["a forward that passes its state to an unknown object does not vouch for itself"] = (
    HEADER
    + """
class Model(nn.Module):
    def forward(self, x, hidden):
        out, hidden = core(x.detach(), hidden)
        return out.sum(), hidden

def fit(model, batches, optimizer):
    hidden = None
    for x in batches:
        loss, hidden = model(x, hidden)  # expect: TBP001
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
)
FOUND["a forward that cuts the state it returns, called at every step of a window"] = (
    HEADER
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(8, 16)

    def forward(self, x, h):
        h = self.cell(x, h)
        return h.sum(), h.detach()

def fit(model, windows, optimizer):
    h = torch.zeros(4, 16)
    for x in windows:
        loss = 0
        for t in range(x.size(0)):
            out, h = model(x[t], h)  # expect: TBP004
            loss = loss + out
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
)
FOUND["state reset per batch inside an epoch loop but never cut"] = (
    HEADER
    + """
def fit(loader, epochs):
    lstm = nn.LSTM(3, 8, batch_first=True)
    optimizer = torch.optim.Adam(lstm.parameters())
    for epoch in range(epochs):
        for batch in loader:
            hiddens = None
            for t in range(0, batch.size(1), 5):
                out, hiddens = lstm(batch[:, t:t + 5], hiddens)  # expect: TBP001
                optimizer.zero_grad()
                out.sum().backward()
                optimizer.step()
""",
)
FOUND["only h of a local copy is cut, and the copies are written back"] = (
    HEADER
    + """
lstm = nn.LSTM(8, 16)
hidden = (torch.zeros(1, 4, 16), torch.zeros(1, 4, 16))
for x in batches:
    h, c = hidden
    h = h.detach()
    hidden = (h, c)
    out, hidden = lstm(x, hidden)  # expect: TBP002
    out.sum().backward()
""",
)

SILENT = {
    "backward and cut under the same condition, in separate blocks": HEADER
    + """
cell = nn.GRUCell(8, 16)
loss = 0
for t in range(1000):
    h = cell(x[t], h)
    loss = loss + h.sum()
    if (t + 1) % 20 == 0:
        loss.backward()
        loss = 0
    if (t + 1) % 20 == 0:
        h = h.detach()
""",
    "warm-up with gradients on, cut before the window": HEADER
    + """
cell = nn.LSTMCell(8, 16)
for start in range(0, 100, 15):
    for t in range(start, start + 5):
        h, c = cell(x[t], (h, c))
    h, c = h.detach(), c.detach()
    loss = 0
    for t in range(start + 5, start + 15):
        h, c = cell(x[t], (h, c))
        loss = loss + h.sum()
    loss.backward()
""",
    "map over Tensor.detach": HEADER
    + """
lstm = nn.LSTM(8, 16)
hidden = None
for i in range(0, 100, 10):
    if hidden is not None:
        hidden = tuple(map(torch.Tensor.detach, hidden))
    out, hidden = lstm(x[i:i + 10], hidden)
    out.sum().backward()
""",
    "a module that detaches its own carried state": HEADER
    + """
class Stateful(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 16)
        self.hidden = None

    def forward(self, x):
        if self.hidden is not None:
            self.hidden = self.hidden.detach()
        out, self.hidden = self.gru(x, self.hidden)
        return out

model = Stateful()
for i in range(0, 100, 10):
    model(data[i:i + 10]).sum().backward()
""",
    "a module reset by its own method every window": HEADER
    + """
class Stateful(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 16)
        self.hidden = None

    def forward(self, x):
        out, self.hidden = self.gru(x, self.hidden)
        return out

    def reset_state(self):
        self.hidden = None

model = Stateful()
for i in range(0, 100, 10):
    model.reset_state()
    model(data[i:i + 10]).sum().backward()
""",
    "evaluation under a no_grad decorator carries state uncut": HEADER
    + """
@torch.no_grad()
def evaluate(model, batches):
    hidden = None
    total = 0.0
    for x, y in batches:
        out, hidden = model(x, hidden)
        total += (out - y).pow(2).mean().item()
    return total
""",
    "GAN training": HEADER
    + """
for real in loader:
    z = torch.randn(real.size(0), 64)
    fake = generator(z)
    d_loss = criterion(discriminator(real), ones) + criterion(discriminator(fake.detach()), zeros)
    d_opt.zero_grad()
    d_loss.backward()
    d_opt.step()
    g_loss = criterion(discriminator(fake), ones)
    g_opt.zero_grad()
    g_loss.backward()
    g_opt.step()
""",
    "transformer training with a running loss": HEADER
    + """
model = nn.Transformer(d_model=32, nhead=4)
total_loss = 0.0
for src, tgt in loader:
    optimizer.zero_grad()
    out = model(src, tgt)
    loss = criterion(out, tgt)
    loss.backward()
    optimizer.step()
    total_loss += loss.item()
""",
    "CNN training with a scheduler": HEADER
    + """
for epoch in range(10):
    for images, labels in loader:
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
    scheduler.step()
""",
    "Lightning manual optimisation with a fresh state per batch": HEADER
    + """
import lightning as L

class Model(L.LightningModule):
    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        hidden = None
        for i in range(0, batch.size(0), 10):
            out, hidden = self.lstm(batch[i:i + 10], hidden)
            loss = out.pow(2).mean()
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
            hidden = tuple(h.detach() for h in hidden)
""",
    "accelerate with repackage_hidden": HEADER
    + """
def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)

hidden = model.init_hidden(8)
for i in range(0, data.size(0) - 1, 35):
    hidden = repackage_hidden(hidden)
    out, hidden = model(data[i:i + 35], hidden)
    loss = criterion(out, targets[i:i + 35])
    accelerator.backward(loss)
    optimizer.step()
    optimizer.zero_grad()
""",
    "forward initialises the state only when none is passed": HEADER
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 16)

    def forward(self, x, hidden=None):
        if hidden is None:
            hidden = torch.zeros(1, x.size(1), 16)
        return self.gru(x, hidden)

model = Model()
hidden = None
for i in range(0, 100, 10):
    out, hidden = model(x[i:i + 10], hidden)
    out.sum().backward()
    hidden = hidden.detach()
""",
    "local copies of the state cut and written back": HEADER
    + """
lstm = nn.LSTM(8, 16)
hidden = None
for x in batches:
    if hidden is not None:
        h, c = hidden
        hidden = (h.detach(), c.detach())
    out, hidden = lstm(x, hidden)
    out.sum().backward()
""",
    "the last window clipped with min, as pytorch/examples does": """
hidden = None
for i in range(0, data.size(0) - 1, bptt):
    seq_len = min(bptt, data.size(0) - 1 - i)
    x, y = data[i:i + seq_len], data[i + 1:i + 1 + seq_len]
    out, hidden = model(x, hidden)
    criterion(out, y).backward()
    hidden = hidden.detach()
""",
    "state built under no_grad": HEADER
    + """
for i in range(0, 100, 10):
    with torch.no_grad():
        _, hidden = encoder(context[i])
    out, hidden = decoder(x[i:i + 10], hidden)
    out.sum().backward()
""",
    "a model passed in whose forward returns its state detached": HEADER
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 16)

    def forward(self, x, hidden):
        out, hidden = self.gru(x, hidden)
        return out.pow(2).mean(), hidden.detach()

def fit(model, batches, optimizer):
    hidden = None
    for x in batches:
        loss, hidden = model(x, hidden)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
    "a training_step that returns its (h, c) state detached, on an annotated model": HEADER
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 16)

    def training_step(self, x, hiddens):
        out, hiddens = self.lstm(x, hiddens)
        h, c = hiddens
        return out.sum(), (h.detach(), c.detach())

def fit(model: Model, batches, optimizer):
    hiddens = None
    for x in batches:
        loss, hiddens = model.training_step(x, hiddens)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
    "a model built here whose training_step cuts its LSTM state before returning it": HEADER
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 16)

    def training_step(self, x, hiddens):
        out, hiddens = self.lstm(x, hiddens)
        hiddens = tuple(h.detach() for h in hiddens)
        return out.sum(), hiddens

def fit(batches):
    model = Model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    hiddens = None
    for x in batches:
        loss, hiddens = model.training_step(x, hiddens)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
    "a training_step that cuts h and c with one assignment before returning them": HEADER
    + """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 16)

    def training_step(self, x, hiddens):
        out, (h, c) = self.lstm(x, hiddens)
        h, c = h.detach(), c.detach()
        return out.sum(), (h, c)

def fit(model, batches, optimizer):
    hiddens = None
    for x in batches:
        loss, hiddens = model.training_step(x, hiddens)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
    "state reset per batch inside an epoch loop": HEADER
    + """
def fit(loader, epochs):
    lstm = nn.LSTM(3, 8, batch_first=True)
    optimizer = torch.optim.Adam(lstm.parameters())
    for epoch in range(epochs):
        for batch in loader:
            hiddens = None
            for t in range(0, batch.size(1), 5):
                out, hiddens = lstm(batch[:, t:t + 5], hiddens)
                optimizer.zero_grad()
                out.sum().backward()
                optimizer.step()
                hiddens = tuple(h.detach() for h in hiddens)
""",
    "state reset per batch under `if True:` and `with`": HEADER
    + """
def fit(loader):
    lstm = nn.LSTM(3, 8, batch_first=True)
    optimizer = torch.optim.Adam(lstm.parameters())
    for batch in loader:
        if True:
            with torch.autocast("cpu"):
                hiddens = None
            for t in range(0, batch.size(1), 5):
                out, hiddens = lstm(batch[:, t:t + 5], hiddens)
                optimizer.zero_grad()
                out.sum().backward()
                optimizer.step()
                hiddens = tuple(h.detach() for h in hiddens)
""",
    "forward reads its state argument before rebinding it, as AWD-LSTM does": HEADER
    + """
class Stack(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnns = nn.ModuleList([nn.LSTM(4, 4) for _ in range(2)])

    def forward(self, x, hidden):
        new_hidden = []
        for layer, rnn in enumerate(self.rnns):
            x, new_h = rnn(x, hidden[layer])
            new_hidden.append(new_h)
        hidden = new_hidden
        return x, hidden

model = Stack()
hidden = [(torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)) for _ in range(2)]
for i in range(0, data.size(0), 5):
    hidden = [tuple(s.detach() for s in h) for h in hidden]
    out, hidden = model(data[i:i + 5], hidden)
    out.sum().backward()
""",
}


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    (source,) = FOUND[name]
    assert expected(source)
    assert codes(source) == expected(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert codes(SILENT[name], Settings(select=("TBP",), extend_select=("TBP007",))) == []


def test_detach_functions_setting_names_an_opaque_helper() -> None:
    source = (
        HEADER
        + """
from mylib.utils import cut

hidden = None
for x in batches:
    out, hidden = model(x, cut(hidden))
    out.sum().backward()
"""
    )
    assert codes(source) == [("TBP001", 8)]
    assert codes(source, Settings(detach_functions=("mylib.utils.cut",))) == []


def test_a_state_rebound_through_an_opaque_helper_is_unknown() -> None:
    """`hidden = cut(hidden)` with `cut` from outside the run: such a rebinding is how states
    get cut, and the body that would tell is not there, so nothing is reported; naming the
    helper in `detach-functions` makes it a known cut (here, one at every step: TBP004)."""
    source = (
        HEADER
        + """
from mylib.utils import cut

hidden = None
for x in batches:
    loss = 0
    for t in range(x.size(0)):
        hidden = cut(hidden)
        out, hidden = model(x[t], hidden)
        loss = loss + out.sum()
    loss.backward()
"""
    )
    assert codes(source) == []
    assert codes(source, Settings(detach_functions=("mylib.utils.cut",))) == [("TBP004", 10)]


def test_recurrent_modules_setting_enables_batch_axis_checks() -> None:
    source = (
        HEADER
        + """
from mylib import SRU

rnn = SRU(8, 16, batch_first=True)
hidden = None
for i in range(0, 100, 10):
    out, hidden = rnn(x[i:i + 10], hidden)
    out.sum().backward()
    hidden = hidden.detach()
"""
    )
    assert codes(source) == []
    assert codes(source, Settings(recurrent_modules=("mylib.SRU",))) == [("TBP010", 9)]


def write(root: Path, name: str, text: str) -> None:
    (root / name).write_text(textwrap.dedent(text), encoding="utf-8")


def test_a_cut_helper_imported_from_another_file_of_the_run(tmp_path: Path) -> None:
    write(
        tmp_path,
        "helpers.py",
        """\
        import torch

        def repackage(h):
            if isinstance(h, torch.Tensor):
                return h.detach()
            return tuple(repackage(v) for v in h)

        def pretend(h):
            return h
        """,
    )
    loop = """\
        from helpers import {name}

        hidden = None
        for x in batches:
            hidden = {name}(hidden)
            out, hidden = model(x, hidden)
            out.sum().backward()
        """
    write(tmp_path, "good.py", loop.format(name="repackage"))
    write(tmp_path, "bad.py", loop.format(name="pretend"))
    result = lint_paths([tmp_path], Settings(project_root=tmp_path), jobs=1)
    found = [(Path(d.path).name, d.code, d.line) for d in result.diagnostics]
    assert found == [("bad.py", "TBP001", 6)]


def test_a_class_imported_from_another_file_of_the_run_that_returns_its_state_cut(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        "models.py",
        """\
        import torch.nn as nn

        class Cutting(nn.Module):
            def training_step(self, x, hidden):
                out, hidden = self.gru(x, hidden)
                return out.sum(), hidden.detach()

        class Leaking(nn.Module):
            def training_step(self, x, hidden):
                out, hidden = self.gru(x.detach(), hidden)
                return out.sum(), hidden
        """,
    )
    loop = """\
        from models import {name}

        model = {name}()
        hidden = None
        for x in batches:
            loss, hidden = model.training_step(x, hidden)
            loss.backward()
        """
    write(tmp_path, "good.py", loop.format(name="Cutting"))
    write(tmp_path, "bad.py", loop.format(name="Leaking"))
    result = lint_paths([tmp_path], Settings(project_root=tmp_path), jobs=1)
    found = [(Path(d.path).name, d.code, d.line) for d in result.diagnostics]
    assert found == [("bad.py", "TBP001", 6)]


def test_no_function_keeps_the_first_guess_of_the_summaries() -> None:
    """Summaries start by assuming every function cuts (for recursive helpers), and a call on
    an object of unknown class ignores that guess; a function that does cut must therefore
    end up with facts of its own, even when they equal the guess."""
    module = cst.parse_module(
        HEADER
        + """
def repackage(h):
    return h.detach()

class Model(nn.Module):
    def forward(self, x, h):
        return self.cell(x, h).detach()
"""
    )
    context = FileContext(ImportMap(module))
    summarise_module(module, context)
    assert context.functions["repackage"] == ASSUMED_CUT
    assert context.functions["Model.forward"] == ASSUMED_CUT
    assert all(facts is not ASSUMED_CUT for facts in context.functions.values())
