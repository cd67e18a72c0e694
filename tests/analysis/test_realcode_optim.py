"""TBP012 on the optimizer code people really write (issue 12, classes 10 and 16).

Backward, `step()` and `zero_grad()` inside helpers and methods of the run, a model's
`zero_grad()` paired with its optimizer, `zero_grad()` in an inner loop with one `step()`
after it, `zero_grad()` only before a loop that steps on every pass, and `step()` every batch
with nothing that clears. Each FOUND case has SILENT twins: the nearby correct idioms.
"""

from __future__ import annotations

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
"""


def tbp012(source: str) -> list[int]:
    findings = check_source(textwrap.dedent(source), "example.py", Settings())
    return [f.line for f in findings if f.code == "TBP012"]


def expected(source: str) -> list[int]:
    return [
        number
        for number, line in enumerate(textwrap.dedent(source).splitlines(), start=1)
        if re.search(r"# expect: TBP012\b", line)
    ]


# ------------------------------------------------------------------------------- FOUND
FOUND: dict[str, str] = {}
SILENT: dict[str, str] = {}

# --- 1. Backward, step and clear inside helpers and methods (class 10) -------------------
LOSS_COMPUTE = """
class LossCompute:
    def __init__(self, generator, criterion):
        self.generator = generator
        self.criterion = criterion

    def __call__(self, x, y):
        loss = self.criterion(self.generator(x), y)
        loss.backward()
        return loss.item()
"""
FOUND["a loss object whose __call__ runs backward, zero_grad in the window loop"] = (
    HEADER
    + LOSS_COMPUTE
    + """
class Trainer:
    def __init__(self, model, generator):
        self.model = model
        self.optimizer = torch.optim.Adam(model.parameters())
        self.loss_compute = LossCompute(generator, nn.CrossEntropyLoss())

    def train_epoch(self, loader):
        for src, tgt in loader:
            h = None
            for i in range(0, src.size(0), 10):
                self.optimizer.zero_grad()  # expect: TBP012
                out, h = self.model(src[i:i + 10], h)
                h = h.detach()
                self.loss_compute(out, tgt[i:i + 10])
            self.optimizer.step()
"""
)
SILENT["a loss object whose __call__ runs backward, zero_grad before the window loop"] = (
    HEADER
    + LOSS_COMPUTE
    + """
class Trainer:
    def __init__(self, model, generator):
        self.model = model
        self.optimizer = torch.optim.Adam(model.parameters())
        self.loss_compute = LossCompute(generator, nn.CrossEntropyLoss())

    def train_epoch(self, loader):
        for src, tgt in loader:
            h = None
            self.optimizer.zero_grad()
            for i in range(0, src.size(0), 10):
                out, h = self.model(src[i:i + 10], h)
                h = h.detach()
                self.loss_compute(out, tgt[i:i + 10])
            self.optimizer.step()
"""
)
SILENT["a loss object that runs backward, steps and clears, as the Annotated Transformer"] = (
    HEADER
    + """
class SimpleLossCompute:
    def __init__(self, generator, criterion, opt=None):
        self.generator = generator
        self.criterion = criterion
        self.opt = opt

    def __call__(self, x, y, norm):
        loss = self.criterion(self.generator(x), y) / norm
        loss.backward()
        if self.opt is not None:
            self.opt.step()
            self.opt.optimizer.zero_grad()
        return loss.item() * norm

def run_epoch(data_iter, model, generator):
    optimizer = torch.optim.Adam(model.parameters())
    loss_compute = SimpleLossCompute(generator, nn.CrossEntropyLoss(), optimizer)
    for batch in data_iter:
        out = model(batch.src, batch.trg)
        loss_compute(out, batch.trg_y, batch.ntokens)
"""
)
WRAPPER = """
class Optim:
    def __init__(self, optimizer, max_norm):
        self.optimizer = optimizer
        self.max_norm = max_norm

    def backward(self, loss):
        loss.backward()

    def zero_grad(self):
        self.optimizer.zero_grad()

    def step(self):
        nn.utils.clip_grad_norm_(self.params, self.max_norm)
        self.optimizer.step()
"""
FOUND["a wrapper optimizer's backward, zero_grad in the micro-batch loop"] = (
    HEADER
    + WRAPPER
    + """
class Trainer:
    def __init__(self, model):
        self.model = model
        self.optim = Optim(torch.optim.SGD(model.parameters(), lr=0.1), 5.0)

    def train(self, loader):
        for batch in loader:
            for micro in batch.split(8):
                self.optim.zero_grad()  # expect: TBP012
                loss = self.model(micro).sum()
                self.optim.backward(loss)
            self.optim.step()
"""
)
SILENT["a wrapper optimizer's backward, zero_grad before the micro-batch loop"] = (
    HEADER
    + WRAPPER
    + """
class Trainer:
    def __init__(self, model):
        self.model = model
        self.optim = Optim(torch.optim.SGD(model.parameters(), lr=0.1), 5.0)

    def train(self, loader):
        for batch in loader:
            self.optim.zero_grad()
            for micro in batch.split(8):
                loss = self.model(micro).sum()
                self.optim.backward(loss)
            self.optim.step()
"""
)
FOUND["a wrapper optimizer stepped every batch and never cleared"] = (
    HEADER
    + WRAPPER
    + """
model = nn.Linear(4, 1)
optim = Optim(torch.optim.SGD(model.parameters(), lr=0.1), 5.0)
for x, y in loader:
    loss = (model(x) - y).pow(2).mean()
    optim.backward(loss)
    optim.step()  # expect: TBP012
"""
)
SILENT["a wrapper optimizer whose step() steps and clears the optimizer it holds"] = (
    HEADER
    + """
class NoamOpt:
    def __init__(self, size, warmup, optimizer):
        self.optimizer = optimizer
        self._step = 0

    def step(self):
        self._step += 1
        for p in self.optimizer.param_groups:
            p["lr"] = self.rate()
        self.optimizer.step()
        self.optimizer.zero_grad()

    def rate(self):
        return self._step ** -0.5

model = nn.Linear(4, 1)
opt = NoamOpt(512, 4000, torch.optim.Adam(model.parameters(), lr=0))
for x, y in loader:
    loss = (model(x) - y).pow(2).mean()
    loss.backward()
    opt.step()
"""
)
BACKWARD_STEP = """
class Engine:
    def __init__(self, model):
        self.model = model

    def backward_step(self, loss):
        loss.backward()
"""
FOUND["a trainer's backward_step in the window loop after zero_grad"] = (
    HEADER
    + BACKWARD_STEP
    + """
model = nn.GRU(8, 16)
trainer = Engine(model)
optimizer = torch.optim.Adam(model.parameters())
for x in sequences:
    h = None
    for i in range(0, x.size(0), 10):
        optimizer.zero_grad()  # expect: TBP012
        out, h = model(x[i:i + 10], h)
        h = h.detach()
        trainer.backward_step(out.pow(2).mean())
    optimizer.step()
"""
)
SILENT["a trainer's backward_step with zero_grad and step in the window loop"] = (
    HEADER
    + BACKWARD_STEP
    + """
model = nn.GRU(8, 16)
trainer = Engine(model)
optimizer = torch.optim.Adam(model.parameters())
for x in sequences:
    h = None
    for i in range(0, x.size(0), 10):
        optimizer.zero_grad()
        out, h = model(x[i:i + 10], h)
        h = h.detach()
        trainer.backward_step(out.pow(2).mean())
        optimizer.step()
"""
)
FOUND["a method of the same class that runs backward"] = (
    HEADER
    + """
class Trainer:
    def __init__(self, model):
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def backward_step(self, loss):
        loss.backward()

    def fit(self, loader):
        for x, y in loader:
            self.backward_step((self.model(x) - y).pow(2).mean())
            self.optimizer.step()  # expect: TBP012
"""
)
FOUND["a step helper that calls the backward helper"] = (
    HEADER
    + """
class Trainer:
    def __init__(self, model):
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def backward_step(self, loss):
        loss.backward()

    def train_step(self, x, y):
        self.backward_step((self.model(x) - y).pow(2).mean())
        self.optimizer.step()

    def fit(self, loader):
        for x, y in loader:
            self.train_step(x, y)  # expect: TBP012
"""
)
STEP_HELPERS = """
class Trainer:
    def __init__(self, model):
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def optimizer_step(self):
        nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
{clear}
    def fit(self, loader):
        for epoch in range(10):
            for x, y in loader:
                loss = (self.model(x) - y).pow(2).mean()
                loss.backward()
                self.optimizer_step(){expect}
"""
FOUND["a step helper method that never clears, called every batch"] = HEADER + (
    STEP_HELPERS.format(clear="", expect="  # expect: TBP012")
)
SILENT["a step helper method that steps and clears, called every batch"] = HEADER + (
    STEP_HELPERS.format(clear="        self.optimizer.zero_grad()\n", expect="")
)
SILENT["a step helper method that clears through another helper"] = HEADER + (
    STEP_HELPERS.format(clear="        self.reset_grads()\n", expect="")
    + """
    def reset_grads(self):
        for p in self.model.parameters():
            p.grad = None
"""
)
FOUND["a step helper function given the optimizer, called every batch"] = (
    HEADER
    + """
def apply_update(opt, scheduler):
    opt.step()
    scheduler.step()

def fit(model, loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 10)
    for x, y in loader:
        (model(x) - y).pow(2).mean().backward()
        apply_update(optimizer, scheduler)  # expect: TBP012
"""
)
SILENT["a step helper function given the optimizer that also clears it"] = (
    HEADER
    + """
def apply_update(opt, scheduler):
    opt.step()
    scheduler.step()
    opt.zero_grad(set_to_none=True)

def fit(model, loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 10)
    for x, y in loader:
        (model(x) - y).pow(2).mean().backward()
        apply_update(optimizer, scheduler)
"""
)

# --- 2. A model's zero_grad() clears what its optimizer steps ------------------------------
FOUND["self.model.zero_grad() in the window loop, self.optim.step() after it"] = (
    HEADER
    + """
class Trainer:
    def __init__(self, model):
        self.model = model
        self.optim = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def train_sequence(self, x, y):
        hidden = None
        for i in range(0, x.size(0), 35):
            self.model.zero_grad()  # expect: TBP012
            out, hidden = self.model(x[i:i + 35], hidden)
            hidden = hidden.detach()
            nn.functional.mse_loss(out, y[i:i + 35]).backward()
        self.optim.step()
"""
)
FOUND["model.zero_grad() in the micro-batch loop of a function, optimizer.step() after"] = (
    HEADER
    + """
def fit(loader):
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(3):
        for batch in loader:
            for part in batch.chunk(4):
                model.zero_grad()  # expect: TBP012
                model(part).sum().backward()
            optimizer.step()
"""
)
SILENT["model.zero_grad() in the window loop with two optimizers stepped after it"] = (
    HEADER
    + """
class Trainer:
    def __init__(self, model):
        self.model = model
        self.enc_optim = torch.optim.Adam(self.model.encoder.parameters())
        self.dec_optim = torch.optim.Adam(self.model.decoder.parameters())

    def train_sequence(self, x):
        hidden = None
        for i in range(0, x.size(0), 35):
            self.model.zero_grad()
            out, hidden = self.model(x[i:i + 35], hidden)
            hidden = hidden.detach()
            out.sum().backward()
        self.enc_optim.step()
        self.dec_optim.step()
"""
)
SILENT["a teacher's zero_grad() in the loop, the student's optimizer stepped after"] = (
    HEADER
    + """
def distil(student, teacher, loader):
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    for batch in loader:
        for part in batch.chunk(4):
            teacher.zero_grad()
            (student(part) - teacher(part)).pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
"""
)
SILENT["model.zero_grad() and a manual update in the loop, pytorch/examples style"] = (
    HEADER
    + """
def train(model, train_data, lr):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    hidden = model.init_hidden(20)
    for i in range(0, train_data.size(0) - 1, 35):
        hidden = hidden.detach()
        model.zero_grad()
        output, hidden = model(train_data[i:i + 35], hidden)
        output.sum().backward()
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
    optimizer.step()
"""
)

# --- 3. zero_grad() on every pass of an inner loop, step() once after it ------------------
FOUND["zero_grad in a micro-batch loop without recurrent state"] = (
    HEADER
    + """
model = nn.Linear(16, 1)
optimizer = torch.optim.AdamW(model.parameters())
for batch in loader:
    for micro in batch.split(4):
        optimizer.zero_grad()  # expect: TBP012
        loss = model(micro).pow(2).mean() / 4
        loss.backward()
    optimizer.step()
"""
)
FOUND["zero_grad through a helper method in the window loop"] = (
    HEADER
    + """
class Trainer:
    def __init__(self, model):
        self.model = model
        self.optimizer = torch.optim.Adam(model.parameters())

    def clear(self):
        self.optimizer.zero_grad()

    def fit(self, windows):
        for window in windows:
            self.clear()  # expect: TBP012
            self.model(window).sum().backward()
        self.optimizer.step()
"""
)
FOUND["zero_grad in a while loop over windows, step after it"] = (
    HEADER
    + """
def train(model, optimizer: torch.optim.Optimizer, x):
    optimizer.step()
    for epoch in range(5):
        t = 0
        while t < x.size(0):
            optimizer.zero_grad()  # expect: TBP012
            model(x[t:t + 10]).sum().backward()
            t += 10
        optimizer.step()
"""
)
SILENT["a WGAN critic loop: its zero_grad and step belong to another optimizer"] = (
    HEADER
    + """
opt_d = torch.optim.RMSprop(critic.parameters(), lr=5e-5)
opt_g = torch.optim.RMSprop(generator.parameters(), lr=5e-5)
for real in loader:
    for _ in range(5):
        opt_d.zero_grad()
        loss_d = critic(generator(noise()).detach()).mean() - critic(real).mean()
        loss_d.backward()
        opt_d.step()
    opt_g.zero_grad()
    loss_g = -critic(generator(noise())).mean()
    loss_g.backward()
    opt_g.step()
"""
)
SILENT["a GAN whose inner loop clears the discriminator, the generator stepped after"] = (
    HEADER
    + """
opt_d = torch.optim.Adam(netD.parameters())
opt_g = torch.optim.Adam(netG.parameters())
for real in loader:
    opt_g.zero_grad()
    for _ in range(2):
        netD.zero_grad()
        netD(real).mean().backward()
        opt_d.step()
    netD(netG(noise())).mean().backward()
    opt_g.step()
"""
)
SILENT["zero_grad(set_to_none=True), backward and step in the same pass"] = (
    HEADER
    + """
model = nn.GRU(8, 16)
optimizer = torch.optim.Adam(model.parameters())
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)
for epoch in range(20):
    h = None
    for i in range(0, x.size(0), 10):
        out, h = model(x[i:i + 10], h)
        h = h.detach()
        optimizer.zero_grad(set_to_none=True)
        out.sum().backward()
        optimizer.step()
    scheduler.step()
"""
)
SILENT["a loop that breaks after its first backward"] = (
    HEADER
    + """
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(3):
    for batch in loader:
        optimizer.zero_grad()
        model(batch).sum().backward()
        break
    optimizer.step()
"""
)
SILENT["zero_grad only on the first pass of the micro-batch loop"] = (
    HEADER
    + """
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for batch in loader:
    for k, micro in enumerate(batch.split(4)):
        if k == 0:
            optimizer.zero_grad()
        model(micro).sum().backward()
    optimizer.step()
"""
)
SILENT["per-sample gradients clipped and summed by hand, as DP-SGD does"] = (
    HEADER
    + """
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for batch in loader:
    total = [torch.zeros_like(p) for p in model.parameters()]
    for sample in batch:
        optimizer.zero_grad()
        model(sample).sum().backward()
        for t, p in zip(total, model.parameters()):
            t += p.grad.clamp(-1.0, 1.0)
    for t, p in zip(total, model.parameters()):
        p.grad = t / len(batch)
    optimizer.step()
"""
)
SILENT["zero_grad again after the loop, before the backward that is stepped"] = (
    HEADER
    + """
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for batch in loader:
    probes = []
    for sample in batch:
        optimizer.zero_grad()
        model(sample).sum().backward()
        probes.append(sample.mean())
    optimizer.zero_grad()
    model(batch).sum().backward()
    optimizer.step()
"""
)

# --- 4. zero_grad() only before a loop that steps on every pass -----------------------------
FOUND["zero_grad once before the window loop, step in it"] = (
    HEADER
    + """
gru = nn.GRU(8, 16)
optimizer = torch.optim.Adam(gru.parameters(), lr=1e-3)
for x, y in sequences:
    h = torch.zeros(1, 4, 16)
    optimizer.zero_grad()
    for i in range(0, x.size(0), 10):
        h = h.detach()
        out, h = gru(x[i:i + 10], h)
        nn.functional.mse_loss(out, y[i:i + 10]).backward()
        optimizer.step()  # expect: TBP012
"""
)
FOUND["self.optimizer cleared once per epoch, stepped every batch"] = (
    HEADER
    + """
class Trainer:
    def __init__(self, model):
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def fit(self, loader, epochs):
        for epoch in range(epochs):
            self.optimizer.zero_grad()
            for x, y in loader:
                loss = (self.model(x) - y).pow(2).mean()
                loss.backward()
                self.optimizer.step()  # expect: TBP012
                self.log_metrics(loss.item())

    def log_metrics(self, value):
        print(value)
"""
)
SILENT["zero_grad in the window loop through a helper function"] = (
    HEADER
    + """
def reset(optimizer):
    optimizer.zero_grad()

gru = nn.GRU(8, 16)
optimizer = torch.optim.Adam(gru.parameters(), lr=1e-3)
for x, y in sequences:
    h = torch.zeros(1, 4, 16)
    optimizer.zero_grad()
    for i in range(0, x.size(0), 10):
        h = h.detach()
        out, h = gru(x[i:i + 10], h)
        nn.functional.mse_loss(out, y[i:i + 10]).backward()
        optimizer.step()
        reset(optimizer)
"""
)
SILENT["gradient accumulation every accum windows"] = (
    HEADER
    + """
gru = nn.GRU(8, 16)
optimizer = torch.optim.Adam(gru.parameters(), lr=1e-3)
accum = 4
h = torch.zeros(1, 4, 16)
optimizer.zero_grad()
for w, i in enumerate(range(0, x.size(0), 10)):
    h = h.detach()
    out, h = gru(x[i:i + 10], h)
    (nn.functional.mse_loss(out, y[i:i + 10]) / accum).backward()
    if (w + 1) % accum == 0:
        optimizer.step()
        optimizer.zero_grad()
"""
)
SILENT["step() the only call of a loop without backward"] = (
    HEADER
    + """
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for batch in loader:
    optimizer.zero_grad()
    model(batch).sum().backward()
    for _ in range(3):
        optimizer.step()
"""
)

# --- 5. step() every batch and nothing that clears (class 16) -------------------------------
FOUND["a plain training loop that never clears"] = (
    HEADER
    + """
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()  # expect: TBP012
"""
)
FOUND["a function's epoch and batch loops, cleared only after each epoch"] = (
    HEADER
    + """
from torch import optim

def train(model, loader, writer):
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(10):
        for step, (x, y) in enumerate(loader):
            x, y = x.cuda(), y.cuda()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()  # expect: TBP012
            writer.add_scalar("loss", loss.item(), step)
        optimizer.zero_grad()
"""
)
FOUND["accumulation that steps every accum batches and never clears"] = (
    HEADER
    + """
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for i, (x, y) in enumerate(loader):
    (model(x) - y).pow(2).mean().backward()
    if (i + 1) % 4 == 0:
        optimizer.step()  # expect: TBP012
"""
)
FOUND["a recurrent window loop that steps and never clears"] = (
    HEADER
    + """
gru = nn.GRU(8, 16)
optimizer = torch.optim.Adam(gru.parameters(), lr=1e-3)
h = torch.zeros(1, 4, 16)
for i in range(0, x.size(0), 10):
    h = h.detach()
    out, h = gru(x[i:i + 10], h)
    loss = nn.functional.mse_loss(out, y[i:i + 10])
    loss.backward()
    optimizer.step()  # expect: TBP012
"""
)
SILENT["an unknown method of the model may clear"] = (
    HEADER
    + """
from mylib import Net

model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    model.prepare_batch()
    (model(x) - y).pow(2).mean().backward()
    optimizer.step()
"""
)
SILENT["a framework hook given the optimizer may clear"] = (
    HEADER
    + """
from framework import hooks

model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    (model(x) - y).pow(2).mean().backward()
    optimizer.step()
    hooks.after_step(optimizer)
"""
)
SILENT["a trainer's own unknown method may clear"] = (
    HEADER
    + """
from framework import Base

class Trainer(Base):
    def __init__(self, model):
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def fit(self, loader):
        for x, y in loader:
            (self.model(x) - y).pow(2).mean().backward()
            self.optimizer.step()
            self.on_train_batch_end()
"""
)
SILENT["a deepspeed engine steps and clears itself"] = (
    HEADER
    + """
import deepspeed

model_engine, optimizer, _, _ = deepspeed.initialize(model=model, optimizer=opt)
for x, y in loader:
    loss = model_engine(x, y)
    model_engine.backward(loss)
    model_engine.step()
"""
)
SILENT["an optimizer that is not torch's"] = (
    HEADER
    + """
from apex.optimizers import FusedAdam

model = nn.Linear(4, 1)
optimizer = FusedAdam(model.parameters())
for x, y in loader:
    (model(x) - y).pow(2).mean().backward()
    optimizer.step()
"""
)
SILENT["model.step() of an engine"] = (
    HEADER
    + """
for x, y in loader:
    loss = model(x, y)
    model.backward(loss)
    model.step()
"""
)
SILENT["an optimizer passed in, of a class the analysis cannot see"] = (
    HEADER
    + """
def train(model, optimizer, loader):
    for x, y in loader:
        (model(x) - y).pow(2).mean().backward()
        optimizer.step()
"""
)
SILENT["an optimizer rebound by amp.initialize"] = (
    HEADER
    + """
from apex import amp

model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
model, optimizer = amp.initialize(model, optimizer, opt_level="O1")
for x, y in loader:
    (model(x) - y).pow(2).mean().backward()
    optimizer.step()
"""
)
SILENT["LBFGS with a closure that clears"] = (
    HEADER
    + """
model = nn.Linear(4, 1)
optimizer = torch.optim.LBFGS(model.parameters())
for x, y in loader:
    def closure():
        optimizer.zero_grad()
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        return loss
    optimizer.step(closure)
    (model(x) - y).abs().mean().backward()
"""
)
SILENT["gradients set to None parameter by parameter"] = (
    HEADER
    + """
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    (model(x) - y).pow(2).mean().backward()
    optimizer.step()
    for p in model.parameters():
        p.grad = None
"""
)
SILENT["a GradScaler step, update and zero_grad"] = (
    HEADER
    + """
model = nn.Linear(4, 1)
optimizer = torch.optim.AdamW(model.parameters())
scaler = torch.cuda.amp.GradScaler()
for x, y in loader:
    with torch.autocast("cuda"):
        loss = (model(x) - y).pow(2).mean()
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad()
"""
)
SILENT["model.zero_grad() clears the one optimizer's gradients"] = (
    HEADER
    + """
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    model.zero_grad()
    (model(x) - y).pow(2).mean().backward()
    optimizer.step()
"""
)
SILENT["an evaluation loop without backward"] = (
    HEADER
    + """
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
optimizer.zero_grad()
model(x).sum().backward()
optimizer.step()
with torch.no_grad():
    for x in val:
        print(model(x).sum().item())
"""
)


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(name: str) -> None:
    source = FOUND[name]
    assert expected(source)
    assert tbp012(source) == expected(source)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(name: str) -> None:
    assert tbp012(SILENT[name]) == []


# ------------------------------------------------------------------- across files of a run
def write(root: Path, name: str, text: str) -> None:
    (root / name).write_text(textwrap.dedent(text), encoding="utf-8")


def findings(root: Path) -> list[tuple[str, str, int]]:
    result = lint_paths([root], Settings(project_root=root), jobs=1)
    return sorted((Path(d.path).name, d.code, d.line) for d in result.diagnostics)


def test_a_loss_class_of_another_file_runs_the_backward(tmp_path: Path) -> None:
    write(tmp_path, "losses.py", "import torch\n" + LOSS_COMPUTE)
    loop = """\
        import torch
        from losses import LossCompute

        def train(model, generator, windows):
            optimizer = torch.optim.Adam(model.parameters())
            loss_compute = LossCompute(generator, torch.nn.CrossEntropyLoss())
            {before}
            for x, y in windows:
                {inside}
                loss_compute(model(x), y)
            optimizer.step()
        """
    write(tmp_path, "bad.py", loop.format(before="", inside="optimizer.zero_grad()"))
    write(tmp_path, "good.py", loop.format(before="optimizer.zero_grad()", inside="pass"))
    assert findings(tmp_path) == [("bad.py", "TBP012", 9)]


def test_a_trainer_class_of_another_file_runs_the_backward(tmp_path: Path) -> None:
    write(
        tmp_path,
        "engine.py",
        """\
        class Engine:
            def __init__(self, model):
                self.model = model

            def backward_step(self, loss):
                self.scale(loss).backward()

            def scale(self, loss):
                return loss
        """,
    )
    loop = """\
        import torch
        from engine import Engine

        model = torch.nn.Linear(4, 1)
        trainer = Engine(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for batch in loader:
            {before}
            for part in batch.chunk(4):
                {inside}
                trainer.backward_step(model(part).sum())
            optimizer.step()
        """
    write(tmp_path, "bad.py", loop.format(before="pass", inside="optimizer.zero_grad()"))
    write(tmp_path, "good.py", loop.format(before="optimizer.zero_grad()", inside="pass"))
    assert findings(tmp_path) == [("bad.py", "TBP012", 10)]


def test_a_step_helper_of_another_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        "steps.py",
        """\
        def step_only(optimizer):
            optimizer.step()

        def step_and_clear(optimizer):
            optimizer.step()
            optimizer.zero_grad()
        """,
    )
    loop = """\
        import torch
        from steps import {helper}

        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x, y in loader:
            (model(x) - y).pow(2).mean().backward()
            {helper}(optimizer)
        """
    write(tmp_path, "bad.py", loop.format(helper="step_only"))
    write(tmp_path, "good.py", loop.format(helper="step_and_clear"))
    assert findings(tmp_path) == [("bad.py", "TBP012", 8)]


def test_a_wrapper_optimizer_of_another_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        "optim.py",
        """\
        class Clipped:
            def __init__(self, optimizer):
                self.optimizer = optimizer

            def step(self):
                self.optimizer.step()

        class SelfClearing:
            def __init__(self, optimizer):
                self.optimizer = optimizer

            def step(self):
                self.optimizer.step()
                self.optimizer.zero_grad()
        """,
    )
    loop = """\
        import torch
        from optim import {wrapper}

        model = torch.nn.Linear(4, 1)
        optimizer = {wrapper}(torch.optim.SGD(model.parameters(), lr=0.1))
        for x, y in loader:
            (model(x) - y).pow(2).mean().backward()
            optimizer.step()
        """
    write(tmp_path, "bad.py", loop.format(wrapper="Clipped"))
    write(tmp_path, "good.py", loop.format(wrapper="SelfClearing"))
    assert findings(tmp_path) == [("bad.py", "TBP012", 8)]


def test_a_clearing_helper_of_another_file_silences(tmp_path: Path) -> None:
    write(
        tmp_path,
        "utils.py",
        """\
        def clear_grads(model):
            for p in model.parameters():
                p.grad = None

        def log(model):
            print(model)
        """,
    )
    loop = """\
        import torch
        from utils import {helper}

        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for x, y in loader:
            (model(x) - y).pow(2).mean().backward()
            optimizer.step()
            {helper}(model)
        """
    write(tmp_path, "cleared.py", loop.format(helper="clear_grads"))
    # `log` has no gradient facts, but it is not of this file: it may clear what it is given.
    write(tmp_path, "logged.py", loop.format(helper="log"))
    assert findings(tmp_path) == []
