"""`pytest --tbptt-lint`: one `path::TBPTT-LINT` item per linted file, as pytest-ruff and
pytest-mypy do. Part of the pytest plugin: `tbptt_lint.integrations.pytest_plugin` registers
this module's hooks only in a run with `--tbptt-lint`.

Importable without torch or the linter: the linter is imported when settings are loaded
(only under `--tbptt-lint`) and when the first lint item runs.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _pytest.pathlib import bestrelpath

if TYPE_CHECKING:
    from tbptt_lint.settings import Settings

LINT_OPTION = "--tbptt-lint"
ITEM_NAME = "TBPTT-LINT"

_SETTINGS = pytest.StashKey["Settings"]()
# Files whose lint item was collected: the set linted together, as the CLI lints what it is given.
_COLLECTED = pytest.StashKey[list[Path]]()
_EXTRA_FILES = pytest.StashKey[tuple[list[Path], frozenset[str]]]()
_RESULTS = pytest.StashKey[dict[str, list[Any]]]()


def enabled(config: pytest.Config) -> bool:
    return bool(config.getoption(LINT_OPTION))


def load_settings(config: pytest.Config) -> None:
    """Read `[tool.tbptt-lint]` once per session; a bad config stops the run as a bad ini does
    (exit code 4), instead of failing every lint item with a traceback."""
    from tbptt_lint.config import ConfigError
    from tbptt_lint.config import load_settings as load

    try:
        settings = load(cwd=config.rootpath)
    except ConfigError as error:
        raise pytest.UsageError(f"tbptt-lint: {error}") from None
    config.stash[_SETTINGS] = settings


def settings(config: pytest.Config) -> Settings:
    if _SETTINGS not in config.stash:
        load_settings(config)
    return config.stash[_SETTINGS]


def identity(path: Path) -> str:
    """One key for every spelling of a file, as the engine's discovery keys them."""
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):  # a symlink loop: keep the spelling
        return str(path)


def narrowed(config: pytest.Config) -> bool:
    """Whether the run names node ids (an IDE running one test): the files of
    `tbptt_lint_paths` are then not added, so only what was asked for runs."""
    return any("::" in str(arg) for arg in config.args)


def extra_files(config: pytest.Config) -> list[Path]:
    """The files of `tbptt_lint_paths`, found as the `tbptt-lint` CLI finds them (exclude,
    extend-exclude, .gitignore). A path that does not exist is kept: its item reports it."""
    return _extra_files(config)[0]


def is_extra_file(config: pytest.Config, path: Path) -> bool:
    identities = _extra_files(config)[1]
    return bool(identities) and identity(path) in identities


def _extra_files(config: pytest.Config) -> tuple[list[Path], frozenset[str]]:
    cached = config.stash.get(_EXTRA_FILES, None)
    if cached is not None:
        return cached
    files: list[Path] = []
    roots = [Path(p) for p in config.getini("tbptt_lint_paths")]
    if enabled(config) and roots and not narrowed(config):
        from tbptt_lint.discovery import discover

        found = discover(roots, settings(config))
        files = [*found.files, *found.missing]
    # Every collected test module asks whether it is one of these: resolve each path once.
    config.stash[_EXTRA_FILES] = (files, frozenset(identity(p) for p in files))
    return config.stash[_EXTRA_FILES]


def extra_nodes(session: pytest.Session) -> list[TbpttLintFile]:
    """Nodes for the files of `tbptt_lint_paths` (none without `--tbptt-lint`)."""
    return [TbpttLintFile.from_parent(session, path=p) for p in extra_files(session.config)]


def record_collected(item: pytest.Item) -> None:
    if isinstance(item, TbpttLintItem):
        item.config.stash.setdefault(_COLLECTED, []).append(item.path)


class TbpttLintError(Exception):
    """The diagnostics of one file; shown by `TbpttLintItem.repr_failure` without a traceback."""


class TbpttLintFile(pytest.File):
    def collect(self) -> Iterator[TbpttLintItem]:
        yield TbpttLintItem.from_parent(self, name=ITEM_NAME)


class TbpttLintItem(pytest.Item):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_marker("tbptt_lint")
        # No fixtures; but some plugins' hook wrappers read `item.funcargs` and, without it,
        # end without yielding (pytest-lsp 1.0), which fails every item that is no function.
        self.funcargs: dict[str, Any] = {}

    def runtest(self) -> None:
        diagnostics = _lint_all(self.config).get(identity(self.path), [])
        if diagnostics:
            raise TbpttLintError(diagnostics)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, TbpttLintError):
            # The first line is what the short test summary shows: the rule codes.
            return "\n".join(_describe(excinfo.value.args[0], self.config.rootpath))
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, None, str]:
        # The failure header: the file relative to the rootdir, as in pytest's own node ids.
        # Not the node id itself: `-v` would print a domain that ends the node id with its
        # dots turned into "::" (src/loop::py::TBPTT-LINT).
        return self.path, None, bestrelpath(self.config.rootpath, self.path)


def _describe(diagnostics: list[Any], rootpath: Path) -> list[str]:
    codes = sorted({getattr(d, "code", "internal error") for d in diagnostics})
    count = len(diagnostics)
    lines = [f"{', '.join(codes)} ({count} finding{'s' if count != 1 else ''})"]
    for diagnostic in diagnostics:
        if isinstance(diagnostic, str):
            lines.append(diagnostic)
            continue
        where = bestrelpath(rootpath, Path(diagnostic.path))
        cell = f"cell {diagnostic.cell}:" if diagnostic.cell is not None else ""
        lines.append(
            f"{where}:{cell}{diagnostic.line}:{diagnostic.column}: "
            f"{diagnostic.code} {diagnostic.message}"
        )
    return lines


def _lint_all(config: pytest.Config) -> dict[str, list[Any]]:
    """Lint every collected file at once (cross-module facts need the whole set), once."""
    cached = config.stash.get(_RESULTS, None)
    if cached is not None:
        return cached
    from tbptt_lint.engine import lint_paths

    paths = list(dict.fromkeys(identity(p) for p in config.stash.get(_COLLECTED, [])))
    result = lint_paths(paths, settings(config), jobs=1)
    by_path: dict[str, list[Any]] = {}
    for diagnostic in result.diagnostics:
        by_path.setdefault(identity(Path(diagnostic.path)), []).append(diagnostic)
    for error in result.internal_errors:
        where = bestrelpath(config.rootpath, Path(error.path))
        by_path.setdefault(identity(Path(error.path)), []).append(
            f"{where}: internal error in tbptt-lint: {error.message}"
        )
    config.stash[_RESULTS] = by_path
    return by_path


# ----- the hooks


def pytest_sessionstart(session: pytest.Session) -> None:
    # Here, not per item: a bad [tool.tbptt-lint] stops the run (exit code 4) before anything
    # runs, on the xdist controller too.
    if enabled(session.config):
        load_settings(session.config)


def _is_test_module(file_path: Path, parent: pytest.Collector) -> bool:
    from _pytest.pathlib import fnmatch_ex

    if parent.session.isinitpath(file_path):
        return True
    return any(fnmatch_ex(pattern, file_path) for pattern in parent.config.getini("python_files"))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> TbpttLintFile | None:
    config = parent.config
    if not enabled(config) or file_path.suffix != ".py":
        return None
    if not _is_test_module(file_path, parent):
        return None
    if is_extra_file(config, file_path):
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
        report.result.extend(extra_nodes(collector))
    return report


def pytest_itemcollected(item: pytest.Item) -> None:
    record_collected(item)
