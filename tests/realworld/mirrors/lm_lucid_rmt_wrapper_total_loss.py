"""Recurrent-memory wrapper that back-propagates each segment itself and sums the already
back-propagated losses, with their graphs, into the total it returns for logging.

The original does memory-replay back-propagation: segments are re-run one at a time, each
segment's loss is back-propagated with `retain_graph=True` (the memory gradient is then
chained back through the same graph) and `total_loss += weighted_loss` keeps a reference
to every segment's graph until the function returns, and beyond, in the caller's own
accumulator. This copy keeps the shape that matters: a per-segment backward inside the
wrapper's segment loop, the memory cut between segments, and the tensor accumulation.
Nothing raises (stride 5, horizon 5); memory grows with the number of segments.
Fix: `total_loss += weighted_loss.item()` (or `.detach()`).
"""

import torch
import torch.nn as nn

K1 = 5
K2 = 5


class MemoryTransformer(nn.Module):
    def __init__(self, vocab, dim):
        super().__init__()
        self.dim = dim
        self.embed = nn.Embedding(vocab, dim)
        self.cell = nn.GRUCell(dim, dim)
        self.to_logits = nn.Linear(dim, vocab)

    def forward(self, segment, memories, labels):
        if memories is None:
            memories = torch.zeros(segment.size(0), self.dim)
        logits = []
        for t in range(segment.size(1)):
            memories = self.cell(self.embed(segment[:, t]), memories)
            logits.append(self.to_logits(memories))
        loss = nn.functional.cross_entropy(torch.stack(logits, 2), labels)
        return loss, memories


class MemoryWrapper(nn.Module):
    def __init__(self, transformer, seq_len):
        super().__init__()
        self.transformer = transformer
        self.seq_len = seq_len

    def forward(self, x, loss_weight=1.0):
        x, labels = x[:, :-1], x[:, 1:]
        memories = None
        total_loss = 0.0
        segments = x.split(self.seq_len, dim=-1)
        label_segments = labels.split(self.seq_len, dim=-1)
        for segment, label_segment in zip(segments, label_segments):
            if memories is not None:
                memories = memories.detach()
            loss, memories = self.transformer(segment, memories, label_segment)
            weighted_loss = loss * loss_weight
            weighted_loss.backward()
            total_loss += weighted_loss  # expect: TBP006
        return total_loss


def train():
    torch.manual_seed(0)
    vocab, batch, seq_len, segments = 10, 4, K1, 3
    model = MemoryWrapper(MemoryTransformer(vocab, 16), seq_len)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        x = torch.randint(0, vocab, (batch, seq_len * segments + 1))
        total_loss = model(x)
        logged = total_loss.item()
        optimizer.step()
        optimizer.zero_grad()


if __name__ == "__main__":
    train()
