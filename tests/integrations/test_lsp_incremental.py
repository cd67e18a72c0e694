"""The language server checks again only the blocks an edit can change
(`tbptt_lint/integrations/server/incremental.py`), and its diagnostics are those of a
whole-file lint.

Random edit sequences over files put together from the fixtures and the rule pages' examples
are checked against the engine's own entry point (`lint_source`), buffer after buffer, with
the block caches carried from one version to the next as in the editor.
"""

from __future__ import annotations

import random
import re
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
