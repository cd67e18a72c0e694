"""What the command line needs to know of every rule, without loading the rules themselves.

The rule classes (`tbptt_lint.rules`) import libcst, which takes longer to import than a warm
run, served from the cache, takes in all. Selection, severities, noqa and the summaries need
only this table. It is where a rule's metadata is declared: a rule class names its code and
takes its name, severity, default and fix availability from here (`rules.base.Rule`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tbptt_lint.diagnostics import Severity


@dataclass(frozen=True)
class RuleInfo:
    code: str
    name: str
    severity: Severity
    default_enabled: bool = True
    fix_availability: str | None = None  # "safe", "unsafe" or None


ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
CATALOG: tuple[RuleInfo, ...] = (
    RuleInfo("TBP001", "state-not-detached", ERROR, fix_availability="unsafe"),
    RuleInfo("TBP002", "partial-detach", ERROR, fix_availability="unsafe"),
    RuleInfo("TBP003", "detach-result-discarded", ERROR, fix_availability="safe"),
    RuleInfo("TBP004", "detach-every-step", WARNING),
    RuleInfo("TBP005", "retain-graph-bandaid", ERROR),
    RuleInfo("TBP006", "loss-accumulated-with-graph", WARNING, fix_availability="unsafe"),
    RuleInfo("TBP007", "no-truncation", INFO, default_enabled=False),
    RuleInfo("TBP008", "data-instead-of-detach", INFO, fix_availability="safe"),
    RuleInfo("TBP009", "window-misaligned", WARNING),
    RuleInfo("TBP010", "batch-dim-sliced", ERROR),
    RuleInfo("TBP011", "state-crosses-sequences", WARNING),
    RuleInfo("TBP012", "optimizer-step-misplaced", ERROR),
    RuleInfo("TBP013", "warmup-with-grad", WARNING),
    RuleInfo("TBP014", "detach-inplace-on-view", ERROR, fix_availability="safe"),
    RuleInfo("TBP015", "state-not-threaded", WARNING),
    RuleInfo("TBP900", "syntax-error", ERROR),
    RuleInfo("TBP901", "io-error", ERROR),
)
BY_CODE: dict[str, RuleInfo] = {rule.code: rule for rule in CATALOG}
SYNTAX_ERROR_CODE = "TBP900"
IO_ERROR_CODE = "TBP901"


def rules_matching(selector: str) -> list[RuleInfo]:
    """Rules whose code starts with `selector` (a full code or a prefix such as "TBP0")."""
    return [rule for rule in CATALOG if rule.code.startswith(selector.upper())]


def enabled_codes(
    select: tuple[str, ...], ignore: tuple[str, ...], extend_select: tuple[str, ...] = ()
) -> frozenset[str]:
    """Apply ruff's selection order: select (or the defaults), then extend-select, minus ignore.

    An off-by-default rule is enabled only when a selector names its exact code.
    """

    def chosen(selectors: tuple[str, ...]) -> set[str]:
        codes: set[str] = set()
        for selector in selectors:
            for rule in rules_matching(selector):
                if rule.default_enabled or rule.code == selector.upper():
                    codes.add(rule.code)
        return codes

    codes = chosen(select) if select else {rule.code for rule in CATALOG if rule.default_enabled}
    codes |= chosen(extend_select)
    for selector in ignore:
        codes -= {rule.code for rule in rules_matching(selector)}
    return frozenset(codes)
