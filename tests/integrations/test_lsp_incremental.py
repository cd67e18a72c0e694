"""The language server checks again only the blocks an edit can change
(`tbptt_lint/integrations/server/incremental.py`), and its diagnostics are those of a
whole-file lint.

Random edit sequences over files put together from the fixtures and the rule pages' examples
are checked against the engine's own entry point (`lint_source`), buffer after buffer, with
the block caches carried from one version to the next as in the editor.
"""

from __future__ import annotations

import ast
import random
import re
import textwrap
from pathlib import Path

import pytest

from tbptt_lint.engine import lint_source
from tbptt_lint.integrations.server.incremental import IncrementalChecker
from tbptt_lint.integrations.server.workspace import WorkspaceLinter

ROOT = Path(__file__).resolve().parents[2]
CODE_BLOCK = re.compile(r"```python (?:bad|good)[^\n]*\n(.*?)```", re.DOTALL)
LOOP = """\


def train_{n}(rnn, batches, opt):
    hidden = None
    for x, y in batches:
        out, hidden = rnn(x, hidden)
        loss = ((out - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        {cut}
    return hidden
"""
CUT = "hidden = hidden.detach()"
NO_CUT = "pass"


def loops(count: int) -> str:
    return "import torch\n" + "".join(
        LOOP.format(n=n, cut=NO_CUT if n % 3 == 0 else CUT) for n in range(count)
    )


def corpus() -> list[str]:
    texts = [path.read_text() for path in sorted((ROOT / "fixtures").glob("*.py"))]
    for page in sorted((ROOT / "rules").glob("TBP*.md")):
        texts.extend(CODE_BLOCK.findall(page.read_text()))
    return texts


def rule_test_sources() -> list[str]:
    """The training code the rule tests lint: their triple-quoted sources that parse and
    call backward."""
    found = []
    for path in sorted((ROOT / "tests" / "rules").glob("test_*.py")):
        for match in re.finditer(r'"""(.*?)"""', path.read_text(), re.DOTALL):
            code = textwrap.dedent(match.group(1))
            if "backward" not in code:
                continue
            try:
                ast.parse(code)
            except SyntaxError:
                continue
            found.append(code)
    return found


# Module-level lines an edit may add: imports, constants, names the functions' own
# variables share, objects built at module level, comments.
MODULE_LINES = [
    "import os\n",
    "import torch\n",
    "import torch as T\n",
    "import torch.nn as nn\n",
    "from torch import nn\n",
    "from torch.nn.utils import clip_grad_norm_\n",
    "import numpy as np\n",
    "LR = 0.1\n",
    "BPTT = 35\n",
    "hidden = None\n",
    "opt = None\n",
    "model = torch.nn.LSTM(3, 3)\n",
    "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n",
    '"""A module docstring."""\n',
    "# a comment at module level\n",
    "\n",
]


def edited_at_module_level(text: str, rnd: random.Random) -> str:
    """One edit outside every function, as typing makes them: a line added before a line
    that starts at column 0 (an import, a constant, a name a function also uses, a comment),
    a comment or blanks typed at the end of such a line, an import removed, an import's
    alias renamed, `import torch` taken out."""
    lines = text.splitlines(keepends=True) or ["\n"]
    top = [n for n, line in enumerate(lines) if line[:1].strip() and line[:1] != "#"] or [0]
    at = rnd.choice(top)
    kind = rnd.randrange(6)
    if kind == 0:
        lines.insert(at, rnd.choice(MODULE_LINES))
    elif kind == 1:
        lines[at] = lines[at].rstrip("\r\n") + rnd.choice(["  # note", " ", "\t"]) + "\n"
    elif kind == 2:
        imports = [n for n in top if lines[n].startswith(("import ", "from "))]
        if imports:
            del lines[rnd.choice(imports)]
    elif kind == 3:
        aliases = sorted(set(re.findall(r"^(?:import|from) .* as (\w+)", text, re.MULTILINE)))
        if aliases:
            old = rnd.choice(aliases)
            return re.sub(rf"\bas {old}\b", f"as {old}_renamed", text, count=1)
    elif kind == 4:
        return re.sub(r"^import torch\n", "", text, count=1, flags=re.MULTILINE)
    else:
        lines.insert(at, rnd.choice(["# comment\n", "\n", "LR = 0.01\n"]))
    return "".join(lines)


def edited(text: str, rnd: random.Random) -> str:
    """One edit as typing makes them: a line added, removed, moved or changed, a cut taken
    out or put in, one name written as another (which may leave the file broken)."""
    lines = text.splitlines(keepends=True) or ["\n"]
    at = rnd.randrange(len(lines))
    kind = rnd.randrange(7)
    if kind == 0:
        lines.insert(at, "\n")
    elif kind == 1:
        del lines[at]
    elif kind == 2:
        lines[at] = lines[at].rstrip("\n") + " \n"
    elif kind == 3:
        start = text.find(".detach()", rnd.randrange(len(text) or 1))
        if start >= 0:
            return text[:start] + text[start + len(".detach()") :]
    elif kind == 4:
        words = sorted(set(re.findall(r"[A-Za-z_]\w*", text))) or ["x"]
        old, new = rnd.choice(words), rnd.choice(words)
        return re.sub(rf"\b{old}\b", new, text, count=1)
    elif kind == 5:
        lines[at] = lines[at].replace("hidden", "hidden.detach()", 1)
    else:
        end = min(len(lines), at + rnd.randrange(1, 15))
        moved = lines[at:end]
        del lines[at:end]
        to = min(rnd.randrange(len(lines) + 1), len(lines))
        lines[to:to] = moved
    return "".join(lines)


def lint_whole(linter: WorkspaceLinter, path: Path, text: str) -> list:
    return lint_source(text, path, linter.settings_for(path))


@pytest.mark.parametrize("seed", range(6))
def test_random_edits_give_the_diagnostics_of_a_whole_file_lint(tmp_path: Path, seed: int):
    rnd = random.Random(seed)
    texts = corpus()
    path = tmp_path / "train.py"
    for _ in range(3):
        text = "\n\n".join(rnd.sample(texts, rnd.randint(2, 4)))
        path.write_text(text)
        linter = WorkspaceLinter([tmp_path])
        for _ in range(5):
            got = linter.analyse(path, text).diagnostics
            assert got == lint_whole(linter, path, text), text
            text = edited(text, rnd)


@pytest.mark.parametrize("seed", range(8))
def test_module_level_edits_give_the_diagnostics_of_a_whole_file_lint(tmp_path: Path, seed: int):
    # Edits outside every function, some that change what the functions read (an alias
    # renamed, `import torch` removed, a name a function uses bound at module level), mixed
    # with edits inside them, over the fixtures, the rule pages' examples and the rule
    # tests' sources.
    rnd = random.Random(1000 + seed)
    texts = corpus() + rule_test_sources()
    path = tmp_path / "train.py"
    for _ in range(3):
        text = "\n\n".join(rnd.sample(texts, rnd.randint(2, 4)))
        path.write_text(text)
        linter = WorkspaceLinter([tmp_path])
        for _ in range(8):
            got = linter.analyse(path, text).diagnostics
            assert got == lint_whole(linter, path, text), text
            text = (edited if rnd.random() < 0.25 else edited_at_module_level)(text, rnd)


def test_an_edit_in_one_loop_checks_that_loop_alone(tmp_path: Path):
    path = tmp_path / "train.py"
    text = loops(12)
    linter = WorkspaceLinter([tmp_path])
    first = linter.analyse(path, text).diagnostics
    buffer = linter.buffer(path)
    assert isinstance(buffer, IncrementalChecker)
    assert (buffer.checked, buffer.reused) == (13, 0)  # 12 loops and the imports
    # A line added in the sixth loop moves the six below it; their findings move with them.
    lines = text.splitlines(keepends=True)
    opt_step = [n for n, line in enumerate(lines) if "opt.step()" in line][5]
    lines.insert(opt_step, "        # the step\n")
    changed = "".join(lines)
    after = linter.analyse(path, changed).diagnostics
    assert (buffer.checked, buffer.reused) == (1, 12)
    assert after == lint_whole(linter, path, changed)
    assert len(after) == len(first) == 4
    moved = [d for d in after if d.line > opt_step]
    assert moved and all("line" in d.message for d in moved)
    assert [d.line for d in after] == [d.line + (d.line > opt_step) for d in first]


def test_a_helper_changed_in_its_block_is_seen_by_the_loop_that_calls_it(tmp_path: Path):
    # The loop's block is unchanged, but what it calls now carries the state uncut.
    path = tmp_path / "train.py"
    helper = "def repackage(h):\n    return h.detach()\n\n\n"
    loop = LOOP.format(n=0, cut="hidden = repackage(hidden)")
    linter = WorkspaceLinter([tmp_path])
    assert linter.analyse(path, helper + loop).diagnostics == []
    leaking = helper.replace("h.detach()", "h") + loop
    found = linter.analyse(path, leaking).diagnostics
    assert [d.code for d in found] == ["TBP001"]
    assert found == lint_whole(linter, path, leaking)


def test_a_block_that_builds_an_object_shares_its_name_with_other_blocks(tmp_path: Path):
    # `optimizer = torch.optim.Adam(...)` in one function and `optimizer = SGD(...)` in
    # another: the analysis keeps what a name was built from file-wide, so they are one group.
    path = tmp_path / "train.py"
    text = (ROOT / "fixtures" / "ok_detach_inplace.py").read_text()
    stepper = """

def apply_update(opt, scheduler):
    opt.step()
    scheduler.step()


def fit(model, loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 10)
    for x, y in loader:
        (model(x) - y).pow(2).mean().backward()
        apply_update(optimizer, scheduler)
"""
    linter = WorkspaceLinter([tmp_path])
    combined = text + stepper
    assert linter.analyse(path, combined).diagnostics == lint_whole(linter, path, combined)
    alone = "import torch\n" + stepper
    assert linter.analyse(path, alone).diagnostics == lint_whole(linter, path, alone)


def test_a_broken_edit_is_reported_as_the_whole_file_lint_reports_it(tmp_path: Path):
    path = tmp_path / "train.py"
    text = loops(4)
    linter = WorkspaceLinter([tmp_path])
    linter.analyse(path, text)
    broken = text.replace("opt.step()", "opt.step(", 1)
    got = linter.analyse(path, broken).diagnostics
    assert [d.code for d in got] == ["TBP900"]
    assert got == lint_whole(linter, path, broken)


def test_whole_file_checks_when_asked(tmp_path: Path):
    path = tmp_path / "train.py"
    linter = WorkspaceLinter([tmp_path], incremental=False)
    text = loops(3)
    assert linter.buffer(path) is None
    assert linter.analyse(path, text).diagnostics == lint_whole(linter, path, text)


def test_an_edit_outside_functions_checks_again_only_what_reads_it(tmp_path: Path):
    # Typing in the imports, adding an import, a constant, a comment or a docstring at module
    # level: no loop names what changed, so every loop's findings are kept, moved where the
    # loop now sits (issue 16: these took a whole-file check).
    path = tmp_path / "train.py"
    text = loops(12)
    linter = WorkspaceLinter([tmp_path])
    linter.analyse(path, text)
    buffer = linter.buffer(path)
    assert isinstance(buffer, IncrementalChecker)
    edits = [
        lambda t: t.replace("import torch\n", "import torch  \n", 1),
        lambda t: t.replace("import torch  \n", "import torch  # the framework\n", 1),
        lambda t: "import os\n" + t,
        lambda t: t.replace("import os\n", "import os\n\nLR = 0.1\nSIZES = [1, 2]\n", 1),
        lambda t: t.replace("LR = 0.1", "LR = 0.01", 1),
        lambda t: '"""Training loops."""\n# a comment\n\n' + t,
        lambda t: t.replace("import os\n", "", 1),
    ]
    for edit in edits:
        text = edit(text)
        got = linter.analyse(path, text).diagnostics
        assert (buffer.checked, buffer.reused) == (0, 13), text
        assert got == lint_whole(linter, path, text)
        assert len(got) == 4


def test_an_edit_outside_functions_that_they_read_checks_them_again(tmp_path: Path):
    # What the functions name changes meaning: their findings are those of a whole-file lint.
    linter = WorkspaceLinter([tmp_path])
    path = tmp_path / "train.py"

    def check(text: str) -> list:
        got = linter.analyse(path, text).diagnostics
        assert got == lint_whole(linter, path, text)
        return [d.code for d in got]

    # The alias the loop builds its cell with, renamed: `nn.LSTM` is no longer torch's.
    inplace = (ROOT / "fixtures" / "bug_tbp014_detach_inplace_on_view.py").read_text()
    assert "import torch.nn as nn\n" in inplace
    assert check(inplace) == ["TBP014"]
    renamed = inplace.replace("import torch.nn as nn\n", "import torch.nn as tnn\n")
    assert check(renamed) == []
    assert check(inplace) == ["TBP014"]
    # `import torch` taken out: `torch.zeros` is no longer a tensor, nor `h.detach()` a
    # result thrown away.
    states = textwrap.dedent(
        '''\
        import torch


        class LayerStates:
            def __init__(self, layers, batch, size):
                self.parts = [torch.zeros(batch, size) for _ in range(layers)]

            def detach(self):
                """Called by the training loop once per window."""
                for h in self.parts:
                    h.detach()
        '''
    )
    assert check(states) == ["TBP003"]
    assert check(states.replace("import torch\n", "")) == []
    assert check(states.replace("import torch\n", "import torch  # again\n")) == ["TBP003"]
    # A name a loop reads, bound at module level, and a class a loop uses, changed.
    text = loops(3)
    check(text)
    assert check("import torch\nhidden = torch.zeros(1)\n" + text[len("import torch\n") :])
    buffer = linter.buffer(path)
    assert isinstance(buffer, IncrementalChecker) and buffer.checked > 0
    # The class whose `forward` cuts the state the loop carries: the cut taken out.
    model = (ROOT / "fixtures" / "ok_detach_in_forward.py").read_text()
    assert check(model) == []
    assert check(model.replace("else h.detach()", "else h")) == ["TBP001"]


def test_a_star_import_is_in_every_group_source(tmp_path: Path):
    # `from fastai.text import *` binds `Learner`, which no name of the import shows: the
    # library fit at module level over a model that keeps its state is TBP011 only with it.
    path = tmp_path / "train.py"
    text = textwrap.dedent(
        """\
        import torch
        import torch.nn as nn
        from fastai.text import *


        class StatefulLM(nn.Module):
            def __init__(self, vocab, hidden_size, batch_size):
                super().__init__()
                self.i_h = nn.Embedding(vocab, hidden_size)
                self.rnn = nn.RNN(hidden_size, hidden_size, batch_first=True)
                self.h_o = nn.Linear(hidden_size, vocab)
                self.h = torch.zeros(1, batch_size, hidden_size)

            def forward(self, x):
                res, h = self.rnn(self.i_h(x), self.h)
                self.h = h.detach()
                return self.h_o(res)


        learn = Learner(data, StatefulLM(40, 64, 64), metrics=accuracy)
        learn.fit_one_cycle(10, 3e-3)
        """
    )
    linter = WorkspaceLinter([tmp_path])
    got = linter.analyse(path, text).diagnostics
    assert got == lint_whole(linter, path, text)
    assert "TBP011" in [d.code for d in got]
