"""pytest plugin (entry point `pytest11`): the `tbptt` fixture, the `tbptt` marker, and
`--tbptt-lint`, which lints test modules and `tbptt_lint_paths` as pytest-ruff does.

Importable without torch: the tracer is imported only when a test calls `tbptt.trace(...)`.
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(k1=None, k2=None): assert at the end of the test that every trace made with "
        "the tbptt fixture is TBPTT(k1, k2)",
    )
    config.addinivalue_line("markers", "tbptt_lint: a --tbptt-lint check of one file")
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


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> TbpttLintFile | None:
    config = parent.config
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
