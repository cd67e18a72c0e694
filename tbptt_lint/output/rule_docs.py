"""A rule's documentation: its page under rule_pages/ when present, else its docstring."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tbptt_lint.rules.base import Rule


RULE_PAGES = Path(__file__).resolve().parent.parent / "rule_pages"


def rule_page(code: str) -> str | None:
    """The Markdown page `rule_pages/CODE.md`, or None when it has not been written."""
    try:
        return (RULE_PAGES / f"{code}.md").read_text(encoding="utf-8")
    except OSError:
        return None


def docstring_page(rule: type[Rule]) -> str:
    """A page built from the class docstring, for rules without a written page."""
    body = inspect.cleandoc(rule.__doc__ or rule.summary())
    fix = rule.fix_availability or "none"
    return (
        f"# {rule.name} ({rule.code})\n\n"
        f"Severity: {rule.severity.value}. Fix: {fix}. "
        f"{'Enabled by default.' if rule.default_enabled else 'Off by default.'}\n\n"
        f"{body}\n"
    )


def rule_documentation(rule: type[Rule]) -> str:
    return rule_page(rule.code) or docstring_page(rule)


def full_description(rule: type[Rule]) -> str:
    return inspect.cleandoc(rule.__doc__ or rule.summary())
