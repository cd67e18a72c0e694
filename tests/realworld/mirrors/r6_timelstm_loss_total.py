"""Time-LSTM experiment that sums each batch's back-propagated loss for the LR scheduler.

Re-creates whatshow/NN-TimeLTSM 1467e81 (`Examples/Test/rnn_lstm_ag_v1_epo100.py`): every
batch back-propagates its loss and then `loss_total = loss_total + loss`; the epoch average is
handed to `ReduceLROnPlateau.step`. Nothing raises, but the running sum keeps the graph of every
batch of the epoch alive. Fix: `loss_total = loss_total + loss.item()`.
"""

import torch
import torch.nn as nn

K1 = 5
K2 = 5


def train():
    torch.manual_seed(0)
    model = nn.LSTM(3, 8, batch_first=True)
    model_dnn1 = nn.Linear(8, 1)
    criterion = nn.MSELoss(reduction="mean")
    gradient_optimizer = torch.optim.Adam(
        [{"params": model.parameters()}, {"params": model_dnn1.parameters()}], lr=1e-3
    )
    lr_optimizer = torch.optim.lr_scheduler.ReduceLROnPlateau(gradient_optimizer, factor=0.9)
    epoch_size = 3
    data_x = torch.randn(epoch_size * 2, K1, 3)
    data_y = torch.randn(epoch_size * 2, 1)
    for _epo_id in range(2):
        loss_total = 0.0
        for batch_id in range(epoch_size):
            x = data_x[batch_id * 2 : (batch_id + 1) * 2]
            y = data_y[batch_id * 2 : (batch_id + 1) * 2]
            out, _ = model(x)
            pred = torch.sigmoid(model_dnn1(out[:, -1]))
            loss = criterion(pred, y)
            gradient_optimizer.zero_grad()
            loss.backward()
            gradient_optimizer.step()
            loss_total = loss_total + loss  # expect: TBP006
        loss_aver = loss_total / epoch_size
        lr_optimizer.step(loss_aver)


if __name__ == "__main__":
    train()
