"""The linter and the tracer agree on every bundled fixture.

The linter must report exactly the `# expect:` lines of each fixture, and it reports a rule
that is visible at runtime (a wrong horizon or stride) exactly when the tracer, running the
same script, finds that `assert_tbptt(K1, K2)` fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tbptt_lint import testing
from tbptt_lint.engine import lint_source
from tbptt_lint.rules import RULES_BY_CODE
from tbptt_lint.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PATHS = sorted(FIXTURES.glob("*.py"))
ALL_RULES = Settings(select=("TBP",), extend_select=("TBP007",))


def expected(path: Path) -> set[tuple[str, int]]:
    return set(testing.expected_lines(path.read_text(encoding="utf-8")))


def linted(path: Path) -> set[tuple[str, int]]:
    source = path.read_text(encoding="utf-8")
    return {(d.code, d.line) for d in lint_source(source, path, ALL_RULES)}


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_linter_reports_exactly_the_expected_lines(path: Path) -> None:
    assert linted(path) == expected(path)


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_linter_and_tracer_agree(path: Path) -> None:
    pytest.importorskip("torch")
    from tbptt_lint.tracer.fixture_check import run_fixture

    lint_says_schedule_is_wrong = any(
        RULES_BY_CODE[code].runtime_visible for code, _ in linted(path)
    )
    result = run_fixture(path)
    assert not result.internal_errors, result.internal_errors
    tracer_says_schedule_is_wrong = not result.passed
    assert lint_says_schedule_is_wrong == tracer_says_schedule_is_wrong, (
        f"{path.name}: linter {sorted(linted(path))}, tracer horizons {result.horizons} "
        f"strides {result.strides}: {result.problems}"
    )


def test_both_kinds_of_fixture_exist() -> None:
    kinds = {bool(expected(p)) for p in PATHS}
    assert kinds == {True, False}
    assert len(PATHS) >= 12
