"""Issue 12, round 3: two classes of false alarm found by scoring the merged round-2 work on the
real-code corpus, each with SILENT variants and the FOUND twins a real bug nearby still gives.

- A method of the trainer that runs the backward reaches only the attributes of `self` it
  reads (directly or through the methods it calls on `self`): a best score and a patience
  counter kept on the trainer, updated by `best, steps = early_stop(score, best, steps)`,
  are in no graph it back-propagates.
- A helper that back-propagates its loss and returns something the analysis cannot vouch for
  (`return loss_object.get_loss()`, `return compute(loss)`) hands back no graph: summing its
  result is no TBP006. Returning the loss itself, arithmetic on it or a graph-keeping tensor
  method of it still is.
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

# ------------------------------------------------------------ trainer attributes and backward

TRAINER = (
    HEADER
    + """
from trainer_utils import early_stop  # another file, whose body the analysis does not see


class Trainer:
    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer
        self.best = -1.0
        self.steps = 0

{methods}

    def fit(self, batches, epochs):
        for epoch in range(epochs):
            self._train_epoch(batches)
            score = self._evaluate(batches)
            self.best, self.steps, stop = early_stop(score, self.best, self.steps, 5)
            if stop:
                break
"""
)

EVALUATE = """
    def _evaluate(self, batches):
        with torch.no_grad():
            return float(sum(self.model(x).mean() for x, _ in batches))
"""

SILENT["a trainer's epoch method reads the model and the optimizer only"] = TRAINER.format(
    methods=EVALUATE
    + """
    def _train_epoch(self, batches):
        for x, y in batches:
            loss = (self.model(x) - y).pow(2).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
"""
)

SILENT["...through a batch method it calls on self"] = TRAINER.format(
    methods=EVALUATE
    + """
    def _train_epoch(self, batches):
        for x, y in batches:
            self._train_batch(x, y)

    def _train_batch(self, x, y):
        loss = (self.model(x) - y).pow(2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
"""
)

SILENT["...with the counters kept under other names"] = (
    TRAINER.replace("self.best", "self.top_score")
    .replace("self.steps", "self.bad_epochs")
    .format(
        methods=EVALUATE
        + """
    def _train_epoch(self, batches):
        for x, y in batches:
            self.optimizer.zero_grad()
            self.model.loss(x, y).backward()
            self.optimizer.step()
"""
    )
)

STATEFUL_TRAINER = (
    HEADER
    + """
class Trainer:
    def __init__(self, vocab):
        self.rnn = nn.GRU(vocab, 16)
        self.head = nn.Linear(16, vocab)
        self.optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        self.hidden = torch.zeros(1, 4, 16)

    def parameters(self):
        return list(self.rnn.parameters()) + list(self.head.parameters())

{step}

    def fit(self, windows):
        for x, y in windows:
            out, self.hidden = self.rnn(x, self.hidden){mark}
            self._update(out, y)
"""
)

FOUND["the method that runs the backward reads the state it carries"] = STATEFUL_TRAINER.format(
    step="""
    def _update(self, out, y):
        loss = (self.head(out) - y).pow(2).mean() + 0.0 * self.hidden.sum()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
""",
    mark="  # expect: TBP001",
)

FOUND["...the output handed to it comes from the state"] = STATEFUL_TRAINER.format(
    step="""
    def _update(self, out, y):
        loss = (self.head(out) - y).pow(2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
""",
    mark="  # expect: TBP001",
)

# ------------------------------------------- what a back-propagating helper hands back

SUMMING = (
    HEADER
    + """
def train_batch(model, optimizer, x, y, criterion):
{make_loss}
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {returned}


def train(model, optimizer, batches, criterion):
    epoch_total = 0
    for x, y in batches:
        batch_loss = train_batch(model, optimizer, x, y, criterion)
        epoch_total += batch_loss{mark}
    return epoch_total
"""
)
# A user's loss object (pytorch-seq2seq's `Loss`): it runs the backward and reports a number.
LOSS_OBJECT = """    loss = criterion
    loss.reset()
    loss.eval_batch(model(x), y)"""
LOSS_TENSOR = """    loss = criterion(model(x), y)"""

SILENT["the helper returns a method of a user's loss object"] = SUMMING.format(
    make_loss=LOSS_OBJECT, returned="loss.get_loss()", mark=""
)
SILENT["...another method of unknown meaning"] = SUMMING.format(
    make_loss=LOSS_OBJECT, returned="loss.acc_loss_value()", mark=""
)
SILENT["...a method of unknown meaning on a loss tensor"] = SUMMING.format(
    make_loss=LOSS_TENSOR, returned="loss.tolist()", mark=""
)
SILENT["...a function of the loss"] = SUMMING.format(
    make_loss=LOSS_TENSOR, returned="round(loss.item(), 4)", mark=""
)
FOUND["the helper returns the loss itself"] = SUMMING.format(
    make_loss=LOSS_TENSOR, returned="loss", mark="  # expect: TBP006"
)
FOUND["...arithmetic on it"] = SUMMING.format(
    make_loss=LOSS_TENSOR, returned="loss * x.size(0)", mark="  # expect: TBP006"
)
FOUND["...a graph-keeping tensor method of it"] = SUMMING.format(
    make_loss=LOSS_TENSOR, returned="loss.mean()", mark="  # expect: TBP006"
)


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    source = FOUND[name]
    assert expected_sorted(source), "a FOUND case marks its lines"
    assert snippet_findings(source) == expected_sorted(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert snippet_findings(SILENT[name]) == []
