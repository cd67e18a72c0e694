"""Stacked RNN language model whose per-layer states live in a dict and are cut in place.

Each layer returns `out[-1].clone()` as its state, so the dict values are whole tensors,
not views of the output sequence, and `hidden[key].detach_()` after the optimizer step is
legal and cuts every layer. Windows of K1 steps, horizon K1; the state is reset to `None`
(fresh zeros) at the start of every epoch.
"""

import torch
import torch.nn as nn

K1 = 7
K2 = 7


class Layer(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.rnn = nn.RNN(size, size)

    def forward(self, x, h0):
        out, _ = self.rnn(x, h0)
        return out, out[-1:].clone()


class StackedLM(nn.Module):
    def __init__(self, vocab, size, layers):
        super().__init__()
        self.size = size
        self.encoder = nn.Embedding(vocab, size)
        self.layers = nn.ModuleList(Layer(size) for _ in range(layers))
        self.decoder = nn.Linear(size, vocab)

    def forward(self, x, hidden_input_all):
        hidden_x = {}
        if hidden_input_all is not None:
            hidden_x.update(hidden_input_all)
        else:
            for i in range(len(self.layers)):
                hidden_x["hidden%d" % i] = torch.zeros(1, x.size(1), self.size)
        out = self.encoder(x)
        for i, layer in enumerate(self.layers):
            out, hidden_x["hidden%d" % i] = layer(out, hidden_x["hidden%d" % i])
        return self.decoder(out), hidden_x


def train():
    torch.manual_seed(0)
    vocab, batch, seq_len = 10, 4, K1
    data = torch.randint(0, vocab, (5 * seq_len + 1, batch))
    model = StackedLM(vocab, 12, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(2):
        hidden = None
        for i in range(0, data.size(0) - 1, seq_len):
            inputs, targets = data[i:i + seq_len], data[i + 1:i + 1 + seq_len]
            optimizer.zero_grad()
            output, hidden = model(inputs, hidden)
            loss = criterion(output.reshape(-1, vocab), targets.reshape(-1))
            loss.backward()
            optimizer.step()
            for key in hidden.keys():
                hidden[key].detach_()


if __name__ == "__main__":
    train()
