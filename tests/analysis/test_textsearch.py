"""The prefilter's fast patterns (each led by a literal) accept exactly what the plain
patterns they replace accept: the plain ones are kept here as the reference."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tbptt_lint.analysis import prefilter

REFERENCE = {
    "BACKWARD_CALL": r"(?<!def )\b(?:manual_)?backward\s*\(|autograd\.grad\s*\(",
    "BARE_GRAD_CALL": r"\bgrad\s*\(",
    "HELPER_OR_STEP_WORDS": r"\bdetach_?\b|return[^\n]*\.data\b|(?<!def )\b(?:manual_)?backward"
    r"\s*\(|autograd\.grad\s*\(|\.step\s*\(\s*\)",
    "LEARNER_CALL": r"\bLearner\s*\(",
    "GRADIENT_WORDS": r"\.zero_grad\s*\(|\.step\s*\(|\.grad\s*=(?!=)|\.grad(?:\.data)?\.\w+_\s*\("
    r"|\bdel\s[^\n]*\.grad\b",
    "BUILDS_OPTIMIZER": r"\boptim\.\w+\s*\(|\b(?:SGD|Adam|AdamW|Adagrad|Adadelta|Adamax|ASGD"
    r"|LBFGS|NAdam|RAdam|RMSprop|Rprop|SparseAdam)\s*\(",
    "ATTRIBUTE_STORE": r"\bself\.\w+(?:[ \t]*,[ \t]*self\.\w+)*[ \t]*=(?!=)|@property"
    r"|\breturn\b[^\n]*\bself\.\w+[ \t]*,",
    "BUILDS_RECURRENT_ATTRIBUTE": r"\bself\.\w+\s*=\s*[\w.]*\b(?:RNN|LSTM|GRU)(?:Cell)?\s*\(",
    "CUT_WORD": r"\bdetach_?\b|\.data\b",
    "RETURNS_CUT": r"\breturn\b[^\n]*(?:\bdetach\b|\.data\b)|\bdetach_\(",
}
IMPORTED = re.compile(r"^[ \t]*(?:from[ \t]+\S+[ \t]+)?import[ \t]+([^\n#]+)", re.MULTILINE)

# Pieces that the patterns are made of, and what sits beside them, so that random texts hit
# the edges: a word character before a word, `def ` before `backward`, line starts, comments.
PIECES = [
    *"abx_=(),.#@ \t\n",
    "backward",
    "manual_",
    "def ",
    "detach",
    "detach_",
    "return",
    ".data",
    "self.",
    "optim.",
    "Adam",
    "RAdam",
    "grad",
    ".grad",
    "del ",
    ".step",
    ".zero_grad",
    "@property",
    "LSTM",
    "Cell",
    "Learner",
    "autograd.",
    "import",
    "from",
    "é",
]
texts = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
PROJECT = Path(__file__).resolve().parents[2]


def reference_imported_names(source: str) -> set[str]:
    names: set[str] = set()
    for match in IMPORTED.finditer(source):
        names.update(re.findall(r"[A-Za-z_]\w*", match.group(1)))
    return names - {"as"}


def agree(text: str) -> None:
    for name, pattern in REFERENCE.items():
        expected = bool(re.search(pattern, text))
        assert getattr(prefilter, name).search(text) == expected, (name, text)
    assert prefilter.imported_names(text) == reference_imported_names(text), text
    assert prefilter.CALLED_NAME.findall(text) == re.findall(r"(\w+)\(", text), text


@settings(max_examples=3000, deadline=None)
@given(texts)
@example("from import import x\n")  # the first `import` is the module's name
@example("x = 1; import os  # import sys\n")
@example("def manual_backward(self):\n    self.manual_backward(loss)\n")
@example("xbackward(1); my_manual_backward(2); manual_backward (3)")
def test_fast_patterns_agree_with_the_plain_ones_on_random_texts(text):
    agree(text)


def test_fast_patterns_agree_with_the_plain_ones_on_this_projects_files():
    files = [
        *sorted((PROJECT / "tbptt_lint").rglob("*.py")),
        *sorted((PROJECT / "tests").rglob("*.py")),
        *sorted((PROJECT / "fixtures").rglob("*.py")),
    ]
    assert len(files) > 100
    for path in files:
        text = path.read_text(encoding="utf-8")
        agree(text)
        # Each top-level block too: most patterns are searched on blocks.
        for block in re.split(r"\n(?=\S)", text):
            agree(block)
