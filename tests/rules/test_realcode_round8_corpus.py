"""Issue 12, round 8: a held-out-style round on recurrent-state code from repositories the
linter was never tuned to (`benchmarks/realworld/manifest/round8.toml`), labelled before it
ran. The classes behind what it got wrong, each with SILENT twins (the family, not the
repositories' lines).

- A running total kept on the object (`self.total_loss = self.total_loss + loss`,
  `self.losses.append(loss)`) by a method that back-propagates that loss: the method runs once
  per update (an agent's `learn()`, a trainer's `train_step()`), and the attribute outlives
  every call, so it keeps every update's graph alive although there is no loop in sight
  (TBP006). A total made anew at the top of the method, a number (`loss.item()`,
  `loss.detach()`), a total that is itself back-propagated, or one added under
  `torch.no_grad()` keeps nothing.
- A loader without `drop_last=True` whose dataset was trimmed to whole batches first
  (`idx[n - n // bs * bs:]`, `data[: len(data) // bs * bs]`, `int(n / bs) * bs`, with the
  loader's own batch size) has no short last batch: the state built for `batch_size` rows fits
  every batch (no TBP011). Trimmed to another size, or not at all, the last batch may still be
  short.
- A name that held the back-propagated loss and is rebound to a plain number before it is
  accumulated (`loss = total_loss / len(dataset)` after the batch loop, with `total_loss`
  summing `.item()`s; then `loss_list.append(loss)`) adds that number, not a graph (no
  TBP006). Rebound to something made from the loss itself, or not rebound, it still holds
  the last batch's graph.
"""

from __future__ import annotations

import pytest

from tbptt_lint.testing import expected_sorted, snippet_findings

HEADER = """\
import torch
import torch.nn as nn
"""


FOUND: dict[str, str] = {}
SILENT: dict[str, str] = {}

# ------------------------------------------------- a running total kept on self across calls

AGENT = (
    HEADER
    + """

class Agent(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.LSTM(4, 8)
        self.head = nn.Linear(8, 2)
        self.optimizer = torch.optim.Adam(self.parameters())
        self.total_loss = 0.0
        self.losses = []

    def learn(self, x, y):
        out, _ = self.net(x)
        loss = nn.functional.mse_loss(self.head(out), y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
{tail}
"""
)

FOUND["self-total-plus-loss"] = AGENT.format(
    tail="""\
        self.total_loss = self.total_loss + loss  # expect: TBP006
        self.average_loss = self.total_loss / 10"""
)

FOUND["self-total-augmented"] = AGENT.format(
    tail="""\
        self.total_loss += loss  # expect: TBP006"""
)

FOUND["self-list-append"] = AGENT.format(
    tail="""\
        self.losses.append(loss)  # expect: TBP006"""
)

FOUND["self-total-scaled-term"] = AGENT.format(
    tail="""\
        self.total_loss = self.total_loss + loss * x.size(1)  # expect: TBP006"""
)

FOUND["self-total-before-backward"] = (
    HEADER
    + """

class Trainer:
    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer
        self.epoch_loss = 0

    def train_step(self, x, y):
        self.optimizer.zero_grad()
        loss = nn.functional.cross_entropy(self.model(x), y)
        self.epoch_loss += loss  # expect: TBP006
        loss.backward()
        self.optimizer.step()
"""
)

SILENT["self-total-item"] = AGENT.format(
    tail="""\
        self.total_loss = self.total_loss + loss.item()"""
)

SILENT["self-total-detached"] = AGENT.format(
    tail="""\
        self.total_loss += loss.detach()
        self.losses.append(float(loss))"""
)

SILENT["self-total-made-anew-each-call"] = AGENT.format(
    tail="""\
        self.total_loss = 0
        self.total_loss = self.total_loss + loss"""
).replace(
    "        out, _ = self.net(x)\n",
    "        self.total_loss = 0\n        out, _ = self.net(x)\n",
)

SILENT["self-last-loss-kept"] = AGENT.format(
    tail="""\
        self.loss = loss"""
)

SILENT["self-total-under-no-grad"] = AGENT.format(
    tail="""\
        with torch.no_grad():
            self.total_loss = self.total_loss + loss"""
)

SILENT["self-total-back-propagated"] = (
    HEADER
    + """

class Accumulator:
    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer
        self.pending = 0

    def add(self, x, y, last):
        loss = nn.functional.mse_loss(self.model(x), y)
        self.pending = self.pending + loss
        if last:
            self.optimizer.zero_grad()
            self.pending.backward()
            self.optimizer.step()
            self.pending = 0
"""
)

SILENT["local-total-without-loop"] = (
    HEADER
    + """

def train_step(model, optimizer, x, y):
    total = 0
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
    total = total + loss
    return total.item()
"""
)


# ------------------------------------------ a dataset trimmed to whole batches (no short last)

STOCK = (
    HEADER
    + """from torch.utils.data import DataLoader, Subset, TensorDataset

batch_size = 6
hidden_size = 5


def train(series, targets):
    master = TensorDataset(series, targets)
    n = len(master)
{trim}
    loader = DataLoader({dataset}, batch_size=batch_size, shuffle=False)
    net = nn.LSTM(3, hidden_size, batch_first=True)
    head = nn.Linear(hidden_size, 1)
    optimizer = torch.optim.Adam([*net.parameters(), *head.parameters()])
    for epoch in range(3):
        h = torch.zeros(1, batch_size, hidden_size)
        c = torch.zeros(1, batch_size, hidden_size)
        for x, y in loader:{mark}
            optimizer.zero_grad()
            out, (h, c) = net(x, (h, c))
            h, c = h.detach(), c.detach()
            loss = nn.functional.mse_loss(head(out[:, -1]), y)
            loss.backward()
            optimizer.step()
"""
)

FOUND["stock-untrimmed-loader"] = STOCK.format(
    trim="    train_set = master", dataset="train_set", mark="  # expect: TBP011"
)
FOUND["stock-trimmed-to-another-size"] = STOCK.format(
    trim="    drop = n - int(n / 4) * 4\n    train_set = Subset(master, list(range(n))[drop:n])",
    dataset="train_set",
    mark="  # expect: TBP011",
)
SILENT["stock-index-list-trimmed-int-division"] = STOCK.format(
    trim="    drop = n - int(n / batch_size) * batch_size\n"
    "    idx = list(range(n))\n"
    "    train_set = Subset(master, idx[drop:n])",
    dataset="train_set",
    mark="",
)
SILENT["stock-slice-floor-division"] = STOCK.format(
    trim="    keep = n // batch_size * batch_size\n    train_set = Subset(master, range(keep))",
    dataset="train_set",
    mark="",
)
SILENT["stock-tensors-trimmed-inline"] = STOCK.format(
    trim="    m = len(series) - len(series) % batch_size",
    dataset="TensorDataset(series[:m], targets[:m])",
    mark="",
)


# ------------------------------------------------ a loss name rebound to a number, then kept

EPOCHS = (
    HEADER
    + """

def fit(model, loader, optimizer, criterion, n_items):
    loss_list = []
    for epoch in range(10):
        total_loss = 0
        for x, y in loader:
            out, _ = model(x)
            loss = criterion(out, y)
            total_loss += loss.item() * x.size(0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
{after}
    return loss_list
"""
)

SILENT["loss-rebound-to-epoch-average"] = EPOCHS.format(
    after="""        loss = total_loss / n_items
        loss_list.append(loss)"""
)
SILENT["loss-rebound-to-float"] = EPOCHS.format(
    after="""        loss = float(total_loss)
        loss_list.append(loss)"""
)
FOUND["loss-appended-after-batch-loop"] = EPOCHS.format(
    after="""        loss_list.append(loss)  # expect: TBP006"""
)
FOUND["loss-rebound-from-itself"] = EPOCHS.format(
    after="""        loss = loss / n_items
        loss_list.append(loss)  # expect: TBP006"""
)


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    source = FOUND[name]
    assert snippet_findings(source) == expected_sorted(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert snippet_findings(SILENT[name]) == []
