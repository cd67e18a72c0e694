"""False alarms on labelled-clean public code, second round (issue 12). Each class has SILENT
variants written here, not copied from the corpus, and a FOUND twin that keeps the real bug
nearby reported:

- a method that hands on what its `forward` returns cut (`def loss(self, x, h): out, h =
  self(x, h)`), with the state gathered in a list of cut parts;
- a state re-initialised from a batch's size (`init_state(xb.shape[0])`) is made anew, however
  the batch tensor itself travelled across the loops;
- a helper defined inside the training function that returns the state cut;
- `h.detach_(), c.detach_()` (one tuple statement) and in-place detaches of every part
  unpacked from the state cut the state;
- a helper's backward consumes only the graphs that reach it (its arguments, the objects it is
  called on, the names its body reads), not an acting state the caller keeps for itself;
- tensor methods (`.cuda(device)`, `.to(device)`, `.float()`) on a cut value keep it cut;
- a running average kept by a helper that only does arithmetic is no recurrent state.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tbptt_lint.analysis.api import check_source
from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings

ALL = Settings(select=("TBP",))


def codes(source: str) -> list[tuple[str, int]]:
    findings = check_source(textwrap.dedent(source), "example.py", ALL)
    return sorted((f.code, f.line) for f in findings)


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def lint(root: Path) -> list[tuple[str, str, int]]:
    result = lint_paths([root], Settings(project_root=root, select=("TBP",)), jobs=1)
    return sorted((Path(d.path).name, d.code, d.line) for d in result.diagnostics)


HEADER = """\
import torch
import torch.nn as nn
"""

# ------------------------------------------------ a method hands on its forward's cut state
LAYERED = """
class Layered(nn.Module):
    def __init__(self):
        super().__init__()
        self.cells = nn.ModuleList([nn.GRU(8, 8, batch_first=True) for _ in range(2)])
        self.head = nn.Linear(8, 3)

    def forward(self, x, states=None):
        if states is None:
            states = [None] * len(self.cells)
        last = []
        for cell, state in zip(self.cells, states):
            x, h = cell(x, state)
            last.append(h{cut})
        return self.head(x), last
"""
DELEGATING_METHODS = {
    "self(...)": """
    def objective(self, x, y, states=None):
        logits, new_states = self(x, states)
        return (logits - y).pow(2).mean(), new_states
""",
    "self.forward(...) by keyword": """
    def objective(self, x, y, states=None):
        logits, new_states = self.forward(x, states=states)
        loss = (logits - y).pow(2).mean()
        return loss, new_states
""",
}
DELEGATING_LOOP = """

def fit(model: Layered, series, targets, optimizer):
    states = None
    for i in range(0, series.size(1), 16):
        loss, states = model.objective(series[:, i:i + 16], targets[:, i:i + 16], states)  # L
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""


def _delegating(method: str, cut: str) -> str:
    return HEADER + LAYERED.format(cut=cut) + DELEGATING_METHODS[method] + DELEGATING_LOOP


def _line_of(source: str, marker: str) -> int:
    lines = textwrap.dedent(source).splitlines()
    return next(n for n, line in enumerate(lines, start=1) if marker in line)


@pytest.mark.parametrize("method", sorted(DELEGATING_METHODS))
def test_method_handing_on_a_forward_that_cuts_is_silent(method: str) -> None:
    assert codes(_delegating(method, ".detach()")) == []


@pytest.mark.parametrize("method", sorted(DELEGATING_METHODS))
def test_method_handing_on_a_forward_that_does_not_cut_is_found(method: str) -> None:
    source = _delegating(method, "")
    assert codes(source) == [("TBP001", _line_of(source, "# L"))]


MODEL_FILE = HEADER + LAYERED.format(cut=".detach()") + DELEGATING_METHODS["self(...)"]
UNCUT_MODEL_FILE = HEADER + LAYERED.format(cut="") + DELEGATING_METHODS["self(...)"]
TRAINER_FILE = """\
def train(model, series, targets, optimizer):
    states = None
    for i in range(0, series.size(1), 16):
        loss, states = model.objective(series[:, i:i + 16], targets[:, i:i + 16], states)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
"""


def test_method_of_a_model_in_another_file_handing_on_a_cut_is_silent(tmp_path: Path) -> None:
    write(tmp_path, "models/layered.py", MODEL_FILE)
    write(tmp_path, "train.py", TRAINER_FILE)
    assert lint(tmp_path) == []


def test_method_of_a_model_in_another_file_handing_on_no_cut_is_found(tmp_path: Path) -> None:
    write(tmp_path, "models/layered.py", UNCUT_MODEL_FILE)
    write(tmp_path, "train.py", TRAINER_FILE)
    assert lint(tmp_path) == [("train.py", "TBP001", 4)]


# ------------------------------------------------------- a state sized from a batch is new
SIZED_RESETS = {
    "helper given x.shape[0]": ("make_state(xb.shape[0])", "tuple"),
    "helper given len(xb)": ("make_state(len(xb))", "tuple"),
    "helper given xb.size(0)": ("make_state(xb.size(0))", "tuple"),
    "zeros sized from the batch": (
        "torch.zeros(1, xb.shape[0], 8), torch.zeros(1, xb.shape[0], 8)",
        "inline",
    ),
}
SIZED_LOOP = """
lstm = nn.LSTM(4, 8, batch_first=True)


def make_state(n):
    return torch.zeros(1, n, 8), torch.zeros(1, n, 8)


def reorder(rows):
    return rows[torch.randperm(rows.shape[0])]


def window_loss(xb, h, c):
    out, (h, c) = lstm(xb, (h, c))
    return out.pow(2).mean(), h.detach(), c.detach()


index = dict(zip(chars, range(len(chars))))
ids = [index[ch] for ch in raw]
rows = [ids[i:i + 41] for i in range(0, len(ids), 40)]
rows = torch.tensor(rows)
held_out, corpus = rows[: int(rows.shape[0] * 0.1)], rows[int(rows.shape[0] * 0.1) :]
for epoch in range(5):
    corpus = reorder(corpus)
    for i in range(0, corpus.shape[0], 16):
        xb = corpus[i:i + 16]
        {reset}
        optimizer.zero_grad()
        for j in range(0, 40, 10):
            loss, h, c = window_loss(xb[:, j:j + 10], h, c)
            loss.backward()
        optimizer.step()
"""


@pytest.mark.parametrize("name", sorted(SIZED_RESETS))
def test_state_sized_from_the_batch_is_made_anew(name: str) -> None:
    reset, _ = SIZED_RESETS[name]
    assert codes(HEADER + SIZED_LOOP.replace("{reset}", f"h, c = {reset}")) == []


def test_stream_state_made_once_before_the_epochs_is_carried_across_them() -> None:
    source = (
        HEADER
        + """
gru = nn.GRU(4, 8)


def init_state(batch):
    return torch.zeros(1, batch, 8)


stream = torch.tensor(raw)
h = init_state(stream.shape[1])
for epoch in range(5):
    for i in range(0, stream.size(0) - 1, 10):
        h = h.detach()
        out, h = gru(stream[i:i + 10], h)
        optimizer.zero_grad()
        out.pow(2).mean().backward()
        optimizer.step()
"""
    )
    assert codes(source) == [("TBP011", _line_of(source, "for epoch"))]


# --------------------------------------------- a helper nested in the unit returns the cut
NESTED_HELPER = """
class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(6, 12, batch_first=True)
        self.out = nn.Linear(12, 5)

    def forward(self, x, h):
        y, h = self.rnn(x, h)
        return self.out(y), h


def train(batches):
    model = Tagger()
    optimizer = torch.optim.Adam(model.parameters())

    def {name}(x, y, h):
        scores, h = model(x, h)
        loss = nn.functional.cross_entropy(scores.transpose(1, 2), y)
        return loss, {returned}

    for xb, yb in batches:
        h = torch.zeros(1, xb.size(0), 12)
        optimizer.zero_grad()
        for j in range(0, xb.size(1), 8):
            loss, h = {name}(xb[:, j:j + 8], yb[:, j:j + 8], h)  # L
            loss.backward()
        optimizer.step()
"""


@pytest.mark.parametrize("name", ["get_loss", "one_window"])
@pytest.mark.parametrize("returned", ["h.detach()", "h.detach().clone()"])
def test_nested_helper_returning_the_state_cut_is_silent(name: str, returned: str) -> None:
    source = HEADER + NESTED_HELPER.replace("{name}", name).replace("{returned}", returned)
    assert codes(source) == []


def test_nested_helper_returning_the_state_uncut_is_found() -> None:
    source = HEADER + NESTED_HELPER.replace("{name}", "get_loss").replace("{returned}", "h")
    assert codes(source) == [("TBP001", _line_of(source, "# L"))]


# ----------------------------------------------- in-place detaches of the unpacked parts
UNPACKED_LOOP = """
lstm = nn.LSTM(4, 8, batch_first=True)
for epoch in range(3):
    {state} = None
    for x, y in stream:
        optimizer.zero_grad()
        out, {state} = lstm(x, {state})  # L
        {parts} = {state}
        {cut}
        {write_back}
        loss = (out - y).pow(2).mean()
        loss.backward()
        optimizer.step()
"""
UNPACKED_CUTS = {
    "one tuple statement, written back": ("hidden", "h0, c0", "h0.detach_(), c0.detach_()", True),
    "one tuple statement, not written back": ("state", "a, b", "a.detach_(), b.detach_()", False),
    "two statements, not written back": ("hc", "h, c", "h.detach_(); c.detach_()", False),
    "a list target": ("hidden", "[h, c]", "h.detach_(), c.detach_()", False),
}


def _unpacked(state: str, parts: str, cut: str, write_back: bool) -> str:
    names = parts.strip("[]")
    back = f"{state} = ({names})" if write_back else "pass"
    source = UNPACKED_LOOP.replace("{state}", state).replace("{parts}", parts)
    return HEADER + source.replace("{cut}", cut).replace("{write_back}", back)


@pytest.mark.parametrize("name", sorted(UNPACKED_CUTS))
def test_inplace_detach_of_every_unpacked_part_is_a_cut(name: str) -> None:
    assert codes(_unpacked(*UNPACKED_CUTS[name])) == []


def test_inplace_detach_of_one_part_only_still_leaks() -> None:
    source = _unpacked("hidden", "h, c", "h.detach_()", False)
    found = codes(source)
    assert found and all(line == _line_of(source, "# L") for _, line in found)


def test_inplace_detach_of_a_part_rebound_first_does_not_cut_the_state() -> None:
    source = _unpacked("hidden", "h, c", "h = h * 1; h.detach_(), c.detach_()", False)
    assert ("TBP001", _line_of(source, "# L")) in codes(source)


# --------------------------------------- a helper's backward runs through what reaches it
ACTING_AGENT = """
qnet = nn.GRU(4, 8)
target = nn.GRU(4, 8)
optimizer = torch.optim.Adam(qnet.parameters())


def {helper}(net, target_net, memory):
    obs, rewards = memory.sample()
    h = torch.zeros(1, obs.size(1), 8)
    q, _ = net(obs, h)
    with torch.no_grad():
        t, _ = target_net(obs, h)
    loss = (q - rewards - t).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


for episode in range(100):
    h = torch.zeros(1, 1, 8)
    obs = env.reset()
    for t in range(500):
        q, h = qnet(obs, h)  # L
        obs, done = env.step(q.argmax())
        if len(memory) > 32:
            {helper}(qnet, target, memory)
        if done:
            break
"""


@pytest.mark.parametrize("helper", ["train", "learn_from_replay"])
def test_helper_backward_does_not_consume_the_callers_acting_state(helper: str) -> None:
    assert codes(HEADER + ACTING_AGENT.replace("{helper}", helper)) == []


def test_helper_backward_through_a_loss_made_from_the_state_is_found() -> None:
    source = (
        HEADER
        + """
net = nn.GRU(4, 8)
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)


def update(loss):
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


h = torch.zeros(1, 2, 8)
for x in stream:
    out, h = net(x, h)  # L
    update(out.pow(2).mean())
"""
    )
    assert codes(source) == [("TBP001", _line_of(source, "# L"))]


def test_helper_backward_reading_the_output_as_a_global_is_found() -> None:
    source = (
        HEADER
        + """
net = nn.GRU(4, 8)
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
out = None


def update():
    optimizer.zero_grad()
    out.pow(2).mean().backward()
    optimizer.step()


h = torch.zeros(1, 2, 8)
for x in stream:
    out, h = net(x, h)  # L
    update()
"""
    )
    assert codes(source) == [("TBP001", _line_of(source, "# L"))]


LEARNER_FILE = """\
import torch


def learn(net, optimizer, memory):
    x, y = memory.sample()
    loss = (net(x)[0] - y).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
"""
ACTOR_FILE = """\
import torch
import torch.nn as nn
from learner import learn

net = nn.LSTM(4, 8)
optimizer = torch.optim.Adam(net.parameters())
for episode in range(10):
    state = None
    obs = env.reset()
    for t in range(200):
        q, state = net(obs, state)
        obs = env.step(q)
        learn(net, optimizer, memory)
"""


def test_helper_of_another_file_does_not_consume_the_acting_state(tmp_path: Path) -> None:
    write(tmp_path, "learner.py", LEARNER_FILE)
    write(tmp_path, "actor.py", ACTOR_FILE)
    assert [f for f in lint(tmp_path) if f[0] == "actor.py"] == []


# --------------------------------------------------- tensor methods on a cut keep it cut
REPACKAGERS = {
    "Variable(h.data).cuda(device_id)": """
def repackage(h, device_id=0):
    if isinstance(h, Variable):
        return Variable(h.data).cuda(device_id)
    return tuple(repackage(v, device_id) for v in h)
""",
    "h.data.to(device).contiguous()": """
def repackage(h, device="cuda"):
    if isinstance(h, torch.Tensor):
        return h.data.to(device).contiguous()
    return tuple(repackage(v, device) for v in h)
""",
    "Variable(h.data, requires_grad=False).float().cuda(gpu)": """
def repackage(h, gpu=0):
    if type(h) == Variable:
        return Variable(h.data, requires_grad=False).float().cuda(gpu)
    return [repackage(v, gpu) for v in h]
""",
}
REPACKAGE_LOOP = """

def train(net, batches, optimizer):
    hidden = net.init_hidden(20)
    for x, y in batches:
        hidden = repackage(hidden)
        out, hidden = net(x, hidden)  # L
        loss = (out - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""
VARIABLE = "from torch.autograd import Variable\n"


@pytest.mark.parametrize("name", sorted(REPACKAGERS))
def test_tensor_methods_on_a_cut_keep_it_cut(name: str) -> None:
    source = HEADER + VARIABLE + REPACKAGERS[name] + REPACKAGE_LOOP
    assert [code for code, _ in codes(source)] in ([], ["TBP008"])


def test_tensor_methods_on_an_uncut_state_do_not_cut_it() -> None:
    helper = REPACKAGERS["Variable(h.data).cuda(device_id)"].replace("h.data", "h")
    source = HEADER + VARIABLE + helper + REPACKAGE_LOOP
    assert codes(source) == [("TBP001", _line_of(source, "# L"))]


# ------------------------------------------------- a running average is no recurrent state
AVERAGING_TRAINER = """
class Trainer:
    def __init__(self, model):
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=0.1)
        self.{average} = 0.0
        self.step = 0

    def fit_batch(self, x, y):
        loss = (self.model(x) - y).pow(2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.detach().cpu()
{helper}
    def fit(self, batches):
        for x, y in batches:
            self.step += 1
            loss = self.fit_batch(x, y)
            self.{average} = {call}
"""
AVERAGES = {
    "a method with float()": (
        "avg_loss",
        """
    def running_mean(self, loss, avg):
        if torch.isfinite(loss):
            avg -= avg / self.step
            avg += float(loss) / self.step
        return avg
""",
        "self.running_mean(loss, self.avg_loss)",
    ),
    "a function with .item()": (
        "ema",
        "",
        "smooth(self.ema, loss)",
    ),
}
SMOOTH = """

def smooth(previous, value, decay=0.9):
    return decay * previous + (1 - decay) * value.item()
"""


@pytest.mark.parametrize("name", sorted(AVERAGES))
def test_running_average_kept_by_an_arithmetic_helper_is_silent(name: str) -> None:
    average, helper, call = AVERAGES[name]
    trainer = AVERAGING_TRAINER.replace("{average}", average).replace("{helper}", helper)
    assert codes(HEADER + SMOOTH + trainer.replace("{call}", call)) == []


def test_state_stepped_by_a_helper_that_runs_a_model_is_found() -> None:
    source = (
        HEADER
        + """
class Streamer:
    def __init__(self):
        self.cell = nn.GRUCell(4, 8)
        self.opt = torch.optim.SGD(self.cell.parameters(), lr=0.1)
        self.h = torch.zeros(2, 8)

    def advance(self, x, h):
        return self.cell(x, h)

    def fit(self, stream):
        for x in stream:
            self.h = self.advance(x, self.h)  # L
            self.opt.zero_grad()
            self.h.pow(2).mean().backward()
            self.opt.step()
"""
    )
    assert ("TBP001", _line_of(source, "# L")) in codes(source)
