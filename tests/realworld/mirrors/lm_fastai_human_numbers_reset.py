"""Language model that keeps its hidden state on the module (`self.h`) and cuts it in
`forward`, trained by a fit loop that never resets that state.

Mirrors a course notebook: `forward` runs an `nn.RNN` from `self.h` and stores
`self.h = h.detach()`, so every batch continues from the previous one (correct within the
training stream). But nothing resets `self.h`: the state at the end of one epoch's stream
flows into the first batch of the next epoch (in the notebook, through the validation
batches as well). Nothing raises; every window still has stride and horizon 5.
Fix: give the model a `reset()` (`self.h = zeros`) and call it at the start of every epoch
and before validation (fastai's later `ModelResetter` callback).
"""

import torch
import torch.nn as nn

K1 = 5
K2 = 5


class StatefulLM(nn.Module):
    def __init__(self, vocab, hidden_size, batch_size):
        super().__init__()
        self.i_h = nn.Embedding(vocab, hidden_size)
        self.rnn = nn.RNN(hidden_size, hidden_size, batch_first=True)
        self.h_o = nn.Linear(hidden_size, vocab)
        self.h = torch.zeros(1, batch_size, hidden_size)

    def forward(self, x):
        res, h = self.rnn(self.i_h(x), self.h)
        self.h = h.detach()
        return self.h_o(res)


def lm_batches(stream, batch_size, bptt):
    rows = stream[: len(stream) // batch_size * batch_size].view(batch_size, -1)
    for i in range(0, rows.size(1) - 1 - bptt + 1, bptt):
        yield rows[:, i:i + bptt], rows[:, i + 1:i + 1 + bptt]


def train():
    torch.manual_seed(0)
    vocab, batch_size, bptt = 10, 4, K1
    train_stream = torch.randint(0, vocab, (4 * 31,))
    model = StatefulLM(vocab, 16, batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    for epoch in range(3):  # expect: TBP011
        model.train()
        for x, y in lm_batches(train_stream, batch_size, bptt):
            loss = nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()


if __name__ == "__main__":
    train()
