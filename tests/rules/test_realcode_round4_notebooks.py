"""Issue 12, round 4: two course notebooks that carry RNN state across epochs, missed for
reasons of the class, not of the notebook. Each class has FOUND variants (which failed before
the fix) and SILENT twins.

- A one-line suite (`if hidden is not None: hidden.detach_()`, `for x in xs: h = f(x, h)`),
  common in notebooks, was skipped by the interpreter: its cut was not seen (a false TBP001
  beside the TBP011) and its recurrent step was not seen either.
- `model = Model(...).to(device)` (or `.cuda()`, `.float()`, ...) is a `Model`: a module's
  methods that return the module keep its class. Without it the model's class was unknown, so
  the `forward` of any class of the run could have been the one called, and one that cuts (an
  unrelated model, or an autograd `Function` in another notebook) silenced the finding.
- A static `forward` is a `torch.autograd.Function`'s, run by `Fn.apply`, never by calling a
  module: it does not stand for the forward of a model of unknown class.
- A plain fastai `Learner` fitting a model whose `forward` keeps its state on itself
  (`self.h = h.detach()`) runs every epoch's training batches and then the validation batches
  through that state with nothing resetting it (TBP011 at the fit). A learner given callbacks
  (fastai's `ModelResetter`), a model that resets its state itself, or a `Learner` that is not
  fastai's stays silent.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tbptt_lint import testing
from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings

Cell = tuple[str, str]  # (cell type, source)
File = str | list[Cell]  # a .py file's text, or a notebook's cells


def notebook(cells: list[Cell]) -> str:
    return json.dumps(
        {
            "cells": [
                {
                    "cell_type": kind,
                    "metadata": {},
                    "source": textwrap.dedent(text).splitlines(keepends=True),
                    **({"outputs": [], "execution_count": None} if kind == "code" else {}),
                }
                for kind, text in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def texts(content: File) -> list[tuple[int | None, str]]:
    """(cell number or None for a .py file, text) of every piece a marker may sit in."""
    if isinstance(content, str):
        return [(None, textwrap.dedent(content))]
    return [(number, textwrap.dedent(text)) for number, (_, text) in enumerate(content, start=1)]


def expected(files: dict[str, File]) -> set[tuple[str, str, int | None, int]]:
    found = set()
    for name, content in files.items():
        for cell, text in texts(content):
            for code, number in testing.expected_lines(text):
                found.add((name, code, cell, number))
    return found


def linted(files: dict[str, File], root: Path) -> set[tuple[str, str, int | None, int]]:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = textwrap.dedent(content) if isinstance(content, str) else notebook(content)
        path.write_text(text, encoding="utf-8")
    result = lint_paths([root], Settings(select=("TBP",), project_root=root), jobs=1)
    assert not result.internal_errors, result.internal_errors
    return {
        (Path(d.path).relative_to(root).as_posix(), d.code, d.cell, d.line)
        for d in result.diagnostics
    }


FOUND: dict[str, dict[str, File]] = {}
SILENT: dict[str, dict[str, File]] = {}

HEADER = """\
import torch
import torch.nn as nn
"""

# ------------------------------------------------------------------ one-line suites

ECHO_MODEL = """
class EchoRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(1, 4, batch_first=True)
        self.linear = nn.Linear(4, 1)

    def forward(self, x, hidden):
        x, hidden = self.rnn(x, hidden)
        return self.linear(x), hidden


model = EchoRNN()
optimizer = torch.optim.RMSprop(model.parameters(), lr=0.001)
"""

ECHO_TRAIN = """
def train(hidden):
    for batch_idx in range(train_size):
        data, target = train_data[batch_idx]
        optimizer.zero_grad()
        {cut}
        logits, hidden = model(data, hidden)
        loss = criterion(logits, target)
        loss.backward()
        optimizer.step()
    return correct, loss.item(), hidden
"""

ONE_LINE_CUT = "if hidden is not None: hidden.detach_()"


def echo(cut: str, epochs: str) -> str:
    return HEADER + ECHO_MODEL + ECHO_TRAIN.format(cut=cut) + epochs


EPOCHS_CARRIED = """
hidden = None
epoch = 0
while epoch < n_epochs:  # expect: TBP011
    correct, loss, hidden = train(hidden)
    epoch += 1
"""
EPOCHS_RESET = """
epoch = 0
while epoch < n_epochs:
    hidden = None
    correct, loss, hidden = train(hidden)
    epoch += 1
"""

FOUND["one-line cut: the state returned by one epoch feeds the next"] = {
    "echo.py": echo(ONE_LINE_CUT, EPOCHS_CARRIED)
}
FOUND["...with a `for` epoch loop and a one-line `if h is not None: h = h.detach()`"] = {
    "echo.py": echo(
        "if hidden is not None: hidden = hidden.detach()",
        """
hidden = None
for epoch in range(n_epochs):  # expect: TBP011
    correct, loss, hidden = train(hidden)
""",
    )
}
SILENT["one-line cut, the state reset at the top of every epoch"] = {
    "echo.py": echo(ONE_LINE_CUT, EPOCHS_RESET)
}
SILENT["...two cuts on one line, `if h is not None: h.detach_(); c.detach_()`"] = {
    "echo.py": HEADER
    + """
lstm = nn.LSTM(1, 4)
optimizer = torch.optim.SGD(lstm.parameters(), lr=0.1)
h = c = None
for x, y in batches:
    if h is not None: h.detach_(); c.detach_()
    out, (h, c) = lstm(x, None if h is None else (h, c))
    optimizer.zero_grad()
    (out - y).pow(2).mean().backward()
    optimizer.step()
"""
}
FOUND["one-line window loop that never cuts"] = {
    "stream.py": HEADER
    + """
rnn = nn.GRU(8, 16)
h = None
for x, y in windows: out, h = rnn(x, h); (out - y).pow(2).mean().backward()  # expect: TBP001
"""
}
SILENT["one-line window loop that cuts"] = {
    "stream.py": HEADER
    + """
rnn = nn.GRU(8, 16)
h = None
for x, y in windows: out, h = rnn(x, h); (out - y).pow(2).mean().backward(); h = h.detach()
"""
}

# ------------------------------------------------- a model's class through `.to(device)`

TWO_MODELS = """
class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(8, 16)

    def forward(self, x, h):
        return self.rnn(x, h)


class Cutting(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(8, 16)

    def forward(self, x, h):
        out, h = self.rnn(x, h)
        return out, h.detach()


device = torch.device("cpu")
model = {built}
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
h = None
for x, y in windows:
    out, h = model(x, h){mark}
    optimizer.zero_grad()
    (out - y).pow(2).mean().backward()
    optimizer.step()
"""

PLAIN_BUILDS = (
    "Plain().to(device)",
    "Plain().cuda()",
    "Plain().to(device).train()",
    "Plain().float()",
)
for built in PLAIN_BUILDS:
    FOUND[f"`model = {built}` is a Plain, whose forward does not cut"] = {
        "train.py": HEADER + TWO_MODELS.format(built=built, mark="  # expect: TBP001")
    }
for built in ("Cutting().to(device)", "Cutting().cuda().train()"):
    SILENT[f"`model = {built}` is a Cutting, whose forward cuts"] = {
        "train.py": HEADER + TWO_MODELS.format(built=built, mark="")
    }

# ------------------------------------- a static forward is an autograd Function's

UNKNOWN_MODEL_EPOCHS = """
model = build_model()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)


def train(hidden):
    for i in range(steps):
        data, target = batch(i)
        if hidden is not None:
            hidden = hidden.detach()
        logits, hidden = model(data, hidden)
        loss = (logits - target).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return hidden


hidden = None
for epoch in range(5):{mark}
    hidden = train(hidden)
"""

AUTOGRAD_FUNCTION = """
class MyMax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        maximum = x.detach().numpy().max()
        ctx.save_for_backward(x)
        return torch.tensor(maximum)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * x
"""

CUTTING_MODULE = """
class Truncating(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(8, 16)

    def forward(self, x, h):
        out, h = self.rnn(x, h)
        return out, h.detach()
"""

FOUND["an autograd Function's forward in another file is no model's"] = {
    "train.py": HEADER + UNKNOWN_MODEL_EPOCHS.format(mark="  # expect: TBP011"),
    "functions.py": HEADER + AUTOGRAD_FUNCTION,
}
FOUND["...in the same file"] = {
    "train.py": HEADER + AUTOGRAD_FUNCTION + UNKNOWN_MODEL_EPOCHS.format(mark="  # expect: TBP011")
}
FOUND["...in another notebook of the run"] = {
    "09-echo.ipynb": [
        ("markdown", "# Echo\n"),
        ("code", HEADER),
        ("code", UNKNOWN_MODEL_EPOCHS.format(mark="  # expect: TBP011")),
    ],
    "extra/custom_grads.ipynb": [("code", HEADER), ("code", AUTOGRAD_FUNCTION)],
}
SILENT["a module of the run whose forward cuts may be the unknown model"] = {
    "train.py": HEADER + UNKNOWN_MODEL_EPOCHS.format(mark=""),
    "models.py": HEADER + CUTTING_MODULE,
}

# ------------------------------------------------- the echo notebook, cells as in the course

ECHO_CELLS: list[Cell] = [
    ("code", "from res.sequential_tasks import EchoData\nimport torch\nimport torch.nn as nn\n"),
    ("markdown", "## Model\n"),
    (
        "code",
        """
class SimpleRNN(nn.Module):
    def __init__(self, input_size, rnn_hidden_size, output_size):
        super().__init__()
        self.rnn = torch.nn.RNN(input_size, rnn_hidden_size, batch_first=True)
        self.linear = torch.nn.Linear(rnn_hidden_size, 1)

    def forward(self, x, hidden):
        x, hidden = self.rnn(x, hidden)
        x = self.linear(x)
        return x, hidden
""",
    ),
    ("code", 'device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")\n'),
    (
        "code",
        """
def train(hidden):
    model.train()
    correct = 0
    for batch_idx in range(train_size):
        data, target = train_data[batch_idx]
        optimizer.zero_grad()
        if hidden is not None: hidden.detach_()
        logits, hidden = model(data, hidden)
        loss = criterion(logits, target)
        loss.backward()
        optimizer.step()
    return correct, loss.item(), hidden
""",
    ),
    (
        "code",
        """
model = SimpleRNN(input_size=1, rnn_hidden_size=4, output_size=1).to(device)
hidden = None
criterion = torch.nn.BCEWithLogitsLoss()
optimizer = torch.optim.RMSprop(model.parameters(), lr=0.001)
""",
    ),
    (
        "code",
        "%%time\nepoch = 0\nwhile epoch < 5:{mark}\n"
        "    correct, loss, hidden = train(hidden)\n    epoch += 1\n",
    ),
]


def echo_notebook(mark: str, reset: bool = False) -> list[Cell]:
    cells = list(ECHO_CELLS)
    kind, text = cells[-1]
    if reset:
        text = text.replace("    correct,", "    hidden = None\n    correct,")
    cells[-1] = (kind, text.format(mark=mark))
    return cells


FOUND["the echo notebook: a custom-grad notebook beside it"] = {
    "09-echo_data.ipynb": echo_notebook("  # expect: TBP011"),
    "extra/b-custom_grads.ipynb": [("code", "import torch\n"), ("code", AUTOGRAD_FUNCTION)],
}
SILENT["the echo notebook resetting the state per epoch"] = {
    "09-echo_data.ipynb": echo_notebook("", reset=True),
    "extra/b-custom_grads.ipynb": [("code", "import torch\n"), ("code", AUTOGRAD_FUNCTION)],
}

# ------------------------------------------------- a fastai Learner fitting a stateful model

STATEFUL_LM = """
class Model4(nn.Module):
    def __init__(self):
        super().__init__()
        self.i_h = nn.Embedding(nv, nh)
        self.rnn = nn.RNN(nh, nh, batch_first=True)
        self.h_o = nn.Linear(nh, nv)
        self.h = torch.zeros(1, bs, nh).cuda()

    def forward(self, x):
        res, h = self.rnn(self.i_h(x), self.h)
        self.h = h.detach()
        return self.h_o(res)
"""

STATEFUL_GRU = """
class Model5(nn.Module):
    def __init__(self):
        super().__init__()
        self.i_h = nn.Embedding(nv, nh)
        self.rnn = nn.GRU(nh, nh, 2, batch_first=True)
        self.h_o = nn.Linear(nh, nv)
        self.h = None

    def forward(self, x):
        if self.h is not None:
            self.h = self.h.detach()
        res, self.h = self.rnn(self.i_h(x), self.h)
        return self.h_o(res)
"""

RESETTING_LM = """
class Model2(nn.Module):
    def __init__(self):
        super().__init__()
        self.i_h = nn.Embedding(nv, nh)
        self.rnn = nn.RNN(nh, nh, batch_first=True)
        self.h_o = nn.Linear(nh, nv)

    def forward(self, x):
        self.h = torch.zeros(1, x.size(0), nh)
        res, self.h = self.rnn(self.i_h(x), self.h)
        return self.h_o(res)
"""

STATELESS_LM = """
class Model1(nn.Module):
    def __init__(self):
        super().__init__()
        self.i_h = nn.Embedding(nv, nh)
        self.h_h = nn.Linear(nh, nh)
        self.h_o = nn.Linear(nh, nv)

    def forward(self, x):
        h = torch.zeros(x.shape[0], nh).to(device=x.device)
        for i in range(x.shape[1]):
            h = torch.relu(self.h_h(h + self.i_h(x[:, i])))
        return self.h_o(h)
"""

FASTAI_STAR = "from fastai.text import *\nbs, nh, nv = 64, 64, 40\n"


def human_numbers(model_cell: str, fit_cell: str) -> list[Cell]:
    return [
        ("code", FASTAI_STAR),
        ("markdown", "## Maintaining state\n"),
        ("code", model_cell),
        ("code", fit_cell),
    ]


FOUND["fastai 1 notebook: `Learner(data, Model4())` and `fit_one_cycle`"] = {
    "lesson7.ipynb": human_numbers(
        STATEFUL_LM,
        "learn = Learner(data, Model4(), metrics=accuracy)\n"
        "learn.fit_one_cycle(20, 3e-3)  # expect: TBP011\n",
    )
}
FOUND["...a forward that cuts on entry and stores the state itself (`self.h = ...`)"] = {
    "lesson7.ipynb": human_numbers(
        STATEFUL_GRU,
        "learn = Learner(data, Model5(), metrics=accuracy)\n"
        "learn.fit_one_cycle(10, 1e-2)  # expect: TBP011\n",
    )
}
FOUND["...the learner reused: stateless model first, stateful second"] = {
    "lesson7.ipynb": [
        ("code", FASTAI_STAR),
        ("code", STATELESS_LM),
        ("code", "learn = Learner(data, Model1(), metrics=accuracy)\nlearn.fit_one_cycle(6)\n"),
        ("code", STATEFUL_LM),
        ("code", "learn = Learner(data, Model4(), metrics=accuracy)\n"),
        ("code", "learn.fit(3)  # expect: TBP011\n"),
    ]
}
FOUND["fastai 2 script: a model built first, `.cuda()`, `fine_tune`"] = {
    "train.py": HEADER
    + "from fastai.learner import Learner\n"
    + "nh, nv, bs = 64, 40, 64\n"
    + STATEFUL_LM
    + """

def main(dls):
    model = Model4().cuda()
    learn = Learner(dls, model, loss_func=nn.CrossEntropyLoss())
    learn.fine_tune(4)  # expect: TBP011
"""
}
FOUND["...the learner fitted where it is built"] = {
    "train.py": HEADER
    + "from fastai.basic_train import Learner\n"
    + "nh, nv, bs = 64, 40, 64\n"
    + STATEFUL_LM
    + "\nLearner(data, Model4()).fit_one_cycle(3)  # expect: TBP011\n"
}
FOUND["...the stateful model defined in another file"] = {
    "models.py": HEADER + "nh, nv, bs = 64, 40, 64\n" + STATEFUL_LM,
    "train.py": """\
from fastai.learner import Learner
from models import Model4

learn = Learner(dls, Model4(), metrics=accuracy)
learn.fit_one_cycle(5, 1e-3)  # expect: TBP011
""",
}

SILENT["fastai notebook: a stateless model (fresh state in every forward)"] = {
    "lesson7.ipynb": human_numbers(
        STATELESS_LM, "learn = Learner(data, Model1(), metrics=accuracy)\nlearn.fit_one_cycle(6)\n"
    )
}
SILENT["...a forward that re-initialises `self.h` on every call"] = {
    "lesson7.ipynb": human_numbers(
        RESETTING_LM, "learn = Learner(data, Model2(), metrics=accuracy)\nlearn.fit_one_cycle(6)\n"
    )
}
SILENT["...the learner given `cbs=ModelResetter`"] = {
    "lesson7.ipynb": human_numbers(
        STATEFUL_LM,
        "learn = Learner(data, Model4(), metrics=accuracy, cbs=ModelResetter)\n"
        "learn.fit_one_cycle(20, 3e-3)\n",
    )
}
SILENT["...the learner given `callback_fns`"] = {
    "lesson7.ipynb": human_numbers(
        STATEFUL_LM,
        "learn = Learner(data, Model4(), callback_fns=[Resetter])\nlearn.fit_one_cycle(20)\n",
    )
}
SILENT["...a callback appended before the fit"] = {
    "lesson7.ipynb": human_numbers(
        STATEFUL_LM,
        "learn = Learner(data, Model4())\n"
        "learn.callbacks.append(RNNTrainer(learn))\n"
        "learn.fit_one_cycle(20)\n",
    )
}
SILENT["...arguments spread from `**kwargs`"] = {
    "lesson7.ipynb": human_numbers(
        STATEFUL_LM, "learn = Learner(data, Model4(), **learner_args)\nlearn.fit_one_cycle(20)\n"
    )
}
SILENT["...the learner rebound to a stateless model before its fit"] = {
    "lesson7.ipynb": [
        ("code", FASTAI_STAR),
        ("code", STATEFUL_LM + STATELESS_LM),
        ("code", "learn = Learner(data, Model4())\nlearn = Learner(data, Model1())\n"),
        ("code", "learn.fit_one_cycle(3)\n"),
    ]
}
SILENT["a `Learner` that is not fastai's (star import from elsewhere)"] = {
    "lesson7.ipynb": [
        ("code", "from exp.nb_12 import *\nbs, nh, nv = 64, 64, 40\n"),
        ("code", STATEFUL_LM),
        ("code", "learn = Learner(data, Model4())\nlearn.fit(3)\n"),
    ]
}
SILENT["...a `Learner` the file defines"] = {
    "train.py": HEADER
    + "from fastai.text import *\nnh, nv, bs = 64, 40, 64\n"
    + STATEFUL_LM
    + """

class Learner:
    def __init__(self, data, model):
        self.data, self.model = data, model

    def fit(self, epochs):
        pass


Learner(data, Model4()).fit(3)
"""
}
SILENT["...another library's `Learner`"] = {
    "train.py": HEADER
    + "from mylib.training import Learner\nnh, nv, bs = 64, 40, 64\n"
    + STATEFUL_LM
    + "\nLearner(data, Model4()).fit(3)\n"
}
SILENT["...fastai's `language_model_learner`, which resets"] = {
    "lesson7.ipynb": human_numbers(
        STATEFUL_LM,
        "learn = language_model_learner(data, AWD_LSTM)\nlearn.fit_one_cycle(3)\n",
    )
}


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str, tmp_path: Path) -> None:
    files = FOUND[name]
    assert expected(files), "a FOUND case marks its lines"
    assert linted(files, tmp_path) == expected(files)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str, tmp_path: Path) -> None:
    assert linted(SILENT[name], tmp_path) == set()
