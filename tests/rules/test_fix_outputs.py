"""The exact output of each rule's fix, pinned (as Fixit's `expected_replacement` and
TorchFix's golden files do): each INVALID snippet and each ```python bad example of the rule
page of a rule that offers a fix, fixed with `tbptt_lint.testing.fixed_by`, must equal its
file under `fix_outputs/` (`TBP001-1.golden`, `TBP001-page-2.golden`; "(no fix offered)" where
that example gets none).

A changed fix shows here as a diff of the source it produces. After a deliberate change,
rewrite the files with `TBPTT_UPDATE_FIX_OUTPUTS=1 python -m pytest tests/rules/test_fix_outputs.py`
and read the diff.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tbptt_lint import testing
from tbptt_lint.rules import ALL_RULES

OUTPUTS = Path(__file__).resolve().parent / "fix_outputs"
PAGES = Path(__file__).resolve().parents[2] / "rules"
UPDATE = os.environ.get("TBPTT_UPDATE_FIX_OUTPUTS") == "1"
FIXABLE = [rule for rule in ALL_RULES if rule.fix_availability is not None]
CASES = [
    (rule.code, str(number), textwrap.dedent(source))
    for rule in FIXABLE
    for number, source in enumerate(rule.INVALID, start=1)
] + [
    (rule.code, f"page-{example.number}", example.source)
    for rule in FIXABLE
    for example in testing.page_examples(
        (PAGES / f"{rule.code}.md").read_text(encoding="utf-8"), rule.code
    )
    if example.kind == "bad"
]


def golden(code: str, number: str) -> Path:
    return OUTPUTS / f"{code}-{number}.golden"


@pytest.mark.parametrize(("code", "number", "source"), CASES, ids=[f"{c}-{n}" for c, n, _ in CASES])
def test_fix_output_is_pinned(code: str, number: str, source: str) -> None:
    fixed = testing.fixed_by(code, source)
    text = "(no fix offered)\n" if fixed is None else fixed
    path = golden(code, number)
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path.name} is missing: run with TBPTT_UPDATE_FIX_OUTPUTS=1"
    assert text == path.read_text(encoding="utf-8")


def test_every_fixable_rule_has_a_pinned_fix() -> None:
    fixable = {rule.code for rule in ALL_RULES if rule.fix_availability is not None}
    fixed = {
        code
        for code, number, _ in CASES
        if golden(code, number).exists()
        and golden(code, number).read_text(encoding="utf-8") != "(no fix offered)\n"
    }
    assert fixed == fixable


def test_no_stale_output_files() -> None:
    wanted = {golden(code, number).name for code, number, _ in CASES}
    assert {p.name for p in OUTPUTS.glob("*.golden")} == wanted


def test_fixed_by_applies_only_the_named_rule() -> None:
    source = "h = h0\nfor x in xs:\n    h = cell(x, h)\n    h.detach()\n"
    assert testing.fixed_by("TBP900", source) is None
