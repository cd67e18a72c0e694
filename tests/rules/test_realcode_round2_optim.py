"""Round 2 on real code (issue 12): what the silence corpus and the held-out spans taught.

- An in-place cut (`h.detach_()`, `hidden[0].detach_()` on each part of an LSTM's pair, a
  helper that cuts its argument in place) is a cut of the same object, not a reset: state
  cut in place and carried from one epoch into the next is still carried (TBP011), as
  `h = h.detach()` is (pytorch/examples distributed/rpc/rnn lost its TBP011 here), and
  indexing a tuple of states stays no view (no TBP014).
- TBP012 with gradient accumulation: `zero_grad()` on every pass while `step()` runs only
  every k-th pass (`if step % k == 0:`), in a loop or in a per-batch method such as
  SpeechBrain's `fit_batch`: each pass wipes what the passes before accumulated.

Each FOUND case has SILENT twins: the nearby correct idioms.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tbptt_lint import testing
from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")


def findings(root: Path, codes: tuple[str, ...]) -> list[tuple[str, str, int]]:
    result = lint_paths([root], Settings(project_root=root), jobs=1)
    return sorted(
        (Path(d.path).name, d.code, d.line) for d in result.diagnostics if d.code in codes
    )


def expected(files: dict[str, str], codes: tuple[str, ...]) -> list[tuple[str, str, int]]:
    found = []
    for name, text in files.items():
        for code, number in testing.expected_lines(textwrap.dedent(text)):
            if code in codes:
                found.append((name, code, number))
    return sorted(found)


# ------------------------------------------------ in-place cuts keep state carried (TBP011)
CARRY_CODES = ("TBP001", "TBP011", "TBP014")

LSTM_NET = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(2, 3, 4)
        self.head = nn.Linear(3, 1)

    def forward(self, x, hidden):
        out, hidden = self.rnn(x, hidden)
        return self.head(out), hidden
"""

CARRIED: dict[str, dict[str, str]] = {}
NOT_CARRIED: dict[str, dict[str, str]] = {}

CARRIED["each part of an LSTM pair cut in place, carried across epochs"] = {
    "train.py": """\
        import torch
        import torch.nn as nn

        lstm = nn.LSTM(2, 3, 4)
        opt = torch.optim.SGD(lstm.parameters(), lr=0.1)
        state = (torch.randn(4, 6, 3), torch.randn(4, 6, 3))
        for epoch in range(10):  # expect: TBP011
            for data, target in batches():
                state[0].detach_()
                state[1].detach_()
                output, state = lstm(data, state)
                loss = (output - target).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        """
}
CARRIED["a model of another file, module-qualified, the pair cut in place in a function"] = {
    "net.py": LSTM_NET,
    "train.py": """\
        import torch
        import net

        def run(model, batches):
            opt = torch.optim.Adam(model.parameters())
            carry = (torch.zeros(4, 6, 3), torch.zeros(4, 6, 3))
            for _ in range(3):  # expect: TBP011
                for x, y in batches:
                    carry[0].detach_()
                    carry[1].detach_()
                    out, carry = model(x, carry)
                    opt.zero_grad()
                    (out - y).abs().mean().backward()
                    opt.step()

        run(net.Net(), [])
        """,
}
CARRIED["a GRU state cut whole in place, in a method, carried across epochs"] = {
    "train.py": """\
        import torch
        import torch.nn as nn

        class Trainer:
            def __init__(self):
                self.gru = nn.GRU(2, 3)
                self.opt = torch.optim.Adam(self.gru.parameters())

            def fit(self, epochs, windows):
                h = torch.zeros(1, 5, 3)
                for epoch in range(epochs):  # expect: TBP011
                    for x, y in windows:
                        h.detach_()
                        out, h = self.gru(x, h)
                        self.opt.zero_grad()
                        (out - y).pow(2).sum().backward()
                        self.opt.step()
        """
}
CARRIED["epochs over a list, a list comprehension of in-place detaches"] = {
    "train.py": """\
        import torch
        import torch.nn as nn

        lstm = nn.LSTM(2, 3)
        opt = torch.optim.SGD(lstm.parameters(), lr=0.1)
        hc = (torch.zeros(1, 5, 3), torch.zeros(1, 5, 3))
        for lr in [0.1, 0.05, 0.01]:  # expect: TBP011
            for x, y in loader:
                [t.detach_() for t in hc]
                out, hc = lstm(x, hc)
                opt.zero_grad()
                out.sum().backward()
                opt.step()
        """
}
NOT_CARRIED["the pair re-made for every epoch, then cut in place per batch"] = {
    "train.py": """\
        import torch
        import torch.nn as nn

        lstm = nn.LSTM(2, 3, 4)
        opt = torch.optim.SGD(lstm.parameters(), lr=0.1)
        for epoch in range(10):
            state = (torch.randn(4, 6, 3), torch.randn(4, 6, 3))
            for data, target in batches():
                state[0].detach_()
                state[1].detach_()
                output, state = lstm(data, state)
                loss = (output - target).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        """
}
NOT_CARRIED["a model of another file, the pair re-made per epoch, cut in place per batch"] = {
    "net.py": LSTM_NET,
    "train.py": """\
        import torch
        from net import Net

        model = Net()
        opt = torch.optim.Adam(model.parameters())
        for _ in range(3):
            carry = (torch.zeros(4, 6, 3), torch.zeros(4, 6, 3))
            for x, y in batches:
                carry[0].detach_()
                carry[1].detach_()
                out, carry = model(x, carry)
                opt.zero_grad()
                (out - y).abs().mean().backward()
                opt.step()
        """,
}
NOT_CARRIED["one pass over the windows: cut in place, nothing crosses an outer loop"] = {
    "train.py": """\
        import torch
        import torch.nn as nn

        gru = nn.GRU(2, 3)
        opt = torch.optim.Adam(gru.parameters())
        h = torch.zeros(1, 5, 3)
        for x, y in windows:
            h.detach_()
            out, h = gru(x, h)
            opt.zero_grad()
            (out - y).pow(2).sum().backward()
            opt.step()
        """
}
NOT_CARRIED["a GRU state reset per epoch in a method, cut whole in place per window"] = {
    "train.py": """\
        import torch
        import torch.nn as nn

        class Trainer:
            def __init__(self):
                self.gru = nn.GRU(2, 3)
                self.opt = torch.optim.Adam(self.gru.parameters())

            def fit(self, epochs, windows):
                for epoch in range(epochs):
                    h = torch.zeros(1, 5, 3)
                    for x, y in windows:
                        h.detach_()
                        out, h = self.gru(x, h)
                        self.opt.zero_grad()
                        (out - y).pow(2).sum().backward()
                        self.opt.step()
        """
}


@pytest.mark.parametrize("name", sorted(CARRIED))
def test_state_cut_in_place_is_still_carried(tmp_path: Path, name: str) -> None:
    files = CARRIED[name]
    write(tmp_path, files)
    assert findings(tmp_path, CARRY_CODES) == expected(files, CARRY_CODES)


@pytest.mark.parametrize("name", sorted(NOT_CARRIED))
def test_state_cut_in_place_and_reset_is_silent(tmp_path: Path, name: str) -> None:
    write(tmp_path, NOT_CARRIED[name])
    assert findings(tmp_path, CARRY_CODES) == []


# -------------------------------- TBP012: cleared every pass, stepped every k-th pass
OPTIM_CODES = ("TBP012",)

ACCUMULATING: dict[str, dict[str, str]] = {}
ACCUMULATING_RIGHT: dict[str, dict[str, str]] = {}

ACCUMULATING["a per-batch method clears on entry, steps through a GradScaler every k calls"] = {
    "brain.py": """\
        import torch


        class Learner:
            def __init__(self, net, every=4):
                self.net = net
                self.opt = torch.optim.AdamW(net.parameters())
                self.amp = torch.cuda.amp.GradScaler()
                self.every = every
                self.calls = 0

            def one_batch(self, x, y):
                self.calls += 1
                due = self.calls % self.every == 0
                self.opt.zero_grad()  # expect: TBP012
                loss = (self.net(x) - y).pow(2).mean()
                self.amp.scale(loss / self.every).backward()
                if due:
                    self.amp.step(self.opt)
                    self.amp.update()
                return loss.item()

            def run(self, batches):
                for x, y in batches:
                    self.one_batch(x, y)
        """
}
ACCUMULATING["a batch loop clears first and steps when (i + 1) % accum == 0"] = {
    "train.py": """\
        import torch

        def train(model, loader, accum=8):
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for i, (x, y) in enumerate(loader):
                optimizer.zero_grad()  # expect: TBP012
                loss = torch.nn.functional.mse_loss(model(x), y) / accum
                loss.backward()
                if (i + 1) % accum == 0:
                    optimizer.step()
        """
}
ACCUMULATING["a window loop clears after the step, outside the step's condition"] = {
    "train.py": """\
        import torch
        import torch.nn as nn

        gru = nn.GRU(4, 8)
        opt = torch.optim.Adam(gru.parameters())
        h = torch.zeros(1, 2, 8)
        for w, start in enumerate(range(0, 100, 10)):
            h = h.detach()
            out, h = gru(x[start:start + 10], h)
            out.pow(2).mean().backward()
            if w % 4 == 0:
                opt.step()
            opt.zero_grad()  # expect: TBP012
        """
}
ACCUMULATING["the step on the else branch of a != 0 test, nested under another condition"] = {
    "train.py": """\
        import torch

        class Runner:
            def __init__(self, model):
                self.model = model
                self.optim = torch.optim.Adam(model.parameters())
                self.n = 0

            def update(self, batch, clip):
                self.optim.zero_grad()  # expect: TBP012
                self.model(batch).sum().backward()
                self.n += 1
                if self.n % 16 != 0:
                    return
                else:
                    if clip:
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                    self.optim.step()
        """
}
ACCUMULATING["`not step % k`, or the last batch, with the trainer in another file"] = {
    "trainer.py": """\
        import torch


        class Trainer:
            def __init__(self, model, accumulate):
                self.model = model
                self.optimizer = torch.optim.Adam(model.parameters())
                self.accumulate = accumulate

            def fit(self, loader):
                for step, (x, y) in enumerate(loader):
                    self.optimizer.zero_grad()  # expect: TBP012
                    self.model(x, y).backward()
                    if not step % self.accumulate or step == len(loader) - 1:
                        self.optimizer.step()
        """,
    "main.py": """\
        from trainer import Trainer

        Trainer(build(), 4).fit(make_loader())
        """,
}

ACCUMULATING_RIGHT["the per-batch method clears right after the step, under its condition"] = {
    "brain.py": """\
        import torch


        class Learner:
            def __init__(self, net, every=4):
                self.net = net
                self.opt = torch.optim.AdamW(net.parameters())
                self.amp = torch.cuda.amp.GradScaler()
                self.every = every
                self.calls = 0

            def one_batch(self, x, y):
                self.calls += 1
                due = self.calls % self.every == 0
                loss = (self.net(x) - y).pow(2).mean()
                self.amp.scale(loss / self.every).backward()
                if due:
                    self.amp.step(self.opt)
                    self.amp.update()
                    self.opt.zero_grad()
                return loss.item()

            def run(self, batches):
                for x, y in batches:
                    self.one_batch(x, y)
        """
}
ACCUMULATING_RIGHT["a batch loop that steps and clears every accum batches"] = {
    "train.py": """\
        import torch

        def train(model, loader, accum=8):
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            optimizer.zero_grad()
            for i, (x, y) in enumerate(loader):
                loss = torch.nn.functional.mse_loss(model(x), y) / accum
                loss.backward()
                if (i + 1) % accum == 0:
                    optimizer.step()
                    optimizer.zero_grad()
        """
}
ACCUMULATING_RIGHT["a step skipped when the gradient is not finite (no counter)"] = {
    "train.py": """\
        import torch

        def train(model, loader):
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for i, (x, y) in enumerate(loader):
                optimizer.zero_grad()
                torch.nn.functional.mse_loss(model(x), y).backward()
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                if torch.isfinite(norm):
                    optimizer.step()
                if i % 100 == 0:
                    print(i)
        """
}
ACCUMULATING_RIGHT["a step every pass, the scheduler every k-th pass"] = {
    "train.py": """\
        import torch

        def train(model, loader):
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 10)
            for i, (x, y) in enumerate(loader):
                optimizer.zero_grad()
                model(x, y).backward()
                optimizer.step()
                if i % 50 == 0:
                    scheduler.step()
        """
}
ACCUMULATING_RIGHT["clear, backward and step all under the same k-th pass test"] = {
    "train.py": """\
        import torch

        def train(model, loader, k):
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for i, (x, y) in enumerate(loader):
                if i % k == 0:
                    optimizer.zero_grad()
                    model(x, y).backward()
                    optimizer.step()
        """
}
ACCUMULATING_RIGHT["a GAN: the critic every pass, the generator every k-th pass"] = {
    "train.py": """\
        import torch

        def train(gen, critic, loader, k=5):
            opt_c = torch.optim.Adam(critic.parameters())
            opt_g = torch.optim.Adam(gen.parameters())
            for i, real in enumerate(loader):
                opt_c.zero_grad()
                critic(real, gen(noise())).backward()
                opt_c.step()
                if i % k == 0:
                    opt_g.zero_grad()
                    (-critic(gen(noise()))).mean().backward()
                    opt_g.step()
        """
}
ACCUMULATING_RIGHT["the cleared branch steps through a scaler of unknown class"] = {
    "recipe.py": """\
        import torch


        class Recipe:
            def __init__(self, model, scaler, accum):
                self.model = model
                self.optimizer = torch.optim.Adam(model.parameters())
                self.scaler = scaler
                self.accum = accum
                self.step = 0

            def fit_batch(self, batch, amp):
                should_step = self.step % self.accum == 0
                if amp:
                    self.optimizer.zero_grad()
                    self.scaler.scale(self.model(batch) / self.accum).backward()
                    if should_step:
                        self.scaler.step(self.optimizer)
                else:
                    (self.model(batch) / self.accum).backward()
                    if should_step:
                        self.optimizer.step()
                        self.optimizer.zero_grad()
        """
}
ACCUMULATING_RIGHT["two optimizers cleared every pass, stepped on alternate passes"] = {
    "train.py": """\
        import torch

        def train(gen, disc, loader):
            opt_d = torch.optim.Adam(disc.parameters())
            opt_g = torch.optim.Adam(gen.parameters())
            for i, real in enumerate(loader):
                opt_d.zero_grad()
                opt_g.zero_grad()
                disc(real, gen(noise())).backward()
                if i % 2 == 0:
                    opt_d.step()
                else:
                    opt_g.step()
        """
}
ACCUMULATING_RIGHT["each pass's gradient kept aside before the clear, applied every k-th pass"] = {
    "train.py": """\
        import torch

        def train(model, loader, k=4):
            params = list(model.parameters())
            optimizer = torch.optim.SGD(params, lr=0.1)
            kept = [torch.zeros_like(p) for p in params]
            for i, (x, y) in enumerate(loader):
                optimizer.zero_grad()
                model(x, y).backward()
                for p, g in zip(params, kept):
                    g += p.grad
                if (i + 1) % k == 0:
                    for p, g in zip(params, kept):
                        p.grad = g
                    optimizer.step()
        """
}


@pytest.mark.parametrize("name", sorted(ACCUMULATING))
def test_cleared_every_pass_stepped_every_kth(tmp_path: Path, name: str) -> None:
    files = ACCUMULATING[name]
    write(tmp_path, files)
    assert findings(tmp_path, OPTIM_CODES) == expected(files, OPTIM_CODES)


@pytest.mark.parametrize("name", sorted(ACCUMULATING_RIGHT))
def test_accumulation_done_right_is_silent(tmp_path: Path, name: str) -> None:
    write(tmp_path, ACCUMULATING_RIGHT[name])
    assert findings(tmp_path, OPTIM_CODES) == []
