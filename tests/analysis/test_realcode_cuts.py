"""Issue 12, classes 1, 2, 6, 8 and 15: cuts as real code writes them.

- 1: a function handed to a mapper decides whether the mapper cuts (`tree_map(lambda t:
  t.detach(), h)`, `apply_to_tensor(h, torch.Tensor.detach)`), and a method called on an
  object resolves through its class wherever in the run that class is defined.
- 2: what the analysis cannot model (`model, opt = amp.initialize(model, opt, ...)`, a
  wrapped model, an object built from a tensor) becomes unknown, never a leak.
- 6: benchmark and harness loops that rebind their inputs from leaves carry no graph.
- 8: a state object whose own `detach()` works in place is cut by `state.detach()`, and no
  advice rebinds it to that method's result (None).
- 15: inside a state class's own `detach()`, a detach whose result is thrown away cuts
  nothing; a cut helper called at every step cuts at every step, wherever it is defined.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tbptt_lint import testing
from tbptt_lint.analysis.api import check_source
from tbptt_lint.analysis.values import CUT, UNKNOWN, Status, Value, fresh, join
from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings

ALL_RULES = Settings(select=("TBP",), extend_select=("TBP007",))


def findings(source: str) -> list[tuple[str, int]]:
    found = check_source(textwrap.dedent(source), "example.py", ALL_RULES)
    return [(f.code, f.line) for f in found]


def expected(source: str) -> list[tuple[str, int]]:
    """`# expect: TBP001` comments mark the lines a snippet must be reported on."""
    return testing.expected_lines(textwrap.dedent(source))


def lint_project(root: Path, files: dict[str, str]) -> list[tuple[str, str, int]]:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    settings = Settings(select=("TBP",), extend_select=("TBP007",), project_root=root)
    result = lint_paths([root], settings, jobs=1)
    return sorted((Path(d.path).name, d.code, d.line) for d in result.diagnostics)


def messages(root: Path, code: str) -> list[str]:
    settings = Settings(select=("TBP",), project_root=root)
    result = lint_paths([root], settings, jobs=1)
    return [d.message for d in result.diagnostics if d.code == code]


HEADER = """\
import functools
import operator

import torch
import torch.nn as nn
from somelib import apply_to_tensor, tree_map
"""

# A loop that carries `hidden` from a model of unknown class, with `{cut}` after the backward.
CUT_AFTER_BACKWARD = (
    HEADER
    + """
{defs}
def train(model, batches):
    hidden = model.init_hidden(8)
    for x, y in batches:
        out, hidden = model(x, hidden)  {expect}
        loss = (out - y).pow(2).mean()
        loss.backward()
        {cut}
"""
)
# The same with the cut at the top of the loop.
CUT_AT_TOP = (
    HEADER
    + """
{defs}
def train(model, batches):
    hidden = model.init_hidden(8)
    for x, y in batches:
        {cut}
        out, hidden = model(x, hidden)
        loss = (out - y).pow(2).mean()
        loss.backward()
"""
)
# The same cut at every step of a window whose backward runs after the time loop: TBP004
# there shows the analysis takes it for a cut, not merely for something it cannot follow.
CUT_EVERY_STEP = (
    HEADER
    + """
{defs}
cell = nn.GRUCell(8, 16)
def train(windows, hidden):
    for x, y in windows:
        loss = 0
        for t in range(x.size(0)):
            {cut}  # expect: TBP004
            hidden = cell(x[t], hidden)
            loss = loss + hidden.sum()
        loss.backward()
"""
)

TENSOR_GUARDED_HELPER = """
def detach_tensor(t):
    if torch.is_tensor(t):
        return t.detach()
    return t
"""
MAPPED_CUTS = {
    "a library helper handed torch.Tensor.detach": (
        "",
        "hidden = apply_to_tensor(hidden, torch.Tensor.detach)",
    ),
    "a library helper handed Tensor.detach_ by keyword": (
        "",
        "hidden = apply_to_tensor(hidden, fn=torch.Tensor.detach_)",
    ),
    "tree_map with a lambda": ("", "hidden = tree_map(lambda t: t.detach(), hidden)"),
    "torch's own pytree map": (
        "",
        "hidden = torch.utils._pytree.tree_map(lambda t: t.detach(), hidden)",
    ),
    "a lambda that cuts tensors only": (
        "",
        "hidden = tree_map(lambda t: t.detach() if isinstance(t, torch.Tensor) else t, hidden)",
    ),
    "a state's own apply": ("", "hidden = hidden.apply(lambda t: t.detach())"),
    "functools.partial": (
        "",
        "hidden = tree_map(functools.partial(torch.Tensor.detach), hidden)",
    ),
    "operator.methodcaller": ("", 'hidden = tree_map(operator.methodcaller("detach"), hidden)'),
    "a module-level helper that cuts tensors behind a guard": (
        TENSOR_GUARDED_HELPER,
        "hidden = tree_map(detach_tensor, hidden)",
    ),
    "a helper that cuts tensors behind a guard, handed to map": (
        TENSOR_GUARDED_HELPER,
        "hidden = list(map(detach_tensor, hidden))",
    ),
}


@pytest.mark.parametrize(("defs", "cut"), MAPPED_CUTS.values(), ids=MAPPED_CUTS.keys())
def test_a_detach_handed_to_a_mapper_is_a_cut(defs: str, cut: str) -> None:
    assert findings(CUT_AFTER_BACKWARD.format(defs=defs, cut=cut, expect="")) == []
    assert findings(CUT_AT_TOP.format(defs=defs, cut=cut)) == []
    every_step = CUT_EVERY_STEP.format(defs=defs, cut=cut)
    assert findings(every_step) == expected(every_step)


def test_nested_functions_and_bound_lambdas_handed_to_mappers() -> None:
    source = (
        HEADER
        + """
cell = nn.GRUCell(8, 16)
def train(windows, hidden):
    def cut(t):
        return t.detach() if isinstance(t, (torch.Tensor, float)) else t

    cut_too = lambda t: t.detach()
    for x, y in windows:
        hidden = tree_map(cut, hidden)
        loss = 0
        for t in range(x.size(0)):
            hidden = apply_to_tensor(hidden, cut_too)  # expect: TBP004
            hidden = cell(x[t], hidden)
            loss = loss + hidden.sum()
        loss.backward()
"""
    )
    assert findings(source) == expected(source)


ALREADY_RECOGNISED = {
    "map with an unbound method": "hidden = tuple(map(torch.Tensor.detach, hidden))",
    "a dict comprehension": "hidden = {k: v.detach() for k, v in hidden.items()}",
    "the state's own type": "hidden = type(hidden)(v.detach() for v in hidden)",
}


@pytest.mark.parametrize("cut", ALREADY_RECOGNISED.values(), ids=ALREADY_RECOGNISED.keys())
def test_forms_recognised_before_stay_recognised(cut: str) -> None:
    """Guards: these forms of the family were cuts before issue 12 and must stay so."""
    assert findings(CUT_AFTER_BACKWARD.format(defs="", cut=cut, expect="")) == []
    every_step = CUT_EVERY_STEP.format(defs="", cut=cut)
    assert findings(every_step) == expected(every_step)


MAPPED_KEEPS = {
    "tree_map with a lambda that keeps the graph": "hidden = tree_map(lambda t: t * 2, hidden)",
    "a library helper handed torch.Tensor.clone": (
        "hidden = apply_to_tensor(hidden, torch.Tensor.clone)"
    ),
    "map with clone": "hidden = tuple(map(torch.Tensor.clone, hidden))",
    "a methodcaller of another method": (
        'hidden = tree_map(operator.methodcaller("float"), hidden)'
    ),
    "a state's own apply that keeps the graph": "hidden = hidden.apply(lambda t: t.float())",
}


@pytest.mark.parametrize("keep", MAPPED_KEEPS.values(), ids=MAPPED_KEEPS.keys())
def test_a_mapper_handed_a_function_that_keeps_the_graph_is_no_cut(keep: str) -> None:
    source = CUT_AFTER_BACKWARD.format(defs="", cut=keep, expect="# expect: TBP001")
    assert findings(source) == expected(source)


SILENT = {
    "a method of the model's class built in this file": HEADER
    + """
class RNNModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(8, 16)

    def forward(self, x, hidden):
        return self.rnn(x, hidden)

    def repackage_hidden(self, h):
        if isinstance(h, torch.Tensor):
            return h.detach()
        return tuple(self.repackage_hidden(v) for v in h)

model = RNNModel()
hidden = None
for x, y in batches:
    out, hidden = model(x, hidden)
    out.sum().backward()
    hidden = model.repackage_hidden(hidden)
""",
    "a method of an attribute built in __init__": HEADER
    + """
class RNNModel(nn.Module):
    def forward(self, x, hidden):
        return self.rnn(x, hidden)

    def detach_state(self, h):
        return [s.detach() for s in h]

class Trainer:
    def __init__(self, lr):
        self.net = RNNModel()
        self.lr = lr

    def fit(self, batches):
        state = None
        for x, y in batches:
            if state is not None:
                state = self.net.detach_state(state)
            out, state = self.net(x, state)
            out.sum().backward()
""",
    "an init method that cuts the state it is given": HEADER
    + """
class RNNModel(nn.Module):
    def forward(self, x, hidden):
        return self.rnn(x, hidden)

    def init_hidden(self, h=None):
        if h is None:
            return torch.zeros(1, 8, 16)
        return h.detach()

def train(model: RNNModel, batches):
    hidden = model.init_hidden()
    for x, y in batches:
        hidden = model.init_hidden(hidden)
        out, hidden = model(x, hidden)
        out.sum().backward()
""",
    "a method that cuts in place, called on an attribute": HEADER
    + """
class Net(nn.Module):
    def forward(self, x, hidden):
        return self.rnn(x, hidden)

    def cut(self, hidden):
        for h in hidden:
            h.detach_()

class Runner:
    def __init__(self):
        self.net = Net()

    def run(self, batches):
        hidden = self.net.init_hidden()
        for x, y in batches:
            out, hidden = self.net(x, hidden)
            out.sum().backward()
            self.net.cut(hidden)
""",
}

FOUND = {
    "a method of the model's own class that does not cut, beside one that does": HEADER
    + """
class Cutting(nn.Module):
    def forward(self, x, hidden):
        return self.rnn(x, hidden)

    def repackage_hidden(self, h):
        return tuple(v.detach() for v in h)

class Leaking(nn.Module):
    def forward(self, x, hidden):
        return self.rnn(x, hidden)

    def repackage_hidden(self, h):
        print(h.data.norm())
        return h

model = Leaking()
hidden = None
for x, y in batches:
    out, hidden = model(x, hidden)  # expect: TBP001
    out.sum().backward()
    hidden = model.repackage_hidden(hidden)
""",
    "an attribute built in __init__ from the class whose method does not cut": HEADER
    + """
class Cutting(nn.Module):
    def detach_state(self, h):
        return [s.detach() for s in h]

class Leaking(nn.Module):
    def detach_state(self, h):
        return [s.data.clone() if s.data is None else s for s in h]

class Trainer:
    def __init__(self):
        self.net = Leaking()

    def fit(self, batches):
        state = None
        for x, y in batches:
            out, state = self.net(x, state)  # expect: TBP001
            out.sum().backward()
            state = self.net.detach_state(state)
""",
    "a mapped cut at every step of a window": HEADER
    + """
cell = nn.GRUCell(8, 16)
for x, y in windows:
    loss = 0
    for t in range(x.size(0)):
        h = tree_map(lambda s: s.detach(), h)  # expect: TBP004
        h = cell(x[t], h)
        loss = loss + h.sum()
    loss.backward()
""",
    "a method that cuts, called at every step of a window": HEADER
    + """
class Stepper(nn.Module):
    def repackage(self, h):
        return h.detach()

model = Stepper()
cell = nn.GRUCell(8, 16)
for x, y in windows:
    loss = 0
    for t in range(x.size(0)):
        h = model.repackage(h)  # expect: TBP004
        h = cell(x[t], h)
        loss = loss + h.sum()
    loss.backward()
""",
}


@pytest.mark.parametrize("name", SILENT, ids=list(SILENT))
def test_cut_helpers_stay_silent(name: str) -> None:
    assert findings(SILENT[name]) == []


@pytest.mark.parametrize("name", FOUND, ids=list(FOUND))
def test_helpers_that_do_not_cut_are_found(name: str) -> None:
    assert findings(FOUND[name]) == expected(FOUND[name])


# ------------------------------------------------------------------ class 1, across files
MODELS = """\
import torch
import torch.nn as nn

class RNNModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(8, 16)

    def forward(self, x, hidden):
        return self.rnn(x, hidden)

    def repackage_hidden(self, h):
        if isinstance(h, torch.Tensor):
            return h.detach()
        return tuple(self.repackage_hidden(v) for v in h)

class Leaky(nn.Module):
    def forward(self, x, hidden):
        return self.rnn(x, hidden)

    def repackage_hidden(self, h):
        print(h.data.sum())
        return h
"""


@pytest.mark.parametrize(
    ("imports", "build"),
    [
        ("from models import {cls}", "{cls}()"),
        ("import models", "models.{cls}()"),
        ("import models as m", "m.{cls}()"),
        ("from models import *", "{cls}()"),
    ],
    ids=["from-import", "module-import", "module-alias", "star-import"],
)
def test_a_method_resolves_through_a_class_of_another_file(
    tmp_path: Path, imports: str, build: str
) -> None:
    trainer = """\
        {imports}

        class Trainer:
            def __init__(self, lr):
                self.model = {build}
                self.lr = lr

            def train(self, batches):
                hidden = None
                for x, y in batches:
                    if hidden is not None:
                        hidden = self.model.repackage_hidden(hidden)
                    out, hidden = self.model(x, hidden)
                    loss = (out - y).pow(2).mean()
                    loss.backward()
        """
    script = """\
        {imports}

        model = {build}
        hidden = None
        for x, y in batches:
            out, hidden = model(x, hidden)
            out.sum().backward()
            hidden = model.repackage_hidden(hidden)
        """

    def made(text: str, cls: str) -> str:
        return text.format(imports=imports.format(cls=cls), build=build.format(cls=cls))

    files = {
        "models.py": MODELS,
        "good_trainer.py": made(trainer, "RNNModel"),
        "bad_trainer.py": made(trainer, "Leaky"),
        "good_script.py": made(script, "RNNModel"),
        "bad_script.py": made(script, "Leaky"),
    }
    assert lint_project(tmp_path, files) == [
        ("bad_script.py", "TBP001", 6),
        ("bad_trainer.py", "TBP001", 13),
    ]


def test_an_object_of_unknown_class_may_be_of_any_class_of_the_run(tmp_path: Path) -> None:
    """No file builds the model: any class of the run with the method vouches for a cut."""
    loop = """\
        def train(model, batches, {extra}):
            hidden = None
            for x, y in batches:
                out, hidden = model(x, hidden)
                out.sum().backward()
                hidden = model.{method}(hidden)
        """
    files = {
        "models.py": MODELS,
        "train.py": loop.format(extra="epochs", method="repackage_hidden"),
        "train_other.py": loop.format(extra="epochs", method="no_such_method"),
    }
    assert lint_project(tmp_path, files) == [("train_other.py", "TBP001", 4)]


def test_module_qualified_helpers_of_another_file(tmp_path: Path) -> None:
    helpers = """\
        import torch

        def repackage_hidden(h):
            if isinstance(h, torch.Tensor):
                return h.detach()
            return tuple(repackage_hidden(v) for v in h)

        def detach_tensor(t):
            return t.detach() if torch.is_tensor(t) else t

        def pass_through(h):
            print(h.data)
            return h
        """
    loop = """\
        {imports}

        def train(model, batches):
            hidden = None
            for x, y in batches:
                out, hidden = model(x, hidden)
                out.sum().backward()
                hidden = {cut}
        """
    cuts = {
        "a.py": ("import utils.helpers", "utils.helpers.repackage_hidden(hidden)"),
        "b.py": ("from utils import helpers as H", "H.repackage_hidden(hidden)"),
        "c.py": ("from utils.helpers import detach_tensor", "tree_map(detach_tensor, hidden)"),
        "d.py": ("from utils import helpers", "helpers.pass_through(hidden)"),
    }
    files = {name: loop.format(imports=i, cut=c) for name, (i, c) in cuts.items()}
    files |= {"utils/helpers.py": helpers, "utils/__init__.py": ""}
    assert lint_project(tmp_path, files) == [("d.py", "TBP001", 6)]


# ------------------------------------------------------------------------------- class 2
WRAPPED = """\
import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP
from apex import amp
from apex.parallel import DistributedDataParallel as ApexDDP
import intel_extension_for_pytorch as ipex

class RNNModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(8, 16)

    def forward(self, x, hidden):
        return self.rnn(x, hidden)

    def init_hidden(self, bsz):
        return (torch.zeros(1, bsz, 16), torch.zeros(1, bsz, 16))

def train(model, optimizer, batches, epochs, args, accelerator):
    {before}
    for epoch in range(epochs):
        {inside}
        hidden = model.init_hidden(20)
        for x, y in batches:
            optimizer.zero_grad()
            out, hidden = model(x, hidden)  {expect}
            loss = (out - y).pow(2).mean()
            loss.backward()
            optimizer.step()
            {cut}
"""
# amp, apex's DDP and ipex hid the cut before; torch.compile, accelerate and torch's own DDP
# are guards (and the DDP twins without a cut were missed before).
WRAPPERS = {
    "amp": 'model, optimizer = amp.initialize(model, optimizer, opt_level="O1")',
    "amp with a setting": "model, optimizer = amp.initialize(model, optimizer, args.opt_level)",
    "ipex": ("model, optimizer = ipex.optimize(model, optimizer=optimizer, dtype=torch.bfloat16)"),
    "torch.compile": "model = torch.compile(model)",
    "accelerate": ("model, optimizer, batches = accelerator.prepare(model, optimizer, batches)"),
    "DDP": "model = DDP(model, device_ids=[args.rank])",
    "apex DDP": "model = ApexDDP(model, delay_allreduce=True)",
    "DataParallel": "model = nn.DataParallel(model)",
    "built, then wrapped": "model = RNNModel()\n    model = nn.DataParallel(model).cuda()",
}
CUTS = {
    "tuple": "hidden = tuple(v.detach() for v in hidden)",
    "each": "hidden = (hidden[0].detach(), hidden[1].detach())",
}


@pytest.mark.parametrize("wrap", WRAPPERS.values(), ids=WRAPPERS.keys())
@pytest.mark.parametrize("place", ["before", "inside"])
@pytest.mark.parametrize("cut", CUTS.values(), ids=CUTS.keys())
def test_a_wrapped_or_initialised_model_keeps_the_cut(wrap: str, place: str, cut: str) -> None:
    inside = wrap.replace("\n    ", "\n        ")
    source = WRAPPED.format(
        before=wrap if place == "before" else "pass",
        inside=inside if place == "inside" else "pass",
        expect="",
        cut=cut,
    )
    assert findings(source) == []


@pytest.mark.parametrize("wrap", WRAPPERS.values(), ids=WRAPPERS.keys())
def test_a_wrapped_or_initialised_model_still_leaks_without_a_cut(wrap: str) -> None:
    source = WRAPPED.format(before=wrap, inside="pass", expect="# expect: TBP001", cut="pass")
    assert findings(source) == expected(source)


def test_a_wrapped_model_in_a_script_at_module_level() -> None:
    source = """\
        import torch
        import torch.nn as nn
        from apex import amp

        class LM(nn.Module):
            def forward(self, x, hidden):
                return self.rnn(x, hidden)

        model = LM()
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        model, optimizer = amp.initialize(model, optimizer, opt_level="O2")
        for epoch in range(10):
            hidden = model.init_hidden(8)
            for x, y in batches:
                out, hidden = model(x, hidden)
                loss = (out - y).pow(2).mean()
                with amp.scale_loss(loss, optimizer) as scaled_loss:
                    scaled_loss.backward()
                hidden = tuple(v.detach() for v in hidden)
        """
    assert findings(source) == []
    leaking = source.replace("hidden = tuple(v.detach() for v in hidden)", "pass")
    assert findings(leaking) == [("TBP001", 15)]


def test_an_object_the_analysis_lost_track_of_is_unknown_not_a_leak() -> None:
    """A decoder built from a tensor with a graph: what its constructor keeps of it is not
    modelled, so the state it makes is unknown, and the cut of every window still counts."""
    source = """\
        import torch.nn as nn

        class Decoder(nn.Module):
            def __init__(self, memory):
                super().__init__()
                self.memory = memory.detach()
                self.cell = nn.LSTM(8, 16)

            def forward(self, x, hidden):
                return self.cell(x + self.memory, hidden)

        def train(encoder, prefix, batches, epochs):
            h0 = None
            memory, h0 = encoder(prefix, h0)
            decoder = Decoder(memory)
            for epoch in range(epochs):
                hidden = decoder.init_hidden(8)
                for x, y in batches:
                    out, hidden = decoder(x, hidden)
                    loss = (out - y).pow(2).mean()
                    loss.backward()
                    hidden = tuple(v.detach() for v in hidden)
        """
    assert findings(source) == []
    leaking = source.replace("hidden = tuple(v.detach() for v in hidden)", "pass")
    assert findings(leaking) == [("TBP001", 19)]


def test_unknown_is_neither_a_cut_nor_a_graph() -> None:
    cut = fresh(CUT, None)
    stale = Value(Status.STALE)
    assert not UNKNOWN.has_graph
    assert UNKNOWN.consumed_by(None) is UNKNOWN  # type: ignore[arg-type]
    assert join(cut, UNKNOWN).status == Status.UNKNOWN  # not turned into an uncut state
    assert join(UNKNOWN, cut).status == Status.UNKNOWN
    assert join(UNKNOWN, stale).status == Status.STALE  # a known leak on one path stays


def test_a_state_unknown_on_entry_and_cut_per_batch_is_still_carried_across_batches() -> None:
    """Unknown on the first pass does not hide what the loop itself carries: the state cut at
    the end of one shuffled batch is fed to the next (TBP011)."""
    source = """\
        import torch.nn as nn
        from torch.utils.data import DataLoader

        class Decoder(nn.Module):
            def __init__(self, memory):
                super().__init__()
                self.memory = memory.detach()

        def train(encoder, prefix, dataset):
            loader = DataLoader(dataset, batch_size=8, shuffle=True, drop_last=True)
            h0 = None
            memory, h0 = encoder(prefix, h0)
            decoder = Decoder(memory)
            hidden = decoder.init_hidden(8)
            for x, y in loader:  # expect: TBP011
                out, hidden = decoder(x, hidden)
                (out - y).pow(2).mean().backward()
                hidden = hidden.detach()
        """
    assert findings(source) == expected(source)


# ------------------------------------------------------------------------------- class 6
HARNESS_HELPERS = """\
import torch

def require_grad(inputs):
    return [x.detach().requires_grad_() for x in inputs]

def require_grad_loop(inputs):
    out = []
    for x in inputs:
        out.append(x.detach().requires_grad_())
    return out

def require_grad_guarded(inputs):
    return tuple(
        x.detach().requires_grad_() if isinstance(x, torch.Tensor) else x for x in inputs
    )

def clone_only(inputs):
    return [x.clone() for x in inputs]
"""
HARNESS = """\
{imports}

def bench(cell, x, hx, iters):
    for _ in range(iters):
        x, hx = {helper}((x, hx))
        y, hx = cell(x, hx)  {expect}
        y.sum().backward()

def bench_args(cell, inputs, iters):
    for _ in range(iters):
        args = {helper}(inputs)
        out, inputs = cell(*args), args
        out.sum().backward()
"""


# `require_grad` (a comprehension) was a cut before: a guard; the others were not.
@pytest.mark.parametrize("helper", ["require_grad", "require_grad_loop", "require_grad_guarded"])
@pytest.mark.parametrize("where", ["same file", "other file"])
def test_a_harness_that_rebinds_its_inputs_from_leaves_carries_no_graph(
    tmp_path: Path, helper: str, where: str
) -> None:
    if where == "same file":
        files = {"bench.py": HARNESS_HELPERS + HARNESS.format(imports="", helper=helper, expect="")}
    else:
        imports = f"from harness_helpers import {helper}"
        files = {
            "harness_helpers.py": HARNESS_HELPERS,
            "bench.py": HARNESS.format(imports=imports, helper=helper, expect=""),
        }
    assert lint_project(tmp_path, files) == []


def test_a_harness_that_only_clones_its_inputs_carries_the_graph(tmp_path: Path) -> None:
    files = {
        "harness_helpers.py": HARNESS_HELPERS,
        "bench.py": HARNESS.format(
            imports="from harness_helpers import clone_only",
            helper="clone_only",
            expect="# expect: TBP001",
        ),
    }
    line = expected(files["bench.py"])[0][1]
    assert lint_project(tmp_path, files) == [("bench.py", "TBP001", line)]


HARNESS_INLINE = {
    "a list of leaves": """\
        def bench(model, inputs, iters):
            for _ in range(iters):
                inputs = [x.detach().requires_grad_() for x in inputs]
                out, inputs = model(inputs, iters)
                out.sum().backward()
        """,
    "each input cloned as a leaf": """\
        def bench(cell, x, h, iters):
            for _ in range(iters):
                x = x.detach().clone().requires_grad_(True)
                h = h.detach().clone().requires_grad_(True)
                y, h = cell(x, h)
                y.sum().backward()
        """,
    "a method of the harness": """\
        import torch

        class Bench:
            def leaves(self, inputs):
                return tuple(t.detach().requires_grad_() for t in inputs)

            def run(self, cell, x, h, iters):
                for _ in range(iters):
                    x, h = self.leaves((x, h))
                    y, h = cell(x, h)
                    torch.autograd.backward(y.sum())
        """,
}


@pytest.mark.parametrize("name", HARNESS_INLINE, ids=list(HARNESS_INLINE))
def test_harness_loops_inline_stay_silent(name: str) -> None:
    source = HARNESS_INLINE[name]
    assert findings(source) == []
    # Twin: the same loop that keeps the graph is a leak.
    leaking = source.replace(".detach()", "").replace(".requires_grad_(True)", "")
    leaking = leaking.replace(".requires_grad_()", ".clone()")
    assert [code for code, _ in findings(leaking)] == ["TBP001"]


# ------------------------------------------------------------------------------- class 8
STATE_CLASS = """\
import torch

class DecoderState:
    def __init__(self, h, c):
        self.h, self.c = h, c

    def detach(self):
        self.h = self.h.detach()
        self.c = self.c.detach()
"""
DECODE_LOOPS = """\
{imports}

def from_the_decoder(decoder, batches):
    dec_state = decoder.init_state(4)
    for x, y in batches:
        out, dec_state = decoder(x, dec_state)
        (out - y).pow(2).mean().backward()
        dec_state.detach()

def built_here(decoder, batches, h, c):
    state = DecoderState(h, c)
    for x, y in batches:
        state.detach()
        out, state = decoder(x, state)
        (out - y).pow(2).mean().backward()
"""


@pytest.mark.parametrize("where", ["same file", "imported", "defined elsewhere in the run"])
def test_a_state_object_whose_detach_works_in_place_is_cut_by_it(
    tmp_path: Path, where: str
) -> None:
    if where == "same file":
        files = {"train.py": STATE_CLASS + DECODE_LOOPS.format(imports="")}
    else:
        imports = "from states import DecoderState"
        if where != "imported":
            imports = "import states\nDecoderState = states.DecoderState"
        files = {"states.py": STATE_CLASS, "train.py": DECODE_LOOPS.format(imports=imports)}
    assert lint_project(tmp_path, files) == []


def test_a_tensor_state_beside_a_state_class_is_still_found() -> None:
    source = (
        STATE_CLASS
        + """
import torch.nn as nn

def train(batches):
    rnn = nn.GRU(8, 16)
    h = None
    for x, y in batches:
        out, h = rnn(x, h)
        (out - y).pow(2).mean().backward()
        h.detach()  # expect: TBP003
        [s.detach() for s in (h,)]
"""
    )
    assert findings(source) == expected(source)


def test_no_advice_rebinds_a_state_object_to_its_in_place_detach(tmp_path: Path) -> None:
    loop = """\
        from states import DecoderState

        def train(decoder, batches, h, c):
            state = DecoderState(h, c)
            for x, y in batches:
                out, state = decoder(x, state)
                (out - y).pow(2).mean().backward()
        """
    files = {"states.py": STATE_CLASS, "train.py": loop}
    assert lint_project(tmp_path, files) == [("train.py", "TBP001", 6)]
    [message] = messages(tmp_path, "TBP001")
    assert "`state.detach()`" in message
    assert "state = state.detach()" not in message
    settings = Settings(select=("TBP",), project_root=tmp_path)
    result = lint_paths([tmp_path], settings, jobs=1, fix=True, unsafe_fixes=True)
    [outcome] = result.fixes
    fixed = outcome.fixed.decode()
    assert "        state.detach()\n" in fixed
    assert "state = state.detach()" not in fixed


def test_a_state_of_unknown_type_beside_a_state_class_gets_both_forms_of_advice(
    tmp_path: Path,
) -> None:
    loop = """\
        def train(decoder, batches):
            dec_state = decoder.init_state(4)
            for x, y in batches:
                out, dec_state = decoder(x, dec_state)
                (out - y).pow(2).mean().backward()
        """
    files = {"states.py": STATE_CLASS, "train.py": loop}
    assert lint_project(tmp_path, files) == [("train.py", "TBP001", 4)]
    [message] = messages(tmp_path, "TBP001")
    assert "`dec_state.detach()` if it is an object whose `detach()` works in place" in message
    result = lint_paths(
        [tmp_path], Settings(project_root=tmp_path), jobs=1, fix=True, unsafe_fixes=True
    )
    assert not result.fixes  # no statement fits both a tensor and such an object


# ------------------------------------------------------------------------------ class 15
BUGGY_STATE_METHODS = {
    "a loop over the parts": (
        """\
        class States:
            def detach(self):
                for h in self._all:
                    h.detach()  # expect: TBP003
        """
    ),
    "an attribute": (
        """\
        class LSTMState:
            def repackage(self):
                self.h.detach()  # expect: TBP003
                self.c = self.c.detach()
        """
    ),
    "a comprehension statement": (
        """\
        class MultiLayer:
            def detach_state(self):
                [s.detach() for s in self.states]  # expect: TBP003
        """
    ),
    "a method returning its object": (
        """\
        class Memory:
            def detach_(self):
                for key in self.slots:
                    key.detach()  # expect: TBP003
                return self
        """
    ),
}


@pytest.mark.parametrize("name", BUGGY_STATE_METHODS, ids=list(BUGGY_STATE_METHODS))
def test_a_state_class_detach_that_throws_its_results_away(name: str) -> None:
    source = "import torch\n\n" + textwrap.dedent(BUGGY_STATE_METHODS[name])
    assert findings(source) == expected(source)


def test_the_message_names_the_method_that_cuts_nothing() -> None:
    source = "import torch\n\n" + textwrap.dedent(BUGGY_STATE_METHODS["a loop over the parts"])
    [finding] = check_source(source, "example.py", ALL_RULES)
    assert "`States.detach()` cuts nothing" in finding.message
    assert "`h.detach_()`" in finding.message
    assert "self._all = [h.detach() for h in self._all]" in finding.message


CORRECT_STATE_METHODS = {
    "returns the detached parts": """\
        class States:
            def detach(self):
                return [h.detach() for h in self._all]
        """,
    "assigns the detached parts": """\
        class States:
            def detach(self):
                self._all = [h.detach() for h in self._all]
                self.h = self.h.detach()
        """,
    "detaches in place": """\
        class States:
            def detach(self):
                for h in self._all:
                    h.detach_()
                [s.detach_() for s in self.more]
        """,
    "parts that are state objects with an in-place detach": """\
        class LayerState:
            def detach(self):
                self.h = self.h.detach()

        class Stack:
            def detach(self):
                for layer in self.layers:
                    layer.detach()
        """,
    "a method that does not promise a cut": """\
        class States:
            def log(self):
                for h in self._all:
                    h.detach()
        """,
}


def test_a_detach_method_of_a_file_without_torch_is_not_a_state_class() -> None:
    source = textwrap.dedent(BUGGY_STATE_METHODS["an attribute"]).replace("# expect: TBP003", "")
    assert findings("import io\n\n" + source) == []


@pytest.mark.parametrize("name", CORRECT_STATE_METHODS, ids=list(CORRECT_STATE_METHODS))
def test_a_state_class_detach_that_keeps_its_results_is_silent(name: str) -> None:
    source = "import torch\n\n" + textwrap.dedent(CORRECT_STATE_METHODS[name])
    assert findings(source) == []


STEP_STATE = """\
import torch
import torch.nn as nn

class CellState:
    def __init__(self, h):
        self.h = h

    def detach(self):
        self.h = self.h.detach()

class Net(nn.Module):
    def repackage_hidden(self, h):
        return h.detach()

def cut(h):
    return h.detach()

net = Net()
"""
# `state` is a `CellState` the caller makes: the class is only somewhere in the run.
STEP_LOOP = """\
import torch.nn as nn
{imports}

cell = nn.GRUCell(8, 16)

def per_step(windows, state):
    for x, y in windows:
        loss = 0
        for t in range(x.size(0)):
            state.detach()  {expect}
            state.h = cell(x[t], state.h)
            loss = loss + state.h.sum()
        loss.backward()

def per_step_helper(windows, h):
    for x, y in windows:
        loss = 0
        for t in range(x.size(0)):
            h = cut(h)  {expect}
            h = cell(x[t], h)
            loss = loss + h.sum()
        loss.backward()

def per_step_method(windows, h):
    for x, y in windows:
        loss = 0
        for t in range(x.size(0)):
            h = net.repackage_hidden(h)  {expect}
            h = cell(x[t], h)
            loss = loss + h.sum()
        loss.backward()

def per_window(windows, state, h):
    for x, y in windows:
        state.detach()
        h = cut(h)
        h = net.repackage_hidden(h)
        loss = 0
        for t in range(x.size(0)):
            state.h = cell(x[t], state.h)
            h = cell(x[t], h)
            loss = loss + state.h.sum() + h.sum()
        loss.backward()
"""


def test_a_cut_helper_of_another_file_called_at_every_step(tmp_path: Path) -> None:
    loop = STEP_LOOP.format(imports="from states import cut, net", expect="# expect: TBP004")
    files = {"states.py": STEP_STATE, "train.py": loop}
    lines = [line for _, line in expected(loop)]
    assert lint_project(tmp_path, files) == [("train.py", "TBP004", line) for line in lines]


def test_a_cut_helper_of_another_notebook_cell_called_at_every_step(tmp_path: Path) -> None:
    loop = STEP_LOOP.format(imports="", expect="# expect: TBP004")
    cells = [STEP_STATE, loop]
    document = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
             "source": text.splitlines(keepends=True)}
            for text in cells
        ],
        "metadata": {"kernelspec": {"name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip
    (tmp_path / "train.ipynb").write_text(json.dumps(document), encoding="utf-8")
    result = lint_paths([tmp_path], Settings(project_root=tmp_path), jobs=1)
    found = sorted((d.cell, d.code, d.line) for d in result.diagnostics)
    assert found == [(2, "TBP004", line) for _, line in expected(loop)]


def test_a_progress_bar_around_the_cases_of_a_benchmark_is_no_state() -> None:
    """`cases = progress(cases, total=n)` passes the cases and a setting: no step of a
    recurrent model, so what its loop hands out is no graph carried from the last pass."""
    source = """\
        import torch
        from tqdm import tqdm

        def with_grad(x, flag=True):
            if isinstance(x, torch.Tensor) and x.is_floating_point():
                return x.detach().requires_grad_(flag)
            if isinstance(x, (list, tuple)):
                return type(x)(with_grad(v, flag) for v in x)
            return x

        def time_backward(models, batches, repeats, show):
            cases = zip(models, batches)
            if show:
                cases = tqdm(cases, total=len(models), desc="backward")
            for model, batch in cases:
                for _ in range(repeats):
                    inputs = batch() if callable(batch) else batch
                    inputs = with_grad(inputs, show)
                    out = model(*inputs)
                    out.sum().backward()
        """
    assert findings(source) == []
