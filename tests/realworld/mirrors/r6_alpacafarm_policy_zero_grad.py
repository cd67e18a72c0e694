"""PPO micro-batch loop that clears the policy's gradient after every micro-batch.

Re-creates tatsu-lab/alpaca_farm 94b0207 (`src/alpaca_farm/rl/rl_trainer.py` before 19fb391
"fix zero grad bug"): under gradient accumulation the optimizer only steps at the
accumulation boundary, but `self.policy.zero_grad()` runs after every micro-batch, so the
gradients of the earlier micro-batches are wiped before they are ever applied. (The original
gates the step through `accelerator.accumulate`; here the gate is written out.) Nothing
raises; only the last micro-batch of each group trains the policy. Fix: clear the gradient
only where the step happens (`optimizer.zero_grad()` inside the same gate).
"""

import torch
import torch.nn as nn

K1 = 4
K2 = 4


class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 8, batch_first=True)
        self.value = nn.Linear(8, 1)

    def forward(self, queries):
        out, _ = self.gru(queries)
        return self.value(out[:, -1])


class RLTrainer:
    def __init__(self, policy, accumulation_steps):
        self.policy = policy
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
        self.accumulation_steps = accumulation_steps

    def compute_loss(self, batch):
        queries, returns = batch
        return nn.functional.mse_loss(self.policy(queries), returns)

    def step_with_rollouts(self, rollouts, epochs=2):
        for _epoch in range(epochs):
            for batch_idx, batch in enumerate(rollouts, 1):
                loss = self.compute_loss(batch) / self.accumulation_steps
                loss.backward()
                if batch_idx % self.accumulation_steps == 0:
                    self.optimizer.step()
                self.policy.zero_grad(set_to_none=True)  # expect: TBP012


def train():
    torch.manual_seed(0)
    rollouts = [(torch.randn(2, K1, 3), torch.randn(2, 1)) for _ in range(4)]
    RLTrainer(Policy(), accumulation_steps=2).step_with_rollouts(rollouts)


if __name__ == "__main__":
    train()
