"""A one-step recurrent cell that a model calls without its state, stepped over a sequence.

`class Cell: def forward(self, x, a, H=None): if H is None: H = zeros(...); ...; return H'`
steps once from the state it is given. A model whose `forward` calls `self.cell(x, a)` without
`H` starts that step from zeros on every call, and a loop that runs the model over the steps of
a sequence and back-propagates once after it (`cost = cost + ...` per snapshot, then
`cost.backward()`) is written as if the state flowed through the sequence: it never does.

The cell is a torch `*Cell`, or a class of the run whose `forward` has no loop, a parameter
defaulting to None that it fills when None and that every return reads: phase 1 finds those in
every module (`optional_state_cells`), with Python's parser, in the `forward` alone. The model
is a class of the file that builds the cell in `__init__` (a class of the file, one imported by
name, or one a package re-exports from the one module under it that defines such a cell) and
calls it outside any loop of its `forward` without that parameter; the driver is a loop of the
file with no backward inside and a backward after it that calls the model. A model called once
per batch, with its backward inside the loop, may start each batch anew on purpose and is left
alone.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import libcst as cst

from tbptt_lint.analysis.chunks import dedented, member_blocks, top_level_blocks
from tbptt_lint.analysis.context import CELL_MODULES, FileContext
from tbptt_lint.analysis.index import ProjectIndex
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import dotted_name
from tbptt_lint.analysis.queries import queries
from tbptt_lint.analysis.walk import descendants
from tbptt_lint.strict import unparsable_cut

SCOPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)
AST_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
LOOPS = (cst.For, cst.While)


OPTIONAL_FORWARD = re.compile(r"def forward\(\s*self\b[^)]*=\s*None")
CLASS_NAME = re.compile(r"(?m)^[ \t]*class[ \t]+(\w+)")
FORWARD_MEMBER = re.compile(r"\s*(?:@[^\n]*\n\s*)*(?:async\s+)?def\s+forward\s*\(")
METHOD_NAME = re.compile(r"\bdef\s+(\w+)")
# Calls that build a state of zeros, in a cell's `forward` or the method it fills it with.
ZERO_BUILDERS = frozenset({"zeros", "zeros_like", "new_zeros"})
BUILDS_ZEROS = re.compile(r"\b(?:zeros|zeros_like|new_zeros)\s*\(")


def optional_state_cells(source: str, module_name: str) -> dict[str, tuple[int, str]]:
    """Phase 1: the module's top-level classes that are one-step cells with an optional state
    (see `_optional_state`), by qualified name, for the models that build them, in this file
    or another. Only the `forward` of a class with an optional `forward` argument is parsed,
    by Python's parser."""
    if "def forward(" not in source or not OPTIONAL_FORWARD.search(source):
        return {}
    found: dict[str, tuple[int, str]] = {}
    lines = source.splitlines(keepends=True)
    for block in top_level_blocks(source):
        name = _class_name(block.text)
        if name is None or not OPTIONAL_FORWARD.search(block.text):
            continue
        if not BUILDS_ZEROS.search(block.text):
            continue  # nothing in the class could start a state from zeros
        members = list(member_blocks(lines, block))
        forwards = [m for m in members if FORWARD_MEMBER.match(m.text)]
        if len(forwards) != 1:
            continue  # several (overloads, or under an `if`): which one runs is unknown
        methods = {m.group(1): b.text for b in members if (m := METHOD_NAME.search(b.text))}
        state = _optional_state(dedented(forwards[0]), methods, source)
        if state is not None:
            found[f"{module_name}.{name}"] = state
    return found


def stateless_cell_blocks(
    source: str, run_cells: frozenset[str] = frozenset()
) -> Callable[[str], bool] | None:
    """Cheap text test on a whole file: None when no class of it with an optional `forward`
    argument, no torch cell and no cell of another file of the run (`run_cells`, bare names)
    is built on an attribute; otherwise which blocks phase 2 must keep to read a model's
    stateless cell call: the cell's class and its `forward`, and the blocks that build or call
    such an attribute."""
    optional = (
        {
            name
            for block in top_level_blocks(source)
            if OPTIONAL_FORWARD.search(block.text) and (name := _class_name(block.text)) is not None
        }
        if OPTIONAL_FORWARD.search(source)
        else set()
    )
    imported = {name for name in run_cells if f"{name}(" in source}
    if not optional and not imported and "Cell(" not in source:
        return None
    built = "|".join([*sorted(optional | imported), r"[\w.]*Cell"])
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
    cells = _own_cells(model.context)
    imported = _imported_cells(model.context)
    if imported:
        # A class of the file (kept for phase 2 or not) shadows one imported of that name.
        defined = set(CLASS_NAME.findall(model.context.source)) | set(classes)
        cells |= {name: found for name, found in imported.items() if name not in defined}
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


def _own_cells(context: FileContext) -> dict[str, tuple[int, str]]:
    """The cells the module defines itself, as phase 1 found them, by their names."""
    own = context.index.summaries.get(context.module_name) if context.index else None
    if own is None:
        return {}
    prefix = own.module_name + "."
    return {
        qualified.removeprefix(prefix): state
        for qualified, state in own.optional_state_cells.items()
    }


def _imported_cells(context: FileContext) -> dict[str, tuple[int, str]]:
    """The cells of other files of the run that the module imports by name (`from
    pkg.nn.recurrent import TGCN`), under their local names."""
    index = context.index
    if index is None:
        return {}
    found: dict[str, tuple[int, str]] = {}
    for local, qualified in context.imports.aliases.items():
        cell = run_cell(index, qualified)
        if cell is not None:
            found[local] = cell
    return found


def run_cell(index: ProjectIndex, qualified: str) -> tuple[int, str] | None:
    """The optional state of the cell `pkg.mod.Class` of the run: defined in `pkg.mod`, or in
    the one module under the package `pkg.mod` that defines a cell of that name, which the
    package imports (re-exports)."""
    if qualified.rsplit(".", 1)[-1] not in index.cell_names():
        return None
    found = index.lookup(qualified)
    if found is None:
        return None
    summary, name = found
    cell = summary.optional_state_cells.get(f"{summary.module_name}.{name}")
    if cell is not None or name not in summary.imported:
        return cell
    prefix = summary.module_name + "."
    owners = [
        cells[key]
        for module_name, module in index.summaries.items()
        if module_name.startswith(prefix)
        and (key := f"{module_name}.{name}") in (cells := module.optional_state_cells)
    ]
    return owners[0] if len(owners) == 1 else None


def _forward(node: cst.ClassDef) -> cst.FunctionDef | None:
    for member in node.body.body:
        if isinstance(member, cst.FunctionDef) and member.name.value == "forward":
            return member
    return None


def _optional_state(text: str, methods: dict[str, str], source: str) -> tuple[int, str] | None:
    """(position after `self`, name) of a one-step cell's optional state parameter, from the
    text of its `forward` and of the class's `methods`: no loop, a parameter defaulting to
    None that is filled with zeros when None and that every return hands on. An optional
    argument that only goes into computing the output (a mask, a batch vector, positions,
    edge weights filled with ones), or that is only selected from, is no state."""
    try:
        parsed = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        unparsable_cut("a forward parsed alone", source)
        return None  # phase 2 reports what does not parse, where it matters
    forward = parsed.body[0] if len(parsed.body) == 1 else None
    if not isinstance(forward, ast.FunctionDef):
        return None
    args = forward.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults += args.defaults
    params = [(a, d) for a, d in zip(positional, defaults, strict=True) if a.arg != "self"]
    # The cheap tests first: most `forward`s with an optional argument fill it otherwise.
    filled = [
        (position, param.arg)
        for position, (param, default) in enumerate(params)
        if isinstance(default, ast.Constant)
        and default.value is None
        and _filled_with_zeros(forward, param.arg, methods)
    ]
    if not filled:
        return None
    inside = list(_walk_scope(forward.body))
    if any(isinstance(node, (ast.For, ast.AsyncFor, ast.While)) for node in inside):
        return None
    returns = [n for n in inside if isinstance(n, ast.Return) and n.value is not None]
    if not returns:
        return None
    for position, name in filled:
        if all(_hands_on(r.value, name) for r in returns) and not _selected_from(inside, name):  # type: ignore[arg-type]
            return position, name
    return None


def _selected_from(nodes: list[ast.AST], name: str) -> bool:
    """`batch = batch[perm]`: a vector a pooling layer coarsens along with its input, handed
    on and filled with zeros like a state, but indexed, never stepped."""
    return any(
        isinstance(node, ast.Assign)
        and any(_is_name(t, name) for t in node.targets)
        and isinstance(node.value, ast.Subscript)
        and _is_name(node.value.value, name)
        for node in nodes
    )


def _hands_on(value: ast.expr, name: str) -> bool:
    """A return that hands the state on: itself, an element of a returned tuple or list, or
    an operand of arithmetic (`gate * h + (1 - gate) * cand`); not an argument the output is
    computed from (`x.index_select(0, batch)`)."""
    if _is_name(value, name):
        return True
    if isinstance(value, (ast.Tuple, ast.List)):
        return any(_is_name(element, name) for element in value.elts)
    return any(
        isinstance(node, ast.BinOp) and (_is_name(node.left, name) or _is_name(node.right, name))
        for node in ast.walk(value)
    )


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _walk_scope(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """The nodes of a function's body, not those of the functions and classes it defines."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, AST_SCOPES):
            stack.extend(ast.iter_child_nodes(node))


def _filled_with_zeros(forward: ast.FunctionDef, name: str, methods: dict[str, str]) -> bool:
    """`if H is None: H = torch.zeros(...)`, or `H = self._init(X, H)` as a top-level
    statement with a method `_init` that builds zeros: left out, the state starts from
    zeros."""
    for statement in forward.body:
        if isinstance(statement, ast.If) and _tests_none(statement.test, name):
            return _builds_zeros(statement.body, methods)
        if (
            isinstance(statement, ast.Assign)
            and any(_is_name(t, name) for t in statement.targets)
            and isinstance(statement.value, ast.Call)
            and _reads(statement.value, name)
        ):
            return _builds_zeros([statement], methods)
    return False


def _builds_zeros(statements: list[ast.stmt], methods: dict[str, str]) -> bool:
    for statement in statements:
        for node in ast.walk(statement):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in ZERO_BUILDERS:
                return True
            method = (
                methods.get(called or "")
                if _is_name(getattr(func, "value", None), "self")  # type: ignore[arg-type]
                else None
            )
            if method is not None and BUILDS_ZEROS.search(method):
                return True
    return False


def _tests_none(test: ast.expr, name: str) -> bool:
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == name
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Is)
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value is None
    )


def _reads(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


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
