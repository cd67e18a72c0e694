"""Issue 12, round 7: an adversarial pass of 54 small runnable training programs (labels
checked by running each with torch first). The classes it found:

- TBP009 compares a window's length with the loop's stride only where that window reaches a
  recurrent call whose state is carried from pass to pass. A window read by a call whose
  state is thrown away (`out, _ = gru(stream[t - k2:t], h0)`, tbptt with k1 != k2, the state
  advanced k1 steps under `no_grad`) carries nothing; nor does a gradient window after a
  per-step burn-in loop when the state is made anew every pass. Slices of the same sequence
  that together tile the stride (a `no_grad` warm-up `x[i:i + 10]` then the window
  `x[i + 10:i + 20]`, every 20 steps) leave neither gaps nor overlaps.
- `last = out[-1:]` then `last.detach_()`: a name bound to basic indexing of a tensor is a
  view, and detaching it in place raises (TBP014). Indexing a list of layers or a tuple is
  not a view, and a name rebound in between is forgotten.
- `y = x[:, i + 1:i + 11]` on the last window is a step short; a loop that measures it
  (`n = min(out.size(1), y.size(1))`, `len(y)`, `y.shape[1]`) cuts the loss to it (no TBP009).
- `detach_state(state)` as a statement, where the file's function only returns the cut
  state, throws the cut away (TBP003, not TBP001); a helper that cuts in place and returns
  its argument (`h.detach_(); return h`) cuts when called as a statement (no TBP001).
- A moving average written as a conditional expression (`avg = loss if avg is None else
  0.98 * avg + 0.02 * loss`) accumulates the loss with its graph (TBP006), as the plain
  `avg = 0.98 * avg + 0.02 * loss` does.
"""

from __future__ import annotations

import pytest

from tbptt_lint.testing import expected_sorted, fill, snippet_findings

HEADER = """\
import torch
import torch.nn as nn

stream = torch.randn(60, 2, 4)
"""


FOUND: dict[str, str] = {}
SILENT: dict[str, str] = {}

# ------------------------------------------- 1. windows that no carried state runs through

K1_K2 = (
    HEADER
    + """
gru = nn.GRU(4, 8)
opt = torch.optim.SGD(gru.parameters(), lr=0.05)
k1, k2 = 5, 10
h_start = torch.zeros(1, 2, 8)
for t in range(k2, stream.size(0), k1):
    {window}
    loss = out[-k1:].pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    {advance}
"""
)
SILENT["k1 != k2: the window's state thrown away, the start advanced under no_grad"] = fill(
    K1_K2,
    window="out, _ = gru(stream[t - k2:t], h_start)",
    advance="with torch.no_grad():\n        _, h_start = gru(stream[t - k2:t - k2 + k1], h_start)",
)
SILENT["k1 != k2: the window bound to a name, its state thrown away"] = fill(
    K1_K2,
    window="window = stream[t - k2:t]\n    out, _ = gru(window, h_start)",
    advance="with torch.no_grad():\n        _, h_start = gru(stream[t - k2:t - k2 + k1], h_start)",
)
FOUND["k1 != k2: the overlapping window's own state carried"] = fill(
    K1_K2,
    window="out, h_start = gru(stream[t - k2:t], h_start)  # expect: TBP009",
    advance="h_start = h_start.detach()",
)
FOUND["k1 != k2: the overlapping window reaches the carried call through a name"] = fill(
    K1_K2,
    window="x = stream[t - k2:t]  # expect: TBP009\n    out, h_start = gru(x * 2, h_start)",
    advance="h_start = h_start.detach()",
)

BURN_IN_LOOP = (
    HEADER
    + """
lstm = nn.LSTM(4, 8)
opt = torch.optim.SGD(lstm.parameters(), lr=0.1)
burn_in, window = 10, 10
state = None
for start in range(0, 40, 20):
    with torch.no_grad():
        for t in range(start, start + burn_in):
            _, state = lstm(stream[t:t + 1], state)
    out, {kept} = lstm(stream[start + burn_in:start + burn_in + window], state){mark}
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    state = {after}
"""
)
SILENT["burn-in loop then a window whose state is thrown away"] = fill(
    BURN_IN_LOOP, kept="_", after="None", mark=""
)
SILENT["a no_grad burn-in loop fills the stride before a window whose state is carried"] = fill(
    BURN_IN_LOOP, kept="state", after="tuple(s.detach() for s in state)", mark=""
)
FOUND["a window longer than the stride, its state carried"] = fill(
    BURN_IN_LOOP.replace("start + burn_in:start + burn_in + window", "start + 10:start + 35"),
    kept="state",
    after="tuple(s.detach() for s in state)",
    mark="  # expect: TBP009",
)

WARM_THEN_WINDOW = (
    HEADER
    + """
lstm = nn.LSTM(4, 8)
opt = torch.optim.SGD(lstm.parameters(), lr=0.1)
state = None
for start in range(0, 60, {stride}):
    with torch.no_grad():
        _, state = lstm(stream[start:start + 10], state)
    out, state = lstm(stream[start + 10:start + 20], state){mark}
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    state = tuple(s.detach() for s in state)
"""
)
SILENT["a no_grad warm-up and the window tile the stride"] = fill(
    WARM_THEN_WINDOW, stride="20", mark=""
)
FOUND["a no_grad warm-up and the window leave a gap"] = fill(
    WARM_THEN_WINDOW, stride="30", mark="  # expect: TBP009"
)
SILENT["warm-up and window tile the stride, slices bound to names"] = (
    HEADER
    + """
rnn = nn.GRU(4, 8)
opt = torch.optim.SGD(rnn.parameters(), lr=0.1)
h = torch.zeros(1, 2, 8)
for i in range(0, 56, 8):
    warm, x = stream[i:i + 3], stream[i + 3:i + 8]
    with torch.no_grad():
        _, h = rnn(warm, h)
    out, h = rnn(x, h)
    out.pow(2).mean().backward()
    opt.step()
    opt.zero_grad()
    h = h.detach()
"""
)

# ------------------------------------------------- 2. a name bound to indexing of a tensor

VIEW_ALIAS = (
    HEADER
    + """
lstm = nn.LSTM(4, 8)
opt = torch.optim.SGD(lstm.parameters(), lr=0.1)
h = torch.zeros(1, 2, 8)
c = torch.zeros(1, 2, 8)
for x in stream.split(10):
    out, (h, c) = lstm(x, (h, c))
    {bind}
    loss = last.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    {detach}
    h, c = h.detach(), c.detach()
"""
)
FOUND["view alias: last = out[-1:] detached in place"] = fill(
    VIEW_ALIAS, bind="last = out[-1:]", detach="last.detach_()  # expect: TBP014"
)
FOUND["view alias: last = out[:, 0] detached in place"] = fill(
    VIEW_ALIAS, bind="last = out[:, 0]", detach="last.detach_()  # expect: TBP014"
)
SILENT["view alias: a copy of the slice detached in place"] = fill(
    VIEW_ALIAS, bind="last = out[-1:].clone()", detach="last.detach_()"
)
SILENT["view alias: the slice rebound out of place"] = fill(
    VIEW_ALIAS, bind="last = out[-1:]", detach="last = last.detach()"
)
SILENT["view alias: the whole output detached in place"] = fill(
    VIEW_ALIAS, bind="last = out", detach="last.detach_()"
)
SILENT["view alias: an element of a tuple of states detached in place"] = fill(
    VIEW_ALIAS, bind="pair = (h, c)\n    last = pair[0]", detach="last.detach_()"
)
SILENT["view alias: indexed name rebound before the detach"] = fill(
    VIEW_ALIAS, bind="last = out[-1:]", detach="last = out.sum(0, keepdim=True)\n    last.detach_()"
)
# ------------------------------------------- 3. a moving average in a conditional expression

SMOOTHED = (
    HEADER
    + """
rnn = nn.LSTM(4, 8)
opt = torch.optim.SGD(rnn.parameters(), lr=0.1)
state = None
smoothed = None
for x in stream.split(10):
    out, state = rnn(x, state)
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    state = tuple(s.detach() for s in state)
    {average}
"""
)
FOUND["moving average of the loss in a conditional expression"] = fill(
    SMOOTHED,
    average="smoothed = loss if smoothed is None else 0.98 * smoothed + 0.02 * loss"
    "  # expect: TBP006",
)
FOUND["moving average in a conditional expression, the adding branch first"] = fill(
    SMOOTHED,
    average="smoothed = smoothed * 0.9 + loss * 0.1 if smoothed is not None else loss"
    "  # expect: TBP006",
)
SILENT["moving average of the loss's value in a conditional expression"] = fill(
    SMOOTHED,
    average="smoothed = loss.item() if smoothed is None else 0.98 * smoothed + 0.02 * loss.item()",
)
SILENT["moving average of the detached loss in a conditional expression"] = fill(
    SMOOTHED,
    average="lv = loss.detach()\n    smoothed = lv if smoothed is None else 0.9 * smoothed + lv",
)
SILENT["a conditional expression that picks, not accumulates"] = fill(
    SMOOTHED,
    average="smoothed = loss.item() if smoothed is None else min(smoothed, loss.item())",
)


# ------------------------------------------- 4. a short last target that the loop measures

SHORT_TARGET = (
    HEADER
    + """
lstm = nn.LSTM(4, 8, batch_first=True)
opt = torch.optim.SGD(lstm.parameters(), lr=0.1)
x_all = torch.randn(3, 40, 4)
state = None
for i in range(0, x_all.size(1), 10):
    x = x_all[:, i:i + 10]
    y = x_all[:, i + 1:i + 11]{mark}
    out, state = lstm(x, state)
    {measure}
    loss = (out[:, :n, :4] - y[:, :n]).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    state = (state[0].detach(), state[1].detach())
"""
)
SILENT["short last target: the loss cut to min of both lengths"] = fill(
    SHORT_TARGET, mark="", measure="n = min(out.size(1), y.size(1))"
)
SILENT["short last target: the loss cut to len(y)"] = fill(
    SHORT_TARGET, mark="", measure="n = len(y)"
)
SILENT["short last target: the loss cut to y.shape[1]"] = fill(
    SHORT_TARGET, mark="", measure="n = y.shape[1]"
)
FOUND["short last target: the loss cut to the input's length"] = fill(
    SHORT_TARGET, mark="  # expect: TBP009", measure="n = out.size(1)"
)


# --------------------------------------------- 5. a cutting helper called as a statement

HELPER_STATEMENT = (
    HEADER
    + """
{helper}


lstm = nn.LSTM(4, 8, num_layers=2)
opt = torch.optim.SGD(lstm.parameters(), lr=0.1)
state = None
for x in stream.split(10):
    out, state = lstm(x, state)
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    {call}
"""
)
RETURNS_CUT = """def detach_state(state):
    if state is None:
        return None
    return type(state)(s.detach() for s in state)"""
CUTS_IN_PLACE = """def detach_state(state):
    for s in state:
        s.detach_()
    return state"""
FOUND["a helper that returns the cut state, its result thrown away"] = fill(
    HELPER_STATEMENT, helper=RETURNS_CUT, call="detach_state(state)  # expect: TBP003"
)
FOUND["repackage_hidden called as a statement"] = fill(
    HELPER_STATEMENT,
    helper="""def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)""",
    call="repackage_hidden(state)  # expect: TBP003",
)
SILENT["a helper that returns the cut state, its result assigned"] = fill(
    HELPER_STATEMENT, helper=RETURNS_CUT, call="state = detach_state(state)"
)
SILENT["a helper that cuts in place and returns its argument, called as a statement"] = fill(
    HELPER_STATEMENT, helper=CUTS_IN_PLACE, call="detach_state(state)"
)
SILENT["a helper that cuts a tensor in place and returns it, called as a statement"] = (
    HEADER
    + """
def rep(h):
    h.detach_()
    return h


gru = nn.GRU(4, 8)
opt = torch.optim.SGD(gru.parameters(), lr=0.1)
h = torch.zeros(1, 2, 8)
for x in stream.split(10):
    out, h = gru(x, h)
    out.pow(2).mean().backward()
    opt.step()
    opt.zero_grad()
    rep(h)
"""
)


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    source = FOUND[name]
    assert expected_sorted(source), "a FOUND case marks its lines"
    assert snippet_findings(source) == expected_sorted(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert snippet_findings(SILENT[name]) == []
