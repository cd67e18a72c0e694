"""The harness itself, in the default run: the oracle catches what it claims to catch, and the
mutations are reproducible. (The fuzzing is in test_fuzz_linter.py, off by default.)"""

from __future__ import annotations

import random
import time

import fuzz_harness
import pytest
from fuzz_harness import (
    TRAINING_LOOP,
    Hang,
    check_one,
    delete_line,
    fixture_sources,
    generated_variants,
    mutate,
    reindent,
    swap_statements,
    time_limit,
    truncate,
)

from tbptt_lint.diagnostics import Diagnostic, Severity

BUGGY = TRAINING_LOOP.format(body="    pass")


def test_a_real_training_loop_passes_and_has_a_finding():
    assert check_one(BUGGY) is None
    from tbptt_lint.engine import lint_source
    from tbptt_lint.settings import Settings

    assert "TBP001" in {d.code for d in lint_source(BUGGY, "fuzz.py", Settings())}


def test_a_broken_training_loop_passes_because_it_is_a_tbp900():
    assert check_one(BUGGY.replace("(out - y)", "(out - y")) is None


def test_a_crash_in_check_source_is_a_failure(monkeypatch):
    def crash(*args: object, **kwargs: object) -> list[object]:
        raise KeyError("boom")

    monkeypatch.setattr(fuzz_harness, "check_source", crash)
    problem = check_one(BUGGY)
    assert problem is not None
    assert problem.startswith("check_source raised:")
    assert "KeyError: 'boom'" in problem


def test_a_crash_in_lint_source_is_a_failure(monkeypatch):
    def crash(*args: object, **kwargs: object) -> list[Diagnostic]:
        raise RecursionError("deep")

    monkeypatch.setattr(fuzz_harness, "lint_source", crash)
    problem = check_one(BUGGY)
    assert problem is not None and problem.startswith("lint_source raised:")


def test_an_unknown_code_is_a_failure(monkeypatch):
    def unknown(*args: object, **kwargs: object) -> list[Diagnostic]:
        return [Diagnostic("TBP999", "?", "fuzz.py", 1, 1, 1, 1, Severity.ERROR, "")]

    monkeypatch.setattr(fuzz_harness, "lint_source", unknown)
    assert check_one(BUGGY) == "lint_source returned unknown codes ['TBP999']"


def test_a_missing_tbp900_is_a_failure(monkeypatch):
    monkeypatch.setattr(fuzz_harness, "lint_source", lambda *args, **kwargs: [])
    assert check_one(BUGGY + "    loss = (\n") == (
        "a text Python rejects is linted without a TBP900"
    )


def test_no_tbp900_is_expected_where_only_a_docstring_mentions_backward():
    # The linter reads a file only when its code may hold a finding, so a broken file whose
    # `backward` sits in its docstring alone is not parsed, and no TBP900 is owed.
    broken = '"""Call loss.backward() and h.detach() per window."""\nx = (\n'
    assert check_one(broken) is None
    assert check_one(broken.replace('"""\n', '"""\nloss.backward()\n')) is None


def test_a_tbp900_on_valid_python_is_a_failure(monkeypatch):
    def syntax_error(*args: object, **kwargs: object) -> list[Diagnostic]:
        return [Diagnostic("TBP900", "syntax error: no", "fuzz.py", 1, 1, 1, 1, Severity.ERROR, "")]

    monkeypatch.setattr(fuzz_harness, "lint_source", syntax_error)
    assert check_one(BUGGY) == "valid Python reported as TBP900: syntax error: no"


def test_a_hang_is_interrupted_and_reported(monkeypatch):
    def spin(*args: object, **kwargs: object) -> None:
        while True:
            pass

    monkeypatch.setattr(fuzz_harness, "TIME_LIMIT_S", 0.2)
    monkeypatch.setattr(fuzz_harness, "check_source", spin)
    started = time.perf_counter()
    problem = check_one(BUGGY)
    assert time.perf_counter() - started < 2
    assert problem == "check_source hangs: interrupted after 0.2 s"


def test_time_limit_catches_a_slow_call_and_restores_the_alarm():
    with pytest.raises(Hang), time_limit(0.05):
        time.sleep(1)
    with time_limit(0.5):
        time.sleep(0.01)
    time.sleep(0.6)  # an alarm left armed would raise Hang here


def test_generated_code_is_spliced_into_the_loop_body():
    raw, appended, spliced = generated_variants("if a:\n    b = 1\n")
    assert raw == "if a:\n    b = 1\n"
    assert appended.endswith("\nloss.backward()\n")
    assert "    if a:\n        b = 1\n" in spliced and "loss.backward()" in spliced
    assert compile(spliced, "spliced", "exec")


def test_mutations_are_reproducible_and_change_the_text():
    [(_, source)] = [item for item in fixture_sources() if item[0].startswith("bug_tbp001")]
    first = [mutate(source, random.Random(5)) for _ in range(3)]
    second = [mutate(source, random.Random(5)) for _ in range(3)]
    assert first == second
    rng = random.Random(0)
    assert len(delete_line(source, rng).splitlines()) == len(source.splitlines()) - 1
    assert len(truncate(source, rng)) <= len(source)
    lines = source.splitlines()
    changed = reindent(source, rng).splitlines()
    assert len(changed) == len(lines)
    assert sum(a != b for a, b in zip(lines, changed, strict=True)) <= 1


def test_swap_statements_swaps_two_statements_of_one_block():
    source = "def f():\n    a = 1\n    b = 2\n"
    assert swap_statements(source, random.Random(0)) == "def f():\n    b = 2\n    a = 1\n"
    # when the text does not parse, adjacent lines are swapped
    broken = "x = (\ny = 2\n"
    assert swap_statements(broken, random.Random(0)) == "y = 2\nx = (\n"
