"""A convolutional LSTM stepped over frames that feeds the first state back at every frame.

Re-creates cjlovering/interpretable-reinforcement-learning-using-attention 73cb3ed
(`torchbeast/attention_net.py`, `VisionNetwork.forward`): the loop over frames masks the
incoming state at episode ends and calls the cell, but keeps the cell's new state under another
name (`O_t, vision_state = self.lstm(X_t, vision_lstm_state)`), so every frame starts from the
unroll's initial state and nothing passes from frame to frame (fixed by PR #6).
"""

import torch
import torch.nn as nn

K1 = 4
K2 = 4


class ConvLSTMCell(nn.Module):
    def __init__(self):
        super().__init__()
        self.gates = nn.Conv2d(2 + 3, 4 * 3, kernel_size=3, padding=1)

    def forward(self, x, state):
        h, c = state
        i, f, g, o = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        cc = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        ch = torch.sigmoid(o) * torch.tanh(cc)
        return ch, (ch, cc)


class VisionNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = ConvLSTMCell()

    def forward(self, frames, done, vision_lstm_state):
        outputs = []
        notdone = (~done).float()
        for x_t, nd in zip(frames.unbind(), notdone.unbind()):
            nd = nd.view(-1, 1, 1, 1)
            vision_lstm_state = tuple(nd * s for s in vision_lstm_state)
            o_t, vision_state = self.lstm(x_t, vision_lstm_state)  # expect: TBP015
            outputs.append(o_t)
        return torch.stack(outputs), vision_state


def train():
    torch.manual_seed(0)
    net = VisionNetwork()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    for _unroll in range(2):
        frames = torch.randn(K1, 2, 2, 5, 5)
        done = torch.zeros(K1, 2, dtype=torch.bool)
        state = (torch.zeros(2, 3, 5, 5), torch.zeros(2, 3, 5, 5))
        out, _ = net(frames, done, state)
        loss = out.pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    train()
