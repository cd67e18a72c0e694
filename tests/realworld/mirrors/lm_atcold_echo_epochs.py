"""Echo-task RNN trained with TBPTT whose hidden state is handed from one epoch to the next.

Mirrors the shape of a course notebook: `train(hidden)` loops over the windows of a series,
cuts the state in place with `hidden.detach_()` and returns it; the epoch loop feeds the
returned state into the next call. Each epoch draws a fresh random series, so the first
window of every epoch starts from the final state of an unrelated series. Nothing raises
and the gradient schedule is right (stride 10, horizon 10); the data is wrong.
Fix: start each epoch from `hidden = None`.
"""

import torch
import torch.nn as nn

K1 = 10
K2 = 10


class EchoRNN(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        self.rnn = nn.RNN(1, hidden_size, batch_first=True, nonlinearity="relu")
        self.linear = nn.Linear(hidden_size, 1)

    def forward(self, x, hidden):
        out, hidden = self.rnn(x, hidden)
        return self.linear(out), hidden


def new_series(batch, length, echo_step):
    x = torch.randint(0, 2, (batch, length, 1)).float()
    y = torch.roll(x, echo_step, dims=1)
    y[:, :echo_step] = 0
    return x, y


def train():
    torch.manual_seed(0)
    batch, length, echo_step = 4, 40, 3
    model = EchoRNN(8)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    criterion = nn.BCEWithLogitsLoss()

    def run_epoch(hidden):
        x, y = new_series(batch, length, echo_step)
        for start in range(0, length, K1):
            optimizer.zero_grad()
            if hidden is not None:
                hidden.detach_()
            logits, hidden = model(x[:, start:start + K1], hidden)
            loss = criterion(logits, y[:, start:start + K1])
            loss.backward()
            optimizer.step()
        return hidden

    hidden = None
    epoch = 0
    while epoch < 3:  # expect: TBP011
        hidden = run_epoch(hidden)
        epoch += 1


if __name__ == "__main__":
    train()
