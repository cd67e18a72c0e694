"""Knowledge-graph recommender trainer that alternates recommendation and KG epochs and keeps
every batch's back-propagated loss in a list.

Re-creates RUCAIBox/RecBole f681a5f (`KGTrainer._train_epoch` in `recbox/trainer/trainer.py`,
fixed with the plain `Trainer` in commit f8d8714): depending on the epoch, one of two loops
runs (`calculate_loss` or `calculate_kg_loss`), each back-propagating and stepping per batch
and then appending the loss tensor to `losses_list`. Nothing raises, but all the batches'
graphs (here a GRU session encoder's) stay alive until the epoch's `sum(losses_list)`, so
memory grows with the number of batches. Fix: accumulate `loss.item()`.
"""

import torch
import torch.nn as nn

K1 = 5
K2 = 5


class SessionKG(nn.Module):
    def __init__(self, items, hidden_size):
        super().__init__()
        self.embed = nn.Embedding(items, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, items)
        self.relation = nn.Linear(hidden_size, hidden_size)

    def calculate_loss(self, interaction):
        seq, target = interaction
        out, _ = self.gru(self.embed(seq))
        return nn.functional.cross_entropy(self.out(out[:, -1]), target)

    def calculate_kg_loss(self, interaction):
        seq, target = interaction
        out, _ = self.gru(self.embed(seq))
        return (self.relation(out[:, -1]) - self.embed(target)).pow(2).mean()


class KGTrainer:
    def __init__(self, model, train_rec_step=1, train_kg_step=1):
        self.model = model
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.train_rec_step = train_rec_step
        self.train_kg_step = train_kg_step

    def _train_epoch(self, train_data, epoch_idx):
        self.model.train()
        losses_list = []
        rec_epoch = epoch_idx % (self.train_rec_step + self.train_kg_step) < self.train_rec_step
        if rec_epoch:
            for batch_idx, interaction in enumerate(train_data):
                self.optimizer.zero_grad()
                losses = self.model.calculate_loss(interaction)
                loss = sum(losses) if isinstance(losses, tuple) else losses
                loss.backward()
                self.optimizer.step()
                losses_list.append(losses)  # expect: TBP006
        else:
            for batch_idx, interaction in enumerate(train_data):
                self.optimizer.zero_grad()
                losses = self.model.calculate_kg_loss(interaction)
                loss = sum(losses) if isinstance(losses, tuple) else losses
                loss.backward()
                self.optimizer.step()
                losses_list.append(losses)  # expect: TBP006
        return sum(losses_list).item()

    def fit(self, train_data, epochs):
        for epoch_idx in range(epochs):
            _train_loss = self._train_epoch(train_data, epoch_idx)


def train():
    torch.manual_seed(0)
    items = 20
    train_data = [(torch.randint(0, items, (4, K1)), torch.randint(0, items, (4,))) for _ in range(3)]
    KGTrainer(SessionKG(items, 16)).fit(train_data, epochs=2)


if __name__ == "__main__":
    train()
