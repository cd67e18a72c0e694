"""The shape every rule takes: metadata, examples, and a check over a file's loop model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from tbptt_lint import catalog
from tbptt_lint.diagnostics import Finding, Severity

if TYPE_CHECKING:
    from tbptt_lint.analysis.model import FileModel


# Declared once, in the catalog (which the command line loads without the rule classes): a rule
# class names its code, and `Rule` fills in the rest.
CATALOG_FIELDS = ("name", "severity", "default_enabled", "fix_availability")


class Rule:
    """A rule's docstring is its summary line followed by a longer explanation.

    A subclass sets `code`; its name, severity, whether it is on by default and its fix
    availability come from its `catalog.RuleInfo`."""

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

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        restated = [field for field in CATALOG_FIELDS if field in cls.__dict__]
        if restated:
            raise TypeError(f"{cls.__name__} restates {restated}: the catalog declares them")
        info = catalog.BY_CODE[cls.code]
        cls.name = info.name
        cls.severity = info.severity
        cls.default_enabled = info.default_enabled
        cls.fix_availability = info.fix_availability

    @classmethod
    def summary(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else cls.name

    def check(self, model: FileModel) -> Iterator[Finding]:
        raise NotImplementedError
