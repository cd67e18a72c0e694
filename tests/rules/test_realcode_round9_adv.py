"""Issue 12, round 9: an adversarial pass of 75 small runnable training programs (Lightning-like
modules, recurrent RL agents, seq2seq, stateful time series, AMP, accumulation, helpers in a
package, notebook-like scripts, hand-written cells, `functools.partial`, generators), each
labelled by running it under the tracer first. The classes the linter got wrong:

- A state cut and then masked by arithmetic (`hx = hx.detach() * masks`, the recurrent-policy
  idiom of episode ends; `-h.detach()`, `h.detach() * (1 - done)`) was read through the names
  inside it, the uncut `hx` among them: a false TBP001. Each operand of a binary operation is
  now evaluated as it is, so a cut operand stays cut; `hx * masks` with no cut still carries
  the graph.
- A name bound to a `functools.partial` of a cutting helper, or to a lambda that calls one
  (`cut = partial(repackage, device=d)`, `cut = lambda t: repackage(t, d)`), then called as
  `h = cut(h)`, is that cut (it was read as a function of unknown body that hands `h` back:
  a false TBP001). A partial of a helper that does not cut is still no cut.
- A cell called in a loop on a state that the loop's own target binds anew each pass (`for
  obs, h_stored in replay: q = cell(obs, h_stored)`: a stored state stepped once from where
  it was stored) is not "a state never passed back in" (a false TBP015). A state fixed for the
  whole loop still is.
- A loss kept with its graph in a log: a record appended to a list (`history.append({"loss":
  loss})`, `dict(loss=loss)`), a list extended (`history.extend([loss])`), or a meter object
  of the file whose method adds its argument to a total it keeps (`meter.update(loss, n)`
  with `self.sum += val * n`, `self.values.append(val)`) keeps every window's graph (TBP006).
  A number or a cut, a meter that takes `.item()` or `float()` itself, one that keeps only
  the last value, or an update under `no_grad` keep none.
- A hand-written cell, a function of the file whose body multiplies the state by a weight
  matrix (`torch.tanh(x @ W + h @ U)`, `torch.mm`, `torch.matmul`, `.matmul`), called as
  `h = rnn_step(x[t], h)`, was taken for a function that "only does arithmetic on its
  arguments" (a running average) and stepped no state: a state carried through it uncut is
  now TBP001; cut once per window it is silent. A running figure computed without a matrix
  product steps no state, as before.
- TBP006's unsafe fix appended `.item()` to a one-number loss whatever the total was later
  used for: `total_loss += loss.item()` then `total_loss.item()` raises AttributeError, and
  `losses.append(loss.item())` then `torch.stack(losses)` a TypeError. A total (or list) the
  unit reads as a tensor (a method or attribute of it or of an element, or an argument of a
  torch function other than `torch.tensor`) now gets `.detach()`; one read only as a number
  (printed, divided, `sum(...)`, `torch.tensor(losses)`) still gets `.item()`.
"""

from __future__ import annotations

import pytest

from tbptt_lint.testing import expected_sorted, fill, fixed_by, snippet_findings

HEADER = """\
import functools

import torch
import torch.nn as nn
"""

FOUND: dict[str, str] = {}
SILENT: dict[str, str] = {}

# ------------------------------------------------ 1. a cut state masked by arithmetic

MASKED = (
    HEADER
    + """
policy = nn.GRUCell(3, 8)
opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
masks = torch.ones(4, 1)
hx = torch.zeros(1, 8)
for update in range(4):
    loss = 0
    done = update % 2 == 1
    for step in range(5):
        hx = policy(torch.randn(1, 3), hx){mark}
        loss = loss + hx.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    hx = {cut}
"""
)
for label, cut in {
    "a tensor of masks": "hx.detach() * masks[update]",
    "a mask written out": "hx.detach() * (1.0 - float(done))",
    "a conditional mask": "hx.detach() * (0.0 if done else 1.0)",
    "the mask first": "masks[update].view(-1, 1) * hx.detach()",
    "a negation": "-hx.detach()",
    "a sum with a new tensor": "hx.detach() + torch.zeros(1, 8)",
}.items():
    SILENT[f"masked cut: {label}"] = fill(MASKED, cut=cut, mark="")
for label, cut in {
    "a mask and no cut": "hx * masks[update]",
    "a mask and a cut of something else": "hx * masks[update].detach()",
    "a sum of the cut and the uncut state": "hx.detach() + hx",
}.items():
    FOUND[f"masked, uncut: {label}"] = fill(MASKED, cut=cut, mark="  # expect: TBP001")

MASKED_PAIR = (
    HEADER
    + """
cell = nn.LSTMCell(3, 8)
opt = torch.optim.SGD(cell.parameters(), lr=0.01)
h, c = torch.zeros(1, 8), torch.zeros(1, 8)
for update in range(4):
    mask = torch.ones(1, 1)
    for step in range(5):
        h, c = cell(torch.randn(1, 3), (h, c)){mark}
    loss = h.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    h, c = {cut}
"""
)
SILENT["masked pair: both cut"] = fill(
    MASKED_PAIR, cut="h.detach() * mask, c.detach() * mask", mark=""
)
FOUND["masked pair: only h cut"] = fill(
    MASKED_PAIR, cut="h.detach() * mask, c * mask", mark="  # expect: TBP002"
)

# ------------------------------------------ 2. a partial or a lambda of a cutting helper

BOUND_CUT = (
    HEADER
    + """

def repackage(h, device=None):
    return {helper_body}


def train():
    gru = nn.GRU(4, 8)
    opt = torch.optim.SGD(gru.parameters(), lr=0.01)
    cut = {binding}
    h = torch.zeros(1, 2, 8)
    x = torch.randn(20, 2, 4)
    for i in range(0, 20, 5):
        h = cut(h)
        out, h = gru(x[i:i + 5], h){mark}
        loss = out.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
"""
)
for label, binding in {
    "functools.partial with a keyword": 'functools.partial(repackage, device="cpu")',
    "functools.partial alone": "functools.partial(repackage)",
    "a lambda calling the helper": 'lambda t: repackage(t, "cpu")',
    "a lambda cutting itself": "lambda t: t.detach()",
}.items():
    SILENT[f"bound cut: {label}"] = fill(
        BOUND_CUT, binding=binding, helper_body="h.detach()", mark=""
    )
for label, binding in {
    "functools.partial of a copy": 'functools.partial(repackage, device="cpu")',
    "a lambda calling a copy": 'lambda t: repackage(t, "cpu")',
}.items():
    FOUND[f"bound non-cut: {label}"] = fill(
        BOUND_CUT, binding=binding, helper_body="h.clone()", mark="  # expect: TBP001"
    )

TOP_LEVEL_PARTIAL = (
    HEADER
    + """
from functools import partial


def detach_all(state, into=tuple):
    return into(s.detach() for s in state)


lstm = nn.LSTM(4, 8)
opt = torch.optim.SGD(lstm.parameters(), lr=0.01)
cut = partial({helper}, into=tuple)
state = (torch.zeros(1, 2, 8), torch.zeros(1, 2, 8))
for x in torch.randn(4, 5, 2, 4):
    state = cut(state)
    out, state = lstm(x, state){mark}
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)
SILENT["bound cut: a notebook's partial of a tuple cut"] = fill(
    TOP_LEVEL_PARTIAL, helper="detach_all", mark=""
)
FOUND["bound non-cut: a notebook's partial of tuple()"] = fill(
    TOP_LEVEL_PARTIAL, helper="tuple", mark="  # expect: TBP001"
)

# --------------------------------------- 3. a cell stepped from a state the loop target binds

STORED = (
    HEADER
    + """
cell = nn.GRUCell(3, 8)
q = nn.Linear(8, 2)
opt = torch.optim.SGD(list(cell.parameters()) + list(q.parameters()), lr=0.01)
replay = [(torch.randn(1, 3), torch.zeros(1, 8)) for _ in range(6)]
{before}
for {target} in replay:
    h2 = cell(obs, h_stored){mark}
    loss = q(h2).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)
SILENT["stored state: the loop target binds it"] = fill(
    STORED, before="", target="obs, h_stored", mark=""
)
SILENT["stored state: a nested target binds it"] = fill(
    STORED, before="", target="(obs, h_stored)", mark=""
)
SILENT["stored state: an index and the stored pair"] = fill(
    STORED.replace("in replay:", "in enumerate(replay):"),
    before="",
    target="i, (obs, h_stored)",
    mark="",
)
FOUND["stored state: one start for the whole loop"] = fill(
    STORED, before="h_stored = torch.zeros(1, 8)", target="obs, _", mark="  # expect: TBP015"
)


# --------------------------------- 4. a loss logged in a record, a list extended, a meter

LOGGED = (
    HEADER
    + """

class AverageMeter:
    def __init__(self):
        self.sum = 0
        self.count = 0
        self.values = []

    def update(self, val, n=1):
        {meter_body}
        self.count += n


gru = nn.GRU(4, 8)
opt = torch.optim.SGD(gru.parameters(), lr=0.01)
meter = AverageMeter()
history = []
h = None
for x in torch.randn(4, 5, 2, 4):
    out, h = gru(x, h)
    h = h.detach()
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    {log}
"""
)
PLAIN_METER = "self.sum += val * n"
for label, log in {
    "a dict record": 'history.append({"loss": loss, "step": len(history)})',
    "a dict() record": "history.append(dict(loss=loss, n=x.size(1)))",
    "a list extended": "history.extend([loss])",
    "a meter's running sum": "meter.update(loss, x.size(1))",
    "a meter's running sum, by keyword": "meter.update(val=loss)",
}.items():
    FOUND[f"logged with its graph: {label}"] = fill(
        LOGGED, meter_body=PLAIN_METER, log=log + "  # expect: TBP006"
    )
for label, log in {
    "a dict record of a number": 'history.append({"loss": loss.item(), "step": 1})',
    "a dict() record of a cut": "history.append(dict(loss=loss.detach()))",
    "a list extended with numbers": "history.extend([loss.item()])",
    "a list extended with sizes": "history.extend(x.size())",
    "a meter given a number": "meter.update(loss.item(), x.size(1))",
    "a meter given a cut": "meter.update(loss.detach())",
    "a meter given a count only": "meter.update(1.0, x.size(1))",
}.items():
    SILENT[f"logged as a number: {label}"] = fill(LOGGED, meter_body=PLAIN_METER, log=log)
FOUND["logged with its graph: a meter that appends"] = fill(
    LOGGED,
    meter_body="self.values.append(val)",
    log="meter.update(loss)  # expect: TBP006",
)
FOUND["logged with its graph: a meter that adds by assignment"] = fill(
    LOGGED,
    meter_body="self.sum = self.sum + val * n",
    log="meter.update(loss)  # expect: TBP006",
)
for label, body in {
    "takes the item itself": "self.sum += val.item() * n",
    "makes it a float first": "val = float(val)\n        self.sum += val * n",
    "keeps only the last value": "self.last = val",
}.items():
    SILENT[f"meter that keeps no graph: {label}"] = fill(
        LOGGED, meter_body=body, log="meter.update(loss)"
    )
SILENT["meter updated under no_grad"] = fill(
    LOGGED,
    meter_body=PLAIN_METER,
    log="with torch.no_grad():\n        meter.update(loss)",
)


# ------------------------------- 6. a hand-written cell: a function of weights and the state

HAND_CELL = (
    HEADER
    + """
W = nn.Parameter(torch.randn(4, 8) * 0.1)
U = nn.Parameter(torch.randn(8, 8) * 0.1)
opt = torch.optim.SGD([W, U], lr=0.01)


def rnn_step(x, h):
    return {step}


h = torch.zeros(2, 8)
xs = torch.randn(20, 2, 4)
for w in range(4):
    {cut}
    loss = 0
    for t in range(w * 5, w * 5 + 5):
        h = rnn_step(xs[t], h){mark}
        loss = loss + h.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
)
for label, step in {
    "the @ operator": "torch.tanh(x @ W + h @ U)",
    "torch.mm": "torch.tanh(torch.mm(x, W) + torch.mm(h, U))",
    "torch.matmul": "torch.relu(torch.matmul(x, W) + torch.matmul(h, U))",
    "a matmul method": "torch.tanh(x.matmul(W) + h.matmul(U))",
}.items():
    FOUND[f"hand-written cell, uncut: {label}"] = fill(
        HAND_CELL, step=step, cut="pass", mark="  # expect: TBP001"
    )
    SILENT[f"hand-written cell, cut per window: {label}"] = fill(
        HAND_CELL, step=step, cut="h = h.detach()", mark=""
    )


@pytest.mark.parametrize("source", list(FOUND.values()), ids=list(FOUND))
def test_found(source: str) -> None:
    assert snippet_findings(source) == expected_sorted(source)


@pytest.mark.parametrize("source", list(SILENT.values()), ids=list(SILENT))
def test_silent(source: str) -> None:
    assert snippet_findings(source) == []


# ----------------------------- 5. TBP006's fix keeps a tensor where the total is read as one

TOTAL_READ = (
    HEADER
    + """
gru = nn.GRU(4, 8)
opt = torch.optim.SGD(gru.parameters(), lr=0.01)
{start}
h = None
for x in torch.randn(4, 5, 2, 4):
    out, h = gru(x, h)
    h = h.detach()
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    {accumulate}
{read}
"""
)
FIX_CASES: dict[str, tuple[str, str, str, str]] = {
    # label: (start, accumulate, read, the accumulation once fixed)
    "a total read with .item()": (
        "total_loss = 0",
        "total_loss += loss",
        "print(total_loss.item() / 4)",
        "total_loss += loss.detach()",
    ),
    "a total moved to the cpu": (
        "total_loss = 0",
        "total_loss = total_loss + loss",
        "mean = total_loss.cpu() / 4",
        "total_loss = total_loss + loss.detach()",
    ),
    "a list stacked": (
        "losses = []",
        "losses.append(loss)",
        "mean = torch.stack(losses).mean()",
        "losses.append(loss.detach())",
    ),
    "a list whose last element is read as a tensor": (
        "losses = []",
        "losses.append(loss)",
        "print(losses[-1].item())",
        "losses.append(loss.detach())",
    ),
    "a total printed": (
        "total_loss = 0",
        "total_loss += loss",
        "print(total_loss / 4)",
        "total_loss += loss.item()",
    ),
    "a list summed": (
        "losses = []",
        "losses.append(loss)",
        "mean = sum(losses) / len(losses)",
        "losses.append(loss.item())",
    ),
    "a list made a tensor": (
        "losses = []",
        "losses.append(loss)",
        "mean = torch.tensor(losses).mean()",
        "losses.append(loss.item())",
    ),
}


@pytest.mark.parametrize("case", list(FIX_CASES.values()), ids=list(FIX_CASES))
def test_tbp006_fix_keeps_what_the_total_is_read_as(case: tuple[str, str, str, str]) -> None:
    start, accumulate, read, fixed_line = case
    source = fill(TOTAL_READ, start=start, accumulate=accumulate, read=read)
    assert snippet_findings(source) == [
        ("TBP006", source.splitlines().index("    " + accumulate) + 1)
    ]
    fixed = fixed_by("TBP006", source)
    assert fixed is not None
    assert "    " + fixed_line in fixed.splitlines()
