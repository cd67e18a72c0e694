"""Stateful LSTM anomaly detector whose carried state flows from the validation pass of one
epoch into the first training batch of the next (and across recordings).

Re-creation of the pattern in LID-DS/LID-DS algorithms/decision_engines/lstm.py (`fit` at
587d158): `self._hidden` is carried from batch to batch and detached after every forward,
`new_recording()` resets it only between the training and the validation pass of an epoch,
and the validation pass then leaves its final state in `self._hidden`, where the next epoch's
first training batch picks it up. The batches of one epoch also span several recordings that
the docstring says should each start from a reset. Nothing raises; unrelated sequences leak
into each other's initial state. Fix: reset `self._hidden` at the start of every training
pass (and at every recording boundary).

`train()` runs a single epoch over two "recordings" of three batches each, so the tracer's
stride check only sees training windows; the hand-over from validation into training happens
from the second epoch on, with the same code.
"""

import torch
import torch.nn as nn

K1 = 1
K2 = 1


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 8, batch_first=True)
        self.output = nn.Linear(8, 5)

    def forward(self, x, hidden):
        output, hidden = self.lstm(x, hidden)
        return self.output(torch.tanh(hidden[0].view(-1, 8))), hidden


class Detector:
    def __init__(self):
        self._lstm = Net()
        self._hidden = None

    def new_recording(self):
        self._hidden = None

    def fit(self, train_batches, val_batches, epochs):
        criterion = nn.CrossEntropyLoss()
        optimizer = torch.optim.Adam(self._lstm.parameters(), lr=1e-3)
        self._hidden = None
        for _epoch in range(epochs):
            for inputs, labels in train_batches:  # expect: TBP011
                outputs, hidden = self._lstm(inputs, self._hidden)
                self._hidden = tuple(state.detach() for state in hidden)
                optimizer.zero_grad()
                train_loss = criterion(outputs, labels)
                train_loss.backward()
                optimizer.step()
            self.new_recording()
            for inputs, labels in val_batches:
                outputs, hidden = self._lstm(inputs, self._hidden)
                self._hidden = tuple(state.detach() for state in hidden)
                criterion(outputs, labels).item()


def train():
    torch.manual_seed(0)
    train_batches = [(torch.randn(4, 1, 3), torch.randint(0, 5, (4,))) for _ in range(6)]
    val_batches = [(torch.randn(4, 1, 3), torch.randint(0, 5, (4,))) for _ in range(2)]
    Detector().fit(train_batches, val_batches, epochs=1)


if __name__ == "__main__":
    train()
