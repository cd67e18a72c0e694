"""TBP011 on real code (issue 12, classes 3, 4 and the loader part of 14).

- Paths matter: a state is carried across the passes of a loop only when, on some path, the
  value a recurrent call reads may come from an earlier pass of that loop with no reset in
  between. A reset right before the only loop that uses the state, complementary resets on
  complementary branches, or a reset under the condition that also guards the use, start
  every pass afresh; a reset that does not run on every pass does not.
- Loaders are known by what they are: only `torch.utils.data.DataLoader` shuffles with
  `shuffle=True` or a random sampler; names are resolved in the scope that binds them.
- A loader passed to a function is followed into it, in the same file or another file of the
  run, and reported only when every call passes a shuffled one.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from tbptt_lint.analysis.api import check_source
from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings

HEADER = """\
import torch
import torch.nn as nn
from torch.utils.data import DataLoader
"""


def tbp011_lines(source: str) -> list[int]:
    findings = check_source(textwrap.dedent(source), "example.py", Settings())
    return [f.line for f in findings if f.code == "TBP011"]


def expected_lines(source: str) -> list[int]:
    """`# expect: TBP011` marks the lines a snippet must be reported on."""
    return [
        number
        for number, line in enumerate(source.splitlines(), start=1)
        if re.search(r"# expect: TBP011\b", line)
    ]


# ----------------------------------------------------------------------------- class 3
PATHS_FOUND = {
    "a reset only while the state is None, or when a flag asks": HEADER
    + """
def fit(model, dataset, optimizer, reset_flag):
    loader = DataLoader(dataset, batch_size=16, shuffle=True, drop_last=True)
    hidden = None
    for x, y in loader:  # expect: TBP011
        if hidden is None or reset_flag:
            hidden = model.init_hidden(16)
        else:
            hidden = hidden.detach()
        out, hidden = model(x, hidden)
        loss = (out - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
    "a reset under another condition than the use": HEADER
    + """
def fit(model, dataset, optimizer, use_rnn, fresh_start):
    loader = DataLoader(dataset, batch_size=8, shuffle=True, drop_last=True)
    hidden = None
    for x, y in loader:  # expect: TBP011
        if use_rnn and fresh_start:
            hidden = model.init_hidden(8)
        if use_rnn:
            features, hidden = model.rnn(x, hidden)
        else:
            features = model.encode(x)
        loss = model.head(features).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        hidden = hidden.detach()
""",
    "a reset on the first batch only": HEADER
    + """
rnn = nn.GRU(8, 32, batch_first=True)
loader = DataLoader(train_set, batch_size=4, shuffle=True, drop_last=True)
for i, (x, y) in enumerate(loader):  # expect: TBP011
    if i == 0:
        h = torch.zeros(1, 4, 32)
    h = h.detach()
    out, h = rnn(x, h)
    out.mean().backward()
""",
    "a reset every hundred steps does not guard the use": HEADER
    + """
def train(net, data, optimizer):
    batches = DataLoader(data, batch_size=8, shuffle=True, drop_last=True)
    state = net.begin_state(8)
    for step, (inputs, targets) in enumerate(batches):  # expect: TBP011
        if step % 100 == 0:
            state = net.begin_state(8)
        state = state.detach()
        logits, state = net(inputs, state)
        optimizer.zero_grad()
        logits.sum().backward()
        optimizer.step()
""",
    "a reset on one branch only, no reset per epoch on the other": HEADER
    + """
def train(net, data, optimizer, random_iter, epochs):
    loader = DataLoader(data, batch_size=8, shuffle=True, drop_last=True)
    state = None
    for epoch in range(epochs):  # expect: TBP011
        for x, y in loader:  # expect: TBP011
            if random_iter:
                state = net.begin_state(8)
            elif state is not None:
                state = state.detach()
            out, state = net(x, state)
            optimizer.zero_grad()
            out.sum().backward()
            optimizer.step()
""",
    "a state that survives an exception handler": HEADER
    + """
class Trainer:
    def fit(self, model, dataset):
        loader = DataLoader(dataset, batch_size=2, shuffle=True, drop_last=True)
        memory = None
        for batch in loader:  # expect: TBP011
            try:
                memory = memory.detach()
            except AttributeError:
                pass
            out, memory = model(batch, memory)
            out.sum().backward()
""",
    "an epoch reset on one branch only": HEADER
    + """
def train(net, corpus, optimizer, random_iter, epochs):
    state = None
    for epoch in range(epochs):  # expect: TBP011
        if random_iter:
            state = None
        for i in range(0, corpus.size(0) - 1, 35):
            if state is not None:
                state = state.detach()
            out, state = net(corpus[i:i + 35], state)
            optimizer.zero_grad()
            out.sum().backward()
            optimizer.step()
""",
    "carried into the next epoch when the epoch reset runs only once": HEADER
    + """
def train(model, train_data, bptt, optimizer, epochs):
    hidden = None
    for epoch in range(epochs):  # expect: TBP011
        if epoch == 0:
            hidden = model.init_hidden(20)
        for i in range(0, train_data.size(0) - 1, bptt):
            hidden = hidden.detach()
            output, hidden = model(train_data[i:i + bptt], hidden)
            optimizer.zero_grad()
            output.sum().backward()
            optimizer.step()
""",
}

PATHS_SILENT = {
    "the issue's snippet: a validation state reset right before its only loop": HEADER
    + """
def train(model, train_set, val_batches, optimizer, eval_every):
    loader = DataLoader(train_set, batch_size=8, shuffle=True, drop_last=True)
    for step, (x, y) in enumerate(loader):
        h = model.init_hidden(8)
        out, h = model(x, h)
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
        if step % eval_every == 0:
            val_h = model.init_hidden(8)
            for vx in val_batches:
                out, val_h = model(vx, val_h)
""",
    "a validation state reset before its loop, under no_grad, in a method": HEADER
    + """
class Runner:
    def run(self, train_set, val_loader):
        loader = DataLoader(train_set, batch_size=4, shuffle=True)
        for batch_idx, batch in enumerate(loader):
            state = None
            for t in range(0, batch.size(1), 10):
                out, state = self.rnn(batch[:, t:t + 10], state)
                out.sum().backward()
                state = state.detach()
            if batch_idx % 50 == 0 and self.validate:
                with torch.no_grad():
                    hidden = self.rnn.init_hidden(4)
                    for vx in val_loader:
                        out, hidden = self.rnn(vx, hidden)
""",
    "the issue's snippet with the evaluation state reset on a flag of the epoch": HEADER
    + """
rnn = nn.LSTM(8, 16)
train_loader = DataLoader(train_set, batch_size=4, shuffle=True, drop_last=True)
for epoch in range(10):
    for step, (x, y) in enumerate(train_loader):
        out, _ = rnn(x)
        out.sum().backward()
        if step % 200 == 0:
            eval_state = (torch.zeros(1, 4, 16), torch.zeros(1, 4, 16))
            for ex in eval_batches:
                out, eval_state = rnn(ex, eval_state)
                eval_state = tuple(s.detach() for s in eval_state)
""",
    "complementary branches: reset per window or once per epoch before the window loop": HEADER
    + """
def train(net, corpus, optimizer, random_iter, epochs, bptt):
    state = None
    for epoch in range(epochs):
        if not random_iter:
            state = net.begin_state(8)
        for i in range(0, corpus.size(0) - 1, bptt):
            if random_iter:
                state = net.begin_state(8)
            state = state.detach()
            out, state = net(corpus[i:i + bptt], state)
            optimizer.zero_grad()
            out.sum().backward()
            optimizer.step()
""",
    "complementary branches as if/else on both levels, with a flag on the config": HEADER
    + """
class LMTrainer:
    def fit(self, model, data, optimizer):
        hidden = None
        for epoch in range(self.epochs):
            if self.cfg.random_windows:
                pass
            else:
                hidden = model.init_hidden(self.cfg.batch_size)
            for i, start in enumerate(range(0, data.size(0) - 1, 35)):
                if not self.cfg.random_windows:
                    hidden = repackage(hidden)
                else:
                    hidden = model.init_hidden(self.cfg.batch_size)
                output, hidden = model(data[start:start + 35], hidden)
                optimizer.zero_grad()
                output.sum().backward()
                optimizer.step()
""",
    "complementary branches read through `or`": HEADER
    + """
def train(net, corpus, optimizer, stateful, epochs):
    state = None
    for epoch in range(epochs):
        if stateful:
            state = None
        for i in range(0, corpus.size(0) - 1, 35):
            if not stateful or state is None:
                state = net.begin_state(8)
            state = state.detach()
            out, state = net(corpus[i:i + 35], state)
            optimizer.zero_grad()
            out.sum().backward()
            optimizer.step()
""",
    "complementary branches read through `and`": HEADER
    + """
def train(net, corpus, optimizer, stateful, epochs):
    state = None
    for epoch in range(epochs):
        if stateful:
            state = net.begin_state(8)
        for i in range(0, corpus.size(0) - 1, 35):
            if stateful and state is not None:
                state = state.detach()
            else:
                state = net.begin_state(8)
            out, state = net(corpus[i:i + 35], state)
            optimizer.zero_grad()
            out.sum().backward()
            optimizer.step()
""",
    "windows of each batch from an iterator of unknown order": HEADER
    + """
def run_epoch(model, batches, optimizer, use_random_iter):
    hidden = None
    for X, Y in batches:
        if use_random_iter:
            hidden = None
        for i in range(0, X.shape[1], 35):
            if hidden is not None:
                hidden = [h.detach() for h in hidden]
            y_hat, hidden = model(X[:, i:i + 35], hidden)
            optimizer.zero_grad()
            y_hat.mean().backward()
            optimizer.step()
""",
    "d2l: reset when the state is None or sampling is random, per epoch otherwise": HEADER
    + """
def train_epoch(net, train_iter, loss, updater, use_random_iter):
    state = None
    for X, Y in train_iter:
        if state is None or use_random_iter:
            state = net.begin_state(batch_size=X.shape[0])
        else:
            for s in state:
                s.detach_()
        y_hat, state = net(X, state)
        l = loss(y_hat, Y).mean()
        updater.zero_grad()
        l.backward()
        updater.step()
""",
    "a reset after the use, ready for the next batch": HEADER
    + """
gru = nn.GRU(8, 16, batch_first=True)
loader = DataLoader(train_set, batch_size=4, shuffle=True, drop_last=True)
h = torch.zeros(1, 4, 16)
for x, y in loader:
    out, h = gru(x, h)
    out.sum().backward()
    h = torch.zeros(1, 4, 16)
""",
    "a reset under the condition that also guards the use": HEADER
    + """
def fit(model, dataset, optimizer, use_rnn):
    loader = DataLoader(dataset, batch_size=8, shuffle=True, drop_last=True)
    for x, y in loader:
        if use_rnn:
            hidden = model.init_hidden(8)
        if use_rnn:
            features, hidden = model.rnn(x, hidden)
        else:
            features = model.encode(x)
        loss = model.head(features).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
    "a reset on both branches of a size test": HEADER
    + """
lstm = nn.LSTM(8, 16, batch_first=True)
loader = DataLoader(train_set, batch_size=32, shuffle=True)
for x, y in loader:
    if x.size(0) == 32:
        hidden = (torch.zeros(1, 32, 16), torch.zeros(1, 32, 16))
    else:
        hidden = (torch.zeros(1, x.size(0), 16), torch.zeros(1, x.size(0), 16))
    out, hidden = lstm(x, hidden)
    out.sum().backward()
""",
    "a reset inside the batch loop, in a with block, windows carried inside the batch": HEADER
    + """
def fit(model, loader_args, epochs, optimizer):
    loader = DataLoader(**loader_args)
    shuffled = DataLoader(train_set, batch_size=8, shuffle=True)
    for epoch in range(epochs):
        for x in shuffled:
            with torch.autocast("cpu"):
                hidden = model.init_hidden(x.size(0))
            for i in range(0, x.size(1), 50):
                out, hidden = model(x[:, i:i + 50], hidden)
                optimizer.zero_grad()
                out.sum().backward()
                optimizer.step()
                hidden = hidden.detach()
""",
}


# ----------------------------------------------------------------------------- class 4
LOADERS_FOUND = {
    "a random sampler built inline": HEADER
    + """
from torch.utils.data import RandomSampler
gru = nn.GRU(8, 16)
loader = DataLoader(dataset, batch_size=8, sampler=RandomSampler(dataset), drop_last=True)
hidden = None
for x in loader:  # expect: TBP011
    out, hidden = gru(x, hidden)
    out.sum().backward()
    hidden = hidden.detach()
""",
    "a distributed sampler, which shuffles by default, bound to a name": """\
import torch
from torch.utils import data
from torch.utils.data.distributed import DistributedSampler

def train(model, dataset, optimizer):
    sampler = DistributedSampler(dataset)
    loader = data.DataLoader(dataset, batch_size=8, sampler=sampler, drop_last=True)
    h = None
    for x, y in loader:  # expect: TBP011
        if h is not None:
            h = h.detach()
        out, h = model(x, h)
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
""",
    "shuffle passed by position, the class named through torch": """\
import torch
import torch.nn as nn

cell = nn.GRUCell(8, 16)
loader = torch.utils.data.DataLoader(dataset, 4, True, drop_last=True)
h = torch.zeros(4, 16)
for x in tqdm(loader):  # expect: TBP011
    h = h.detach()
    for t in range(x.size(1)):
        h = cell(x[:, t], h)
    h.sum().backward()
""",
    "a module-level loader iterated in a function": HEADER
    + """
train_loader = DataLoader(train_set, batch_size=8, shuffle=True, drop_last=True)

def fit(model, optimizer):
    hidden = model.init_hidden(8)
    for x, y in train_loader:  # expect: TBP011
        hidden = hidden.detach()
        out, hidden = model(x, hidden)
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
""",
    "a loader set on self in __init__": HEADER
    + """
class Trainer:
    def __init__(self, dataset, model):
        self.model = model
        self.train_loader = DataLoader(dataset, batch_size=8, shuffle=True, drop_last=True)

    def fit(self, optimizer):
        state = None
        for batch, target in self.train_loader:  # expect: TBP011
            if state is not None:
                state = state.detach()
            out, state = self.model(batch, state)
            optimizer.zero_grad()
            out.sum().backward()
            optimizer.step()
""",
    "a loader built right in the for statement": HEADER
    + """
lstm = nn.LSTM(8, 16)
hidden = None
for epoch in range(3):  # expect: TBP011
    for x, y in DataLoader(train_set, batch_size=4, shuffle=True, drop_last=True):  # expect: TBP011
        out, hidden = lstm(x, hidden)
        out.sum().backward()
        hidden = tuple(h.detach() for h in hidden)
""",
    "a batch sampler drawing from a random sampler": HEADER
    + """
from torch.utils.data import BatchSampler, RandomSampler
rnn = nn.RNN(8, 16)
batches = BatchSampler(RandomSampler(dataset), batch_size=8, drop_last=True)
loader = DataLoader(dataset, batch_sampler=batches)
h = None
for x in loader:  # expect: TBP011
    out, h = rnn(x, h)
    out.sum().backward()
    h = h.detach()
""",
    "a local shuffled loader beside another function's ordered one of the same name": HEADER
    + """
def evaluate(model, dataset):
    loader = DataLoader(dataset, batch_size=8, drop_last=True)
    return loader

def train(model, dataset, optimizer):
    loader = DataLoader(dataset, batch_size=8, shuffle=True, drop_last=True)
    hidden = None
    for x, y in loader:  # expect: TBP011
        out, hidden = model(x, hidden)
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
        hidden = hidden.detach()
""",
    "no drop_last and a state built for the literal batch size": HEADER
    + """
gru = nn.GRU(8, 64, batch_first=True)
loader = DataLoader(train_set, batch_size=32)
h = torch.zeros(1, 32, 64)
for x, y in loader:  # expect: TBP011
    h = h.detach()
    out, h = gru(x, h)
    out.mean().backward()
""",
    "no drop_last and a state built for the configured batch size": HEADER
    + """
def train(model, args, optimizer):
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=False)
    hidden = model.init_hidden(args.batch_size)
    for x, y in loader:  # expect: TBP011
        hidden = hidden.detach()
        out, hidden = model(x, hidden)
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
""",
}

LOADERS_SILENT = {
    "a user's own class named DataLoader, defined in the file": """\
import torch
import torch.nn as nn

class DataLoader:
    def __init__(self, data, batch_size):
        self.data, self.batch_size = data, batch_size

    def __iter__(self):
        for i in range(0, len(self.data), self.batch_size):
            yield self.data[i:i + self.batch_size]

gru = nn.GRU(8, 64, batch_first=True)
loader = DataLoader(stream, batch_size=32)
h = torch.zeros(1, 32, 64)
for x in loader:
    h = h.detach()
    out, h = gru(x, h)
    out.mean().backward()
""",
    "a user's own loader class imported from the project": """\
import torch
from data.loaders import LMOrderedDataLoader, ShuffledTextDataLoader

model = Model()
train_loader = LMOrderedDataLoader(corpus, batch_size=20, bptt=35)
other_loader = ShuffledTextDataLoader(corpus, batch_size=20, shuffle=True)
hidden = model.init_hidden(20)
for x, y in train_loader:
    hidden = hidden.detach()
    out, hidden = model(x, hidden)
    out.sum().backward()
for x, y in other_loader:
    hidden = hidden.detach()
    out, hidden = model(x, hidden)
    out.sum().backward()
""",
    "another library's DataLoader": """\
import torch
from torch_geometric.loader import DataLoader

loader = DataLoader(graphs, batch_size=16, shuffle=True)
hidden = None
for batch in loader:
    out, hidden = model(batch, hidden)
    out.sum().backward()
    hidden = hidden.detach()
""",
    "a shuffled loader of the same name in another function": HEADER
    + """
def pretrain(model, optimizer):
    loader = DataLoader(train_set, batch_size=8, shuffle=True)
    for x, y in loader:
        hidden = model.init_hidden(8)
        out, hidden = model(x, hidden)
        out.sum().backward()

def train(model, stream_batches, optimizer):
    loader = stream_batches.ordered()
    hidden = None
    for x, y in loader:
        out, hidden = model(x, hidden)
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
        hidden = hidden.detach()
""",
    "a shuffled self.loader in another class": HEADER
    + """
class Pretrainer:
    def fit(self, model, data):
        self.loader = DataLoader(data, batch_size=8, shuffle=True)
        for x in self.loader:
            out, _ = model(x, None)
            out.sum().backward()

class StreamTrainer:
    def __init__(self, data):
        self.loader = DataLoader(data, batch_size=8, drop_last=True)

    def fit(self, model, optimizer):
        hidden = None
        for x in self.loader:
            out, hidden = model(x, hidden)
            optimizer.zero_grad()
            out.sum().backward()
            optimizer.step()
            hidden = hidden.detach()
""",
    "shuffle set from the arguments": HEADER
    + """
def train(model, dataset, args, shuffle, optimizer):
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=args.shuffle)
    other = DataLoader(dataset, batch_size=args.batch_size, shuffle=shuffle)
    hidden = model.init_hidden(args.batch_size)
    for x, y in loader:
        hidden = hidden.detach()
        out, hidden = model(x, hidden)
        out.sum().backward()
    for x, y in other:
        hidden = hidden.detach()
        out, hidden = model(x, hidden)
        out.sum().backward()
""",
    "arguments spread from a dict": HEADER
    + """
loader = DataLoader(dataset, batch_size=32, **loader_kwargs)
hidden = model.init_hidden(32)
for x, y in loader:
    hidden = hidden.detach()
    out, hidden = model(x, hidden)
    out.sum().backward()
""",
    "ordered samplers": HEADER
    + """
from torch.utils.data import SequentialSampler
from torch.utils.data.distributed import DistributedSampler
first = DataLoader(ds, batch_size=8, sampler=SequentialSampler(ds), drop_last=True)
second = DataLoader(ds, batch_size=8, sampler=DistributedSampler(ds, shuffle=False),
                    drop_last=True)
hidden = None
for x in first:
    out, hidden = model(x, hidden)
    out.sum().backward()
    hidden = hidden.detach()
for x in second:
    out, hidden = model(x, hidden)
    out.sum().backward()
    hidden = hidden.detach()
""",
    "a sampler of one's own": HEADER
    + """
sampler = BucketSampler(lengths, batch_size=8)
loader = DataLoader(ds, batch_size=8, sampler=sampler)
hidden = model.init_hidden(8)
for x in loader:
    out, hidden = model(x, hidden)
    out.sum().backward()
    hidden = hidden.detach()
""",
    "no drop_last but a state not built for a fixed size": HEADER
    + """
gru = nn.GRU(8, 64, batch_first=True)
single = DataLoader(stream, batch_size=1)
plain = DataLoader(stream, batch_size=32)
h = None
for x in single:
    h = h.detach() if h is not None else None
    out, h = gru(x, h)
    out.mean().backward()
h = None
for x in plain:
    h = h.detach() if h is not None else None
    out, h = gru(x, h)
    out.mean().backward()
""",
    "the loader name bound again before the loop": HEADER
    + """
def run(model, train_set, test_set, optimizer):
    loader = DataLoader(train_set, batch_size=8, shuffle=True)
    pretrain(model, loader)
    loader = DataLoader(test_set, batch_size=8, drop_last=True)
    hidden = None
    for x, y in loader:
        out, hidden = model(x, hidden)
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
        hidden = hidden.detach()
    loader = DataLoader(test_set, batch_size=8, shuffle=True)
    evaluate(model, loader)
""",
    "a loader shuffled on one branch and not on the other": HEADER
    + """
def run(model, dataset, optimizer, random_order):
    if not random_order:
        loader = DataLoader(dataset, batch_size=8, drop_last=True)
    else:
        loader = DataLoader(dataset, batch_size=8, shuffle=True)
    state = None
    for x, y in loader:
        if state is None or random_order:
            state = model.init_state(8)
        else:
            state = state.detach()
        out, state = model(x, state)
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
""",
}


# ------------------------------------------------------------- class 14, in one file
CALLS_FOUND = {
    "a shuffled loader built in main and passed by position": HEADER
    + """
def train(model, loader, optimizer):
    hidden = None
    for x, y in loader:  # expect: TBP011
        if hidden is not None:
            hidden = hidden.detach()
        out, hidden = model(x, hidden)
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()

def main():
    loader = DataLoader(train_set, batch_size=8, shuffle=True, drop_last=True)
    train(model, loader, optimizer)
""",
    "passed by keyword": HEADER
    + """
def main(args):
    batches = DataLoader(train_set, batch_size=args.bs, shuffle=True)
    for epoch in range(args.epochs):
        train_epoch(model=model, optimizer=optimizer, data=batches)

def train_epoch(model, data, optimizer):
    h = model.init_hidden(8)
    for x, y in enumerate(data):  # expect: TBP011
        h = h.detach()
        out, h = model(x, h)
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
""",
    "built inline in the call": HEADER
    + """
def fit(model, loader):
    state = None
    for batch in loader:  # expect: TBP011
        out, state = model(batch, state)
        out.sum().backward()
        state = state.detach()

if __name__ == "__main__":
    fit(model, DataLoader(data, batch_size=4, shuffle=True, drop_last=True))
""",
    "every call passes a shuffled loader": HEADER
    + """
def fit(model, loader):
    state = None
    for batch in loader:  # expect: TBP011
        out, state = model(batch, state)
        out.sum().backward()
        state = state.detach()

fit(model, DataLoader(pretrain_set, batch_size=4, shuffle=True))
finetune_loader = DataLoader(finetune_set, batch_size=4, shuffle=True)
fit(model, finetune_loader)
""",
    "a method given self.train_loader": HEADER
    + """
class Trainer:
    def __init__(self, model, dataset):
        self.model = model
        self.train_loader = DataLoader(dataset, batch_size=8, shuffle=True, drop_last=True)

    def train_epoch(self, loader, optimizer):
        hidden = None
        for x, y in loader:  # expect: TBP011
            out, hidden = self.model(x, hidden)
            optimizer.zero_grad()
            out.sum().backward()
            optimizer.step()
            hidden = hidden.detach()

    def fit(self, optimizer, epochs):
        for epoch in range(epochs):
            self.train_epoch(self.train_loader, optimizer)
""",
    "a method of an object given a shuffled loader": HEADER
    + """
class Trainer:
    def __init__(self, model):
        self.model = model

    def train_epoch(self, batches, optimizer):
        hidden = None
        for x, y in batches:  # expect: TBP011
            out, hidden = self.model(x, hidden)
            optimizer.zero_grad()
            out.sum().backward()
            optimizer.step()
            hidden = hidden.detach()

def main():
    trainer = Trainer(model)
    trainer.train_epoch(DataLoader(data, batch_size=8, shuffle=True), optimizer)
""",
    "a parameter wrapped in a progress bar, always or on a flag": HEADER
    + """
from tqdm import tqdm

def train(model, loader, optimizer, verbose):
    if verbose:
        loader = tqdm(loader, desc="train")
    hidden = None
    for step, (x, y) in enumerate(loader):  # expect: TBP011
        out, hidden = model(x, hidden)
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
        hidden = hidden.detach()

def evaluate(model, loader):
    loader = tqdm(loader)
    hidden = None
    for x, y in loader:  # expect: TBP011
        out, hidden = model(x, hidden)
        out.sum().backward()
        hidden = hidden.detach()

train(model, DataLoader(data, batch_size=8, shuffle=True), optimizer, True)
evaluate(model, DataLoader(data, batch_size=8, shuffle=True))
""",
    "passed on from function to function": HEADER
    + """
def train_epoch(model, batches, optimizer):
    hidden = None
    for x, y in batches:  # expect: TBP011
        out, hidden = model(x, hidden)
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
        hidden = hidden.detach()

def fit(model, loader, optimizer, epochs):
    for epoch in range(epochs):
        train_epoch(model, loader, optimizer)

def main():
    fit(model, DataLoader(data, batch_size=8, shuffle=True), optimizer, 10)
""",
}

CALLS_SILENT = {
    "a parameter rebuilt into an ordered loader before the loop": HEADER
    + """
def train(model, dataset, optimizer):
    dataset = DataLoader(dataset, batch_size=4, drop_last=True)
    hidden = None
    for x, y in dataset:
        out, hidden = model(x, hidden)
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
        hidden = hidden.detach()

train(model, DataLoader(data, batch_size=8, shuffle=True), optimizer)
""",
    "a method given a shuffled loader inside its class and an ordered one from outside": HEADER
    + """
class Trainer:
    def __init__(self, model, dataset):
        self.model = model
        self.shuffled = DataLoader(dataset, batch_size=8, shuffle=True)

    def train_epoch(self, batches, optimizer):
        hidden = None
        for x, y in batches:
            out, hidden = self.model(x, hidden)
            optimizer.zero_grad()
            out.sum().backward()
            optimizer.step()
            hidden = hidden.detach()

    def warm_up(self, optimizer):
        self.train_epoch(self.shuffled, optimizer)

def main():
    trainer = Trainer(model, dataset)
    trainer.train_epoch(DataLoader(stream, batch_size=8, drop_last=True), optimizer)
""",
    "one call passes a shuffled loader, another an ordered one": HEADER
    + """
def fit(model, loader):
    state = None
    for batch in loader:
        out, state = model(batch, state)
        out.sum().backward()
        state = state.detach()

fit(model, DataLoader(pretrain_set, batch_size=4, shuffle=True))
fit(model, DataLoader(stream_set, batch_size=4, drop_last=True))
""",
    "one call passes something unknown": HEADER
    + """
def fit(model, loader):
    state = None
    for batch in loader:
        out, state = model(batch, state)
        out.sum().backward()
        state = state.detach()

def main():
    fit(model, DataLoader(pretrain_set, batch_size=4, shuffle=True))
    fit(model, make_stream(corpus))
""",
    "no call of the function": HEADER
    + """
def fit(model, loader):
    state = None
    for batch in loader:
        out, state = model(batch, state)
        out.sum().backward()
        state = state.detach()

unused = DataLoader(data, batch_size=4, shuffle=True)
""",
    "arguments spread into the call": HEADER
    + """
def fit(model, loader):
    state = None
    for batch in loader:
        out, state = model(batch, state)
        out.sum().backward()
        state = state.detach()

loaders = [DataLoader(data, batch_size=4, shuffle=True)]
fit(model, *loaders)
fit(**{"model": model, "loader": DataLoader(data, batch_size=4, shuffle=True)})
""",
    "the function resets the state for every batch it is given": HEADER
    + """
def fit(model, loader, optimizer):
    for x, y in loader:
        hidden = model.init_hidden(x.size(0))
        out, hidden = model(x, hidden)
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()

fit(model, DataLoader(data, batch_size=4, shuffle=True), optimizer)
""",
    "a parameter passed a loader of unknown order": HEADER
    + """
def fit(model, loader):
    state = None
    for batch in loader:
        out, state = model(batch, state)
        out.sum().backward()
        state = state.detach()

def main(args):
    fit(model, DataLoader(data, batch_size=4, shuffle=args.shuffle))
""",
}

FOUND = {**PATHS_FOUND, **LOADERS_FOUND, **CALLS_FOUND}
SILENT = {**PATHS_SILENT, **LOADERS_SILENT, **CALLS_SILENT}


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    source = FOUND[name]
    assert expected_lines(source), "a FOUND case marks its lines"
    assert tbp011_lines(source) == expected_lines(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert tbp011_lines(SILENT[name]) == []


# ------------------------------------------------------- class 14, across files of a run
def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def tbp011_in_run(root: Path) -> list[tuple[str, int]]:
    result = lint_paths([root], Settings(project_root=root), jobs=1)
    return sorted((Path(d.path).name, d.line) for d in result.diagnostics if d.code == "TBP011")


TRAINER = """\
import torch


def train(model, loader, optimizer):
    hidden = None
    for x, y in loader:
        if hidden is not None:
            hidden = hidden.detach()
        out, hidden = model(x, hidden)
        optimizer.zero_grad()
        out.sum().backward()
        optimizer.step()
"""


def test_a_shuffled_loader_passed_to_a_function_of_another_file(tmp_path: Path) -> None:
    write(tmp_path, "trainer.py", TRAINER)
    write(
        tmp_path,
        "main.py",
        """\
        from torch.utils.data import DataLoader
        from trainer import train

        def main():
            loader = DataLoader(dataset, batch_size=32, shuffle=True)
            train(model, loader, optimizer)
        """,
    )
    assert tbp011_in_run(tmp_path) == [("trainer.py", 6)]


def test_a_loader_passed_through_a_module_import_and_by_keyword(tmp_path: Path) -> None:
    write(tmp_path, "pkg/__init__.py", "")
    write(tmp_path, "pkg/engine/__init__.py", "")
    write(tmp_path, "pkg/engine/trainer.py", TRAINER)
    write(
        tmp_path,
        "pkg/run.py",
        """\
        import torch
        from pkg.engine import trainer

        sampler = torch.utils.data.RandomSampler(dataset)
        batches = torch.utils.data.DataLoader(dataset, batch_size=8, sampler=sampler)
        trainer.train(model, optimizer=optimizer, loader=batches)
        """,
    )
    assert tbp011_in_run(tmp_path) == [("trainer.py", 6)]


def test_a_method_of_a_class_of_another_file_called_on_an_object(tmp_path: Path) -> None:
    write(
        tmp_path,
        "engine.py",
        """\
        import torch

        class Engine:
            def run(self, model, loader, optimizer):
                hidden = None
                for x, y in loader:
                    out, hidden = model(x, hidden)
                    optimizer.zero_grad()
                    out.sum().backward()
                    optimizer.step()
                    hidden = hidden.detach()
        """,
    )
    main = """\
        from torch.utils.data import DataLoader
        from engine import Engine

        engine = Engine()
        engine.run(model, DataLoader(dataset, batch_size=8, shuffle={shuffle}), optimizer)
        """
    write(tmp_path, "main.py", main.format(shuffle="True"))
    assert tbp011_in_run(tmp_path) == [("engine.py", 6)]
    write(tmp_path, "main.py", main.format(shuffle="False"))
    assert tbp011_in_run(tmp_path) == []


def test_calls_from_several_files_must_all_pass_a_shuffled_loader(tmp_path: Path) -> None:
    write(tmp_path, "trainer.py", TRAINER)
    main = """\
        from torch.utils.data import DataLoader
        from trainer import train

        train(model, DataLoader(dataset, batch_size=8, shuffle={shuffle}), optimizer)
        """
    write(tmp_path, "pretrain.py", main.format(shuffle="True"))
    write(tmp_path, "finetune.py", main.format(shuffle="True"))
    assert tbp011_in_run(tmp_path) == [("trainer.py", 6)]
    write(tmp_path, "finetune.py", main.format(shuffle="False"))
    assert tbp011_in_run(tmp_path) == []


def test_a_call_from_a_file_that_builds_no_loader_is_unknown(tmp_path: Path) -> None:
    write(tmp_path, "trainer.py", TRAINER)
    write(
        tmp_path,
        "main.py",
        """\
        from torch.utils.data import DataLoader
        from trainer import train

        train(model, DataLoader(dataset, batch_size=8, shuffle=True), optimizer)
        """,
    )
    write(
        tmp_path,
        "stream.py",
        """\
        from trainer import train

        train(model, corpus.ordered_batches(), optimizer)
        """,
    )
    assert tbp011_in_run(tmp_path) == []


def notebook(*cells: str) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": "code", "metadata": {}, "source": text.splitlines(keepends=True)}
                for text in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def test_a_notebook_cell_builds_the_loader_another_defines_the_loop(tmp_path: Path) -> None:
    cells = (
        "import torch\nfrom torch.utils.data import DataLoader\n",
        "loader = DataLoader(dataset, batch_size=8, shuffle={shuffle}, drop_last=True)\n",
        "def fit(model, batches):\n"
        "    hidden = None\n"
        "    for x, y in batches:\n"
        "        out, hidden = model(x, hidden)\n"
        "        out.sum().backward()\n"
        "        hidden = hidden.detach()\n",
        "fit(model, loader)\n",
    )
    (tmp_path / "train.ipynb").write_text(notebook(*(c.format(shuffle="True") for c in cells)))
    result = lint_paths([tmp_path], Settings(project_root=tmp_path), jobs=1)
    assert [(d.code, d.cell, d.line) for d in result.diagnostics] == [("TBP011", 3, 3)]
    (tmp_path / "train.ipynb").write_text(notebook(*(c.format(shuffle="False") for c in cells)))
    result = lint_paths([tmp_path], Settings(project_root=tmp_path), jobs=1)
    assert [d.code for d in result.diagnostics] == []


# --------------------------------------------------------------- module-level `global`
GLOBAL_AT_MODULE_LEVEL = (
    HEADER
    + """
global loader, log_folder

loader = DataLoader(range(64), batch_size=8, shuffle=True)


def fit(model, optimizer):
    global loader
    hidden = model.init_hidden(8)
    for x, y in loader:  # expect: TBP011
        out, hidden = model(x, hidden.detach())
        out.sum().backward()
        optimizer.step()
        optimizer.zero_grad()
"""
)


def test_a_global_statement_at_module_level_is_resolved_and_terminates() -> None:
    # `global x` at module level is legal and means nothing; it once sent name resolution
    # from the module scope to the module scope, forever.
    import threading

    from tbptt_lint.analysis.loaders import loader_calls

    done = threading.Event()
    worker = threading.Thread(
        target=lambda: (loader_calls(GLOBAL_AT_MODULE_LEVEL, "example"), done.set()),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=20)
    assert done.is_set(), "loader resolution did not terminate"
    assert tbp011_lines(GLOBAL_AT_MODULE_LEVEL) == expected_lines(GLOBAL_AT_MODULE_LEVEL)
