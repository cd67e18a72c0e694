"""Course notebook that sums the back-propagated `output.loss` for its progress line.

Re-creates pai4451/ML2021 9fddc41 (`hw7/hw7_macbert4.ipynb`, issue #2): the model returns an
output object whose `.loss` is back-propagated every batch, and the same tensor is added to
`train_loss` for the log printed every `logging_step` batches. Nothing raises, but until the
reset the running sum holds the autograd graph of every batch since the last log, so host
memory grows with `logging_step`. Fix: `train_loss += output.loss.item()` (or `.detach()`).
"""

from types import SimpleNamespace

import torch
import torch.nn as nn

K1 = 6
K2 = 6


class SpanModel(nn.Module):
    def __init__(self, vocab, hidden_size):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.start = nn.Linear(hidden_size, 1)

    def forward(self, tokens, start_positions):
        out, _ = self.gru(self.embed(tokens))
        logits = self.start(out).squeeze(-1)
        loss = nn.functional.cross_entropy(logits, start_positions)
        return SimpleNamespace(loss=loss, start_logits=logits)


def train():
    torch.manual_seed(0)
    model = SpanModel(30, 16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = [(torch.randint(0, 30, (4, K1)), torch.randint(0, K1, (4,))) for _ in range(6)]
    logging_step = 3
    for _epoch in range(2):
        step = 1
        train_loss = train_acc = 0
        for tokens, start in loader:
            output = model(tokens, start_positions=start)
            start_index = torch.argmax(output.start_logits, dim=1)
            train_acc += (start_index == start).float().mean()
            train_loss += output.loss  # expect: TBP006
            output.loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            if step % logging_step == 0:
                _ = train_loss.item() / logging_step
                train_loss = train_acc = 0


if __name__ == "__main__":
    train()
