"""Trainer class whose epoch loss is summed as tensors after each batch's backward.

Re-creates joeynmt 998acf4 (`TrainManager` before commit 6fc9f4a "Fix memory bug"):
`_train_batch` computes the batch loss of an RNN encoder-decoder, normalises it, runs
`backward()` and steps the optimizer every `batch_multiplier` batches, then returns the
normalised loss tensor; `train_and_validate` adds it to `epoch_loss`. Nothing raises, but
`epoch_loss` references every batch's graph until the epoch ends, so memory grows with the
number of batches. Fix: `epoch_loss += batch_loss.detach().cpu().numpy()` (or `.item()`).
"""

import torch
import torch.nn as nn

K1 = 6
K2 = 6


class Seq2Seq(nn.Module):
    def __init__(self, vocab, hidden_size):
        super().__init__()
        self.embed = nn.Embedding(vocab, 8)
        self.encoder = nn.GRU(8, hidden_size)
        self.decoder = nn.GRU(8, hidden_size)
        self.out = nn.Linear(hidden_size, vocab)

    def get_loss_for_batch(self, src, trg, loss_function):
        _, enc_hidden = self.encoder(self.embed(src))
        dec_out, _ = self.decoder(self.embed(trg[:-1]), enc_hidden)
        logits = self.out(dec_out)
        return loss_function(logits.reshape(-1, logits.size(-1)), trg[1:].reshape(-1))


class TrainManager:
    def __init__(self, model, batch_multiplier=1):
        self.model = model
        self.loss = nn.CrossEntropyLoss(reduction="sum")
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.batch_multiplier = batch_multiplier
        self.steps = 0

    def train_and_validate(self, batches, epochs):
        for _epoch in range(epochs):
            self.model.train()
            count = 0
            epoch_loss = 0
            for src, trg in batches:
                update = count == 0
                batch_loss = self._train_batch(src, trg, update=update)
                count = self.batch_multiplier if update else count
                count -= 1
                epoch_loss += batch_loss  # expect: TBP006
            _report = epoch_loss

    def _train_batch(self, src, trg, update=True):
        batch_loss = self.model.get_loss_for_batch(src, trg, self.loss)
        norm_batch_loss = batch_loss / src.size(1)
        norm_batch_multiply = norm_batch_loss / self.batch_multiplier
        norm_batch_multiply.backward()
        if update:
            self.optimizer.step()
            self.optimizer.zero_grad()
            self.steps += 1
        return norm_batch_loss


def train():
    torch.manual_seed(0)
    vocab = 12
    batches = [
        (torch.randint(0, vocab, (K1, 4)), torch.randint(0, vocab, (K1 + 1, 4)))
        for _ in range(4)
    ]
    manager = TrainManager(Seq2Seq(vocab, 16))
    manager.train_and_validate(batches, epochs=2)


if __name__ == "__main__":
    train()
