"""A one-step recurrent cell that a model calls without its state, stepped over a sequence.

`class Cell: def forward(self, x, a, H=None): if H is None: H = zeros(...); ...; return H'`
steps once from the state it is given. A model whose `forward` calls `self.cell(x, a)` without
`H` starts that step from zeros on every call, and a loop that runs the model over the steps of
a sequence and back-propagates once after it (`cost = cost + ...` per snapshot, then
`cost.backward()`) is written as if the state flowed through the sequence: it never does.

Read from the syntax of one file: the cell (a torch `*Cell`, or a class of the file whose
`forward` has no loop, an optional state parameter defaulting to None and a return that reads
it), the model that holds it in `__init__` and calls it outside any loop of its `forward`
without that parameter, and a loop of the file with no backward inside and a backward after it
that calls the model. A model called once per batch, with its backward inside the loop, may
start each batch anew on purpose and is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import libcst as cst

from tbptt_lint.analysis.chunks import top_level_blocks
from tbptt_lint.analysis.context import CELL_MODULES
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import dotted_name
from tbptt_lint.analysis.queries import queries
from tbptt_lint.analysis.walk import descendants

SCOPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)
LOOPS = (cst.For, cst.While)


OPTIONAL_FORWARD = re.compile(r"def forward\(\s*self\b[^)]*=\s*None")
CLASS_NAME = re.compile(r"(?m)^[ \t]*class[ \t]+(\w+)")


def stateless_cell_blocks(source: str) -> Callable[[str], bool] | None:
    """Cheap text test on a whole file: None when no class of it with an optional `forward`
    argument, and no torch cell, is built on an attribute; otherwise which blocks phase 2 must
    keep to read a model's stateless cell call: the cell's class and its `forward`, and the
    blocks that build or call such an attribute."""
    optional = (
        {
            name
            for block in top_level_blocks(source)
            if OPTIONAL_FORWARD.search(block.text) and (name := _class_name(block.text)) is not None
        }
        if OPTIONAL_FORWARD.search(source)
        else set()
    )
    if not optional and "Cell(" not in source:
        return None
    built = "|".join([*sorted(optional), r"[\w.]*Cell"])
    pairs = re.findall(rf"self\.(\w+)\s*=\s*({built})\(", source)
    if not pairs:
        return None
    attributes = "|".join(sorted({attribute for attribute, _ in pairs}))
    holders = re.compile(rf"self\.(?:{attributes})\s*(?:=|\()")
    cells = {cell for _, cell in pairs} & optional

    def wanted(text: str) -> bool:
        if text.startswith((" ", "\t")) and OPTIONAL_FORWARD.search(text):
            return True  # a member of a kept class: the cell's forward
        return _class_name(text) in cells or holders.search(text) is not None

    return wanted


def _class_name(text: str) -> str | None:
    match = CLASS_NAME.search(text)
    return match.group(1) if match and text.lstrip().startswith("class") else None


@dataclass
class StatelessStep:
    call: cst.Call  # `self.recurrent(x, a)` inside the model's forward
    state: str  # the state parameter left out: `H`
    model_class: str
    driver: cst.Call  # the model's call in the loop
    loop: cst.CSTNode


def stateless_cell_steps(model: FileModel) -> Iterator[StatelessStep]:
    classes = {
        node.name.value: node
        for node in descendants([model.module], stop=(cst.FunctionDef, cst.Lambda))
        if isinstance(node, cst.ClassDef)
    }
    cells = {name: found for name, node in classes.items() if (found := _optional_state(node))}
    steps = {
        name: found
        for name, node in classes.items()
        if (found := list(_stateless_calls(node, cells, model)))
    }
    if not steps:
        return
    ask = queries(model)
    reported: set[int] = set()
    for unit in model.units:
        for loop in unit.loop_parents:
            if loop in unit.loops_with_backward or ask.backward_after_loop(unit, loop) is None:
                continue
            for driver, class_name in _model_calls(loop, steps, model, unit.class_name):
                for call, state in steps[class_name]:
                    if id(call) not in reported:
                        reported.add(id(call))
                        yield StatelessStep(call, state, class_name, driver, loop)


def _forward(node: cst.ClassDef) -> cst.FunctionDef | None:
    for member in node.body.body:
        if isinstance(member, cst.FunctionDef) and member.name.value == "forward":
            return member
    return None


def _optional_state(node: cst.ClassDef) -> tuple[int, str] | None:
    """(position after `self`, name) of a one-step cell's optional state parameter."""
    forward = _forward(node)
    if forward is None or _has_loop(forward.body):
        return None
    params = [p for p in forward.params.params if p.name.value != "self"]
    returns = [
        n for n in descendants([forward.body], stop=SCOPES) if isinstance(n, cst.Return) and n.value
    ]
    if not returns:
        return None
    for position, param in enumerate(params):
        default = param.default
        if not (isinstance(default, cst.Name) and default.value == "None"):
            continue
        name = param.name.value
        if all(_reads(r.value, name) for r in returns) and _filled_when_none(forward, name):
            return position, name
    return None


def _filled_when_none(forward: cst.FunctionDef, name: str) -> bool:
    """`if H is None: H = ...`, or `H = self._init(X, H)` as a top-level statement."""
    for statement in forward.body.body:
        if isinstance(statement, cst.If) and _tests_none(statement.test, name):
            return True
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if (
                    isinstance(small, cst.Assign)
                    and any(dotted_name(t.target) == name for t in small.targets)
                    and isinstance(small.value, cst.Call)
                    and _reads(small.value, name)
                ):
                    return True
    return False


def _tests_none(test: cst.BaseExpression, name: str) -> bool:
    return (
        isinstance(test, cst.Comparison)
        and dotted_name(test.left) == name
        and len(test.comparisons) == 1
        and isinstance(test.comparisons[0].operator, cst.Is)
        and isinstance(test.comparisons[0].comparator, cst.Name)
        and test.comparisons[0].comparator.value == "None"
    )


def _reads(node: cst.CSTNode, name: str) -> bool:
    return any(isinstance(n, cst.Name) and n.value == name for n in descendants([node]))


def _has_loop(node: cst.CSTNode) -> bool:
    return any(isinstance(n, LOOPS) for n in descendants([node], stop=SCOPES))


def _stateless_calls(
    node: cst.ClassDef, cells: dict[str, tuple[int, str]], model: FileModel
) -> Iterator[tuple[cst.Call, str]]:
    """Calls in the class's `forward`, outside its loops, of a cell built in `__init__`, that
    leave out the cell's state."""
    forward = _forward(node)
    if forward is None:
        return
    built = _cells_built(node, cells, model)
    if not built:
        return
    for call in _calls_outside_loops(forward.body):
        found = built.get(dotted_name(call.func) or "")
        if found is None:
            continue
        position, state = found
        if any(a.star for a in call.args):
            continue  # `*args` / `**kwargs` may hold it
        positional = [a for a in call.args if a.keyword is None]
        keywords = {a.keyword.value for a in call.args if a.keyword is not None}
        if len(positional) <= position and state not in keywords:
            yield call, state


def _cells_built(
    node: cst.ClassDef, cells: dict[str, tuple[int, str]], model: FileModel
) -> dict[str, tuple[int, str]]:
    """`self.cell = Cell(...)` in the class's methods -> the cell's state parameter."""
    built: dict[str, tuple[int, str]] = {}
    imports = model.context.imports
    for assign in descendants([node.body]):
        if not isinstance(assign, cst.Assign) or not isinstance(assign.value, cst.Call):
            continue
        callee = dotted_name(assign.value.func) or ""
        qualified = imports.qualify(callee) or callee
        if qualified in CELL_MODULES:
            found: tuple[int, str] | None = (1, "hx")
        else:
            found = cells.get(callee)
        if found is None:
            continue
        for target in assign.targets:
            name = dotted_name(target.target) or ""
            if name.startswith("self.") and name.count(".") == 1:
                built[name] = found
    return built


def _calls_outside_loops(root: cst.CSTNode) -> Iterator[cst.Call]:
    for node in descendants([root], stop=(*SCOPES, *LOOPS)):
        if isinstance(node, cst.Call):
            yield node


def _model_calls(
    loop: cst.CSTNode,
    steps: dict[str, list[tuple[cst.Call, str]]],
    model: FileModel,
    enclosing: str | None,
) -> Iterator[tuple[cst.Call, str]]:
    """Calls in the loop of an object built from one of the models (`model(x, a)`)."""
    for node in descendants([loop.body], stop=SCOPES):  # type: ignore[attr-defined]
        if not isinstance(node, cst.Call):
            continue
        callee = dotted_name(node.func)
        if callee is None:
            continue
        class_name = model.context.class_of(callee, enclosing)
        if class_name in steps:
            yield node, class_name
