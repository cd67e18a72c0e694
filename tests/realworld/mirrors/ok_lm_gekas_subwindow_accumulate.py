"""Char LSTM that truncates each long sequence into sub-windows and steps once per batch.

Every batch holds independent sequences (shuffled rows), so the state starts at zeros per
batch. A helper runs one sub-window and returns the loss with the state already cut
(`return loss, h0.detach(), c0.detach()`); the loop back-propagates each sub-window,
accumulating gradients, and steps the optimizer once after the last one (`zero_grad()`
before the window loop). Windows of K1 steps, horizon K1.
"""

import torch
import torch.nn as nn

K1 = 5
K2 = 5


class CharNet(nn.Module):
    def __init__(self, vocab, hidden_size):
        super().__init__()
        self.embed = nn.Embedding(vocab, 8)
        self.lstm = nn.LSTM(8, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, vocab)

    def forward(self, x, h0, c0):
        y, (h0, c0) = self.lstm(self.embed(x), (h0, c0))
        return self.out(y), h0, c0


def train():
    torch.manual_seed(0)
    vocab, hidden_size, main_seq_len, sub_seq_len, nbatch = 10, 12, 15, K1, 4
    net = CharNet(vocab, hidden_size)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()

    def get_loss(X, y, h0, c0):
        predicted, h0, c0 = net(X, h0, c0)
        loss = criterion(predicted.permute(0, 2, 1), y)
        return loss, h0.detach(), c0.detach()

    X_train = torch.randint(0, vocab, (8, main_seq_len + 1))
    for epoch in range(2):
        X_train = X_train[torch.randperm(X_train.shape[0])]
        for i in range(0, X_train.shape[0], nbatch):
            X_batch = X_train[i:i + nbatch]
            h0 = torch.zeros(1, X_batch.shape[0], hidden_size)
            c0 = torch.zeros(1, X_batch.shape[0], hidden_size)
            optimizer.zero_grad()
            for j in range(0, main_seq_len, sub_seq_len):
                loss, h0, c0 = get_loss(X_batch[:, j:j + sub_seq_len],
                                        X_batch[:, j + 1:j + sub_seq_len + 1], h0, c0)
                loss.backward()
            optimizer.step()


if __name__ == "__main__":
    train()
