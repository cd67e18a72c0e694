"""DRQN update whose "burn-in" frames are only masked out of the loss, not run without grad.

Re-creation of the pattern in chandar-lab/RLHive hive/agents/drqn.py (`DRQNAgent.update` at
09a21d2): the sampled sequence, burn-in frames included, goes through the recurrent Q-network
in one call with gradients on and no cut after the burn-in; the burn-in frames are only
zeroed in the loss by a mask. The backward therefore reaches through the burn-in steps
(horizon burn-in + train instead of train), unlike R2D2's burn-in. Fix: run the burn-in
prefix under `torch.no_grad()` and start the training part from the resulting state.
"""

import copy

import torch
import torch.nn as nn

BURN_FRAMES = 4
TRAIN_FRAMES = 6
K1 = BURN_FRAMES + TRAIN_FRAMES
K2 = TRAIN_FRAMES


class DRQNNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 8, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, obs, hidden=None):
        out, hidden = self.lstm(obs, hidden)
        return self.head(out), hidden


def train():
    torch.manual_seed(0)
    qnet = DRQNNetwork()
    target_qnet = copy.deepcopy(qnet).requires_grad_(False)
    optimizer = torch.optim.Adam(qnet.parameters(), lr=1e-3)
    loss_fn = nn.SmoothL1Loss(reduction="none")
    batch_size, max_seq_len = 4, BURN_FRAMES + TRAIN_FRAMES
    for _ in range(3):
        obs = torch.randn(batch_size, max_seq_len, 3)
        next_obs = torch.randn(batch_size, max_seq_len, 3)
        actions = torch.randint(0, 2, (batch_size, max_seq_len))
        rewards = torch.randn(batch_size, max_seq_len)

        optimizer.zero_grad()
        pred_qvals, _ = qnet(obs)  # expect: TBP013
        pred_qvals = torch.gather(pred_qvals, -1, actions.unsqueeze(-1)).squeeze(-1)
        next_qvals, _ = target_qnet(next_obs)
        q_targets = rewards + 0.99 * next_qvals.max(-1).values

        interm_loss = loss_fn(pred_qvals, q_targets)
        mask = torch.zeros(max_seq_len)
        mask[BURN_FRAMES:] = 1.0
        interm_loss = interm_loss * mask.view(1, -1)
        loss = interm_loss.mean()
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    train()
