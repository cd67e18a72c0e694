"""Issue 12, round 4 (wrap): an object wrapped by a class of the run that back-propagates.

`model = TrainingWrapper(model)` rebinds the object to the wrapper: calling it runs the
wrapper's `forward` (or `__call__`), which here runs the backward itself and hands back its
loss with the graph. Summing what it returns (`total_loss += model(x)`) keeps every call's
graph alive (TBP006), as in lucidrains/recurrent-memory-transformer-pytorch's train.py, where
the memory-replay-backprop wrapper back-propagates inside the call. `DDP(model)` and
`nn.DataParallel(model)`, classes the run does not define, and wrappers of the run whose call
only hands on to the wrapped model keep the class the object was built from.
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


def findings(root: Path) -> list[tuple[str, str, int]]:
    result = lint_paths([root], Settings(project_root=root, select=("TBP",)), jobs=1)
    return sorted((Path(d.path).name, d.code, d.line) for d in result.diagnostics)


def expected(files: dict[str, str]) -> list[tuple[str, str, int]]:
    found = []
    for name, text in files.items():
        for code, number in testing.expected_lines(textwrap.dedent(text)):
            found.append((Path(name).name, code, number))
    return sorted(found)


FOUND: dict[str, dict[str, str]] = {}
SILENT: dict[str, dict[str, str]] = {}

# A model, and a wrapper whose call back-propagates the loss and hands it back, graph and all
# ({returned}).
MODELS = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, x, memory=None):
        return self.proj(x), memory


class {wrapper}(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def {method}(self, x, weight=1.0):
        out, _ = self.net(x)
        loss = F.mse_loss(out, x) * weight
        loss.backward()
        return {returned}
"""


def models(wrapper: str = "TrainingWrapper", method: str = "forward", returned: str = "") -> str:
    return MODELS.format(wrapper=wrapper, method=method, returned=returned or "loss")


# The loop of lucidrains' train.py: the loss the wrapper hands back is summed for printing.
SCRIPT = """\
import torch
from {module} import Net, {wrapper}

model = Net()
model = {wrapper}(model{options})
optim = torch.optim.Adam(model.parameters())

for step in range(100):
    total_loss = 0.0
    for _ in range(4):
        loss = model(torch.randn(2, 16, 8), weight=0.25)
        total_loss += {added}{mark}
    print(total_loss.item())
    optim.step()
    optim.zero_grad()
"""


def script(
    module: str = "models",
    wrapper: str = "TrainingWrapper",
    options: str = "",
    added: str = "loss",
    mark: str = "  # expect: TBP006",
) -> str:
    return SCRIPT.format(module=module, wrapper=wrapper, options=options, added=added, mark=mark)


FOUND["wrapper from another file, its loss summed"] = {
    "models.py": models(),
    "train.py": script(),
}
FOUND["...wrapped with options"] = {
    "models.py": models(),
    "train.py": script(options=", truncate=2"),
}
FOUND["...the loss scaled as it is summed"] = {
    "models.py": models(),
    "train.py": script(added="loss * 4"),
}
FOUND["...a wrapper that back-propagates in __call__"] = {
    "models.py": models(wrapper="Trainer", method="__call__"),
    "train.py": script(wrapper="Trainer"),
}
FOUND["...in a package, imported through its __init__"] = {
    "rmt/__init__.py": "from rmt.models import Net, TrainingWrapper\n",
    "rmt/models.py": models(),
    "train.py": script(module="rmt"),
}
FOUND["...the wrapper's call added as it is"] = {
    "models.py": models(),
    "train.py": """\
        import torch
        from models import Net, TrainingWrapper

        net = Net()
        net = TrainingWrapper(net)
        epoch_loss = 0
        for x in torch.randn(10, 2, 16, 8):
            epoch_loss += net(x)  # expect: TBP006
        print(epoch_loss)
        """,
}
FOUND["wrapper in the same file, in a function"] = {
    "train.py": models()
    + """

def train(batches):
    model = Net()
    model = TrainingWrapper(model)
    running = 0.0
    for x in batches:
        loss = model(x)
        running = running + loss  # expect: TBP006
    return running
""",
}
FOUND["...an attribute wrapped in __init__"] = {
    "train.py": models()
    + """

class Runner:
    def __init__(self):
        self.model = Net()
        self.model = TrainingWrapper(self.model)

    def fit(self, batches):
        losses = []
        for x in batches:
            loss = self.model(x)
            losses.append(loss)  # expect: TBP006
        return losses
""",
}

FOUND["...both, the wrapper from another file"] = {
    "models.py": models(),
    "train.py": """\
        import torch
        from models import Net, TrainingWrapper


        def train(batches):
            model = Net()
            model = TrainingWrapper(model)
            running = 0.0
            for x in batches:
                loss = model(x)
                running = running + loss  # expect: TBP006
            return running


        class Runner:
            def __init__(self):
                self.model = Net()
                self.model = TrainingWrapper(self.model)

            def fit(self, batches):
                losses = []
                for x in batches:
                    loss = self.model(x)
                    losses.append(loss)  # expect: TBP006
                return losses
        """,
}
FOUND["an object built from such a class, called as an attribute"] = {
    "models.py": models(),
    "train.py": """\
        from models import Net, TrainingWrapper


        class Runner:
            def __init__(self):
                self.step = TrainingWrapper(Net())

            def fit(self, batches):
                total = 0
                for x in batches:
                    total += self.step(x)  # expect: TBP006
                return total
        """,
}
# Not a wrapper, but the same blind spot: a function of the file that back-propagates and
# hands its loss back, called from a function that steps no optimizer.
FOUND["a helper of the same file that hands back its loss"] = {
    "train.py": """\
        import torch


        def train_batch(model, x, y, criterion):
            loss = criterion(model(x), y)
            loss.backward()
            return loss


        def train(model, batches, criterion):
            epoch_total = 0
            for x, y in batches:
                batch_loss = train_batch(model, x, y, criterion)
                epoch_total += batch_loss  # expect: TBP006
            return epoch_total
        """,
}

# The same shapes, right.
SILENT["the loss summed as a number"] = {
    "models.py": models(),
    "train.py": script(added="loss.item()", mark=""),
}
SILENT["the wrapper hands back a number"] = {
    "models.py": models(returned="loss.item()"),
    "train.py": script(mark=""),
}
SILENT["...or a cut loss"] = {
    "models.py": models(returned="loss.detach()"),
    "train.py": script(mark=""),
}
SILENT["DDP around a model whose forward runs no backward"] = {
    "models.py": models(),
    "train.py": """\
        import torch
        import torch.nn.functional as F
        from torch.nn.parallel import DistributedDataParallel as DDP
        from models import Net

        model = Net()
        model = DDP(model)
        total_loss = 0.0
        for x in torch.randn(10, 2, 16, 8):
            out, _ = model(x)
            loss = F.mse_loss(out, x)
            loss.backward()
            total_loss += loss.item()
        """,
}
SILENT["...an object of such a class whose result is summed as a number"] = {
    "models.py": models(),
    "train.py": """\
        from models import Net, TrainingWrapper


        class Runner:
            def __init__(self):
                self.net = Net()
                self.net = TrainingWrapper(self.net)

            def fit(self, batches):
                total = 0
                for x in batches:
                    total += self.net(x).item()
                return total
        """,
}
SILENT["a helper of the same file that hands back a number"] = {
    "train.py": """\
        import torch


        def train_batch(model, x, y, criterion):
            loss = criterion(model(x), y)
            loss.backward()
            return loss.item()


        def train(model, batches, criterion):
            epoch_total = 0
            for x, y in batches:
                epoch_total += train_batch(model, x, y, criterion)
            return epoch_total
        """,
}
SILENT["a wrapper the run does not define"] = {
    "train.py": """\
        import torch
        from x_transformers import AutoregressiveWrapper
        from models import Net

        model = Net()
        model = AutoregressiveWrapper(model)
        total_loss = 0.0
        for x in torch.randn(10, 2, 16, 8):
            loss = model(x)
            loss.backward()
            total_loss += loss.item()
        """,
}
# A wrapper of the run that only hands on keeps the wrapped class: the model's forward cuts
# the state it is given, so carrying it is right.
SILENT["a wrapper that only hands on to a model that cuts its state"] = {
    "models.py": """\
        import torch.nn as nn


        class CuttingNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = nn.GRU(8, 8)

            def forward(self, x, h):
                h = h.detach()
                return self.rnn(x, h)


        class Wrapper(nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, x, h):
                return self.net(x, h)
        """,
    "train.py": """\
        import torch
        from models import CuttingNet, Wrapper

        model = CuttingNet()
        model = Wrapper(model)
        optim = torch.optim.SGD(model.parameters(), lr=0.1)
        h = torch.zeros(1, 2, 8)
        for x in torch.randn(10, 5, 2, 8):
            out, h = model(x, h)
            loss = out.pow(2).mean()
            optim.zero_grad()
            loss.backward()
            optim.step()
        """,
}


@pytest.mark.parametrize("name", sorted(FOUND))
def test_finds(tmp_path: Path, name: str) -> None:
    files = FOUND[name]
    assert expected(files), "a FOUND case marks its lines"
    write(tmp_path, files)
    assert findings(tmp_path) == expected(files)


@pytest.mark.parametrize("name", sorted(SILENT))
def test_stays_silent(tmp_path: Path, name: str) -> None:
    write(tmp_path, SILENT[name])
    assert findings(tmp_path) == []
