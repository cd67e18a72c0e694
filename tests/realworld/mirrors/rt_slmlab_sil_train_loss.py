"""Self-imitation updates from replay whose running total keeps every loss graph.

Re-creation of the pattern in kengz/SLM-Lab slm_lab/agent/algorithm/sil.py (SIL.train at
96be393): the off-policy SIL loss of every replay batch is back-propagated in
`net.train_step` and then added to `total_sil_loss = torch.tensor(0.0)`, which keeps all of
those graphs reachable until the method returns. Nothing raises; memory grows with the
number of SIL updates. Fix: accumulate `sil_loss.item()`.
"""

import torch
import torch.nn as nn

K1 = 4
K2 = 4


class ActorCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 8)
        self.pi = nn.Linear(8, 2)
        self.v = nn.Linear(8, 1)

    def forward(self, states):
        out, _ = self.rnn(states)
        return self.pi(out), self.v(out)[..., 0]

    def train_step(self, loss, optim):
        optim.zero_grad()
        loss.backward()
        optim.step()


def train():
    torch.manual_seed(0)
    net = ActorCritic()
    optim = torch.optim.Adam(net.parameters(), lr=1e-3)
    total_sil_loss = torch.tensor(0.0)
    for _ in range(3):  # training_iter
        states = torch.randn(K1, 4, 3)
        actions = torch.randint(0, 2, (K1, 4))
        returns = torch.randn(K1, 4)
        for _ in range(2):  # training_batch_iter
            logits, v_preds = net(states)
            clipped_advs = torch.clamp(returns - v_preds, min=0.0)
            log_probs = torch.log_softmax(logits, -1).gather(-1, actions[..., None])[..., 0]
            sil_policy_loss = -(log_probs * clipped_advs.detach()).mean()
            sil_val_loss = clipped_advs.pow(2).mean() / 2
            sil_loss = sil_policy_loss + sil_val_loss
            net.train_step(sil_loss, optim)
            total_sil_loss += sil_loss  # expect: TBP006
    sil_loss = total_sil_loss / 3
    sil_loss.item()


if __name__ == "__main__":
    train()
