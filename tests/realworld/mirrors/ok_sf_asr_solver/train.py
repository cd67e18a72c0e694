"""Attention ASR solver whose zero_grad, backward and step all live in helpers of another file.

Re-creates Alexander-H-Liu/End-to-end-ASR-Pytorch 1103d14 (`bin/train_asr.py` `Solver.exec`):
each step calls `self.optimizer.pre_step(step)` (a wrapper that calls `zero_grad()`), sums
the CTC-like and attention losses into `total_loss`, and hands it to `self.backward()`, a
`BaseSolver` method defined in another file that back-propagates, clips and steps. Every
utterance batch starts from a fresh decoder state (a feed-forward encoder here keeps the
step count to the decoder's 5 steps). Correct.
"""

import sys
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from asr_solver_base import BaseSolver  # noqa: E402

K1 = 5
K2 = 5


class ASR(nn.Module):
    def __init__(self, feat_dim, vocab, hidden_size):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(feat_dim, hidden_size), nn.Tanh())
        self.ctc_head = nn.Linear(hidden_size, vocab)
        self.decoder = nn.GRUCell(vocab + hidden_size, hidden_size)
        self.att_head = nn.Linear(hidden_size, vocab)
        self.vocab = vocab

    def forward(self, feat, teacher):
        enc = self.encoder(feat)
        ctc_output = self.ctc_head(enc)
        context = enc.mean(dim=1)
        dec_state = torch.zeros(feat.size(0), enc.size(-1))
        prev = torch.zeros(feat.size(0), self.vocab)
        outputs = []
        for t in range(teacher.size(1)):
            dec_state = self.decoder(torch.cat([prev, context], dim=-1), dec_state)
            outputs.append(self.att_head(dec_state))
            prev = nn.functional.one_hot(teacher[:, t], self.vocab).float()
        return ctc_output, torch.stack(outputs, dim=1)


class Solver(BaseSolver):
    def exec(self, tr_set, max_step):
        while self.step < max_step:
            for feat, txt in tr_set:
                self.optimizer.pre_step(self.step)
                total_loss = 0
                ctc_output, att_output = self.model(feat, txt)
                ctc_loss = ctc_output.pow(2).mean()
                total_loss += ctc_loss * 0.5
                att_loss = nn.functional.cross_entropy(
                    att_output.reshape(-1, att_output.size(-1)), txt.reshape(-1))
                total_loss += att_loss * 0.5
                self.backward(total_loss)
                self.step += 1
                if self.step >= max_step:
                    break


def train():
    torch.manual_seed(0)
    vocab = 6
    tr_set = [(torch.randn(3, 8, 4), torch.randint(0, vocab, (3, K1))) for _ in range(3)]
    Solver(ASR(4, vocab, 12), lr=1e-3).exec(tr_set, max_step=6)


if __name__ == "__main__":
    train()
