"""SpeechBrain-style `Brain.fit_batch` whose mixed-precision branch clears grads every batch
while it steps only every `grad_accumulation_factor` batches.

Re-creates speechbrain 3782017 (`speechbrain/core.py` before commit 14169c5 "Fix gradient
accumulation."): with `auto_mix_prec`, `fit_batch` calls `optimizer.zero_grad()` on entry,
back-propagates `scaler.scale(loss / factor)` and calls `scaler.step(optimizer)` only when
`step % factor == 0`. Nothing raises, but each batch wipes the gradients of the batches
before it, so every update uses only the last batch of the group. Fix: move `zero_grad()`
after `scaler.step()`/`scaler.update()`, as the non-AMP branch does.
"""

import contextlib

import torch
import torch.nn as nn

K1 = 6
K2 = 6


class StubScaler:
    """Stands in for torch.cuda.amp.GradScaler with scaling disabled."""

    def scale(self, loss):
        return loss

    def unscale_(self, optimizer):
        pass

    def step(self, optimizer):
        optimizer.step()

    def update(self):
        pass


class Brain:
    def __init__(self, modules, grad_accumulation_factor=2, auto_mix_prec=True):
        self.modules = modules
        self.optimizer = torch.optim.Adam(modules.parameters(), lr=1e-3)
        self.scaler = StubScaler()
        self.grad_accumulation_factor = grad_accumulation_factor
        self.auto_mix_prec = auto_mix_prec
        self.step = 0
        self.avg_train_loss = 0.0

    def compute_forward(self, batch):
        feats, _ = batch
        out, _ = self.modules.rnn(feats)
        return self.modules.head(out)

    def compute_objectives(self, predictions, batch):
        _, target = batch
        return nn.functional.mse_loss(predictions, target)

    def fit_batch(self, batch):
        should_step = self.step % self.grad_accumulation_factor == 0
        if self.auto_mix_prec:
            self.optimizer.zero_grad()  # expect: TBP012
            with contextlib.nullcontext():
                outputs = self.compute_forward(batch)
                loss = self.compute_objectives(outputs, batch)
            self.scaler.scale(loss / self.grad_accumulation_factor).backward()
            if should_step:
                self.scaler.unscale_(self.optimizer)
                self.scaler.step(self.optimizer)
                self.scaler.update()
        else:
            outputs = self.compute_forward(batch)
            loss = self.compute_objectives(outputs, batch)
            (loss / self.grad_accumulation_factor).backward()
            if should_step:
                self.optimizer.step()
                self.optimizer.zero_grad()
        return loss.detach().cpu()

    def update_average(self, loss, avg_loss):
        avg_loss -= avg_loss / self.step
        avg_loss += float(loss) / self.step
        return avg_loss

    def fit(self, batches, epochs):
        for _epoch in range(epochs):
            self.optimizer.zero_grad()
            for batch in batches:
                self.step += 1
                loss = self.fit_batch(batch)
                self.avg_train_loss = self.update_average(loss, self.avg_train_loss)
            self.optimizer.zero_grad(set_to_none=True)
            self.avg_train_loss = 0.0
            self.step = 0


def train():
    torch.manual_seed(0)
    modules = nn.ModuleDict({"rnn": nn.GRU(5, 16, batch_first=True), "head": nn.Linear(16, 2)})
    batches = [(torch.randn(4, K1, 5), torch.randn(4, K1, 2)) for _ in range(4)]
    Brain(modules).fit(batches, epochs=2)


if __name__ == "__main__":
    train()
