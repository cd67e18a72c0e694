"""Recurrent-memory LM wrapper whose truncation helper cuts a local copy of the memory.

`RecurrentWrapper.forward` runs a sequence segment by segment, threading a memory state
through a memory cell, and calls `self.manage_gradients(memory_state, seg_num)` to cut
the memory so that only the last K2 segments are back-propagated through. The helper
rebinds its own parameter (`memory_state = memory_state.detach()`) and returns a flag that
the caller ignores, so the caller's memory is never cut: every backward runs through all
K1 segments of the sequence (horizon 6 instead of 3). Nothing raises.
Fix: return the detached memory and assign it in the loop
(`memory_state = self.manage_gradients(memory_state, seg_num)`).
"""

import torch
import torch.nn as nn

K1 = 6
K2 = 3


class MemoryCell(nn.Module):
    def __init__(self, vocab, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.embed = nn.Embedding(vocab, 8)
        self.cell = nn.GRUCell(8, hidden_size)
        self.head = nn.Linear(hidden_size, vocab)

    def forward(self, tokens, memory_state=None):
        if memory_state is None:
            memory_state = torch.zeros(tokens.size(0), self.hidden_size)
        memory_state = self.cell(self.embed(tokens).mean(1), memory_state)
        return self.head(memory_state), memory_state


class RecurrentWrapper(nn.Module):
    def __init__(self, memory_cell, segment_size, k2, max_n_segments):
        super().__init__()
        self.memory_cell = memory_cell
        self.segment_size = segment_size
        self.k2 = k2
        self.max_n_segments = max_n_segments

    def forward(self, input_ids, labels):
        memory_state = None
        logits = []
        for seg_num, segment in enumerate(input_ids.split(self.segment_size, dim=1)):
            out, memory_state = self.memory_cell(segment, memory_state=memory_state)
            logits.append(out)
            self.manage_gradients(memory_state, seg_num)
        logits = torch.stack(logits, dim=1)
        return nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())

    def manage_gradients(self, memory_state, seg_num):
        if seg_num == 0 or seg_num + self.k2 >= self.max_n_segments:
            return True
        memory_state = memory_state.detach()  # expect: TBP003
        return False


def train():
    torch.manual_seed(0)
    vocab, batch, segment_size = 10, 4, 5
    model = RecurrentWrapper(MemoryCell(vocab, 16), segment_size, k2=K2, max_n_segments=K1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        input_ids = torch.randint(0, vocab, (batch, K1 * segment_size))
        labels = torch.randint(0, vocab, (batch, K1))
        loss = model(input_ids, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    train()
