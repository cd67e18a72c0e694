"""Attribute-controlled text VAE whose decoder starts every batch from the previous batch's
last soft output.

Re-creates GBLin5566/toward-controlled-generation-of-text-pytorch dfb95cc (`train.py`,
`train_vae_with_attr_loss`): the decoder feeds its own soft output back as the next input, and
`if 'next_word' in locals()` picks that output instead of the BOS word; `next_word` survives
the batch, so from the second batch on the first input carries the previous batch's graph,
already freed by its backward: "Trying to backward through the graph a second time".
Fix: start every batch from the BOS word (or detach what is carried).
"""

import torch
import torch.nn as nn

K1 = 5
K2 = 5
EXPECT_RAISES = "Trying to backward through the graph a second time"


class Decoder(nn.Module):
    def __init__(self, vocab, hidden):
        super().__init__()
        self.proj = nn.Linear(vocab, hidden)
        self.cell = nn.LSTMCell(hidden, hidden)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, word, state):
        h, c = self.cell(self.proj(word), state)
        logits = self.out(h)
        return torch.softmax(logits / 0.5, dim=-1), (h, c), logits


def train():
    torch.manual_seed(0)
    vocab, hidden, batch_size = 7, 8, 3
    decoder = Decoder(vocab, hidden)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=0.01)
    criterion = nn.CrossEntropyLoss()
    data = torch.randint(0, vocab, (4, batch_size, K1))
    for batch in data:
        optimizer.zero_grad()
        state = (torch.zeros(batch_size, hidden), torch.zeros(batch_size, hidden))
        bos = torch.zeros(batch_size, vocab)
        bos[:, 0] = 1.0
        loss = 0
        for index in range(K1):
            if "next_word" in locals():
                word = next_word  # noqa: F821
            else:
                word = bos
            output, state, logits = decoder(word, state)  # expect: TBP001
            next_word = output
            loss = loss + criterion(logits, batch[:, index])
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    train()
