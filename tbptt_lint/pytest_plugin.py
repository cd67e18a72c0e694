"""pytest plugin (entry point `pytest11`): the `tbptt` fixture, the `tbptt` marker,
`--tbptt-lint`, which lints test modules and `tbptt_lint_paths` as pytest-ruff does, and the
rule-page examples: every ```python bad / ```python good block of a page matched by
`tbptt_rule_pages` (or `--tbptt-rule-pages`) is a test item.

Importable without torch: the tracer is imported only when a test calls `tbptt.trace(...)`,
and the linter only when a lint or rule-example item runs.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MARKER = "tbptt"
_LINT_RESULTS = pytest.StashKey[dict[str, list[Any]]]()
_LINT_PATHS = pytest.StashKey[list[Path]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tbptt-lint")
    group.addoption(
        "--tbptt-lint",
        action="store_true",
        default=False,
        help="lint collected test modules and tbptt_lint_paths for TBPTT bugs",
    )
    group.addoption(
        "--tbptt-artifacts",
        metavar="DIR",
        default=None,
        help="where the tbptt fixture writes report, timeline and graph of failing tests "
        "(default: the test's tmp path)",
    )
    parser.addini(
        "tbptt_lint_paths",
        type="paths",
        default=[],
        help="extra files or directories that --tbptt-lint checks",
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
        "the tbptt fixture is TBPTT(k1, k2)",
    )
    config.addinivalue_line("markers", "tbptt_lint: a --tbptt-lint check of one file")
    config.addinivalue_line(
        "markers", "tbptt_rule_example: a ```python bad/good example of a rule page"
    )
    config.stash[_LINT_PATHS] = []


# ----- the fixture and marker -----


class TbpttFixture:
    """`tbptt.trace(model, step_modules=...)` returns the same `Trace` as `tbptt_lint.trace`."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self.traces: list[Any] = []

    def trace(self, model: Any = None, step_modules: Any = None, **options: Any) -> Any:
        from tbptt_lint.tracer import trace  # torch is needed from here on

        t = trace(model, step_modules, **options)
        self.traces.append(t)
        return t

    @property
    def last(self) -> Any:
        if not self.traces:
            raise LookupError("tbptt.trace(...) was not called in this test")
        return self.traces[-1]

    def expectation(self) -> tuple[int | None, int | None] | None:
        marker = self._request.node.get_closest_marker(MARKER)
        if marker is None:
            return None
        k1 = marker.kwargs.get("k1", marker.args[0] if marker.args else None)
        k2 = marker.kwargs.get("k2", marker.args[1] if len(marker.args) > 1 else None)
        return k1, k2

    def artifacts_dir(self) -> Path:
        option = self._request.config.getoption("--tbptt-artifacts")
        name = re.sub(r"[^\w.-]+", "_", self._request.node.nodeid)[-120:]
        if option:
            out = Path(option) / name
            out.mkdir(parents=True, exist_ok=True)
            return out
        factory = self._request.config._tmp_path_factory  # type: ignore[attr-defined]
        return factory.mktemp(name[-40:] or "tbptt", numbered=True)

    def write_artifacts(self) -> list[Path]:
        written: list[Path] = []
        if not self.traces:
            return written
        out = self.artifacts_dir()
        for i, t in enumerate(self.traces):
            stem = f"trace{i}"
            text = out / f"{stem}_report.txt"
            try:
                text.write_text(t.report(), encoding="utf-8")
                written.append(text)
            except Exception:  # noqa: BLE001 - artifacts are best effort
                pass
            for suffix, write in (
                ("_report.html", t.save_report),
                ("_timeline.svg", t.save_timeline),
                ("_graph.svg", t.save_graph),
            ):
                path = out / f"{stem}{suffix}"
                try:
                    write(path)
                    written.append(path)
                except Exception:  # noqa: BLE001 - no renderer: fall back to DOT text
                    if suffix == "_graph.svg":
                        with contextlib.suppress(Exception):
                            written.append(t.save_graph(out / f"{stem}_graph.dot"))
        return written


@pytest.fixture
def tbptt(request: pytest.FixtureRequest) -> Iterator[TbpttFixture]:
    """Trace training code: `with tbptt.trace(model) as t: ...`."""
    yield TbpttFixture(request)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    # The marker's check runs in the call phase so a mismatch is a test failure, not an error.
    result = yield
    fixture = getattr(item, "funcargs", {}).get("tbptt")
    if isinstance(fixture, TbpttFixture):
        expected = fixture.expectation()
        if expected is not None:
            if not fixture.traces:
                pytest.fail(
                    "@pytest.mark.tbptt: the test never called tbptt.trace(...)", pytrace=False
                )
            for t in fixture.traces:
                t.assert_tbptt(k1=expected[0], k2=expected[1])
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    if report.when == "call" and report.failed:
        fixture = getattr(item, "funcargs", {}).get("tbptt")
        if isinstance(fixture, TbpttFixture) and fixture.traces:
            try:
                paths = fixture.write_artifacts()
            except Exception as exc:  # noqa: BLE001
                report.sections.append(("tbptt artifacts", f"could not write artifacts: {exc}"))
            else:
                listing = "\n".join(str(p) for p in paths) or "(nothing could be written)"
                report.sections.append(("tbptt artifacts", listing))
    return report


# ----- --tbptt-lint -----


class TbpttLintError(Exception):
    pass


class TbpttLintFile(pytest.File):
    def collect(self) -> Iterator[TbpttLintItem]:
        yield TbpttLintItem.from_parent(self, name="TBPTT-LINT")


class TbpttLintItem(pytest.Item):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_marker("tbptt_lint")

    def runtest(self) -> None:
        results = _lint_all(self.config)
        diagnostics = results.get(str(self.path.resolve()), [])
        if diagnostics:
            raise TbpttLintError(diagnostics)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, TbpttLintError):
            return "\n".join(_format(d) for d in excinfo.value.args[0])
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, None, str]:
        return self.path, None, f"{self.path}::TBPTT-LINT"


def _format(diagnostic: Any) -> str:
    if isinstance(diagnostic, str):
        return diagnostic
    return (
        f"{diagnostic.path}:{diagnostic.line}:{diagnostic.column}: "
        f"{diagnostic.code} {diagnostic.message}"
    )


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
    if not config.getoption("--tbptt-lint") or file_path.suffix != ".py":
        return None
    if not _is_test_module(file_path, parent):
        return None
    config.stash[_LINT_PATHS].append(file_path)
    return TbpttLintFile.from_parent(parent, path=file_path)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if not config.getoption("--tbptt-lint"):
        return
    seen = {p.resolve() for p in config.stash[_LINT_PATHS]}
    for root in config.getini("tbptt_lint_paths"):
        root = Path(root)
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for path in files:
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            config.stash[_LINT_PATHS].append(path)
            items.extend(TbpttLintFile.from_parent(session, path=path).collect())


def _lint_all(config: pytest.Config) -> dict[str, list[Any]]:
    """Lint every collected path at once (cross-module facts need the whole set), once."""
    cached = config.stash.get(_LINT_RESULTS, None)
    if cached is not None:
        return cached
    from tbptt_lint.config import load_settings
    from tbptt_lint.engine import lint_paths

    settings = load_settings(cwd=Path(str(config.rootpath)))
    paths = list(dict.fromkeys(p.resolve() for p in config.stash[_LINT_PATHS]))
    result = lint_paths(paths, settings, jobs=1)
    by_path: dict[str, list[Any]] = {}
    for diagnostic in result.diagnostics:
        by_path.setdefault(str(Path(diagnostic.path).resolve()), []).append(diagnostic)
    for error in result.internal_errors:
        by_path.setdefault(str(Path(error.path).resolve()), []).append(
            f"{error.path}: internal error in tbptt-lint: {error.message}"
        )
    config.stash[_LINT_RESULTS] = by_path
    return by_path


# ----- rule-page examples: tbptt_rule_pages / --tbptt-rule-pages -----

_EXAMPLE_BLOCK = re.compile(
    r"^```python (bad|good)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL
)
_PAGE_TITLE = re.compile(r"\A# ([A-Z]+[0-9]+)\b")
_RULE_CODE = re.compile(r"\A[A-Z]+[0-9]+\Z")


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
        blocks = list(_EXAMPLE_BLOCK.finditer(text))
        if not blocks:
            return  # an index or a page without code examples: nothing to check
        code = self.rule_code(text)
        counts = {"bad": 0, "good": 0}
        for match in blocks:
            kind = match.group(1)
            counts[kind] += 1
            yield RuleExampleItem.from_parent(
                self,
                name=f"{kind}[{counts[kind]}]",
                code=code,
                kind=kind,
                number=counts[kind],
                source=match.group(2),
                fence_line=text.count("\n", 0, match.start()),
            )

    def rule_code(self, text: str) -> str:
        title = _PAGE_TITLE.match(text)
        if title:
            return title.group(1)
        if _RULE_CODE.match(self.path.stem):
            return self.path.stem
        raise self.CollectError(
            f"{self.path}: cannot tell which rule the page documents: its first line is not "
            "'# CODE name' and its file name is not a rule code"
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
        self.code = code
        self.kind = kind
        self.number = number
        self.source = source
        self.fence_line = fence_line  # 0-based line of the ``` fence in the page
        self.add_marker("tbptt_rule_example")

    def findings(self) -> list[Any]:
        from tbptt_lint.analysis import SourceSyntaxError
        from tbptt_lint.analysis.api import check_source
        from tbptt_lint.diagnostics import Finding
        from tbptt_lint.rules import SYNTAX_ERROR_CODE
        from tbptt_lint.settings import Settings

        try:
            return check_source(self.source, "example.py", Settings())
        except SourceSyntaxError as error:
            return [
                Finding(
                    SYNTAX_ERROR_CODE,
                    error.message,
                    error.line,
                    error.column,
                    error.line,
                    error.column,
                )
            ]

    def runtest(self) -> None:
        from tbptt_lint.rules import RULES_BY_CODE, enabled_codes

        found = self.findings()
        if self.kind == "good":
            if found:
                raise RuleExampleFailure(
                    "no finding from any rule (every rule enabled)", [(f, True) for f in found]
                )
            return
        if self.code not in RULES_BY_CODE:
            raise RuleExampleFailure(
                f"{self.code}, but tbptt-lint has no rule {self.code}", [(f, False) for f in found]
            )
        relevant = enabled_codes((), ()) | {self.code}
        counted = {f.code for f in found if f.code in relevant}
        if counted != {self.code}:
            raise RuleExampleFailure(
                f"{self.code} and no other rule that is enabled by default",
                [(f, f.code in relevant) for f in found],
            )

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
