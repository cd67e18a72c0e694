"""The fast tree walk visits the same nodes, in the same order, as a plain recursive walk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import libcst as cst
import pytest

from tbptt_lint.analysis.walk import children, descendants

PROJECT = Path(__file__).resolve().parents[2]
STOPS = [(), (cst.FunctionDef, cst.ClassDef), (cst.BaseCompoundStatement,), (cst.Call,)]


def reference(node: cst.CSTNode, stop: tuple[type, ...]) -> Iterator[cst.CSTNode]:
    yield node
    if stop and isinstance(node, stop):
        return
    for child in children(node):
        yield from reference(child, stop)


@pytest.mark.parametrize("stop", STOPS, ids=lambda stop: "+".join(t.__name__ for t in stop))
def test_descendants_match_a_recursive_walk(stop):
    paths = [*sorted((PROJECT / "fixtures").glob("*.py")), PROJECT / "tbptt_lint" / "engine.py"]
    for path in paths:
        module = cst.parse_module(path.read_text(encoding="utf-8"))
        roots = list(module.body)
        expected = [node for root in roots for node in reference(root, stop)]
        walked = list(descendants(roots, stop))
        assert len(walked) == len(expected) > len(roots)
        assert all(a is b for a, b in zip(walked, expected, strict=True)), path.name
