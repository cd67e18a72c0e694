"""Segment-recurrent LM wrapper with gradient accumulation that hands the memory of one
micro-batch to the next.

The wrapper splits the batch into segments along time and every segment into micro-batches
along the batch axis (`split(max_batch_size, dim=0)`), yielding one loss per micro-batch for
the training loop to back-propagate. A single `mem` is threaded through all calls, so the
memory written by rows 0-1 is read by rows 2-3, and rows 0-1 of the next segment read the
memory of rows 2-3. The network detaches its memory, so nothing raises and every backward
covers one step (stride 1, horizon 1); the memory each row reads belongs to other sequences.
Fix: keep one memory per micro-batch (`mems = [None] * n_chunks`, `mems[ind] = new_mem`).
"""

import torch
import torch.nn as nn

K1 = 1
K2 = 1


class MemoryLM(nn.Module):
    def __init__(self, vocab, dim):
        super().__init__()
        self.dim = dim
        self.embed = nn.Embedding(vocab, dim)
        self.cell = nn.GRUCell(dim, dim)
        self.to_logits = nn.Linear(dim, vocab)

    def forward(self, tokens, memories=None):
        if memories is None:
            memories = torch.zeros(tokens.size(0), self.dim)
        x = self.embed(tokens)
        new_mem = self.cell(x.mean(1), memories)
        logits = self.to_logits(x + new_mem.unsqueeze(1))
        return logits, new_mem.detach()


class AutoregressiveWrapper(nn.Module):
    def __init__(self, net, seq_len):
        super().__init__()
        self.net = net
        self.seq_len = seq_len

    def forward(self, x, max_batch_size):
        xi, xo = x[:, :-1], x[:, 1:]
        mem = None
        for xi_seg, xo_seg in zip(xi.split(self.seq_len, dim=1), xo.split(self.seq_len, dim=1)):
            xi_chunks = xi_seg.split(max_batch_size, dim=0)
            xo_chunks = xo_seg.split(max_batch_size, dim=0)
            for ind, (xi_b, xo_b) in enumerate(zip(xi_chunks, xo_chunks)):  # expect: TBP011
                is_last = ind == len(xi_chunks) - 1
                logits, mem = self.net(xi_b, memories=mem)
                loss = nn.functional.cross_entropy(logits.transpose(1, 2), xo_b)
                yield loss, is_last


def train():
    torch.manual_seed(0)
    vocab, batch, seq_len, segments, max_batch_size = 10, 4, 5, 3, 2
    model = AutoregressiveWrapper(MemoryLM(vocab, 16), seq_len)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    grad_accum_every = batch / max_batch_size
    for _ in range(2):
        x = torch.randint(0, vocab, (batch, seq_len * segments + 1))
        for loss, is_last in model(x, max_batch_size):
            (loss / grad_accum_every).backward()
            if is_last:
                optimizer.step()
                optimizer.zero_grad()


if __name__ == "__main__":
    train()
