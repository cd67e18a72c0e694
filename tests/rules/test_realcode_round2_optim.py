"""Round 2 on real code (issue 12): what the silence corpus and the held-out spans taught.

- An in-place cut (`h.detach_()`, `hidden[0].detach_()` on each part of an LSTM's pair, a
  helper that cuts its argument in place) is a cut of the same object, not a reset: state
  cut in place and carried from one epoch into the next is still carried (TBP011), as
  `h = h.detach()` is (pytorch/examples distributed/rpc/rnn lost its TBP011 here), and
  indexing a tuple of states stays no view (no TBP014).
- TBP012 with gradient accumulation: `zero_grad()` on every pass while `step()` runs only
  every k-th pass (`if step % k == 0:`), in a loop or in a per-batch method such as
  SpeechBrain's `fit_batch`: each pass wipes what the passes before accumulated.

Each FOUND case has SILENT twins: the nearby correct idioms.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings

MARK = re.compile(r"# expect: (TBP\d{3})")


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")


def findings(root: Path, codes: tuple[str, ...]) -> list[tuple[str, str, int]]:
    result = lint_paths([root], Settings(project_root=root), jobs=1)
    return sorted(
        (Path(d.path).name, d.code, d.line) for d in result.diagnostics if d.code in codes
    )


def expected(files: dict[str, str], codes: tuple[str, ...]) -> list[tuple[str, str, int]]:
    found = []
    for name, text in files.items():
        for number, line in enumerate(textwrap.dedent(text).splitlines(), start=1):
            match = MARK.search(line)
            if match and match.group(1) in codes:
                found.append((name, match.group(1), number))
    return sorted(found)


# ------------------------------------------------ in-place cuts keep state carried (TBP011)
CARRY_CODES = ("TBP001", "TBP011", "TBP014")

LSTM_NET = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(2, 3, 4)
        self.head = nn.Linear(3, 1)

    def forward(self, x, hidden):
        out, hidden = self.rnn(x, hidden)
        return self.head(out), hidden
"""

CARRIED: dict[str, dict[str, str]] = {}
NOT_CARRIED: dict[str, dict[str, str]] = {}

CARRIED["each part of an LSTM pair cut in place, carried across epochs"] = {
    "train.py": """\
        import torch
        import torch.nn as nn

        lstm = nn.LSTM(2, 3, 4)
        opt = torch.optim.SGD(lstm.parameters(), lr=0.1)
        state = (torch.randn(4, 6, 3), torch.randn(4, 6, 3))
        for epoch in range(10):  # expect: TBP011
            for data, target in batches():
                state[0].detach_()
                state[1].detach_()
                output, state = lstm(data, state)
                loss = (output - target).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        """
}
CARRIED["a model of another file, module-qualified, the pair cut in place in a function"] = {
    "net.py": LSTM_NET,
    "train.py": """\
        import torch
        import net

        def run(model, batches):
            opt = torch.optim.Adam(model.parameters())
            carry = (torch.zeros(4, 6, 3), torch.zeros(4, 6, 3))
            for _ in range(3):  # expect: TBP011
                for x, y in batches:
                    carry[0].detach_()
                    carry[1].detach_()
                    out, carry = model(x, carry)
                    opt.zero_grad()
                    (out - y).abs().mean().backward()
                    opt.step()

        run(net.Net(), [])
        """,
}
CARRIED["a GRU state cut whole in place, in a method, carried across epochs"] = {
    "train.py": """\
        import torch
        import torch.nn as nn

        class Trainer:
            def __init__(self):
                self.gru = nn.GRU(2, 3)
                self.opt = torch.optim.Adam(self.gru.parameters())

            def fit(self, epochs, windows):
                h = torch.zeros(1, 5, 3)
                for epoch in range(epochs):  # expect: TBP011
                    for x, y in windows:
                        h.detach_()
                        out, h = self.gru(x, h)
                        self.opt.zero_grad()
                        (out - y).pow(2).sum().backward()
                        self.opt.step()
        """
}
CARRIED["epochs over a list, a list comprehension of in-place detaches"] = {
    "train.py": """\
        import torch
        import torch.nn as nn

        lstm = nn.LSTM(2, 3)
        opt = torch.optim.SGD(lstm.parameters(), lr=0.1)
        hc = (torch.zeros(1, 5, 3), torch.zeros(1, 5, 3))
        for lr in [0.1, 0.05, 0.01]:  # expect: TBP011
            for x, y in loader:
                [t.detach_() for t in hc]
                out, hc = lstm(x, hc)
                opt.zero_grad()
                out.sum().backward()
                opt.step()
        """
}
NOT_CARRIED["the pair re-made for every epoch, then cut in place per batch"] = {
    "train.py": """\
        import torch
        import torch.nn as nn

        lstm = nn.LSTM(2, 3, 4)
        opt = torch.optim.SGD(lstm.parameters(), lr=0.1)
        for epoch in range(10):
            state = (torch.randn(4, 6, 3), torch.randn(4, 6, 3))
            for data, target in batches():
                state[0].detach_()
                state[1].detach_()
                output, state = lstm(data, state)
                loss = (output - target).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        """
}
NOT_CARRIED["a model of another file, the pair re-made per epoch, cut in place per batch"] = {
    "net.py": LSTM_NET,
    "train.py": """\
        import torch
        from net import Net

        model = Net()
        opt = torch.optim.Adam(model.parameters())
        for _ in range(3):
            carry = (torch.zeros(4, 6, 3), torch.zeros(4, 6, 3))
            for x, y in batches:
                carry[0].detach_()
                carry[1].detach_()
                out, carry = model(x, carry)
                opt.zero_grad()
                (out - y).abs().mean().backward()
                opt.step()
        """,
}
NOT_CARRIED["one pass over the windows: cut in place, nothing crosses an outer loop"] = {
    "train.py": """\
        import torch
        import torch.nn as nn

        gru = nn.GRU(2, 3)
        opt = torch.optim.Adam(gru.parameters())
        h = torch.zeros(1, 5, 3)
        for x, y in windows:
            h.detach_()
            out, h = gru(x, h)
            opt.zero_grad()
            (out - y).pow(2).sum().backward()
            opt.step()
        """
}
NOT_CARRIED["a GRU state reset per epoch in a method, cut whole in place per window"] = {
    "train.py": """\
        import torch
        import torch.nn as nn

        class Trainer:
            def __init__(self):
                self.gru = nn.GRU(2, 3)
                self.opt = torch.optim.Adam(self.gru.parameters())

            def fit(self, epochs, windows):
                for epoch in range(epochs):
                    h = torch.zeros(1, 5, 3)
                    for x, y in windows:
                        h.detach_()
                        out, h = self.gru(x, h)
                        self.opt.zero_grad()
                        (out - y).pow(2).sum().backward()
                        self.opt.step()
        """
}


@pytest.mark.parametrize("name", sorted(CARRIED))
def test_state_cut_in_place_is_still_carried(tmp_path: Path, name: str) -> None:
    files = CARRIED[name]
    write(tmp_path, files)
    assert findings(tmp_path, CARRY_CODES) == expected(files, CARRY_CODES)


@pytest.mark.parametrize("name", sorted(NOT_CARRIED))
def test_state_cut_in_place_and_reset_is_silent(tmp_path: Path, name: str) -> None:
    write(tmp_path, NOT_CARRIED[name])
    assert findings(tmp_path, CARRY_CODES) == []
