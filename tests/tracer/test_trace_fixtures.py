"""The tracer's verdict on every fixture agrees with the fixture's `# expect:` comments:
`assert_tbptt(K1, K2)` passes exactly when no expected rule is visible at runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny fixtures: threads only add OpenMP spin-waits on small machines

from tbptt_lint.tracer.fixture_check import expected_codes, run_fixture  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PATHS = sorted(FIXTURES.glob("*.py"))


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_fixture_agrees(path):
    result = run_fixture(path)
    assert result.raise_ok, f"EXPECT_RAISES mismatch: raised {result.raised!r}"
    assert not result.internal_errors, result.internal_errors[0]
    detail = (
        f"{path.name}: strides {result.strides}, horizons {result.horizons}, "
        f"expected codes {sorted(expected_codes(path))}, problems {result.problems}"
    )
    assert result.passed == result.expect_pass, detail


def test_there_are_fixtures_of_both_kinds():
    names = [p.name for p in PATHS]
    assert any(n.startswith("ok_") for n in names) and any(n.startswith("bug_") for n in names)


def test_raised_errors_carry_the_explanation():
    for path in PATHS:
        if path.name == "bug_tbp001_state_not_detached.py":
            result = run_fixture(path)
            assert result.raised and "[tbptt-lint]" in result.raised


def test_rule_visibility_fallback_matches_the_registry():
    from tbptt_lint.tracer.fixture_check import _visible_codes_from_sources, runtime_visible_codes

    assert runtime_visible_codes() == _visible_codes_from_sources()
