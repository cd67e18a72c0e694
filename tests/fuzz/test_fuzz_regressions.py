"""Inputs the fuzzer found, kept as regression tests (they run in the default quick run)."""

from __future__ import annotations

import ast

from fuzz_harness import check_one

from tbptt_lint.engine import lint_source
from tbptt_lint.settings import Settings

# Found by `TBPTT_FUZZ_EXAMPLES=10000` (mutations, seeds 2, 4 and 8: `reindent` put a tab in
# front of a line of fixtures/ok_repackage_hidden.py and bug_tbp014_detach_inplace_on_view.py).
# A tab then four spaces is column 12 for Python (tabs to multiples of 8), deeper than the
# enclosing block at 4, and consistent with tab size 1 too, so Python accepts it; libcst's
# tokenizer says "no matching outer block for dedent".
TAB_AFTER_SPACES = "if a:\n    if b:\n\t    c\nloss.backward()\n"


def test_tab_after_space_indentation_is_not_a_syntax_error():
    ast.parse(TAB_AFTER_SPACES)  # Python accepts it
    codes = [d.code for d in lint_source(TAB_AFTER_SPACES, "fuzz.py", Settings())]
    assert "TBP900" not in codes
    assert check_one(TAB_AFTER_SPACES, known_bugs=False) is None
