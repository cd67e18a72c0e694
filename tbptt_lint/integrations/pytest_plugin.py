"""pytest plugin (entry point `pytest11`, name `tbptt_lint`): its options and markers, and its
parts, each registered in the runs that use it:

- `pytest_fixture`: the `tbptt` fixture and marker (every run);
- `pytest_lint`: `--tbptt-lint`, which lints test modules and `tbptt_lint_paths` as
  pytest-ruff does (runs with `--tbptt-lint`);
- `pytest_rule_pages`: the rule-page examples, every ```python bad / ```python good block of
  a page matched by `tbptt_rule_pages` (or `--tbptt-rule-pages`) a test item (runs where
  such pages are configured).

Importable without torch: the tracer is imported only when a test calls `tbptt.trace(...)`,
and the linter only under `--tbptt-lint` or when a rule-example item runs. The parts' classes
and helpers are importable from here too, as they were when this was one module
(`tbptt_lint.pytest_plugin`).
"""

from __future__ import annotations

import pytest

from tbptt_lint.integrations import pytest_fixture as _fixture_part
from tbptt_lint.integrations import pytest_lint as _lint_part
from tbptt_lint.integrations import pytest_rule_pages as _rule_pages_part
from tbptt_lint.integrations.pytest_fixture import (  # noqa: F401 - importable here
    _FIXTURE_HINT,
    _MARKER_ARGUMENTS,
    MARKER,
    TbpttFixture,
    _artifacts_dir_name,
    _read_marker,
)
from tbptt_lint.integrations.pytest_lint import (  # noqa: F401 - importable here
    LINT_OPTION,
    TbpttLintFile,
    TbpttLintItem,
)
from tbptt_lint.integrations.pytest_rule_pages import (  # noqa: F401 - importable here
    RuleExampleFailure,
    RuleExampleItem,
    RulePageFile,
    _is_rule_page,
    _rule_page_patterns,
)

# The names the parts are registered under (`-p no:tbptt_lint.rule_pages` turns one off).
PARTS = {
    "fixture": "tbptt_lint.fixture",
    "lint": "tbptt_lint.lint",
    "rule_pages": "tbptt_lint.rule_pages",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tbptt-lint")
    group.addoption(
        LINT_OPTION,
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
    manager = config.pluginmanager
    parts = [(PARTS["fixture"], _fixture_part)]
    if _lint_part.enabled(config):
        parts.append((PARTS["lint"], _lint_part))
    if _rule_page_patterns(config):
        parts.append((PARTS["rule_pages"], _rule_pages_part))
    for name, part in parts:
        if not manager.has_plugin(name) and not manager.is_blocked(name):
            manager.register(part, name)
