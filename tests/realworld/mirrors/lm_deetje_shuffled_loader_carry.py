"""Char-RNN trained from a `DataLoader(shuffle=True)` over sliding windows while the hidden
state is carried from batch to batch.

The state is made once per epoch with a fixed batch size and cut with
`hidden = hidden.detach()` after every forward, so autograd is happy (stride 8, horizon 8),
but the loader shuffles independent windows: every batch starts from the final state of
other, random windows. (The original loader also lacked `drop_last=True`, so a smaller last
batch would not match the fixed-size state; this copy uses a dataset that divides evenly.)
Fix: start every batch from a fresh state, or keep stream-ordered batches unshuffled.
"""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

K1 = 8
K2 = 8


class CharDataSet(Dataset):
    def __init__(self, ids, seq_length):
        self.ids, self.seq_length = ids, seq_length

    def __len__(self):
        return len(self.ids) - self.seq_length

    def __getitem__(self, idx):
        x = self.ids[idx:idx + self.seq_length]
        y = self.ids[idx + 1:idx + self.seq_length + 1]
        return x, y


class CharRNN(nn.Module):
    def __init__(self, vocab, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.embed = nn.Embedding(vocab, 8)
        self.rnn = nn.RNN(8, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, vocab)

    def forward(self, x, hidden):
        output, hidden = self.rnn(self.embed(x), hidden)
        return self.fc(output), hidden

    def init_hidden(self, batch_size):
        return torch.zeros(1, batch_size, self.hidden_size)


def train():
    torch.manual_seed(0)
    vocab, batch_size, seq_length = 10, 4, K1
    ids = torch.randint(0, vocab, (24 + seq_length,))
    shuffle_generator = torch.Generator(device=torch.empty(0).device)
    dataloader = DataLoader(CharDataSet(ids, seq_length), batch_size=batch_size, shuffle=True,
                            generator=shuffle_generator)
    model = CharRNN(vocab, 16)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    for epoch in range(2):
        model.train()
        hidden = model.init_hidden(batch_size)
        for batch_idx, (inputs, targets) in enumerate(dataloader):  # expect: TBP011
            logits, hidden = model(inputs, hidden)
            hidden = hidden.detach()
            loss = criterion(logits.transpose(1, 2), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


if __name__ == "__main__":
    train()
