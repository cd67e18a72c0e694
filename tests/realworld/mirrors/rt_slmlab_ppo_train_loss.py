"""PPO update whose logging total keeps every minibatch's loss tensor (and graph) alive.

Re-creation of the pattern in kengz/SLM-Lab slm_lab/agent/algorithm/ppo.py at d3128a8a:
each minibatch loss goes through `net.train_step` (zero_grad, backward, step) and is then
added to `total_loss = torch.tensor(0.0)`, so the accumulator references the autograd nodes
of every minibatch of every epoch until the update returns. Nothing raises; memory grows with
epochs x minibatches. Fix (23dca2a2): `total_loss = 0.0` and `total_loss += loss.item()`.
"""

import torch
import torch.nn as nn

K1 = 6
K2 = 6


class RecurrentPolicy(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 8)
        self.pi = nn.Linear(8, 2)
        self.v = nn.Linear(8, 1)

    def forward(self, states):
        out, _ = self.gru(states)
        return self.pi(out), self.v(out)

    def train_step(self, loss, optim):
        optim.zero_grad()
        loss.backward()
        optim.step()
        return loss


def train():
    torch.manual_seed(0)
    net = RecurrentPolicy()
    optim = torch.optim.Adam(net.parameters(), lr=1e-3)
    states = torch.randn(K1, 8, 4)
    actions = torch.randint(0, 2, (K1, 8))
    advs = torch.randn(K1, 8)
    v_targets = torch.randn(K1, 8)
    with torch.no_grad():
        old_log_probs = torch.log_softmax(net(states)[0], -1).gather(-1, actions[..., None])[..., 0]

    total_loss = torch.tensor(0.0)
    for _ in range(2):  # training epochs
        for mb in (slice(0, 4), slice(4, 8)):
            logits, v_preds = net(states[:, mb])
            log_probs = torch.log_softmax(logits, -1).gather(-1, actions[:, mb, None])[..., 0]
            ratios = torch.exp(log_probs - old_log_probs[:, mb])
            surr_1 = ratios * advs[:, mb]
            surr_2 = ratios.clamp(0.8, 1.2) * advs[:, mb]
            policy_loss = -torch.min(surr_1, surr_2).mean()
            val_loss = (v_preds[..., 0] - v_targets[:, mb]).pow(2).mean()
            loss = policy_loss + val_loss
            net.train_step(loss, optim)
            total_loss += loss  # expect: TBP006
    loss = total_loss / 4
    loss.item()


if __name__ == "__main__":
    train()
