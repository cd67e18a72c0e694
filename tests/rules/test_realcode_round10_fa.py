"""Round 10, false alarms an adversarial pass found (precision beats recall).

- A helper that copies the state without a graph (`@torch.no_grad() def copy_state(s): return
  tuple(t.clone() for t in s)`, `@torch.inference_mode()`, a body under `with
  torch.no_grad():` returning the copy, `from torch import no_grad`, a method, a helper of
  another file) is a cut: what a body computes without gradients holds no graph. It was read
  as a copy that keeps the graph (a false TBP001). A helper without `no_grad`, one whose
  `no_grad` block does not cover what it returns, or one that hands its argument on as it was
  given (`return s`), is no cut.
- A helper whose cut a flag parameter decides (`def repackage(h, keep_graph=False): return h
  if keep_graph else h.detach()`) is read once with the flag true and once false: a call that
  gives the flag as a constant (or leaves its default), directly or through a
  `functools.partial`, is a cut or not as the helper is for that value; a flag the call
  computes is unknown (silent). It was read as no cut (a false TBP001).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tbptt_lint import testing
from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings
from tbptt_lint.testing import expected_sorted, fill, snippet_findings

FOUND: dict[str, str] = {}
SILENT: dict[str, str] = {}

# ------------------------------------------------- 1. a copy made without gradients

COPY = """\
import torch
import torch.nn as nn
{imports}

{helper}


lstm = nn.LSTM(4, 8)
opt = torch.optim.SGD(lstm.parameters(), lr=0.01)
h = (torch.zeros(1, 2, 8), torch.zeros(1, 2, 8))
for x in torch.randn(4, 5, 2, 4):
    h = copy_state(h)
    out, h = lstm(x, h){mark}
    loss = out.pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
"""

CUT_HELPERS = {
    "a no_grad decorator": """\
@torch.no_grad()
def copy_state(s):
    return tuple(t.clone() for t in s)""",
    "an inference_mode decorator": """\
@torch.inference_mode()
def copy_state(s):
    return tuple(t.clone() for t in s)""",
    "a bare no_grad decorator": """\
@torch.no_grad
def copy_state(s):
    return tuple(t.clone() for t in s)""",
    "a return under with no_grad": """\
def copy_state(s):
    with torch.no_grad():
        return tuple(t.clone() for t in s)""",
    "a copy bound under with no_grad": """\
def copy_state(s):
    with torch.no_grad():
        copied = [t.clone() for t in s]
    return tuple(copied)""",
    "no_grad imported from torch": """\
@no_grad()
def copy_state(s):
    return tuple(t.clone() for t in s)""",
    "a tuple of copies": """\
@torch.no_grad()
def copy_state(s):
    return (s[0].clone(), s[1].clone())""",
    "copies of a computed value": """\
@torch.no_grad()
def copy_state(s):
    return tuple(t * 1.0 for t in s)""",
}
for label, helper in CUT_HELPERS.items():
    SILENT[f"no-grad copy: {label}"] = fill(
        COPY, helper=helper, imports="from torch import no_grad", mark=""
    )

UNCUT_HELPERS = {
    "no no_grad": """\
def copy_state(s):
    return tuple(t.clone() for t in s)""",
    "the no_grad block does not cover the return": """\
def copy_state(s):
    with torch.no_grad():
        n = len(s)
    return tuple(t.clone() for t in s[:n])""",
    "the argument handed on as it is": """\
@torch.no_grad()
def copy_state(s):
    return s""",
    "the elements handed on as they are": """\
@torch.no_grad()
def copy_state(s):
    return tuple(t for t in s)""",
    "moved to a device (may be the same tensor)": """\
@torch.no_grad()
def copy_state(s):
    return tuple(t.to("cpu") for t in s)""",
}
for label, helper in UNCUT_HELPERS.items():
    FOUND[f"copy keeping the graph: {label}"] = fill(
        COPY, helper=helper, imports="", mark="  # expect: TBP001"
    )

METHOD = """\
import torch
import torch.nn as nn


class Runner:
    def __init__(self):
        self.lstm = nn.LSTM(4, 8)
        self.opt = torch.optim.SGD(self.lstm.parameters(), lr=0.01)

    {decorator}
    def copy_state(self, s):
        return [t.clone() for t in s]

    def train(self, windows):
        state = [torch.zeros(1, 2, 8), torch.zeros(1, 2, 8)]
        for x in windows:
            state = self.copy_state(state)
            out, state = self.lstm(x, state){mark}
            loss = out.pow(2).mean()
            loss.backward()
            self.opt.step()
            self.opt.zero_grad()
"""
SILENT["no-grad copy: a method of a list of states"] = fill(
    METHOD, decorator="@torch.no_grad()", mark=""
)
FOUND["copy keeping the graph: a method without no_grad"] = fill(
    METHOD, decorator="# no no_grad", mark="  # expect: TBP001"
)


# ------------------------------------------------- the helper in another file of the run

UTILS_CUT = """\
    import torch


    @torch.no_grad()
    def copy_state(s):
        return tuple(t.clone() for t in s)
    """
UTILS_WITH = """\
    from torch import no_grad


    def copy_state(s):
        with no_grad():
            return [t.clone() * 1 for t in s]
    """
UTILS_UNCUT = """\
    def copy_state(s):
        return tuple(t.clone() for t in s)
    """
TRAIN = """\
    import torch
    import torch.nn as nn
    from utils import copy_state

    lstm = nn.LSTM(4, 8)
    opt = torch.optim.SGD(lstm.parameters(), lr=0.01)
    h = (torch.zeros(1, 2, 8), torch.zeros(1, 2, 8))
    for x in torch.randn(4, 5, 2, 4):
        h = copy_state(h)
        out, h = lstm(x, h){mark}
        loss = out.pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
    """
PROJECTS = {
    "a no_grad decorator": ({"utils.py": UTILS_CUT, "train.py": fill(TRAIN, mark="")}, False),
    "a with no_grad imported from torch": (
        {"utils.py": UTILS_WITH, "train.py": fill(TRAIN, mark="")},
        False,
    ),
    "no no_grad": (
        {"utils.py": UTILS_UNCUT, "train.py": fill(TRAIN, mark="  # expect: TBP001")},
        True,
    ),
}
UTILS_FLAG = """\
    class Trainer:
        def repackage(self, h, keep_graph=False):
            if keep_graph:
                return h
            return tuple(t.detach() for t in h)
    """
TRAIN_FLAG = """\
    import torch
    import torch.nn as nn
    from utils import Trainer

    lstm = nn.LSTM(4, 8)
    opt = torch.optim.SGD(lstm.parameters(), lr=0.01)
    trainer = Trainer()
    h = (torch.zeros(1, 2, 8), torch.zeros(1, 2, 8))
    for x in torch.randn(4, 5, 2, 4):
        h = trainer.repackage(h{flag})
        out, h = lstm(x, h){mark}
        loss = out.pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
    """
PROJECTS["a method whose flag is left to its default"] = (
    {"utils.py": UTILS_FLAG, "train.py": fill(TRAIN_FLAG, flag="", mark="")},
    False,
)
PROJECTS["a method whose flag keeps the graph"] = (
    {
        "utils.py": UTILS_FLAG,
        "train.py": fill(TRAIN_FLAG, flag=", keep_graph=True", mark="  # expect: TBP001"),
    },
    True,
)


def project_findings(root: Path, files: dict[str, str]) -> list[tuple[str, str, int]]:
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    result = lint_paths([root], Settings(project_root=root), jobs=1)
    return sorted(
        (Path(d.path).relative_to(root).as_posix(), d.code, d.line)
        for d in result.diagnostics
        if d.code == "TBP001"
    )


@pytest.mark.parametrize("case", list(PROJECTS.values()), ids=list(PROJECTS))
def test_helper_of_another_file(tmp_path: Path, case: tuple[dict[str, str], bool]) -> None:
    files, found = case
    expected = sorted(
        (name, code, line)
        for name, text in files.items()
        for code, line in testing.expected_lines(textwrap.dedent(text))
    )
    assert bool(expected) == found
    assert project_findings(tmp_path, files) == expected


# ------------------------------------------------- 2. a cut a flag parameter decides

FLAG = """\
import functools
import sys

import torch
import torch.nn as nn


def repackage(h, {flag}={default}):
    {body}


gru = nn.GRU(4, 8)
opt = torch.optim.SGD(gru.parameters(), lr=0.01)
keep = len(sys.argv) > 1
h = torch.zeros(1, 2, 8)
for x in torch.randn(4, 5, 2, 4):
    h = {call}
    out, h = gru(x, h){mark}
    loss = out.pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
"""
TERNARY = "return h if keep_graph else h.detach()"
STATEMENT = "if keep_graph:\n        return h\n    return h.detach()"
NEGATED = "if not detach:\n        return h\n    return h.detach()"
FLAG_SILENT = {
    "the default of a conditional expression": ("keep_graph", "False", TERNARY, "repackage(h)"),
    "a keyword false": ("keep_graph", "True", TERNARY, "repackage(h, keep_graph=False)"),
    "a positional false": ("keep_graph", "True", TERNARY, "repackage(h, False)"),
    "an if statement": ("keep_graph", "False", STATEMENT, "repackage(h)"),
    "a negated flag": ("detach", "True", NEGATED, "repackage(h)"),
    "a negated flag given 1": ("detach", "False", NEGATED, "repackage(h, detach=1)"),
    "a partial": (
        "keep_graph",
        "True",
        TERNARY,
        "functools.partial(repackage, keep_graph=False)(h)",
    ),
    "a flag the call computes (unknown)": ("keep_graph", "False", TERNARY, "repackage(h, keep)"),
}
for label, (flag, default, body, call) in FLAG_SILENT.items():
    SILENT[f"flag cut: {label}"] = fill(
        FLAG, flag=flag, default=default, body=body, call=call, mark=""
    )
FLAG_FOUND = {
    "a keyword true": ("keep_graph", "False", TERNARY, "repackage(h, keep_graph=True)"),
    "a default true": ("keep_graph", "True", TERNARY, "repackage(h)"),
    "a positional true": ("keep_graph", "False", STATEMENT, "repackage(h, True)"),
    "a negated flag false": ("detach", "True", NEGATED, "repackage(h, detach=False)"),
    "a partial keeping the graph": (
        "keep_graph",
        "False",
        TERNARY,
        "functools.partial(repackage, keep_graph=True)(h)",
    ),
}
for label, (flag, default, body, call) in FLAG_FOUND.items():
    FOUND[f"flag keeps the graph: {label}"] = fill(
        FLAG, flag=flag, default=default, body=body, call=call, mark="  # expect: TBP001"
    )

BOUND_FLAG = """\
from functools import partial

import torch
import torch.nn as nn


def repackage(h, keep_graph=False):
    return h if keep_graph else h.detach()


def train(windows):
    gru = nn.GRU(4, 8)
    opt = torch.optim.SGD(gru.parameters(), lr=0.01)
    cut = partial(repackage, keep_graph={value})
    h = torch.zeros(1, 2, 8)
    for x in windows:
        h = cut(h)
        out, h = gru(x, h){mark}
        loss = out.pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
"""
SILENT["flag cut: a partial bound to a name"] = fill(BOUND_FLAG, value="False", mark="")
FOUND["flag keeps the graph: a partial bound to a name"] = fill(
    BOUND_FLAG, value="True", mark="  # expect: TBP001"
)


@pytest.mark.parametrize("source", list(FOUND.values()), ids=list(FOUND))
def test_found(source: str) -> None:
    assert snippet_findings(source) == expected_sorted(source)


@pytest.mark.parametrize("source", list(SILENT.values()), ids=list(SILENT))
def test_silent(source: str) -> None:
    assert snippet_findings(source) == []
