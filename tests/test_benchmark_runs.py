"""The speed benchmarks time runs of the command line with its output thrown away: a run that
fails (an internal error exits 2, even with --exit-zero) must stop the benchmark instead of
being timed as a fast run that found nothing."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


@pytest.fixture
def huge_file(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import huge_file

    return huge_file


def test_a_run_that_succeeds_is_timed(huge_file: ModuleType) -> None:
    seconds, peak_mb = huge_file.measured_run([sys.executable, "-c", "print('ok')"])
    assert seconds > 0 and peak_mb > 0


def test_a_run_that_fails_stops_the_benchmark_with_its_error(huge_file: ModuleType) -> None:
    failing = (
        "import sys; print('internal error while checking a.py', file=sys.stderr); sys.exit(2)"
    )
    with pytest.raises(RuntimeError, match=r"exited 2:\n.*internal error while checking a.py"):
        huge_file.measured_run([sys.executable, "-c", failing])
