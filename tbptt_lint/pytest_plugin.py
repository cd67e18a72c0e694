"""pytest plugin (entry point `pytest11`, name `tbptt_lint`): the `tbptt` fixture, the `tbptt`
marker, `--tbptt-lint`, which lints test modules and `tbptt_lint_paths` as pytest-ruff does
(items in `tbptt_lint.pytest_lint`), and the rule-page examples: every ```python bad /
```python good block of a page matched by `tbptt_rule_pages` (or `--tbptt-rule-pages`) is a
test item.

Importable without torch: the tracer is imported only when a test calls `tbptt.trace(...)`,
and the linter only under `--tbptt-lint` or when a rule-example item runs.
"""

from __future__ import annotations

import hashlib
import numbers
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tbptt_lint import pytest_lint, testing
from tbptt_lint.pytest_lint import TbpttLintFile, TbpttLintItem  # noqa: F401 - importable here

MARKER = "tbptt"
_MARKER_ARGUMENTS = ("k1", "k2")
_FIXTURE_HINT = "request it and trace the training: `def test_x(tbptt): with tbptt.trace(model):`"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tbptt-lint")
    group.addoption(
        pytest_lint.LINT_OPTION,
        action="store_true",
        default=False,
        help="lint collected test modules and tbptt_lint_paths for TBPTT bugs",
    )
    group.addoption(
        "--tbptt-artifacts",
        metavar="DIR",
        default=None,
        help="where the tbptt fixture writes report, timeline and graph of failing tests, one "
        "directory per test (default: the test's tmp_path)",
    )
    parser.addini(
        "tbptt_lint_paths",
        type="paths",
        default=[],
        help="extra files or directories that --tbptt-lint checks when the run does not name "
        "node ids (directories are walked as the tbptt-lint command line walks them)",
    )
    group.addoption(
        "--tbptt-rule-pages",
        metavar="GLOB",
        action="append",
        default=[],
        help="also collect the ```python bad/good examples of the rule pages (.md) matching "
        "GLOB or under a directory, relative to the current directory (repeatable)",
    )
    parser.addini(
        "tbptt_rule_pages",
        type="args",
        default=[],
        help="rule pages (.md) whose ```python bad/good examples are test items: glob patterns "
        "or directories, relative to the ini file; a pattern without '/' matches file names "
        "(default: none)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(k1=None, k2=None): assert at the end of the test that every trace made with "
        "the tbptt fixture is TBPTT(k1, k2); k1 and k2 are positive ints or None, and without "
        "them the fixture calls assert_tbptt() without arguments",
    )
    config.addinivalue_line("markers", "tbptt_lint: a --tbptt-lint check of one file")
    config.addinivalue_line(
        "markers", "tbptt_rule_example: a ```python bad/good example of a rule page"
    )


# ----- the fixture and marker -----


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
        from tbptt_lint.pytest_trace import FixtureTrace  # torch is needed from here on

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
        from tbptt_lint.pytest_trace import close_open

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


# ----- --tbptt-lint (the items: tbptt_lint.pytest_lint) -----


def pytest_sessionstart(session: pytest.Session) -> None:
    # Here, not per item: a bad [tool.tbptt-lint] stops the run (exit code 4) before anything
    # runs, on the xdist controller too.
    if pytest_lint.enabled(session.config):
        pytest_lint.load_settings(session.config)


def _is_test_module(file_path: Path, parent: pytest.Collector) -> bool:
    from _pytest.pathlib import fnmatch_ex

    if parent.session.isinitpath(file_path):
        return True
    return any(fnmatch_ex(pattern, file_path) for pattern in parent.config.getini("python_files"))


def pytest_collect_file(
    file_path: Path, parent: pytest.Collector
) -> TbpttLintFile | RulePageFile | None:
    config = parent.config
    if file_path.suffix == ".md":
        if _is_rule_page(file_path, config):
            return RulePageFile.from_parent(parent, path=file_path)
        return None
    if not pytest_lint.enabled(config) or file_path.suffix != ".py":
        return None
    if not _is_test_module(file_path, parent):
        return None
    if pytest_lint.is_extra_file(config, file_path):
        return None  # one of tbptt_lint_paths: the session collects it, once
    return TbpttLintFile.from_parent(parent, path=file_path)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    # The files of tbptt_lint_paths join the session's own collectors, so that pytest collects
    # them like any other node: counted in "collected N items", subject to -k, -m, --lf and
    # --deselect, and the same on every xdist worker.
    report = yield
    if isinstance(collector, pytest.Session) and report.passed:
        report.result.extend(pytest_lint.extra_nodes(collector))
    return report


def pytest_itemcollected(item: pytest.Item) -> None:
    pytest_lint.record_collected(item)


# ----- rule-page examples: tbptt_rule_pages / --tbptt-rule-pages -----


def _rule_page_patterns(config: pytest.Config) -> list[tuple[Path, str]]:
    """(base directory, pattern) for the ini option's and the command line's patterns."""
    ini_base = config.inipath.parent if config.inipath else config.rootpath
    cli_base = config.invocation_params.dir
    return [(ini_base, str(p)) for p in config.getini("tbptt_rule_pages")] + [
        (cli_base, str(p)) for p in config.getoption("--tbptt-rule-pages") or []
    ]


def _is_rule_page(file_path: Path, config: pytest.Config) -> bool:
    from _pytest.pathlib import fnmatch_ex

    for base, pattern in _rule_page_patterns(config):
        if "/" not in pattern and "\\" not in pattern and fnmatch_ex(pattern, file_path.name):
            return True
        anchored = Path(base, pattern)
        if anchored.is_dir():
            if file_path.resolve().is_relative_to(anchored.resolve()):
                return True
        elif fnmatch_ex(str(anchored.resolve()), file_path.resolve()):
            return True
    return False


class RulePageFile(pytest.File):
    """A rule page: one item per ```python bad / ```python good block, numbered per kind."""

    def collect(self) -> Iterator[RuleExampleItem]:
        text = self.path.read_text(encoding="utf-8")
        if not testing.EXAMPLE_BLOCK.search(text):
            return  # an index or a page without code examples: nothing to check
        code = testing.page_rule_code(text, self.path)
        if code is None:
            raise self.CollectError(
                f"{self.path}: cannot tell which rule the page documents: its first line is "
                "not '# CODE name' and its file name is not a rule code"
            )
        for example in testing.page_examples(text, code):
            yield RuleExampleItem.from_parent(
                self,
                name=f"{example.kind}[{example.number}]",
                code=code,
                kind=example.kind,
                number=example.number,
                source=example.source,
                fence_line=example.fence_line,
            )


class RuleExampleFailure(Exception):
    def __init__(self, expected: str, findings: list[tuple[Any, bool]]) -> None:
        super().__init__(expected)
        self.expected = expected
        self.findings = findings  # (finding, counted)


class RuleExampleItem(pytest.Item):
    """`bad`: exactly the page's rule among the default-enabled rules plus the page's rule.
    `good`: nothing at all, with every rule enabled."""

    def __init__(
        self,
        *,
        code: str,
        kind: str,
        number: int,
        source: str,
        fence_line: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.funcargs: dict[str, Any] = {}  # see TbpttLintItem: read by other plugins' hooks
        self.code = code
        self.kind = kind
        self.number = number
        self.source = source
        self.fence_line = fence_line  # 0-based line of the ``` fence in the page
        self.add_marker("tbptt_rule_example")

    def findings(self) -> list[Any]:
        return testing.example_findings(self.source)

    def runtest(self) -> None:
        from tbptt_lint.rules import RULES_BY_CODE

        example = testing.Example(
            self.code, "bad" if self.kind == "bad" else "good", self.source, self.name
        )
        problem = testing.example_problem(example, RULES_BY_CODE)
        if problem is not None:
            raise RuleExampleFailure(problem.expected, problem.findings)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if not isinstance(excinfo.value, RuleExampleFailure):
            return super().repr_failure(excinfo)
        failure = excinfo.value
        page = self.location[0]  # relative to the rootdir
        lines = [
            f"{page}:{self.fence_line + 1}: {self.kind} example {self.number} of {self.code}",
            f"expected: {failure.expected}",
        ]
        if not failure.findings:
            lines.append("the linter reported: nothing")
            return "\n".join(lines)
        lines.append("the linter reported (line:col in the example):")
        source_lines = self.source.splitlines()
        for finding, counted in failure.findings:
            note = "" if counted else "  [off by default: not counted]"
            page_line = self.fence_line + 1 + finding.line
            lines.append(
                f"  {finding.line}:{finding.column} {finding.code} {finding.message}"
                f"  ({page}:{page_line}){note}"
            )
            if 1 <= finding.line <= len(source_lines):
                lines.append(f"      | {source_lines[finding.line - 1].strip()}")
        return "\n".join(lines)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.fence_line, f"{self.path.name}::{self.name}"
