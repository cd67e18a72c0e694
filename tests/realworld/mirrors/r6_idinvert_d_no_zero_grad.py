"""Encoder/discriminator loop that clears the encoder's gradient but never the discriminator's.

Re-creates Hsintien-Ng/idinvert_pytorch-reproduced 7b0ef1a (`training/training_loop_encoder.py`
before cf33025 "fix zero_grad() on D"): each batch back-propagates the discriminator loss and
calls `optimizer_D.step()`, while only `optimizer_E.zero_grad()` exists. (Here both losses go
through one backward.) Nothing raises, but D's `.grad` sums every batch so far, so each D step
applies the running sum. Fix: `optimizer_D.zero_grad()` before `D_loss.backward()`.
"""

import torch
import torch.nn as nn

K1 = 4
K2 = 4


def train():
    torch.manual_seed(0)
    encoder = nn.GRU(3, 6, batch_first=True)
    decoder = nn.Linear(6, 3)
    discriminator = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    optimizer_E = torch.optim.Adam(list(encoder.parameters()) + list(decoder.parameters()), lr=1e-3)
    optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
    loader = [torch.randn(2, K1, 3) for _ in range(3)]
    for _epoch in range(2):
        for x in loader:
            z, _ = encoder(x)
            x_rec = decoder(z)
            loss_real = nn.functional.softplus(-discriminator(x)).mean()
            loss_fake = nn.functional.softplus(discriminator(x_rec.detach())).mean()
            d_loss = loss_real + loss_fake
            loss_pix = torch.mean((x - x_rec) ** 2)
            loss_adv = nn.functional.softplus(-discriminator(x_rec)).mean()
            e_loss = loss_pix + 0.1 * loss_adv
            optimizer_E.zero_grad()
            (d_loss + e_loss).backward()
            optimizer_D.step()  # expect: TBP012
            optimizer_E.step()

if __name__ == "__main__":
    train()
