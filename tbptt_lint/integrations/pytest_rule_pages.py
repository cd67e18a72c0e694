"""Rule-page examples as test items: every ```python bad / ```python good block of a page
matched by `tbptt_rule_pages` (or `--tbptt-rule-pages`) is one. Part of the pytest plugin:
`tbptt_lint.integrations.pytest_plugin` registers this module's hooks only in a run where
such pages are configured.

The linter is imported only when an item runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tbptt_lint import testing


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> RulePageFile | None:
    if file_path.suffix == ".md" and _is_rule_page(file_path, parent.config):
        return RulePageFile.from_parent(parent, path=file_path)
    return None


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
