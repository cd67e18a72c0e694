"""Segment-recurrent memory model whose training loop fetches each segment's memory from
a replay buffer but never passes it back into the model.

The original is a memory-replay back-propagation: a no-grad pass stores each segment's
input memory, then the segments are re-run from last to first with the memory gradient
chained back by hand. That computes the gradient of full back-propagation through all
segments, which this copy computes directly with one backward per sequence (K1 = K2 = 4
segments). In both, the call leaves out `mems=`: every segment starts from the model's
initial memory instead of the stored one, so no information or gradient passes between
segments (horizon 1). Nothing raises.
Fix: pass the stored memory (`model(seg, tgt=..., mems=mems)`); in the replay form also
make it a leaf and copy its `.grad` into the gradient handed to the previous segment.
"""

import torch
import torch.nn as nn

K1 = 4
K2 = 4


class MemoryModel(nn.Module):
    def __init__(self, vocab, dim, max_seq_len):
        super().__init__()
        self.max_seq_len = max_seq_len
        self.embed = nn.Embedding(vocab, dim)
        self.init_mem = nn.Parameter(torch.zeros(dim))
        self.updater = nn.GRUCell(dim, dim)
        self.to_logits = nn.Linear(dim, vocab)

    def get_initial_mem(self, batch):
        return self.init_mem.expand(batch, -1)

    def forward(self, src, tgt=None, mems=None):
        if mems is None:
            mems = self.get_initial_mem(src.size(0))
        new_mems = self.updater(self.embed(src).mean(1), mems)
        loss = None
        if tgt is not None:
            loss = nn.functional.cross_entropy(self.to_logits(new_mems), tgt)
        return new_mems, loss


def memory_replay_backprop(model, src, tgts):
    replay_buffer = [model.get_initial_mem(src.size(0))]
    src_segs = src.split(model.max_seq_len, dim=1)
    total_loss = 0.0
    for i, seg in enumerate(src_segs):
        mems = replay_buffer[i]
        mem, tgt_loss = model(seg, tgt=tgts[i])  # expect: TBP015
        replay_buffer.append(mem)
        total_loss = total_loss + tgt_loss
    total_loss.backward()


def train():
    torch.manual_seed(0)
    vocab, batch, seg_len = 10, 4, 3
    model = MemoryModel(vocab, 16, seg_len)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        src = torch.randint(0, vocab, (batch, K1 * seg_len))
        tgts = torch.randint(0, vocab, (K1, batch))
        optimizer.zero_grad()
        memory_replay_backprop(model, src, tgts)
        optimizer.step()


if __name__ == "__main__":
    train()
