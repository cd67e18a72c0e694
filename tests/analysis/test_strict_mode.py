"""Strict mode (TBPTT_LINT_STRICT=1, on for the whole suite) raises where the analysis would
quietly read less of a file than it means to: a text it cut out of a file that parses (the
blocks kept of a file read for one rule, a method parsed alone) does not parse. A file that
does not parse itself is no bug of ours: strict mode stays quiet and it is reported as a
TBP900 where it is checked.

The cut-out texts below were cut wrong until session 24: brackets continued on a line at
column 0 that neither starts with a closing bracket nor follows a backslash ended the block
early. The block finder now counts brackets, so a line inside open brackets never ends a
block: those texts are read whole. To keep strict mode's own checks tested, the tests that
want a wrong cut put the old finder back (`brackets_ignored`), which costs the finding in
normal mode, silently."""

from __future__ import annotations

import textwrap

import pytest

from tbptt_lint.analysis import chunks
from tbptt_lint.analysis.api import check_source, summarize_source
from tbptt_lint.engine import lint_source
from tbptt_lint.settings import Settings
from tbptt_lint.strict import STRICT_ENV, StrictModeError, unparsable_cut

# A model file with no backward, read only for its per-step reset (TBP015).
RESET_MODEL = """\
import torch
import torch.nn as nn


def hidden_size(config{signature}):
    return 8


class Stepper(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(4, 8)

    def reset(self):
        self.h = torch.zeros(1, 8)

    def forward(self, x):
        outs = []
        for t in range(x.size(1)):
            self.reset()  # expect: TBP015
            x_t = x[:, t]
            self.h = self.cell(x_t, self.h)
            outs.append(self.h)
        return torch.stack(outs, 1)
"""
# `default=8):` at column 0 ends the block of `hidden_size`, which the read for the reset
# blanks: the line is left behind.
CUT_WRONG = ",\ndefault=8"


@pytest.fixture
def brackets_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """The block finder as it was: blind to open brackets."""
    monkeypatch.setattr(chunks, "_bracket_depth_change", lambda text: 0)


def codes(source: str) -> list[tuple[str, int]]:
    return [(d.code, d.line) for d in lint_source(source, "model.py", Settings())]


def test_the_file_read_for_one_rule_is_reported_when_its_blocks_are_cut_right() -> None:
    assert codes(RESET_MODEL.format(signature="")) == [("TBP015", 20)]


def test_a_signature_continued_at_column_0_inside_brackets_keeps_its_block() -> None:
    assert codes(RESET_MODEL.format(signature=CUT_WRONG)) == [("TBP015", 21)]


@pytest.mark.usefixtures("brackets_ignored")
def test_strict_mode_raises_when_the_blocks_of_a_file_read_for_one_rule_do_not_parse() -> None:
    source = RESET_MODEL.format(signature=CUT_WRONG)
    with pytest.raises(StrictModeError, match="the blocks kept of model.py"):
        check_source(source, "model.py", Settings())


@pytest.mark.usefixtures("not_strict", "brackets_ignored")
def test_normal_mode_reads_nothing_of_that_file() -> None:
    # The limit strict mode shows: the finding is lost, no error.
    assert codes(RESET_MODEL.format(signature=CUT_WRONG)) == []


def test_strict_mode_stays_quiet_on_a_file_that_does_not_parse() -> None:
    broken = RESET_MODEL.format(signature="").replace("outs = []", "outs = [")
    assert check_source(broken, "model.py", Settings()) == []  # read for one rule: not checked
    assert [d.code for d in lint_source(broken, "model.py", Settings())] == []


# A user's model whose forward hands its default None to the GRU (TBP015 at `net(x)`): the
# forward is parsed alone when the call is met.
USER_MODEL = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 16)

    def forward(self, x{signature}h=None):
        return self.gru(x, h)


net = Net()
h = None
for x, y in batches:
    if h is not None:
        h = h.detach()
    out, h = net(x)  # expect: TBP015
    (out - y).pow(2).mean().backward()
"""


def test_a_model_forward_parsed_alone_is_read() -> None:
    assert codes(USER_MODEL.format(signature=", ")) == [("TBP015", 18)]


def test_a_method_whose_signature_goes_on_at_column_0_is_read() -> None:
    assert codes(USER_MODEL.format(signature=",\n")) == [("TBP015", 19)]


@pytest.mark.usefixtures("brackets_ignored")
def test_strict_mode_raises_when_a_method_parsed_alone_does_not_parse() -> None:
    source = USER_MODEL.format(signature=",\n")
    with pytest.raises(StrictModeError, match="'def forward' parsed alone"):
        check_source(source, "model.py", Settings())


# A one-step cell with an optional state, read in phase 1.
CELL = """\
import torch
import torch.nn as nn


class Cell(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 8)

    def forward(self, x, H=None):
        if H is None:
            H = torch.zeros(x.size(0),{signature}8)
        return torch.tanh(self.lin(x) + H)
"""


def test_a_cell_forward_is_read_in_phase_1() -> None:
    summary = summarize_source(CELL.format(signature=" "), "cells")
    assert summary.optional_state_cells == {"cells.Cell": (1, "H")}


def test_a_cell_forward_with_a_call_going_on_at_column_0_is_read() -> None:
    summary = summarize_source(CELL.format(signature="\n"), "cells")
    assert summary.optional_state_cells == {"cells.Cell": (1, "H")}


@pytest.mark.usefixtures("brackets_ignored")
def test_strict_mode_raises_when_a_cell_forward_parsed_alone_does_not_parse() -> None:
    with pytest.raises(StrictModeError, match="a forward parsed alone"):
        summarize_source(CELL.format(signature="\n"), "cells")


def test_unparsable_cut_raises_only_in_strict_mode_and_for_a_file_that_parses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good, broken = "x = 1\n", "x = (\n"
    unparsable_cut("a block", broken)  # the file itself does not parse
    with pytest.raises(StrictModeError, match="a block does not parse"):
        unparsable_cut("a block", good)
    monkeypatch.delenv(STRICT_ENV)
    unparsable_cut("a block", good)


def test_the_suite_runs_in_strict_mode() -> None:
    import os

    assert os.environ.get(STRICT_ENV) not in (None, "", "0"), textwrap.dedent(
        """\
        tests/conftest.py turns strict mode on; run with TBPTT_LINT_STRICT=0 only to see the
        suite as a user's run would behave."""
    )
