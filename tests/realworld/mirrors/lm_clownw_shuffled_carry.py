"""Character LSTM whose batches are shuffled every epoch while the hidden state is carried
from one batch to the next.

The text is cut into a (n_batches, batch, time) array and the batch order is shuffled each
epoch; the `(h, c)` returned for one batch (cut with a detach) becomes the initial state of
whichever batch comes next. Row j of that batch does not continue row j of the previous
one, so every batch starts from the final state of unrelated text. Nothing raises and the
gradient schedule is fine (stride 8, horizon 8). In the original the state is also carried
across epochs. Fix: start every batch from a fresh state (`h_state = None`), or keep
stream-ordered batches unshuffled.
"""

import torch
import torch.nn as nn

K1 = 8
K2 = 8


class CharLSTM(nn.Module):
    def __init__(self, vocab, hidden_size):
        super().__init__()
        self.embed = nn.Embedding(vocab, 8)
        self.rnn = nn.LSTM(8, hidden_size, batch_first=True)
        self.l_out = nn.Linear(hidden_size, vocab)

    def forward(self, x, h_state):
        r_out, h_state = self.rnn(self.embed(x), h_state)
        return self.l_out(r_out), h_state


def train():
    torch.manual_seed(0)
    vocab, batch, time_step, n_batches = 12, 4, K1, 6
    stream = torch.randint(0, vocab, (n_batches * batch * time_step + 1,))
    inputs = stream[:-1].view(n_batches, batch, time_step)
    targets = stream[1:].view(n_batches, batch, time_step)
    rnn = CharLSTM(vocab, 16)
    optimizer = torch.optim.Adam(rnn.parameters(), lr=1e-3)
    loss_func = nn.CrossEntropyLoss()

    for epoch in range(2):
        h_state = None
        order = torch.randperm(n_batches)
        for batch_index in order.tolist():  # expect: TBP011
            x, y = inputs[batch_index], targets[batch_index]
            prediction, h_state = rnn(x, h_state)
            h_state = tuple(h.detach() for h in h_state)
            loss = loss_func(prediction.reshape(-1, vocab), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


if __name__ == "__main__":
    train()
