"""DQN training iterations that sum the back-propagated loss tensors for a log line.

Re-creation of the pattern in kengz/SLM-Lab slm_lab/agent/algorithm/dqn.py (VanillaDQN.train
at 96be393): every `loss = calc_q_loss(batch)` is back-propagated and stepped inside
`net.train_step`, then `total_loss += loss` keeps its graph alive until `train()` returns.
Here the Q-network reads each sampled sequence with an LSTM from a fresh state. Nothing
raises; memory grows with training_iter x training_batch_iter. Fix: `+= loss.item()`, as
the same repository did for PPO in 23dca2a2.
"""

import torch
import torch.nn as nn

K1 = 5
K2 = 5


class RecurrentQNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 8)
        self.q = nn.Linear(8, 2)

    def forward(self, obs):
        out, _ = self.lstm(obs)
        return self.q(out)

    def train_step(self, loss, optim):
        optim.zero_grad()
        loss.backward()
        optim.step()


def train():
    torch.manual_seed(0)
    net = RecurrentQNet()
    optim = torch.optim.SGD(net.parameters(), lr=0.01)
    total_loss = torch.tensor(0.0)
    for _ in range(3):  # training_iter
        obs = torch.randn(K1, 4, 3)
        next_obs = torch.randn(K1, 4, 3)
        actions = torch.randint(0, 2, (K1, 4))
        rewards = torch.randn(K1, 4)
        for _ in range(2):  # training_batch_iter
            q_preds = net(obs)
            with torch.no_grad():
                next_q = net(next_obs).max(-1).values
            act_q = q_preds.gather(-1, actions[..., None])[..., 0]
            loss = nn.functional.mse_loss(act_q, rewards + 0.99 * next_q)
            net.train_step(loss, optim)
            total_loss += loss  # expect: TBP006
    loss = total_loss / 6
    loss.item()


if __name__ == "__main__":
    train()
