"""Text-generation LSTM whose `(state_h, state_c)` is carried from batch to batch with the
two `detach()` lines commented out.

The state is made once per epoch and threaded through every batch of a DataLoader; with
the cut gone, the second batch's backward walks into the first batch's freed graph and
raises "Trying to backward through the graph a second time".
Fix: restore `state_h = state_h.detach()` and `state_c = state_c.detach()` (the project
later re-initialised the state for every batch instead).
"""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

K1 = 6
K2 = 6
EXPECT_RAISES = "Trying to backward through the graph a second time"


class Windows(Dataset):
    def __init__(self, ids, seq_len):
        self.ids, self.seq_len = ids, seq_len

    def __len__(self):
        return (len(self.ids) - 1) // self.seq_len

    def __getitem__(self, i):
        start = i * self.seq_len
        x = self.ids[start:start + self.seq_len]
        y = self.ids[start + 1:start + self.seq_len + 1]
        return x, y


class Model(nn.Module):
    def __init__(self, vocab, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.embed = nn.Embedding(vocab, 8)
        self.lstm = nn.LSTM(8, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, vocab)

    def forward(self, x, prev_state):
        output, state = self.lstm(self.embed(x), prev_state)
        return self.fc(output), state

    def init_state(self, batch_size):
        return (torch.zeros(1, batch_size, self.hidden_size),
                torch.zeros(1, batch_size, self.hidden_size))


def train():
    torch.manual_seed(0)
    vocab, batch_size, seq_len = 12, 4, K1
    ids = torch.randint(0, vocab, (4 * 4 * seq_len + 1,))
    dataloader = DataLoader(Windows(ids, seq_len), batch_size=batch_size, drop_last=True)
    net = Model(vocab, 16)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)

    for epoch in range(2):
        state_h, state_c = net.init_state(batch_size)
        for x, y in dataloader:
            optimizer.zero_grad()
            y_pred, (state_h, state_c) = net(x, (state_h, state_c))  # expect: TBP001
            loss = criterion(y_pred.transpose(1, 2), y)
            # state_h = state_h.detach()
            # state_c = state_c.detach()
            loss.backward()
            optimizer.step()


if __name__ == "__main__":
    train()
