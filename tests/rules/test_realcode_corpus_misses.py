"""Issue 12, the corpus's known misses: the classes behind the ones fixed here, each with
FOUND cases (that the linter missed before) and SILENT twins (the correct idiom nearby).

- Hugging Face accelerate's `with accelerator.accumulate(model):` (tatsu-lab/alpaca_farm
  before 19fb391). Inside it the optimizer that `accelerator.prepare` wrapped skips `step()`
  and `zero_grad()` except at the accumulation boundary (`sync_gradients`); a module's own
  `zero_grad()` is not wrapped and runs on every pass, so it wipes the gradients of the
  micro-batches before the boundary: only the last one reaches the step (TBP012).
  `optimizer.zero_grad()` in the same context is skipped with the step: silent. So is a
  torch optimizer that was never prepared (it steps on every pass), and an `accumulate` of
  something not named as an accelerator.
- A module's `zero_grad()` against the step of an optimizer built from it under another
  name: `self.policy = policy` beside `Adam(policy.parameters())` in `__init__`.
"""

from __future__ import annotations

import textwrap

import pytest

from tbptt_lint.testing import expected_sorted, snippet_findings

TRAINER = """\
import torch
from accelerate.optimizer import AcceleratedOptimizer


class RLTrainer:
    def __init__(self, policy, accelerator, optimizer):
        self.policy = policy
        self.accelerator = accelerator
        self.optimizer = optimizer

    def step_with_rollouts(self, loader, epochs):
        assert isinstance(self.optimizer, AcceleratedOptimizer)
        for _epoch in range(epochs):
            for batch in loader:
                with self.accelerator.accumulate(self.policy):
                    loss = self.policy(batch).mean()
                    self.accelerator.backward(loss)
                    self.optimizer.step()
                    {clear}
"""

SCRIPT = """\
import torch
from accelerate import Accelerator

accelerator = Accelerator(gradient_accumulation_steps=4)
model = torch.nn.GRU(3, 8)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
model, optimizer = accelerator.prepare(model, optimizer)
for epoch in range(3):
    for x in loader:
        with accelerator.accumulate(model):
            {before}
            out, _ = model(x)
            accelerator.backward(out.sum())
            optimizer.step()
            {after}
"""

FOUND = {
    "module_zero_grad_after_step": TRAINER.replace(
        "{clear}", "self.policy.zero_grad(set_to_none=True)  # expect: TBP012"
    ),
    "model_zero_grad_after_step": SCRIPT.replace("{before}", "pass").replace(
        "{after}", "model.zero_grad()  # expect: TBP012"
    ),
    "model_zero_grad_before_backward": SCRIPT.replace(
        "{before}", "model.zero_grad()  # expect: TBP012"
    ).replace("{after}", "pass"),
    "named_optim": SCRIPT.replace("optimizer", "optim")
    .replace("{before}", "pass")
    .replace("{after}", "model.zero_grad()  # expect: TBP012"),
    "policy_under_another_name": """\
        import torch
        import torch.nn as nn


        class RLTrainer:
            def __init__(self, policy, accumulation_steps):
                self.policy = policy
                self.optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
                self.accumulation_steps = accumulation_steps

            def step_with_rollouts(self, rollouts, epochs=2):
                for _epoch in range(epochs):
                    for batch_idx, (x, y) in enumerate(rollouts, 1):
                        loss = nn.functional.mse_loss(self.policy(x), y)
                        loss.backward()
                        if batch_idx % self.accumulation_steps == 0:
                            self.optimizer.step()
                        self.policy.zero_grad(set_to_none=True)  # expect: TBP012
        """,
}

SILENT = {
    # alpaca_farm's fix (19fb391): the wrapped optimizer's own clear, skipped with the step.
    "optimizer_zero_grad_after_step": TRAINER.replace(
        "{clear}", "self.optimizer.zero_grad(set_to_none=True)"
    ),
    "optimizer_zero_grad_after_step_script": SCRIPT.replace("{before}", "pass").replace(
        "{after}", "optimizer.zero_grad()"
    ),
    "optimizer_zero_grad_before_backward": SCRIPT.replace(
        "{before}", "optimizer.zero_grad()"
    ).replace("{after}", "pass"),
    # Never prepared: a plain torch optimizer steps on every pass, so clearing the module
    # every pass loses nothing.
    "torch_optimizer_never_prepared": SCRIPT.replace(
        "model, optimizer = accelerator.prepare(model, optimizer)",
        "model = accelerator.prepare(model)",
    )
    .replace("{before}", "pass")
    .replace("{after}", "model.zero_grad()"),
    # Not accelerate's context: what `accumulate` does cannot be told.
    "accumulate_of_something_else": SCRIPT.replace(
        "with accelerator.accumulate", "with buffer.accumulate"
    )
    .replace("{before}", "pass")
    .replace("{after}", "model.zero_grad()"),
    # A scheduler is no optimizer: it clears nothing, and the module clear runs after a
    # step on every pass when the optimizer is a plain torch one.
    "step_every_pass_outside_accumulate": """\
        import torch

        model = torch.nn.GRU(3, 8)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        for x in loader:
            out, _ = model(x)
            out.sum().backward()
            optimizer.step()
            model.zero_grad()
        """,
    # The optimizer is built in another method, from a `policy` that need not be the one
    # stored: which module it updates cannot be told.
    "policy_built_elsewhere": """\
        import torch
        import torch.nn as nn


        class RLTrainer:
            def __init__(self, policy, accumulation_steps):
                self.policy = policy
                self.accumulation_steps = accumulation_steps

            def set_optimizer(self, policy):
                self.optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)

            def step_with_rollouts(self, rollouts, epochs=2):
                for _epoch in range(epochs):
                    for batch_idx, (x, y) in enumerate(rollouts, 1):
                        loss = nn.functional.mse_loss(self.policy(x), y)
                        loss.backward()
                        if batch_idx % self.accumulation_steps == 0:
                            self.optimizer.step()
                        self.policy.zero_grad(set_to_none=True)
        """,
    "policy_under_another_name_cleared_at_the_step": """\
        import torch
        import torch.nn as nn


        class RLTrainer:
            def __init__(self, policy, accumulation_steps):
                self.policy = policy
                self.optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
                self.accumulation_steps = accumulation_steps

            def step_with_rollouts(self, rollouts, epochs=2):
                for _epoch in range(epochs):
                    for batch_idx, (x, y) in enumerate(rollouts, 1):
                        loss = nn.functional.mse_loss(self.policy(x), y)
                        loss.backward()
                        if batch_idx % self.accumulation_steps == 0:
                            self.optimizer.step()
                            self.policy.zero_grad(set_to_none=True)
        """,
}


@pytest.mark.parametrize("source", list(FOUND.values()), ids=list(FOUND))
def test_found(source: str) -> None:
    assert expected_sorted(textwrap.dedent(source))
    assert snippet_findings(source) == expected_sorted(textwrap.dedent(source))


@pytest.mark.parametrize("source", list(SILENT.values()), ids=list(SILENT))
def test_silent(source: str) -> None:
    assert snippet_findings(source) == []
