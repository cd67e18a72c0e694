"""The shape every rule takes: metadata, examples, and a check over a file's loop model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from tbptt_lint.diagnostics import Finding, Severity

if TYPE_CHECKING:
    from tbptt_lint.analysis.model import FileModel


class Rule:
    """A rule's docstring is its summary line followed by a longer explanation."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]
    # Off-by-default rules run only when selected by their exact code.
    default_enabled: ClassVar[bool] = True
    # "safe", "unsafe" or None, as `ruff rule` reports fix availability.
    fix_availability: ClassVar[str | None] = None
    # True when the runtime tracer can observe the bug as a wrong horizon or stride, so that
    # the linter's and the tracer's verdicts on a fixture can be compared.
    runtime_visible: ClassVar[bool] = False
    # Snippets that must trigger this rule (INVALID) or nothing at all (VALID).
    VALID: ClassVar[tuple[str, ...]] = ()
    INVALID: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def summary(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else cls.name

    def check(self, model: FileModel) -> Iterator[Finding]:
        raise NotImplementedError
