"""Round 4 on real code (issue 12): what a function of one file is given by the calls of another.

- TBP012: an optimizer built in one file (`optimizer = optim.Adam(...)` in `bin/train.py`) and
  handed to a function or method of another (`executor.train(model, optimizer, loader)`) that
  steps it every batch and never clears the gradients (wenet-e2e/wekws before 141d407). Phase
  1 records the calls that pass a torch optimizer, as it does for data loaders; the parameter
  counts as a torch optimizer only when every call of the function in the run passes one
  (directly, or through a parameter of a caller that every call of its own gives one).
- TBP015: a one-step cell with an optional state (`def forward(self, X, edge_index,
  edge_weight=None, H=None)`) defined in a library module of the run, imported by an example
  whose model calls it without `H` while the loop sums the losses of a sequence and
  back-propagates once (pytorch_geometric_temporal's tgcn example before 4de6d86). Phase 1
  records every module's cells; a package that re-exports one from its module is followed.

Each FOUND case has SILENT twins: the nearby correct idioms, and the cases the analysis cannot
decide (an optimizer that some call leaves out or passes as None, a module that may call the
function unseen, a class of another package of the same name).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tbptt_lint import testing
from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def findings(root: Path, codes: tuple[str, ...]) -> list[tuple[str, str, int]]:
    result = lint_paths([root], Settings(project_root=root), jobs=1)
    return sorted(
        (Path(d.path).relative_to(root).as_posix(), d.code, d.line)
        for d in result.diagnostics
        if d.code in codes
    )


def expected(files: dict[str, str], codes: tuple[str, ...]) -> list[tuple[str, str, int]]:
    found = []
    for name, text in files.items():
        for code, number in testing.expected_lines(textwrap.dedent(text)):
            if code in codes:
                found.append((name, code, number))
    return sorted(found)


# ----------------------------------------- TBP012: an optimizer handed over from another file
OPTIM_CODES = ("TBP012",)

EXECUTOR = """\
import torch
from torch.nn.utils import clip_grad_norm_

from kws.loss import criterion


class Executor:
    def __init__(self):
        self.step = 0

    def train(self, model, optimizer, data_loader, device, args):
        model.train()
        clip = args.get("grad_clip", 50.0)
        for batch_idx, batch in enumerate(data_loader):
            feats, target = batch
            feats = feats.to(device)
            logits = model(feats)
            loss, acc = criterion(logits, target)
            loss.backward()
            grad_norm = clip_grad_norm_(model.parameters(), clip)
            if torch.isfinite(grad_norm):
                optimizer.step()  # expect: TBP012

    def cv(self, model, data_loader, device, args):
        model.eval()
        total = 0.0
        with torch.no_grad():
            for feats, target in data_loader:
                loss, acc = criterion(model(feats.to(device)), target)
                total += loss.item()
        return total
"""

TRAIN_SCRIPT = """\
import torch
import torch.optim as optim
from torch.utils.data import DataLoader

from kws.executor import Executor
from kws.model import build_model


def main(configs, train_set, cv_set):
    model = build_model(configs)
    train_loader = DataLoader(train_set, batch_size=None)
    cv_loader = DataLoader(cv_set, batch_size=None)
    executor = Executor()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    scheduler = optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min")
    for epoch in range(configs["max_epoch"]):
        executor.train(model, optimizer, train_loader, "cpu", configs)
        cv_loss = executor.cv(model, cv_loader, "cpu", configs)
        scheduler.step(cv_loss)
"""

SCORE_SCRIPT = """\
import torch
from torch.utils.data import DataLoader

from kws.executor import Executor


def main(model, test_set, configs):
    loader = DataLoader(test_set, batch_size=None)
    return Executor().cv(model, loader, "cpu", configs)
"""

LOSS = """\
import torch.nn.functional as F


def criterion(logits, target):
    loss = F.cross_entropy(logits, target)
    return loss, (logits.argmax(-1) == target).float().mean()
"""

UTILS_TRAIN_EPOCH = """\
def train_epoch(model, opt, batches, loss_fn):
    for x, y in batches:
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()  # expect: TBP012
"""

OPTIM_FOUND = {
    "an executor method given the optimizer a script of another file builds (wekws)": {
        "kws/executor.py": EXECUTOR,
        "kws/loss.py": LOSS,
        "bin/train.py": TRAIN_SCRIPT,
        "bin/score.py": SCORE_SCRIPT,
    },
    "a function of a helper module, called from two scripts with two optimizers": {
        "utils.py": UTILS_TRAIN_EPOCH,
        "pretrain.py": """\
            import torch
            from utils import train_epoch

            model = torch.nn.Linear(4, 1)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for epoch in range(3):
                train_epoch(model, opt, [], torch.nn.functional.mse_loss)
            """,
        "finetune.py": """\
            from torch import nn, optim
            from utils import train_epoch

            model = nn.Linear(4, 1)
            train_epoch(model, optim.AdamW(model.parameters()), [], nn.functional.l1_loss)
            """,
    },
    "passed by keyword": {
        "loop.py": """\
            def run(model, batches, *, optimizer):
                for x, y in batches:
                    (model(x) - y).pow(2).mean().backward()
                    optimizer.step()  # expect: TBP012
            """,
        "main.py": """\
            import torch
            from loop import run

            net = torch.nn.Linear(2, 2)
            sgd = torch.optim.SGD(net.parameters(), lr=0.01)
            run(net, [], optimizer=sgd)
            """,
    },
    "handed on by a trainer of the same file that is given it by the script": {
        "trainer.py": """\
            def run_epoch(model, optimizer, data):
                for x, y in data:
                    loss = (model(x) - y).abs().mean()
                    loss.backward()
                    optimizer.step()  # expect: TBP012


            def fit(model, optimizer, data, epochs):
                for epoch in range(epochs):
                    run_epoch(model, optimizer, data)
            """,
        "main.py": """\
            import torch
            from trainer import fit

            model = torch.nn.Linear(3, 1)
            optimizer = torch.optim.Adam(model.parameters())
            fit(model, optimizer, [], 10)
            """,
    },
    "a function of the same file, given the optimizer it builds inline": {
        "train.py": """\
            import torch


            def train(model, optimizer, batches):
                model.train()
                for i, (x, y) in enumerate(batches):
                    loss = torch.nn.functional.mse_loss(model(x), y)
                    loss.backward()
                    optimizer.step()  # expect: TBP012
                    if i % 100 == 0:
                        print(loss.item())


            if __name__ == "__main__":
                net = torch.nn.GRU(4, 4)
                train(net, torch.optim.RMSprop(net.parameters()), [])
            """,
    },
}


def _swap(files: dict[str, str], name: str, old: str, new: str) -> dict[str, str]:
    assert old in files[name]
    return {**files, name: files[name].replace(old, new)}


WEKWS = OPTIM_FOUND[
    "an executor method given the optimizer a script of another file builds (wekws)"
]
TRAIN_EPOCH = OPTIM_FOUND[
    "a function of a helper module, called from two scripts with two optimizers"
]

OPTIM_SILENT = {
    "the executor clears the gradients every batch (wekws after 141d407)": _swap(
        WEKWS,
        "kws/executor.py",
        "            logits = model(feats)\n",
        "            optimizer.zero_grad()\n            logits = model(feats)\n",
    ),
    "the model's gradients cleared instead of the optimizer's": _swap(
        WEKWS,
        "kws/executor.py",
        "            loss.backward()\n",
        "            model.zero_grad()\n            loss.backward()\n",
    ),
    "another call passes None for an evaluation pass": _swap(
        WEKWS,
        "bin/score.py",
        'return Executor().cv(model, loader, "cpu", configs)',
        'return Executor().train(model, None, loader, "cpu", configs)',
    ),
    "the optimizer is a parameter with a default (some call may leave it out)": {
        "utils.py": """\
            def train_epoch(model, batches, loss_fn, opt=None):
                for x, y in batches:
                    loss = loss_fn(model(x), y)
                    loss.backward()
                    opt.step()
            """,
        "main.py": """\
            import torch
            from utils import train_epoch

            model = torch.nn.Linear(4, 1)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            train_epoch(model, [], torch.nn.functional.mse_loss, opt)
            """,
    },
    "a module that builds no optimizer calls the function too (unread)": {
        **TRAIN_EPOCH,
        "evaluate.py": """\
            from utils import train_epoch


            def probe(model, holder, loss_fn):
                train_epoch(model, holder.opt, [], loss_fn)
            """,
    },
    "the script wraps the optimizer before handing it over": _swap(
        WEKWS,
        "bin/train.py",
        "    for epoch in range",
        "    model, optimizer = amp.initialize(model, optimizer)\n    for epoch in range",
    ),
    "the optimizer passed is a class of the script's own, not torch's": _swap(
        WEKWS,
        "bin/train.py",
        "optimizer = optim.Adam(model.parameters(), lr=1e-3)",
        "optimizer = NoamOpt(optim.Adam(model.parameters(), lr=1e-3))",
    ),
    "the function rebinds its parameter": _swap(
        TRAIN_EPOCH,
        "utils.py",
        "    for x, y in batches:\n",
        "    opt = opt.wrapped\n    for x, y in batches:\n",
    ),
    "a hook handed the model may clear the gradients": {
        "loop.py": """\
            def run(model, optimizer, batches, hooks):
                for x, y in batches:
                    (model(x) - y).pow(2).mean().backward()
                    optimizer.step()
                    hooks.after_step(model)
            """,
        "main.py": """\
            import torch
            from loop import run
            from myhooks import Hooks

            net = torch.nn.Linear(2, 2)
            run(net, torch.optim.SGD(net.parameters(), lr=0.01), [], Hooks())
            """,
    },
    "a method of a base class of another package may clear them": {
        "trainer.py": """\
            from framework import BaseTrainer


            class Trainer(BaseTrainer):
                def train(self, model, optimizer, batches):
                    for x, y in batches:
                        (model(x) - y).pow(2).mean().backward()
                        optimizer.step()
                        self.on_step_end()
            """,
        "main.py": """\
            import torch
            from trainer import Trainer

            net = torch.nn.Linear(2, 2)
            Trainer().train(net, torch.optim.SGD(net.parameters(), lr=0.01), [])
            """,
    },
    "accumulation that clears after every k-th step": {
        "utils.py": """\
            def train_epoch(model, opt, batches, loss_fn, k):
                for i, (x, y) in enumerate(batches):
                    (loss_fn(model(x), y) / k).backward()
                    if (i + 1) % k == 0:
                        opt.step()
                        opt.zero_grad()
            """,
        "main.py": """\
            import torch
            from utils import train_epoch

            model = torch.nn.Linear(4, 1)
            sgd = torch.optim.SGD(model.parameters())
            train_epoch(model, sgd, [], torch.nn.functional.mse_loss, 4)
            """,
    },
    "the scheduler, not an optimizer, is what the function is given and steps": {
        "utils.py": """\
            def train_epoch(model, sched, batches, loss_fn):
                for x, y in batches:
                    loss_fn(model(x), y).backward()
                    sched.step()
            """,
        "main.py": """\
            import torch
            from utils import train_epoch

            model = torch.nn.Linear(4, 1)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            sched = torch.optim.lr_scheduler.StepLR(opt, 10)
            train_epoch(model, sched, [], torch.nn.functional.mse_loss)
            """,
    },
    "no call of the function anywhere in the run": {
        "utils.py": UTILS_TRAIN_EPOCH.replace("  # expect: TBP012", "")
    },
}


@pytest.mark.parametrize("name", sorted(OPTIM_FOUND))
def test_optimizer_given_by_every_caller_is_known(tmp_path: Path, name: str) -> None:
    files = OPTIM_FOUND[name]
    write(tmp_path, files)
    assert findings(tmp_path, OPTIM_CODES) == expected(files, OPTIM_CODES)


@pytest.mark.parametrize("name", sorted(OPTIM_SILENT))
def test_optimizer_not_known_from_every_caller_is_silent(tmp_path: Path, name: str) -> None:
    write(tmp_path, OPTIM_SILENT[name])
    assert findings(tmp_path, OPTIM_CODES) == []


# --------------------------------- TBP015: a one-step cell of another file called stateless
CELL_CODES = ("TBP015",)

TGCN = """\
import torch
from torch_geometric.nn import GCNConv


class TGCN(torch.nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.out_channels = out_channels
        self.conv_z = GCNConv(in_channels, out_channels)
        self.linear_z = torch.nn.Linear(2 * out_channels, out_channels)
        self.conv_h = GCNConv(in_channels, out_channels)
        self.linear_h = torch.nn.Linear(2 * out_channels, out_channels)

    def _set_hidden_state(self, X, H):
        if H is None:
            H = torch.zeros(X.shape[0], self.out_channels).to(X.device)
        return H

    def _update_gate(self, X, edge_index, edge_weight, H):
        Z = torch.cat([self.conv_z(X, edge_index, edge_weight), H], axis=1)
        return torch.sigmoid(self.linear_z(Z))

    def _candidate(self, X, edge_index, edge_weight, H):
        C = torch.cat([self.conv_h(X, edge_index, edge_weight), H], axis=1)
        return torch.tanh(self.linear_h(C))

    def forward(
        self,
        X: torch.FloatTensor,
        edge_index: torch.LongTensor,
        edge_weight: torch.FloatTensor = None,
        H: torch.FloatTensor = None,
    ) -> torch.FloatTensor:
        H = self._set_hidden_state(X, H)
        Z = self._update_gate(X, edge_index, edge_weight, H)
        H_tilde = self._candidate(X, edge_index, edge_weight, H)
        H = Z * H + (1 - Z) * H_tilde
        return H
"""

PACKAGE = {
    "gtemporal/__init__.py": "",
    "gtemporal/nn/__init__.py": "from .recurrent import *\n",
    "gtemporal/nn/recurrent/__init__.py": (
        "from .temporalgcn import TGCN\nfrom .dcrnn import DCRNN\n"
    ),
    "gtemporal/nn/recurrent/temporalgcn.py": TGCN,
    "gtemporal/nn/recurrent/dcrnn.py": TGCN.replace("class TGCN", "class DCRNN"),
}

EXAMPLE = """\
import torch
import torch.nn.functional as F
from gtemporal.nn.recurrent import TGCN

from data import train_dataset


class RecurrentGCN(torch.nn.Module):
    def __init__(self, node_features):
        super(RecurrentGCN, self).__init__()
        self.recurrent = TGCN(node_features, 32)
        self.linear = torch.nn.Linear(32, 1)

    def forward(self, x, edge_index, edge_weight):
        h = self.recurrent(x, edge_index, edge_weight)  # expect: TBP015
        h = F.relu(h)
        h = self.linear(h)
        return h


model = RecurrentGCN(node_features=4)
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
model.train()
for epoch in range(50):
    cost = 0
    for time, snapshot in enumerate(train_dataset):
        y_hat = model(snapshot.x, snapshot.edge_index, snapshot.edge_attr)
        cost = cost + torch.mean((y_hat - snapshot.y) ** 2)
    cost = cost / (time + 1)
    cost.backward()
    optimizer.step()
    optimizer.zero_grad()
"""

EXAMPLE_FIXED = """\
import torch
import torch.nn.functional as F
from gtemporal.nn.recurrent import TGCN

from data import train_dataset


class RecurrentGCN(torch.nn.Module):
    def __init__(self, node_features):
        super(RecurrentGCN, self).__init__()
        self.recurrent = TGCN(node_features, 32)
        self.linear = torch.nn.Linear(32, 1)

    def forward(self, x, edge_index, edge_weight, prev_hidden_state):
        h = self.recurrent(x, edge_index, edge_weight, prev_hidden_state)
        y = F.relu(h)
        y = self.linear(y)
        return y, h


model = RecurrentGCN(node_features=4)
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
model.train()
for epoch in range(50):
    cost = 0
    hidden_state = None
    for time, snapshot in enumerate(train_dataset):
        y_hat, hidden_state = model(
            snapshot.x, snapshot.edge_index, snapshot.edge_attr, hidden_state
        )
        cost = cost + torch.mean((y_hat - snapshot.y) ** 2)
    cost = cost / (time + 1)
    cost.backward()
    optimizer.step()
    optimizer.zero_grad()
"""

GRAPH_CELL = """\
import torch
from torch import nn


class GraphCell(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.n_out = n_out
        self.inp = nn.Linear(n_in, 2 * n_out)
        self.rec = nn.Linear(n_out, 2 * n_out)

    def forward(self, x, adj, state=None):
        if state is None:
            state = torch.zeros(x.size(0), self.n_out)
        gate, cand = (adj @ self.inp(x) + self.rec(state)).chunk(2, -1)
        gate = torch.sigmoid(gate)
        return gate * state + (1 - gate) * torch.tanh(cand)
"""

GRAPH_MODEL = """\
import torch
from torch import nn
from cells import GraphCell


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.core = GraphCell(3, 16)
        self.out = nn.Linear(16, 1)

    def forward(self, x, adj):
        return self.out(torch.relu(self.core(x, adj)))  # expect: TBP015


def fit(snapshots):
    model = Model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(5):
        losses = []
        for x, adj, y in snapshots:
            losses.append((model(x, adj) - y).abs().mean())
        torch.stack(losses).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
"""

CELL_FOUND = {
    "a library cell re-exported by its package, the snapshots' losses summed (pgt tgcn)": {
        **PACKAGE,
        "examples/tgcn_example.py": EXAMPLE,
    },
    "a cell imported from a module of the run, the losses stacked": {
        "cells.py": GRAPH_CELL,
        "model.py": GRAPH_MODEL,
    },
    "a cell imported under another name, given its other arguments by keyword": {
        "cells.py": GRAPH_CELL,
        "model.py": GRAPH_MODEL.replace(
            "from cells import GraphCell", "from cells import GraphCell as Cell"
        )
        .replace("self.core = GraphCell(3, 16)", "self.core = Cell(3, 16)")
        .replace("self.core(x, adj)", "self.core(x, adj=adj)"),
    },
    "a cell imported from a package's module directly, in a training function": {
        **PACKAGE,
        "train.py": """\
            import torch
            from gtemporal.nn.recurrent.dcrnn import DCRNN


            class Forecaster(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.cell = DCRNN(4, 32)
                    self.head = torch.nn.Linear(32, 1)

                def forward(self, x, edge_index):
                    return self.head(self.cell(x, edge_index))  # expect: TBP015


            def main(snapshots):
                model = Forecaster()
                optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
                for epoch in range(50):
                    cost = 0
                    for snapshot in snapshots:
                        y_hat = model(snapshot.x, snapshot.edge_index)
                        cost = cost + torch.mean((y_hat - snapshot.y) ** 2)
                    optimizer.zero_grad()
                    cost.backward()
                    optimizer.step()
            """,
    },
}

CELL_SILENT = {
    "the state is returned and threaded through the snapshots (pgt after 4de6d86)": {
        **PACKAGE,
        "examples/tgcn_example.py": EXAMPLE_FIXED,
    },
    "the state passed by keyword": {
        **PACKAGE,
        "examples/tgcn_example.py": EXAMPLE_FIXED.replace(
            "edge_weight, prev_hidden_state)", "edge_weight, H=prev_hidden_state)"
        ),
    },
    "each snapshot back-propagated on its own": {
        **PACKAGE,
        "examples/tgcn_example.py": EXAMPLE.replace("  # expect: TBP015", "")
        .replace(
            "        cost = cost + torch.mean((y_hat - snapshot.y) ** 2)\n",
            "        torch.mean((y_hat - snapshot.y) ** 2).backward()\n",
        )
        .replace("    cost = cost / (time + 1)\n    cost.backward()\n", ""),
    },
    "the imported layer's optional argument is not a state": {
        "cells.py": """\
            import torch
            from torch import nn


            class GraphCell(nn.Module):
                def __init__(self, n_in, n_out):
                    super().__init__()
                    self.lin = nn.Linear(n_in, n_out)

                def forward(self, x, adj, mask=None):
                    if mask is None:
                        mask = torch.ones_like(x)
                    self.last_mask = mask
                    return torch.relu(self.lin(adj @ x))
            """,
        "model.py": GRAPH_MODEL.replace("  # expect: TBP015", ""),
    },
    "an imported norm whose optional batch vector only indexes the output": {
        "cells.py": """\
            import torch
            from torch import nn


            class GraphCell(nn.Module):
                def forward(self, x, adj, batch=None):
                    if batch is None:
                        batch = torch.zeros(x.size(0), dtype=torch.long)
                    deg = torch.bincount(batch).float()
                    return x * deg.pow(-0.5).index_select(0, batch).view(-1, 1)
            """,
        "model.py": GRAPH_MODEL.replace("  # expect: TBP015", ""),
    },
    "an imported pooling layer that coarsens its batch vector and hands it on": {
        "cells.py": """\
            import torch
            from torch import nn


            class GraphCell(nn.Module):
                def __init__(self, n_in, n_out):
                    super().__init__()
                    self.score = nn.Linear(n_in, 1)

                def forward(self, x, adj, batch=None):
                    if batch is None:
                        batch = adj.new_zeros(x.size(0))
                    perm = self.score(x).squeeze(-1).topk(x.size(0) // 2).indices
                    x = x[perm]
                    batch = batch[perm]
                    return x, adj, batch
            """,
        "model.py": GRAPH_MODEL.replace("  # expect: TBP015", ""),
    },
    "an imported layer whose optional edge weights are filled with ones": {
        "cells.py": """\
            import torch
            from torch import nn


            class GraphCell(nn.Module):
                def __init__(self, n_in, n_out):
                    super().__init__()
                    self.lin = nn.Linear(n_in, n_out)

                def forward(self, x, adj, weight=None):
                    if weight is None:
                        weight = torch.ones_like(adj)
                    return self.lin((adj * weight) @ x), weight
            """,
        "model.py": GRAPH_MODEL.replace("  # expect: TBP015", ""),
    },
    "the imported layer runs a whole sequence": {
        "cells.py": """\
            import torch
            from torch import nn


            class GraphCell(nn.Module):
                def __init__(self, n_in, n_out):
                    super().__init__()
                    self.cell = nn.GRUCell(n_in, n_out)

                def forward(self, xs, adj, h=None):
                    if h is None:
                        h = torch.zeros(xs.size(1), 16)
                    for x in xs:
                        h = self.cell(adj @ x, h)
                    return h
            """,
        "model.py": GRAPH_MODEL.replace("  # expect: TBP015", ""),
    },
    "the class of that name is imported from a package outside the run": {
        "cells.py": GRAPH_CELL,
        "model.py": GRAPH_MODEL.replace("  # expect: TBP015", "").replace(
            "from cells import GraphCell", "from graphlib.cells import GraphCell"
        ),
    },
    "a class of the file shadows the imported cell": {
        "cells.py": GRAPH_CELL,
        "model.py": GRAPH_MODEL.replace("  # expect: TBP015", "").replace(
            "class Model(nn.Module):",
            "class GraphCell(nn.Module):\n"
            "    def forward(self, x, adj):\n"
            "        return adj @ x\n\n\n"
            "class Model(nn.Module):",
        ),
    },
    "the package holds two cells of that name": {
        **PACKAGE,
        "gtemporal/nn/recurrent/batched.py": TGCN.replace(
            "        H: torch.FloatTensor = None,\n",
            "        batch: int = 1,\n        H: torch.FloatTensor = None,\n",
        ),
        "examples/tgcn_example.py": EXAMPLE.replace("  # expect: TBP015", ""),
    },
}


@pytest.mark.parametrize("name", sorted(CELL_FOUND))
def test_cell_of_another_file_called_without_its_state_is_found(tmp_path: Path, name: str) -> None:
    files = CELL_FOUND[name]
    write(tmp_path, files)
    assert findings(tmp_path, CELL_CODES) == expected(files, CELL_CODES)


@pytest.mark.parametrize("name", sorted(CELL_SILENT))
def test_cell_of_another_file_given_its_state_or_unknown_is_silent(
    tmp_path: Path, name: str
) -> None:
    write(tmp_path, CELL_SILENT[name])
    assert findings(tmp_path, CELL_CODES) == []
