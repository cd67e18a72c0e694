"""Only the blocks that can matter are parsed: nested classes are pruned like top-level ones,
and a huge class is summarised from its state-defining methods only, with the same facts."""

from __future__ import annotations

import ast

from tbptt_lint.analysis.api import LARGE_CLASS_CHARACTERS, summarize_source
from tbptt_lint.analysis.chunks import keep_blocks, prune_class

NESTED = """\
import torch


class Suite:
    class Cases:
        def unrelated(self):
            return 1

        def test_train(self):
            loss.backward()

        @staticmethod
        def helper():
            pass

    def other(self):
        x = 1
"""


def test_nested_class_members_are_pruned_and_positions_kept():
    reduced = keep_blocks(NESTED, lambda text: "backward" in text)
    ast.parse(reduced)
    before, after = NESTED.splitlines(), reduced.splitlines()
    assert len(after) == len(before)
    kept = [n for n, (a, b) in enumerate(zip(before, after, strict=True)) if a == b and a.strip()]
    assert [before[n].strip() for n in kept] == [
        "import torch",
        "class Suite:",
        "class Cases:",
        "def test_train(self):",
        "loss.backward()",
    ]
    assert "return 1" not in reduced and "x = 1" not in reduced and "helper" not in reduced


def test_prune_class_keeps_what_is_wanted_at_every_depth():
    block = NESTED[NESTED.index("class Suite") :]
    pruned = prune_class(block, lambda text: "backward" in text or "class " in text.split("\n")[0])
    ast.parse(pruned)
    assert "loss.backward()" in pruned and "return 1" not in pruned


def _large_state_class(filler_methods: int) -> str:
    filler = "".join(
        f"    def case_{n}(self):\n        return torch.zeros({n}) + {n}\n\n"
        for n in range(filler_methods)
    )
    return (
        "import torch\n\n\n"
        "class State:\n"
        "    def __init__(self, h):\n"
        "        self.h = h\n\n"
        "    def detach(self):\n"
        "        self.h = self.h.detach()\n\n"
        f"{filler}"
    )


def test_a_large_class_gives_the_same_summary_as_when_parsed_whole():
    small = _large_state_class(5)
    large = _large_state_class(LARGE_CLASS_CHARACTERS // 60)
    assert len(small) < LARGE_CLASS_CHARACTERS < len(large)
    small_summary = summarize_source(small, "state")
    large_summary = summarize_source(large, "state")
    assert small_summary.inplace_detach_classes == {"state.State"}
    assert large_summary.inplace_detach_classes == small_summary.inplace_detach_classes
    assert large_summary.functions == small_summary.functions
