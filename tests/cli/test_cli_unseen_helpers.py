"""A TBP001 whose state goes through a helper the run cannot see (imported from outside the
linted files and the project modules they import) says so, and names `detach-functions`.

(A state rebound to such a helper's result, `hidden = cut(hidden)`, is unknown and not
reported at all; the state handed on through one, `model(x, cut(hidden))`, still is.)"""

from __future__ import annotations

import json

from cli_helpers import write

LOOP = """\
import torch
{imports}


def train(model, batches, opt):
    hidden = None
    for x, y in batches:
        out, hidden = model(x, {call})
        loss = (out - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
"""


def tbp001_messages(cli, *args: str) -> list[str]:
    run = cli("--output-format", "json", "--no-cache", *args)
    return [d["message"] for d in json.loads(run.out) if d["code"] == "TBP001"]


def test_a_helper_imported_from_outside_the_run_is_named(cli, project):
    loop = LOOP.format(imports="from teamlib.state import cut_state", call="cut_state(hidden)")
    write(project / "train.py", loop)
    (message,) = tbp001_messages(cli, "train.py")
    assert "`cut_state` (`teamlib.state.cut_state`)" in message
    assert "cannot see" in message
    assert '"teamlib.state.cut_state" to `detach-functions`' in message


def test_declaring_the_helper_in_detach_functions_removes_the_finding(cli, project):
    loop = LOOP.format(imports="from teamlib.state import cut_state", call="cut_state(hidden)")
    write(project / "train.py", loop)
    write(
        project / "pyproject.toml",
        '[tool.tbptt-lint]\ndetach-functions = ["teamlib.state.cut_state"]\n',
    )
    assert tbp001_messages(cli, "train.py") == []


def test_a_helper_of_the_run_that_does_not_cut_is_not_called_unseen(cli, project):
    write(project / "utils.py", "def log_state(h):\n    print(h)\n    return h\n")
    loop = LOOP.format(imports="from utils import log_state", call="log_state(hidden)")
    write(project / "train.py", loop)
    (message,) = tbp001_messages(cli, "train.py")
    assert "detach-functions" not in message


def test_library_functions_are_not_helpers(cli, project):
    loop = LOOP.format(imports="", call="hidden").replace(
        "        out, hidden = model(x, hidden)",
        "        hidden = torch.clone(hidden)\n        out, hidden = model(x, hidden)",
    )
    write(project / "train.py", loop)
    (message,) = tbp001_messages(cli, "train.py")
    assert "detach-functions" not in message
