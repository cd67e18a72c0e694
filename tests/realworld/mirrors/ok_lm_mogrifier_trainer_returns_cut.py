"""Word-level LM whose training step lives in a method that hands the state back cut.

`LanguageModel.trainer()` runs one window (zero_grad, forward, backward, clip, step) and
returns `self.repackage_hidden(hidden)`, a recursive detach; the epoch loop only threads
the returned state into the next call and re-initialises it per epoch. Evaluation does
the same under `torch.no_grad()`. Windows of K1 steps, horizon K1.
"""

import torch
import torch.nn as nn

K1 = 6
K2 = 6


class RNNModel(nn.Module):
    def __init__(self, vocab, size):
        super().__init__()
        self.size = size
        self.encoder = nn.Embedding(vocab, size)
        self.rnn = nn.LSTM(size, size)
        self.decoder = nn.Linear(size, vocab)

    def forward(self, x, hidden):
        out, hidden = self.rnn(self.encoder(x), hidden)
        return self.decoder(out), hidden

    def init_hidden(self, batch):
        return (torch.zeros(1, batch, self.size), torch.zeros(1, batch, self.size))


class LanguageModel(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.vocab = vocab
        self.model = RNNModel(vocab, 12)
        self.criterion = nn.CrossEntropyLoss()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def trainer(self, source, targets, hidden):
        self.optimizer.zero_grad()
        output, hidden = self.model(source, hidden)
        loss = self.criterion(output.view(-1, self.vocab), targets.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 0.25)
        self.optimizer.step()
        hidden = self.repackage_hidden(hidden)
        return loss.item(), hidden

    def evaluator(self, source, targets, hidden):
        output, hidden = self.model(source, hidden)
        loss = self.criterion(output.view(-1, self.vocab), targets.view(-1))
        return loss.item(), self.repackage_hidden(hidden)

    def repackage_hidden(self, h):
        if isinstance(h, torch.Tensor):
            return h.detach()
        return tuple(self.repackage_hidden(v) for v in h)


def train():
    torch.manual_seed(0)
    vocab, batch, bptt = 10, 4, K1
    train_data = torch.randint(0, vocab, (4 * bptt + 1, batch))
    val_data = torch.randint(0, vocab, (2 * bptt + 1, batch))
    model = LanguageModel(vocab)
    for epoch in range(2):
        hidden = model.model.init_hidden(batch)
        for i in range(0, len(train_data) - 1, bptt):
            source, targets = train_data[i:i + bptt], train_data[i + 1:i + 1 + bptt]
            loss, hidden = model.trainer(source, targets, hidden)
        hidden = model.model.init_hidden(batch)
        with torch.no_grad():
            for i in range(0, len(val_data) - 1, bptt):
                source, targets = val_data[i:i + bptt], val_data[i + 1:i + 1 + bptt]
                loss, hidden = model.evaluator(source, targets, hidden)


if __name__ == "__main__":
    train()
