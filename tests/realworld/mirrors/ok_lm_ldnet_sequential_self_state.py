"""Stacked LM whose layers keep their own state and cut it in `forward`.

Each `BasicUnit` runs its RNN from `self.hidden_state` and stores the new state already
detached (`self.hidden_state = repackage_hidden(new_hidden)`); the layers sit in an
`nn.Sequential`, so the training loop carries no state at all and only calls
`init_hidden()` at the start of each pass over the stream. Windows of K1 steps, horizon K1.
"""

import torch
import torch.nn as nn


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


K1 = 5
K2 = 5


class BasicUnit(nn.Module):
    def __init__(self, input_dim, hid_dim):
        super().__init__()
        self.layer = nn.LSTM(input_dim, hid_dim, 1)
        self.init_hidden()

    def init_hidden(self):
        self.hidden_state = None

    def forward(self, x):
        out, new_hidden = self.layer(x, self.hidden_state)
        self.hidden_state = repackage_hidden(new_hidden)
        return out


class LM(nn.Module):
    def __init__(self, vocab, dim, layers):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.rnn = nn.Sequential(*[BasicUnit(dim, dim) for _ in range(layers)])
        self.out = nn.Linear(dim, vocab)

    def init_hidden(self):
        for unit in self.rnn.children():
            unit.init_hidden()

    def forward(self, word_t, label_t):
        logits = self.out(self.rnn(self.embed(word_t)))
        return nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), label_t)


def train():
    torch.manual_seed(0)
    vocab, batch, bptt = 10, 4, K1
    stream = torch.randint(0, vocab, (6 * bptt + 1, batch))
    lm_model = LM(vocab, 12, 2)
    optimizer = torch.optim.Adam(lm_model.parameters(), lr=1e-3)
    for epoch in range(2):
        lm_model.init_hidden()
        for i in range(0, stream.size(0) - 1, bptt):
            word_t, label_t = stream[i:i + bptt], stream[i + 1:i + 1 + bptt].reshape(-1)
            lm_model.zero_grad()
            loss = lm_model(word_t, label_t)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lm_model.parameters(), 5)
            optimizer.step()


if __name__ == "__main__":
    train()
