"""Base solver and optimizer wrapper in the style of End-to-end-ASR-Pytorch's `src/solver.py`
and `src/optim.py`: `pre_step()` clears the gradients, `BaseSolver.backward()` runs the
backward, clips and steps.
"""

import math

import torch


class Optimizer:
    def __init__(self, parameters, lr, tf_start=1.0):
        self.opt = torch.optim.Adam(parameters, lr=lr)
        self.tf_start = tf_start

    def pre_step(self, step):
        self.opt.zero_grad()
        return self.tf_start

    def step(self):
        self.opt.step()


class BaseSolver:
    GRAD_CLIP = 5.0

    def __init__(self, model, lr):
        self.model = model
        self.optimizer = Optimizer(model.parameters(), lr)
        self.step = 0

    def backward(self, loss):
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.GRAD_CLIP)
        if not math.isnan(grad_norm):
            self.optimizer.step()
        return grad_norm
