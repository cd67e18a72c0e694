"""Training loop with gradient accumulation that sums the losses returned by a model which
already ran its own backward, keeping each micro-batch's graph alive for a log line.

The wrapper back-propagates inside `forward` (the original does memory-replay
back-propagation there) and returns the loss tensor, graph and all. The loop accumulates
`total_loss += loss` over the accumulation steps only to print `total_loss.item()`, so the
graphs of all micro-batches stay referenced until the next iteration. Nothing raises
(stride 12, horizon 12: each call back-propagates one whole sequence).
Fix: `total_loss += loss.item()`.
"""

import torch
import torch.nn as nn

K1 = 12
K2 = 12
GRADIENT_ACCUMULATE_EVERY = 3


class SelfBackpropLM(nn.Module):
    def __init__(self, vocab, dim):
        super().__init__()
        self.dim = dim
        self.embed = nn.Embedding(vocab, dim)
        self.cell = nn.GRUCell(dim, dim)
        self.to_logits = nn.Linear(dim, vocab)

    def forward(self, x, loss_weight=1.0):
        x, labels = x[:, :-1], x[:, 1:]
        memories = torch.zeros(x.size(0), self.dim)
        logits = []
        for t in range(x.size(1)):
            memories = self.cell(self.embed(x[:, t]), memories)
            logits.append(self.to_logits(memories))
        loss = nn.functional.cross_entropy(torch.stack(logits, 2), labels) * loss_weight
        loss.backward()
        return loss


def train():
    torch.manual_seed(0)
    vocab, batch = 10, 4
    model = SelfBackpropLM(vocab, 16)
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in range(2):
        model.train()
        total_loss = 0.0
        for _ in range(GRADIENT_ACCUMULATE_EVERY):
            x = torch.randint(0, vocab, (batch, K1 + 1))
            loss = model(x, loss_weight=1.0 / GRADIENT_ACCUMULATE_EVERY)
            total_loss += loss  # expect: TBP006
        logged = total_loss.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optim.step()
        optim.zero_grad()


if __name__ == "__main__":
    train()
