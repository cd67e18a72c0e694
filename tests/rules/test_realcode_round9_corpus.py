"""Round 9: a held-out-style round on code from repositories the linter was never tuned to
(`benchmarks/realworld/manifest/round9.toml`), labelled before it ran. The class behind what it
got wrong, with SILENT twins (the family, not the repositories' lines).

- A step loop that calls a one-step cell (a torch `*Cell`, or a class of the run whose
  `forward` has no loop and hands back its new state beside its output) but keeps the new
  state under another name (`o_t, new_state = self.cell(x_t, state)`) while the state it
  passes in is only ever rebound from itself, masked at episode ends
  (`state = tuple(nd * s for s in state)`): every step starts from the loop's first state,
  and nothing passes between steps (TBP015). It holds in a model file with no backward of its
  own, where the caller that back-propagates lives elsewhere. The same loop that passes the
  new state back, directly, through a rename (`state = new_state`) or through the mask
  (`state = tuple(nd * s for s in new_state)`), threads it; a state left out by `_`, a fixed
  start passed unchanged, or a callee whose `forward` loops over a sequence itself, is not
  reported.
"""

from __future__ import annotations

import pytest

from tbptt_lint.testing import expected_sorted, fill, snippet_findings

HEADER = """\
import torch
import torch.nn as nn
"""

FOUND: dict[str, str] = {}
SILENT: dict[str, str] = {}

CONV_CELL = """

class ConvLSTMCell(nn.Module):
    def __init__(self, channels, hidden):
        super().__init__()
        self.gates = nn.Conv2d(channels + hidden, 4 * hidden, 3, padding=1)

    def forward(self, x, state):
        h, c = state
        i, f, g, o = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        cc = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        ch = torch.sigmoid(o) * torch.tanh(cc)
        state = ch, cc
        return ch, state
"""

# The shape of the corpus file: a vision network that steps the cell over frames, in a model
# file that runs no backward.
VISION = (
    HEADER
    + CONV_CELL
    + """

class VisionNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = ConvLSTMCell(3, 8)

    def forward(self, X, done, vision_lstm_state):
        outputs = []
        notdone = (~done).float()
        for X_t, nd in zip(X.unbind(), notdone.unbind()):
            nd = nd.view(-1, 1, 1, 1)
            {step}
            outputs.append(O_t)
        return torch.stack(outputs), vision_state
"""
)

FOUND["user-cell-new-state-kept-aside-model-file"] = fill(
    VISION,
    step="""vision_lstm_state = tuple((nd * s) for s in vision_lstm_state)
            O_t, vision_state = self.lstm(X_t, vision_lstm_state)  # expect: TBP015""",
)
SILENT["user-cell-state-threaded"] = fill(
    VISION,
    step="""vision_lstm_state = tuple((nd * s) for s in vision_lstm_state)
            O_t, vision_lstm_state = self.lstm(X_t, vision_lstm_state)
            vision_state = vision_lstm_state""",
)
SILENT["user-cell-state-handed-on-by-rename"] = fill(
    VISION,
    step="""vision_lstm_state = tuple((nd * s) for s in vision_lstm_state)
            O_t, vision_state = self.lstm(X_t, vision_lstm_state)
            vision_lstm_state = vision_state""",
)
SILENT["user-cell-new-state-masked-back"] = fill(
    VISION,
    step="""O_t, vision_state = self.lstm(X_t, vision_lstm_state)
            vision_lstm_state = tuple((nd * s) for s in vision_state)""",
)
SILENT["user-cell-new-state-discarded-by-underscore"] = fill(
    VISION,
    step="""vision_lstm_state = tuple((nd * s) for s in vision_lstm_state)
            O_t, _ = self.lstm(X_t, vision_lstm_state)
            vision_state = vision_lstm_state""",
)
SILENT["user-cell-fixed-start-never-rebound"] = fill(
    VISION,
    step="""O_t, vision_state = self.lstm(X_t, vision_lstm_state)""",
)

# The same loop in a script that trains the network in the same file.
TRAINED = (
    HEADER
    + CONV_CELL
    + """

cell = ConvLSTMCell(3, 8)
optimizer = torch.optim.SGD(cell.parameters(), lr=0.1)
for frames, done in clips:
    state = (torch.zeros(2, 8, 5, 5), torch.zeros(2, 8, 5, 5))
    outputs = []
    for t in range(frames.size(0)):
        keep = (~done[t]).float().view(-1, 1, 1, 1)
        {step}
        outputs.append(out)
    loss = torch.stack(outputs).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
"""
)
FOUND["user-cell-new-state-kept-aside-training-script"] = fill(
    TRAINED,
    step="""state = (state[0] * keep, state[1] * keep)
        out, new_state = cell(frames[t], state)  # expect: TBP015""",
)
SILENT["user-cell-training-script-threaded"] = fill(
    TRAINED,
    step="""state = (state[0] * keep, state[1] * keep)
        out, state = cell(frames[t], state)""",
)

# A torch cell whose new state goes to another name while the old one is only masked.
TORCH_CELL = (
    HEADER
    + """

cell = nn.{cell}(4, 8)
head = nn.Linear(8, 1)
optimizer = torch.optim.Adam(list(cell.parameters()) + list(head.parameters()))
for x, mask, y in episodes:
    {init}
    loss = 0
    for t in range(x.size(0)):
        {step}
        loss = loss + (head(h_out) - y[t]).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
"""
)
FOUND["gru-cell-new-state-kept-aside"] = fill(
    TORCH_CELL,
    cell="GRUCell",
    init="h = torch.zeros(x.size(1), 8)",
    step="""h = h * mask[t]
        h_out = cell(x[t], h)  # expect: TBP015""",
)
FOUND["lstm-cell-new-state-kept-aside"] = fill(
    TORCH_CELL,
    cell="LSTMCell",
    init="h, c = torch.zeros(x.size(1), 8), torch.zeros(x.size(1), 8)",
    step="""h, c = h * mask[t], c * mask[t]
        h_out, c_out = cell(x[t], (h, c))  # expect: TBP015""",
)
SILENT["gru-cell-state-threaded-through-mask"] = fill(
    TORCH_CELL,
    cell="GRUCell",
    init="h = torch.zeros(x.size(1), 8)",
    step="""h_out = cell(x[t], h * mask[t])
        h = h_out""",
)
SILENT["lstm-cell-state-threaded"] = fill(
    TORCH_CELL,
    cell="LSTMCell",
    init="h, c = torch.zeros(x.size(1), 8), torch.zeros(x.size(1), 8)",
    step="""h, c = h * mask[t], c * mask[t]
        h_out, c_out = cell(x[t], (h, c))
        h, c = h_out, c_out""",
)

# A callee whose forward runs its own loop over a sequence is no one-step cell: the loop
# around it may start each chunk from the same state on purpose.
SEQUENCE_MODEL = (
    HEADER
    + """

class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(4, 8)

    def forward(self, xs, h):
        outs = []
        for x in xs:
            h = self.cell(x, h)
            outs.append(h)
        return torch.stack(outs), h


encoder = Encoder()
optimizer = torch.optim.Adam(encoder.parameters())
for chunks, mask in data:
    h0 = torch.zeros(2, 8)
    for chunk in chunks:
        h0 = h0 * mask
        out, h_last = encoder(chunk, h0)
        loss = out.pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""
)
SILENT["sequence-model-fixed-start-per-chunk"] = SEQUENCE_MODEL


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    source = FOUND[name]
    assert snippet_findings(source) == expected_sorted(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert snippet_findings(SILENT[name]) == []
