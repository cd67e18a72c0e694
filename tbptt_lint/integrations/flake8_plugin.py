"""flake8 extension: `flake8 --select TBP` runs tbptt-lint's rules.

Registered under the `flake8.extension` entry point with the code prefix `TBP`. Each file is
linted on its own with `tbptt_lint.engine.lint_source`, from the text flake8 hands over (so
`flake8 -` on stdin works), and every finding is reported at the same 1-based line and column
as `tbptt-lint` prints.

Which codes are reported is flake8's business: its `--select`, `--ignore`, `--extend-ignore`,
`--per-file-ignores` and `# noqa` decide, so the plugin reports every rule that is on by
default, whatever `select`, `ignore` or `per-file-ignores` say in `[tool.tbptt-lint]`. The rest
of that table (`detach-functions`, `recurrent-modules`) applies, found from the linted file's
directory upwards. An off-by-default rule (TBP007) is reported when its exact code is named in
flake8's `--select`/`--extend-select` or in the table's `select`/`extend-select`, as the CLI
enables it only when named.

This module is imported by flake8 at start-up for every run, linted file types or not, so it
imports nothing of the analysis (nor torch) until a file is checked.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from tbptt_lint import __version__

# flake8 treats a filename of "-" or "stdin" as standard input; its config then comes from cwd.
_STDIN_NAMES = frozenset({"-", "stdin"})


def _named_codes(selectors: Iterable[str] | None) -> frozenset[str]:
    return frozenset(selector.strip().upper() for selector in selectors or () if selector.strip())


@functools.lru_cache(maxsize=64)
def _settings_for(directory: str, flake8_named: frozenset[str]) -> Any:
    """Settings for files in `directory`: its config's analysis options, every default rule."""
    from tbptt_lint.config import load_settings
    from tbptt_lint.rules import ALL_RULES

    settings = load_settings(cwd=Path(directory))
    named = flake8_named | _named_codes((*settings.select, *settings.extend_select))
    off_by_default = tuple(
        rule.code for rule in ALL_RULES if not rule.default_enabled and rule.code in named
    )
    return dataclasses.replace(
        settings, select=(), ignore=(), extend_select=off_by_default, per_file_ignores=()
    )


class TbpttLintChecker:
    """A file-based flake8 plugin: `run()` yields `(line, column, "TBPxxx message", type)`."""

    name: ClassVar[str] = "tbptt-lint"
    version: ClassVar[str] = __version__
    # Codes named exactly in flake8's --select/--extend-select, set by parse_options.
    _flake8_named: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, tree: ast.AST, filename: str, lines: Sequence[str]) -> None:
        # `tree` is unused: it only tells flake8 this is a per-file (AST) plugin. The analysis
        # works on libcst's tree of the same text.
        self.filename = filename
        # Lint here rather than in run(): flake8 turns an exception raised while the plugin is
        # built into a one-line "failed during execution" error (a bad [tool.tbptt-lint] table,
        # say), while one raised from run() ends the whole run with a traceback.
        self._diagnostics = self._lint("".join(lines))

    @classmethod
    def parse_options(cls, options: Any) -> None:
        named: set[str] = set()
        for attribute in ("select", "extend_select"):
            named |= _named_codes(getattr(options, attribute, None))
        cls._flake8_named = frozenset(named)

    def _lint(self, source: str) -> list[Any]:
        from tbptt_lint.engine import lint_source

        if self.filename in _STDIN_NAMES:
            directory = Path.cwd()
        else:
            directory = Path(self.filename).resolve().parent
        settings = _settings_for(str(directory), self._flake8_named)
        # lint_source applies tbptt-lint's own noqa comments (the line-level syntax is the same
        # as flake8's; the file-level one is `tbptt-lint: noqa`) and flake8 applies its own
        # afterwards. On the line a finding sits on, both read a bare noqa and `noqa: CODES`
        # alike, so the CLI and flake8 suppress the same findings there. flake8 also honours
        # a noqa comment on any line of a multi-line statement, and `flake8: noqa` for the file.
        return lint_source(source, self.filename, settings)

    def run(self) -> Iterator[tuple[int, int, str, type[TbpttLintChecker]]]:
        for diagnostic in self._diagnostics:
            # flake8 takes 0-based columns and prints column + 1; ours are 1-based already.
            yield (
                diagnostic.line,
                diagnostic.column - 1,
                f"{diagnostic.code} {diagnostic.message}",
                type(self),
            )
