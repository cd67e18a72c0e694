"""Issue 12, round 6: a held-out-style round on seventeen repositories the linter was never
tuned to (`benchmarks/realworld/manifest/round6.toml`), labelled before it ran. The classes
behind what it got wrong, each with SILENT variants and the FOUND twins a real bug nearby
still gives (not the repositories' lines: the family, in other forms).

- A state rebound by a method of an object of unknown class (`hidden =
  model.module.repackage_state(hidden)`) whose candidates in the run cut what they are given
  in a form the analysis does not summarise (an entry of a dict or list, a field, rebound to
  a detached copy and handed back), or where one class cuts and its base hands the state back
  as it is: whether the call cuts cannot be told, so the state is unknown, not a leak. A
  method that no class of the run makes a cut in still hands the graph on (TBP001).
- `_` is a name for what is thrown away: `out, _ = gru(x)` leaves no state out (TBP015),
  even where `_` is bound again later.
- An accumulator reset only now and then (`if step % log == 0: ...; running = 0`) outlives
  the passes between resets: summing the back-propagated loss into it keeps up to `log`
  graphs alive (TBP006). A reset on every pass (at the top of the body, or on both branches
  of an if) makes it anew each time.
- An optimizer bound again only where its loop cannot see it (after the loop in another
  branch, `epoch, model, optimizer = load_checkpoint(...)` under `elif eval:`; or in another
  function) is still the torch optimizer its loop steps: a loop that never clears its
  gradients is TBP012. A rebinding before the loop (`amp.initialize`) still makes it unknown.
- Another optimizer's `zero_grad()` does not clear this one's gradients when the two update
  different modules (a GAN's discriminator stepped with no `optimizer_D.zero_grad()`, the
  encoder's cleared): TBP012 on the discriminator's step. Optimizers over the same module, or
  over parameters the analysis cannot name, may clear each other: silent.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings
from tbptt_lint.testing import expected_sorted, snippet_findings

HEADER = """\
import torch
import torch.nn as nn
"""


def tree_findings(root: Path, files: dict[str, str]) -> list[tuple[str, str, int]]:
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    result = lint_paths([root], Settings(select=("TBP",), project_root=root), jobs=1)
    assert not result.internal_errors, result.internal_errors
    return sorted((Path(d.path).name, d.code, d.line) for d in result.diagnostics)


FOUND: dict[str, str] = {}
SILENT: dict[str, str] = {}

# ------------------------------------------- a method of unknown class that may cut the state

SILENT["wrapped-model-method-cuts-dict-entries"] = (
    HEADER
    + """

class LMBase(nn.Module):
    def repackage_state(self, state):
        return state


class RNNLM(LMBase):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(4, 4)

    def forward(self, ys, state=None):
        hx = None if state is None else (state["hxs"], state["cxs"])
        out, (h, c) = self.rnn(ys, hx)
        return out.sum(), {"hxs": h, "cxs": c}

    def repackage_state(self, state):
        state["hxs"] = state["hxs"].detach()
        state["cxs"] = state["cxs"].detach()
        return state


def train_one_epoch(model, train_set, optimizer):
    hidden = None
    for ys in train_set:
        loss, hidden = model(ys, state=hidden)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        hidden = model.module.repackage_state(hidden)
"""
)

# Across files: the model's class is in another module, which phase 1 summarises only when
# its text shows a cut handed back (an entry rebound to a detached copy, then `return state`).
LM_BASE = """\
import torch
import torch.nn as nn


class LMBase(nn.Module):
    def forward(self, ys, state=None, is_eval=False):
        if is_eval:
            with torch.no_grad():
                loss, state = self._forward(ys, state)
        else:
            loss, state = self._forward(ys, state)
        return loss, state

    def _forward(self, ys, state):
        out, new_state = self.decode(ys, state)
        return out.sum(), new_state

    def repackage_state(self, state):
        return state

    def decode(self, ys, state=None):
        raise NotImplementedError
"""

RNNLM = """\
import torch.nn as nn
from lm_base import LMBase


class RNNLM(LMBase):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(4, 4)

    def decode(self, ys, state=None):
        if state is None:
            state = self.zero_state(ys.size(1))
        out, (h, c) = self.rnn(ys, (state["hxs"], state["cxs"]))
        new_state = {"hxs": None, "cxs": None}
        new_state["hxs"] = h
        new_state["cxs"] = c
        return out, new_state

    def zero_state(self, batch_size):
        w = next(self.parameters())
        return {"hxs": w.new_zeros(1, batch_size, 4), "cxs": w.new_zeros(1, batch_size, 4)}

    def repackage_state(self, state):
        state["hxs"] = state["hxs"].detach()
        state["cxs"] = state["cxs"].detach()
        return state
"""

LM_TRAIN = """\
import torch


def train_one_epoch(model, train_set, optimizer):
    hidden = None
    for ys in train_set:
        loss, hidden = model(ys, state=hidden)  # expect: TBP001
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        hidden = model.module.repackage_state(hidden)
"""


def test_method_of_another_file_that_cuts_entries_is_unknown(tmp_path: Path) -> None:
    files = {"lm_base.py": LM_BASE, "rnnlm.py": RNNLM, "train.py": LM_TRAIN}
    assert tree_findings(tmp_path, files) == []


def test_method_of_another_file_that_cuts_nothing_still_leaks(tmp_path: Path) -> None:
    rnnlm = RNNLM.replace(
        """        state["hxs"] = state["hxs"].detach()
        state["cxs"] = state["cxs"].detach()
""",
        "",
    )
    files = {"lm_base.py": LM_BASE, "rnnlm.py": rnnlm, "train.py": LM_TRAIN}
    assert tree_findings(tmp_path, files) == [("train.py", "TBP001", 7)]


SILENT["unknown-object-method-cuts-list-entries"] = (
    HEADER
    + """

class Memory(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(4, 4)

    def forward(self, x, mem):
        h = self.cell(x, mem[0])
        return h.sum(), [h]

    def truncate(self, mem):
        mem[0] = mem[0].detach()
        return mem


def fit(net, batches, opt):
    mem = [torch.zeros(2, 4)]
    for x in batches:
        loss, mem = net(x, mem)
        opt.zero_grad()
        loss.backward()
        opt.step()
        mem = net.truncate(mem)
"""
)

SILENT["unknown-object-method-cuts-fields-base-does-not"] = (
    HEADER
    + """

class Base(nn.Module):
    def carry(self, state):
        return state


class Cell(Base):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(4, 4)

    def forward(self, x, state):
        h, c = self.cell(x, (state.h, state.c))
        state.h, state.c = h, c
        return h.sum(), state

    def carry(self, state):
        state.h = state.h.data
        state.c = state.c.data
        return state


def fit(agent, batches, opt, state):
    for x in batches:
        loss, state = agent(x, state)
        opt.zero_grad()
        loss.backward()
        opt.step()
        state = agent.carry(state)
"""
)

FOUND["unknown-object-method-that-no-class-cuts"] = (
    HEADER
    + """

class Base(nn.Module):
    def carry(self, state):
        return state


class Net(Base):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 4)

    def forward(self, x, h):
        out, h = self.rnn(x, h)
        return out.sum(), h

    def carry(self, state):
        return state * 1.0


def fit(net, batches, opt):
    h = torch.zeros(1, 2, 4)
    for x in batches:
        loss, h = net(x, h)  # expect: TBP001
        opt.zero_grad()
        loss.backward()
        opt.step()
        h = net.carry(h)
"""
)

# ------------------------------------------------------------------- `_` is thrown away

SILENT["underscore-state-rebound-later"] = (
    HEADER
    + """

def train(loader):
    encoder = nn.GRU(6, 8, batch_first=True)
    head = nn.Linear(8, 2)
    params = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params)
    for epoch in range(2):
        total = 0.0
        for i, (x, y) in enumerate(loader):
            out, _ = encoder(x)
            loss = nn.functional.mse_loss(head(out[:, -1]), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        _ = total / (i + 1)
"""
)

SILENT["underscore-discarded-state-then-reused-as-counter"] = (
    HEADER
    + """

def train(batches):
    lstm = nn.LSTM(3, 5)
    optimizer = torch.optim.SGD(lstm.parameters(), lr=0.1)
    for _ in range(3):
        for x in batches:
            out, _ = lstm(x)
            loss = out.pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
"""
)

FOUND["cut-state-not-passed-back"] = (
    HEADER
    + """

def train(batches):
    gru = nn.GRU(3, 5)
    optimizer = torch.optim.SGD(gru.parameters(), lr=0.1)
    h = torch.zeros(1, 2, 5)
    for x in batches:
        h = h.detach()
        out, h = gru(x)  # expect: TBP015
        loss = out.pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""
)

# -------------------------------------------------- accumulators reset only now and then

FOUND["logging-window-sum-of-attribute-loss"] = (
    HEADER
    + """

def train(model, loader, optimizer, logging_step=100):
    for epoch in range(3):
        step = 1
        train_loss = train_acc = 0
        for batch in loader:
            output = model(**batch)
            train_acc += (output.logits.argmax(-1) == batch["labels"]).float().mean()
            train_loss += output.loss  # expect: TBP006
            output.loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            if step % logging_step == 0:
                print(train_loss.item() / logging_step)
                train_loss = train_acc = 0
"""
)

FOUND["running-loss-reset-every-log-interval"] = (
    HEADER
    + """

def train(net, loader, optimizer, criterion):
    running_loss = 0.0
    for i, (inputs, labels) in enumerate(loader):
        optimizer.zero_grad()
        loss = criterion(net(inputs), labels)
        loss.backward()
        optimizer.step()
        running_loss = running_loss + loss  # expect: TBP006
        if i % 2000 == 1999:
            print(running_loss / 2000)
            running_loss = 0.0
"""
)

FOUND["list-of-losses-cleared-when-logged"] = (
    HEADER
    + """

def fit(lstm, head, windows, optimizer):
    losses = []
    hidden = None
    for step, (x, y) in enumerate(windows):
        out, hidden = lstm(x, hidden)
        hidden = tuple(h.detach() for h in hidden)
        loss = nn.functional.mse_loss(head(out), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss)  # expect: TBP006
        if step % 50 == 0:
            print(torch.stack(losses).mean().item())
            losses = []
"""
)

SILENT["accumulator-made-anew-every-pass"] = (
    HEADER
    + """

def train(model, loader, optimizer):
    for batch in loader:
        batch_loss = 0
        output = model(**batch)
        batch_loss += output.loss
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
"""
)

SILENT["accumulator-reset-on-both-branches"] = (
    HEADER
    + """

def train(net, loader, optimizer, criterion, warm):
    for i, (inputs, labels) in enumerate(loader):
        if i < warm:
            shown = 0.0
        else:
            shown = None
        loss = criterion(net(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        shown = loss if shown is None else shown + loss
"""
)

SILENT["periodic-reset-of-item-sum"] = (
    HEADER
    + """

def train(net, loader, optimizer, criterion):
    running_loss = 0.0
    for i, (inputs, labels) in enumerate(loader):
        optimizer.zero_grad()
        loss = criterion(net(inputs), labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        if i % 2000 == 1999:
            print(running_loss / 2000)
            running_loss = 0.0
"""
)

SILENT["periodic-reset-of-the-accumulated-backward"] = (
    HEADER
    + """

def train(net, loader, optimizer, criterion, accum=4):
    total = 0.0
    for i, (inputs, labels) in enumerate(loader):
        total = total + criterion(net(inputs), labels)
        if (i + 1) % accum == 0:
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            total = 0.0
"""
)

# ------------------------------------------------- optimizers rebound where a loop cannot see

FOUND["optimizer-rebound-in-exclusive-branch-after-loop"] = (
    HEADER
    + """

def run(args, trainloader, evalloader, load_checkpoint):
    predictor = nn.GRU(6, 12, batch_first=True)
    params = list(predictor.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    if args.mode == "train":
        for epoch in range(args.epochs):
            for i, (feats, target) in enumerate(trainloader):
                out, _ = predictor(feats)
                total_loss = nn.functional.mse_loss(out[:, -1], target)
                total_loss.backward()
                optimizer.step()  # expect: TBP012
    elif args.mode == "eval":
        epoch, predictor, optimizer = load_checkpoint(predictor, optimizer, args.path)
        for feats, target in evalloader:
            predictor(feats)
"""
)

FOUND["optimizer-name-bound-in-another-function"] = (
    HEADER
    + """

def resume(path, model, load_optimizer):
    optimizer = load_optimizer(path, model)
    return optimizer


def train(loader):
    model = nn.LSTM(4, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for x in loader:
        out, _ = model(x)
        out.sum().backward()
        optimizer.step()  # expect: TBP012
"""
)

SILENT["optimizer-rebound-by-wrapper-before-loop"] = (
    HEADER
    + """

def train(loader, amp):
    model = nn.LSTM(4, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model, optimizer = amp.initialize(model, optimizer)
    for x in loader:
        out, _ = model(x)
        out.sum().backward()
        optimizer.step()
"""
)

SILENT["optimizer-rebound-in-enclosing-loop"] = (
    HEADER
    + """

def train(stages, make_optimizer):
    model = nn.LSTM(4, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for stage in stages:
        for x in stage:
            out, _ = model(x)
            out.sum().backward()
            optimizer.step()
        optimizer = make_optimizer(model)
"""
)

SILENT["optimizer-rebound-after-loop-cleared-inside"] = (
    HEADER
    + """

def run(args, trainloader, load_checkpoint):
    model = nn.GRU(6, 12)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    if args.mode == "train":
        for feats, target in trainloader:
            out, _ = model(feats)
            loss = nn.functional.mse_loss(out, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    else:
        model, optimizer = load_checkpoint(model, optimizer)
"""
)

# -------------------------------------------------- another optimizer's zero_grad

FOUND["discriminator-stepped-encoder-cleared"] = (
    HEADER
    + """

def train(loader, D, E, G):
    optimizer_E = torch.optim.Adam(E.net.parameters(), lr=1e-4)
    optimizer_D = torch.optim.Adam(D.net.parameters(), lr=1e-4)
    for epoch in range(10):
        for x in loader:
            z, _ = E.net(x)
            x_rec = G.net(z)
            d_loss = D.net(x).mean() - D.net(x_rec.detach()).mean()
            d_loss.backward()
            optimizer_D.step()  # expect: TBP012
            e_loss = ((x - x_rec) ** 2).mean() - D.net(x_rec).mean()
            optimizer_E.zero_grad()
            e_loss.backward()
            optimizer_E.step()
"""
)

FOUND["critic-stepped-actor-cleared"] = (
    HEADER
    + """

def update(batches):
    actor = nn.LSTM(3, 2)
    critic = nn.Linear(3, 1)
    actor_optim = torch.optim.Adam(actor.parameters())
    critic_optim = torch.optim.Adam(critic.parameters())
    for obs, ret in batches:
        value_loss = (critic(obs) - ret).pow(2).mean()
        value_loss.backward()
        critic_optim.step()  # expect: TBP012
        out, _ = actor(obs)
        policy_loss = -out.mean()
        actor_optim.zero_grad()
        policy_loss.backward()
        actor_optim.step()
"""
)

SILENT["both-optimizers-cleared"] = (
    HEADER
    + """

def train(loader, D, E):
    optimizer_E = torch.optim.Adam(E.parameters(), lr=1e-4)
    optimizer_D = torch.optim.Adam(D.parameters(), lr=1e-4)
    for x in loader:
        z, _ = E(x)
        d_loss = D(x).mean() - D(z.detach()).mean()
        optimizer_D.zero_grad()
        d_loss.backward()
        optimizer_D.step()
        e_loss = -D(z).mean()
        optimizer_E.zero_grad()
        e_loss.backward()
        optimizer_E.step()
"""
)

SILENT["two-optimizers-over-one-model"] = (
    HEADER
    + """

def train(loader):
    model = nn.LSTM(4, 4)
    fast = torch.optim.SGD(model.parameters(), lr=0.1)
    slow = torch.optim.Adam(model.parameters(), lr=1e-4)
    for x in loader:
        out, _ = model(x)
        out.sum().backward()
        fast.step()
        slow.zero_grad()
"""
)

SILENT["other-optimizer-over-unnamed-parameters"] = (
    HEADER
    + """

def train(loader, groups):
    model = nn.LSTM(4, 4)
    main = torch.optim.SGD(model.parameters(), lr=0.1)
    extra = torch.optim.Adam(groups, lr=1e-4)
    for x in loader:
        out, _ = model(x)
        out.sum().backward()
        main.step()
        extra.zero_grad()
"""
)

SILENT["discriminator-method-that-may-clear"] = (
    HEADER
    + """

def train(loader, D, E):
    optimizer_E = torch.optim.Adam(E.net.parameters(), lr=1e-4)
    optimizer_D = torch.optim.Adam(D.net.parameters(), lr=1e-4)
    for x in loader:
        z, _ = E.net(x)
        d_loss = D.net(x).mean() - D.net(z.detach()).mean()
        d_loss.backward()
        optimizer_D.step()
        D.net.refresh(x)
        e_loss = -D.net(z).mean()
        optimizer_E.zero_grad()
        e_loss.backward()
        optimizer_E.step()
"""
)

SILENT["model-zero-grad-of-the-stepped-module"] = (
    HEADER
    + """

def train(loader, D, E):
    optimizer_E = torch.optim.Adam(E.parameters(), lr=1e-4)
    optimizer_D = torch.optim.Adam(D.parameters(), lr=1e-4)
    for x in loader:
        z, _ = E(x)
        d_loss = D(x).mean() - D(z.detach()).mean()
        D.zero_grad()
        d_loss.backward()
        optimizer_D.step()
        e_loss = -D(z).mean()
        optimizer_E.zero_grad()
        e_loss.backward()
        optimizer_E.step()
"""
)


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    source = FOUND[name]
    assert snippet_findings(source) == expected_sorted(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert snippet_findings(SILENT[name]) == []
