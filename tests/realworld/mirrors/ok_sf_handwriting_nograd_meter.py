"""Handwriting-synthesis trainer that logs a moving average of the back-propagated loss.

Re-creates X-rayLaser/pytorch-handwriting-synthesis-toolkit 899e943 (`TrainingLoop.start` and
`BaseHandwritingTask.train`): the task object runs zero_grad/backward/step and returns the
loss tensor; the loop feeds it to `MovingAverage.update`, whose `self._value += v` would
keep every batch's graph alive, but the call sits under `torch.no_grad()`, so the sum is a
plain tensor with no history. Correct: each batch is one sequence of 6 steps, started from a
fresh state.
"""

import torch
import torch.nn as nn

K1 = 6
K2 = 6


class MovingAverage:
    def __init__(self):
        self._value = 0
        self._iterations = 0

    @property
    def value(self):
        if self._iterations == 0:
            return 0
        return self._value / self._iterations

    def update(self, v):
        self._value += v
        self._iterations += 1

    def reset(self):
        self._value = 0
        self._iterations = 0


class StrokeModel(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        self.lstm = nn.LSTM(3, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out)


class HandwritingTask:
    def __init__(self, model):
        self._model = model
        self._optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)

    def train(self, batch):
        self._optimizer.zero_grad()
        y_hat, loss = self.compute_loss(batch)
        loss.backward()
        self._optimizer.step()
        return y_hat, loss

    def compute_loss(self, batch):
        points = batch
        prefix = torch.zeros(points.size(0), 1, 3)
        x = torch.cat([prefix, points[:, :-1]], dim=1)
        y_hat = self._model(x)
        return y_hat, nn.functional.mse_loss(y_hat, points)


def train():
    torch.manual_seed(0)
    task = HandwritingTask(StrokeModel(16))
    loader = [torch.randn(4, K1, 3) for _ in range(4)]
    ma_loss = MovingAverage()
    for _epoch in range(2):
        ma_loss.reset()
        for data in loader:
            y_hat, loss = task.train(data)
            with torch.no_grad():
                ma_loss.update(loss)
            _nats_loss = ma_loss.value


if __name__ == "__main__":
    train()
