"""Lightning-1.4-style batch loop that cuts the TBPTT hidden state with a tree map.

Re-creates pytorch-lightning 8a7f504 (`TrainingBatchLoop` after PR #8249): the split-to-split
state returned by `training_step(split, batch_idx, hiddens)` is stored on the loop as
`apply_to_collection(hiddens, Tensor, lambda t: t.detach())`, a recursive map over the
(h, c) tuple. Correct: every split's backward reaches exactly that split (5 steps).
"""

import torch
import torch.nn as nn

K1 = 5
K2 = 5


def apply_to_collection(data, dtype, function):
    """Apply `function` to every element of type `dtype` in a nested tuple/list/dict."""
    if isinstance(data, dtype):
        return function(data)
    if isinstance(data, dict):
        return {k: apply_to_collection(v, dtype, function) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(apply_to_collection(v, dtype, function) for v in data)
    return data


class SeqModule(nn.Module):
    def __init__(self, features, hidden_size):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def training_step(self, batch, batch_idx, hiddens):
        x, y = batch
        out, hiddens = self.lstm(x, hiddens)
        loss = nn.functional.mse_loss(self.head(out), y)
        return {"loss": loss, "hiddens": hiddens}


class BatchLoop:
    def __init__(self, module, optimizer, split_size):
        self.module = module
        self.optimizer = optimizer
        self.split_size = split_size
        self._hiddens = None

    def reset(self):
        self._hiddens = None

    def _tbptt_split_batch(self, batch):
        x, y = batch
        return [
            (x[:, t:t + self.split_size], y[:, t:t + self.split_size])
            for t in range(0, x.size(1), self.split_size)
        ]

    def run(self, batch, batch_idx):
        self.reset()
        for split_batch in self._tbptt_split_batch(batch):
            self._run_optimization(batch_idx, split_batch)

    def _run_optimization(self, batch_idx, split_batch):
        result = self._training_step(split_batch, batch_idx, self._hiddens)
        self.optimizer.zero_grad()
        self.backward(result["loss"])
        self.optimizer.step()

    def _training_step(self, split_batch, batch_idx, hiddens):
        output = self.module.training_step(split_batch, batch_idx, hiddens)
        return self._process_training_step_output(output)

    def _process_training_step_output(self, output):
        loss = output.pop("loss")
        hiddens = output.pop("hiddens", None)
        # detach hiddens to avoid `RuntimeError: Trying to backward through the graph a second time`
        hiddens = apply_to_collection(hiddens, torch.Tensor, lambda t: t.detach())
        self._hiddens = hiddens
        return {"loss": loss}

    def backward(self, loss):
        loss.backward()


def train():
    torch.manual_seed(0)
    batch, steps, features = 4, 3 * K1, 3
    module = SeqModule(features, 8)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.05)
    loop = BatchLoop(module, optimizer, split_size=K1)
    for batch_idx in range(2):
        x = torch.randn(batch, steps, features)
        y = torch.randn(batch, steps, 1)
        loop.run((x, y), batch_idx)


if __name__ == "__main__":
    train()
