"""The `tbptt` fixture and the `tbptt` marker: part of the pytest plugin
(`tbptt_lint.integrations.pytest_plugin` registers it in every run).

Importable without torch: the tracer is imported only when a test calls `tbptt.trace(...)`.
"""

from __future__ import annotations

import hashlib
import numbers
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

MARKER = "tbptt"
_MARKER_ARGUMENTS = ("k1", "k2")
_FIXTURE_HINT = "request it and trace the training: `def test_x(tbptt): with tbptt.trace(model):`"


def _read_marker(marker: pytest.Mark) -> tuple[dict[str, int], str | None]:
    """The k1/k2 the marker sets (None left out), or a one-line message saying what is wrong:
    a typo such as `k=5` must not silently assert nothing."""
    if len(marker.args) > len(_MARKER_ARGUMENTS):
        return {}, (
            f"@pytest.mark.{MARKER} takes at most 2 positional arguments (k1, k2), "
            f"got {len(marker.args)}"
        )
    given: dict[str, Any] = dict(zip(_MARKER_ARGUMENTS, marker.args, strict=False))
    for name, value in marker.kwargs.items():
        if name not in _MARKER_ARGUMENTS:
            return {}, (
                f"@pytest.mark.{MARKER}: unknown argument {name}={value!r}; it takes "
                "k1= (the stride) and k2= (the horizon)"
            )
        if name in given:
            return {}, f"@pytest.mark.{MARKER}: {name} is given twice, by position and as {name}="
        given[name] = value
    expected: dict[str, int] = {}
    for name, value in given.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            return {}, (
                f"@pytest.mark.{MARKER}: {name} must be a positive int or None, "
                f"got {value!r} ({type(value).__name__})"
            )
        expected[name] = int(value)
    return expected, None


def _artifacts_dir_name(nodeid: str) -> str:
    """A directory name per node id: readable, and unique even where sanitising makes two ids
    alike ("lstm cell" and "lstm_cell") or cutting drops what tells two long ids apart."""
    readable = re.sub(r"[^\w.-]+", "_", nodeid)[:100].strip("._-")
    digest = hashlib.sha256(nodeid.encode("utf-8")).hexdigest()[:10]
    return f"{readable}-{digest}" if readable else digest


class TbpttFixture:
    """`tbptt.trace(model, step_modules=...)` returns a `Trace`, as `tbptt_lint.trace` does."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self.traces: list[Any] = []

    def trace(self, model: Any = None, step_modules: Any = None, **options: Any) -> Any:
        from tbptt_lint.integrations.pytest_trace import (
            FixtureTrace,
        )  # torch is needed from here on

        t = FixtureTrace(model, step_modules, **options)
        self.traces.append(t)
        return t

    @property
    def last(self) -> Any:
        if not self.traces:
            raise LookupError("tbptt.trace(...) was not called in this test")
        return self.traces[-1]

    def marker_failure(self) -> str | None:
        """Why the test's traces do not meet its `tbptt` marker, in the tracer's plain words."""
        marker = self._request.node.get_closest_marker(MARKER)
        if marker is None:
            return None
        expected, problem = _read_marker(marker)
        if problem is not None:
            return problem
        if not self.traces:
            return f"@pytest.mark.{MARKER}: the test never called tbptt.trace(...)"
        failures: list[tuple[int, str]] = []
        for number, t in enumerate(self.traces, 1):
            try:
                # Only the arguments given: a bare marker asks for assert_tbptt()'s own check.
                t.assert_tbptt(**expected)
            except AssertionError as error:
                failures.append((number, str(error)))
        if len(self.traces) == 1 or not failures:
            return failures[0][1] if failures else None
        return "\n".join(f"tbptt.trace #{n} of {len(self.traces)}: {text}" for n, text in failures)

    def close_open_traces(self) -> int:
        """Exit the traces the test left entered (undoing their patches); how many."""
        if not self.traces:
            return 0
        from tbptt_lint.integrations.pytest_trace import close_open

        return close_open(self.traces)

    def artifacts_dir(self) -> Path:
        config = self._request.config
        option = config.getoption("--tbptt-artifacts")
        if option:
            # Relative to where pytest was started, even if the test changed directory.
            out = Path(config.invocation_params.dir, option) / _artifacts_dir_name(
                self._request.node.nodeid
            )
            out.mkdir(parents=True, exist_ok=True)
            return out
        return Path(self._request.getfixturevalue("tmp_path"))

    def write_artifacts(self) -> list[Path]:
        if not self.traces:
            return []
        from tbptt_lint.tracer.artifacts import write_artifacts

        out = self.artifacts_dir()
        written: list[Path] = []
        for i, t in enumerate(self.traces):
            written += write_artifacts(t, out, f"trace{i}")
        return written


@pytest.fixture
def tbptt(request: pytest.FixtureRequest) -> Iterator[TbpttFixture]:
    """Trace training code: `with tbptt.trace(model) as t: ...`."""
    fixture = TbpttFixture(request)
    yield fixture
    # Fixtures that use `tbptt` are torn down before it, so a trace still entered here leaked.
    left_open = fixture.close_open_traces()
    if left_open:
        pytest.fail(
            f"tbptt.trace(...) was entered but never exited ({left_open} still open at the end "
            "of the test; its patches are now undone): use `with tbptt.trace(model):`",
            pytrace=False,
        )


def pytest_runtest_setup(item: pytest.Item) -> None:
    # A misused marker fails before the test runs, as pytest does for a bad skipif condition;
    # a plain impl, so a skip or skipif marker (tryfirst) still wins.
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return
    _, problem = _read_marker(marker)
    if problem is None and MARKER not in getattr(item, "fixturenames", ()):
        problem = f"@pytest.mark.{MARKER} needs the `{MARKER}` fixture: {_FIXTURE_HINT}"
    if problem is not None:
        pytest.fail(problem, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    # The marker's check runs in the call phase so a mismatch is a test failure, not an error,
    # and without a traceback: the message explains, our frames would not.
    result = yield
    fixture = getattr(item, "funcargs", {}).get(MARKER)
    if isinstance(fixture, TbpttFixture):
        failure = fixture.marker_failure()
        if failure is not None:
            pytest.fail(failure, pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        fixture = getattr(item, "funcargs", {}).get(MARKER)
        if isinstance(fixture, TbpttFixture) and fixture.traces:
            try:
                paths = fixture.write_artifacts()
            except Exception as exc:  # noqa: BLE001 - a failed test's report must still come
                report.sections.append(("tbptt artifacts", f"could not write artifacts: {exc}"))
            else:
                listing = "\n".join(str(p) for p in paths) or "(nothing could be written)"
                report.sections.append(("tbptt artifacts", listing))
    return report
