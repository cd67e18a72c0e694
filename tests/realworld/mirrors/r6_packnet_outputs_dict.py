"""Trainer loop that keeps each batch's output dict, back-propagated loss included, for the epoch.

Re-creates TRI-ML/packnet-sfm f824ffc (`packnet_sfm/trainers/horovod_trainer.py` before
2698f1f "Fix memory leak", issue #47): `module.training_step` returns a dict whose 'loss' is
back-propagated, and the dict is appended to `outputs` for `training_epoch_end`. Nothing
raises, but the list keeps every batch's autograd graph alive until the epoch ends. Fix:
`output['loss'] = output['loss'].detach()` before the append.
"""

import torch
import torch.nn as nn

K1 = 5
K2 = 5


class DepthModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 8, batch_first=True)
        self.head = nn.Linear(8, 1)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=1e-3)

    def training_step(self, batch, batch_idx):
        frames, depth = batch
        out, _ = self.gru(frames)
        return {"loss": nn.functional.mse_loss(self.head(out), depth), "batch_idx": batch_idx}

    def training_epoch_end(self, outputs):
        return sum(o["loss"].item() for o in outputs) / len(outputs)


class Trainer:
    def train(self, dataloader, module, optimizer):
        module.train()
        outputs = []
        for i, batch in enumerate(dataloader):
            optimizer.zero_grad()
            output = module.training_step(batch, i)
            output["loss"].backward()
            optimizer.step()
            outputs.append(output)  # expect: TBP006
        return module.training_epoch_end(outputs)


def train():
    torch.manual_seed(0)
    module = DepthModule()
    data = [(torch.randn(2, K1, 3), torch.randn(2, K1, 1)) for _ in range(4)]
    trainer = Trainer()
    for _epoch in range(2):
        trainer.train(data, module, module.optimizer)


if __name__ == "__main__":
    train()
