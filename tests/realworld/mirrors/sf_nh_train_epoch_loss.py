"""Neural-Hawkes training loop that sums each batch's back-propagated loss as a tensor.

Re-creates xiao03/nh de8062e (`train.py`): after `batch_loss.backward()` and
`optim.step()`, the loop does `epoch_train_loss += batch_loss`, so the epoch total references
every batch's autograd graph until the epoch ends. Nothing raises; memory grows with the
number of batches. Fix: `epoch_train_loss += batch_loss.item()`.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

K1 = 6
K2 = 6


class EventRNN(nn.Module):
    def __init__(self, hidden_size, type_size):
        super().__init__()
        self.emb = nn.Embedding(type_size, hidden_size)
        self.rnn = nn.GRU(hidden_size + 1, hidden_size, batch_first=True)
        self.wa = nn.Linear(hidden_size, type_size)

    def forward(self, events, durations):
        inp = torch.cat([self.emb(events), durations.unsqueeze(-1)], dim=-1)
        out, _ = self.rnn(inp)
        return F.softplus(self.wa(out))


def train():
    torch.manual_seed(0)
    batch, type_size = 4, 5
    model = EventRNN(16, type_size)
    optim = torch.optim.Adam(model.parameters())
    batches = [(torch.randint(0, type_size, (batch, K1)), torch.rand(batch, K1)) for _ in range(4)]
    for _epoch in range(2):
        epoch_train_loss = 0.0
        train_event_num = 0
        for events, durations in batches:
            optim.zero_grad()
            intensity = model(events, durations)
            likelihood = torch.log(intensity.gather(2, events.unsqueeze(-1))).sum() - intensity.sum()
            batch_loss = -likelihood
            batch_loss.backward()
            optim.step()
            epoch_train_loss += batch_loss  # expect: TBP006
            train_event_num += events.numel()
        _per_event = -epoch_train_loss / train_event_num


if __name__ == "__main__":
    train()
