"""Summary passes read again only the functions whose callees' facts changed: the same facts
as reading every function in every pass, with fewer reads."""

from __future__ import annotations

import textwrap

import pytest

from tbptt_lint.analysis import api, summaries

# `cut_all` calls `cut_one`, defined after it and assumed to cut until its body is read: it
# does not, which only a second pass of `cut_all` learns.
CHAIN = """\
class State:
    def cut_all(self, states):
        return tuple(self.cut_one(s) for s in states)

    def cut_one(self, h):
        if self.keep:
            return h * 2
        return h.detach()
"""
# Assumed to cut while its own body is first read; it does not (the tensor comes back as is).
RECURSIVE = """\
def repackage_hidden(h):
    if isinstance(h, tuple):
        return tuple(repackage_hidden(v) for v in h)
    if isinstance(h, list):
        return [v.detach() for v in h]
    return h + 0
"""
LOOP = """\
def train_{n}(rnn, batches, opt):
    hidden = None
    for x, y in batches:
        hidden = hidden.detach() if hidden is not None else None
        out, hidden = rnn(x, hidden)
        loss = ((out - y) ** 2).mean()
        loss.backward()
        opt.step()
"""


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    names: list[str] = []
    real = summaries.summarise_function

    def counted(function, context, class_name):
        names.append(function.name.value)
        return real(function, context, class_name)

    monkeypatch.setattr(summaries, "summarise_function", counted)
    return names


def facts(source: str) -> dict[str, object]:
    return dict(api.summarize_source(textwrap.dedent(source), "m").functions)


def test_a_caller_defined_before_its_callee_gets_the_callees_cut(reads):
    found = facts(CHAIN)
    assert not found.get("m.State.cut_all", summaries.FunctionFacts()).returns_cut
    assert reads.count("cut_all") == 2  # read again once `cut_one` was known
    assert reads.count("cut_one") == 1


def test_a_recursive_helper_is_read_until_its_own_facts_hold(reads):
    found = facts(RECURSIVE).get("m.repackage_hidden")
    assert found is None or not found.returns_cut
    assert reads.count("repackage_hidden") == 2


def test_functions_that_call_no_function_of_the_file_are_read_once(reads):
    facts("\n\n".join(LOOP.format(n=n) for n in range(5)))
    assert sorted(reads) == [f"train_{n}" for n in range(5)]
