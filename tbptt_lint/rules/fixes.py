"""Text edits that rules attach to their findings, built from the positions of libcst nodes.

An edit replaces the exact span of a node (or inserts a line after a statement), so the rest of
the file, comments and formatting included, is left byte for byte as it was. Each builder
returns None when the code around the finding is not in a shape the fix was written for: no
fix is better than a wrong one.
"""

from __future__ import annotations

import libcst as cst

from tbptt_lint.analysis.context import PAIR_STATE_MODULES
from tbptt_lint.analysis.events import BackwardSite, RecurrentCall, StateRead
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import target_names
from tbptt_lint.analysis.walk import NESTED_SCOPES, descendants
from tbptt_lint.diagnostics import UNSAFE, Edit, Fix


def replace_node(model: FileModel, node: cst.CSTNode, content: str) -> Edit:
    line, column, end_line, end_column = model.span(node)
    return Edit(content, (line, column), (end_line, end_column))


def is_whole_statement(model: FileModel, node: cst.CSTNode) -> bool:
    """Whether the node is alone on its line(s): only indentation before it, and nothing but a
    comment after it."""
    line, column, end_line, end_column = model.span(node)
    lines = model.source_lines()
    before = lines[line - 1][: column - 1]
    after = lines[end_line - 1][end_column - 1 :].strip()
    return not before.strip() and (not after or after.startswith("#"))


def detached(expression: str) -> str:
    return f"{expression}.detach()"


def rebind_detached(target: str) -> str:
    return f"{target} = {detached(target)}"


def elementwise_cut(name: str, container: str, variable: str = "s") -> str:
    """The cut of every element of a tuple, list or dict state, or of every tensor of a list
    or tuple of `(h, c)` tuples (one per layer)."""
    if container == "dict":
        return f"{name} = {{k: v.detach() for k, v in {name}.items()}}"
    if container == LIST_OF_TUPLES:
        return f"{name} = [tuple(s.detach() for s in layer) for layer in {name}]"
    if container == TUPLE_OF_TUPLES:
        return f"{name} = tuple(tuple(s.detach() for s in layer) for layer in {name})"
    if container == "list":
        return f"{name} = [{variable}.detach() for {variable} in {name}]"
    return f"{name} = tuple({variable}.detach() for {variable} in {name})"


LIST_OF_TUPLES = "list of tuples"
TUPLE_OF_TUPLES = "tuple of tuples"
# A collection of collections in a form no cut here is written for: a recursive cut fits it.
NESTED = "nested"
# Methods whose result is a tensor when their receiver is one.
TENSOR_METHODS = frozenset(
    {
        "detach",
        "detach_",
        "clone",
        "to",
        "cuda",
        "cpu",
        "contiguous",
        "float",
        "double",
        "half",
        "new_zeros",
        "new_ones",
        "new_empty",
        "new_full",
        "new_tensor",
        "zero_",
        "fill_",
        "requires_grad_",
        "view",
        "reshape",
        "expand",
        "squeeze",
        "unsqueeze",
        "permute",
        "transpose",
        "repeat",
    }
)
COLLECTIONS = (
    cst.Tuple,
    cst.List,
    cst.Dict,
    cst.ListComp,
    cst.GeneratorExp,
    cst.SetComp,
    cst.DictComp,
)


def _is_leaf(model: FileModel, node: cst.BaseExpression) -> bool:
    """Whether an element expression is (as far as can be told) a tensor, not a collection:
    `h`, `h.detach()`, `torch.zeros(...)`. A call of any other function (`init(l)`,
    `tuple(...)`) may return a tuple, so it is not one."""
    if isinstance(node, COLLECTIONS):
        return False
    if isinstance(node, cst.Call):
        if isinstance(node.func, cst.Attribute) and node.func.attr.value in TENSOR_METHODS:
            return True
        return (model.context.qualify(node.func) or "").startswith("torch.")
    return True


def _is_tuple_of_leaves(model: FileModel, node: cst.BaseExpression) -> bool:
    """`(h, c)` or `tuple(s.detach() for s in layer)`: one layer's tuple of tensors."""
    if isinstance(node, cst.Tuple):
        return all(_is_leaf(model, e.value) for e in node.elements)
    if isinstance(node, cst.Call) and len(node.args) == 1:
        inner = node.args[0].value
        return (
            model.context.qualify(node.func) == "tuple"
            and isinstance(inner, (cst.GeneratorExp, cst.ListComp))
            and _is_leaf(model, inner.elt)
        )
    return False


def _is_collection(model: FileModel, node: cst.BaseExpression) -> bool:
    if isinstance(node, COLLECTIONS):
        return True
    return isinstance(node, cst.Call) and model.context.qualify(node.func) in (
        "tuple",
        "list",
        "dict",
    )


def _origin_kind(model: FileModel, origin: cst.CSTNode) -> str | None:
    """The shape a literal or comprehension gives a state ("" when its elements may be
    anything: `[init(l) for l in layers]`); None for other origins, which tell nothing about
    it (a recurrent call, `init_hidden()`)."""
    elements: list[cst.BaseExpression]
    if isinstance(origin, (cst.Tuple, cst.List)):
        container = "tuple" if isinstance(origin, cst.Tuple) else "list"
        elements = [e.value for e in origin.elements]
    elif isinstance(origin, cst.ListComp):
        container, elements = "list", [origin.elt]
    elif isinstance(origin, cst.GeneratorExp):
        # `tuple(... for ...)` or `list(...)`: the container is not known from here.
        if _is_leaf(model, origin.elt):
            return None
        return NESTED if _is_collection(model, origin.elt) else ""
    elif isinstance(origin, cst.Dict):
        container = "dict"
        elements = [e.value for e in origin.elements if isinstance(e, cst.DictElement)]
    elif isinstance(origin, cst.DictComp):
        container, elements = "dict", [origin.value]
    else:
        return None
    if all(_is_leaf(model, e) for e in elements):
        return container
    if container != "dict" and all(_is_tuple_of_leaves(model, e) for e in elements):
        return LIST_OF_TUPLES if container == "list" else TUPLE_OF_TUPLES
    return NESTED if any(_is_collection(model, e) for e in elements) else ""


def container_kind(model: FileModel, reads: list[StateRead], call: RecurrentCall | None) -> str:
    """ "tuple", "list", "dict", "tensor", a list or tuple of `(h, c)` tuples, or NESTED when
    the analysis knows the state's shape, else ""."""
    kinds = set()
    for read in reads:
        for origin in read.origins:
            kind = _origin_kind(model, origin)
            if kind is not None:
                kinds.add(kind)
        elements = read.value.elements
        if elements is not None and not kinds:
            nested = any(e.elements is not None for e in elements)
            kinds.add(NESTED if nested else "tuple")
    if call is not None and call.module_class in PAIR_STATE_MODULES:
        kinds.add("tuple")
    if NESTED in kinds:
        return NESTED
    if "" in kinds:
        return ""  # elements that may be tuples: a flat element-wise cut could crash
    if len(kinds) == 1:
        return kinds.pop()
    if kinds:
        return ""  # tuple on one path and list on another: no single form fits
    if (
        call is not None
        and call.module_class is not None
        and call.module_class.startswith("torch.nn.")
    ):
        return "tensor"
    return ""


def inplace_state_class(model: FileModel, name: str) -> str | None:
    """The class a state object was built from, when that class's `detach()` works in place
    and returns None: `state = state.detach()` would set such a state to None."""
    built = model.context.construction_of(name)
    if built is None:
        return None
    classes = model.context.inplace_detach_classes
    qualified = built.qualified_class
    short = qualified.rsplit(".", 1)[-1]
    return short if qualified in classes or short in classes else None


def may_be_inplace_object(model: FileModel, call: RecurrentCall) -> bool:
    """Whether a state of unknown type may be an object whose `detach()` works in place: such
    a class exists in the run, and no torch module made the state."""
    module = call.module_class or ""
    return bool(model.context.inplace_detach_classes) and not module.startswith("torch.")


def state_cut(model: FileModel, call: RecurrentCall, reads: list[StateRead]) -> str | None:
    """The statement that cuts every part of the state a recurrent call carries."""
    names = [read.name for read in reads]
    if any(inplace_state_class(model, name) for name in names):
        if len(names) != 1:
            return None
        return f"{names[0]}.detach()"  # the object's own in-place cut
    group = next((g for g in call.groups if set(names) & set(g) and len(g) > 1), None)
    if group is not None:
        return f"{', '.join(group)} = {', '.join(detached(n) for n in group)}"
    if len(names) != 1:
        return None
    name = names[0]
    kind = container_kind(model, reads, call)
    if kind == "tensor":
        return rebind_detached(name)
    if kind and kind != NESTED:
        return elementwise_cut(name, kind)
    return None


def cut_advice(
    model: FileModel,
    call: RecurrentCall,
    reads: list[StateRead],
    name: str | None = None,
    composite: bool = False,
) -> str:
    """How to cut the state, for a message: the statement when the state's shape is known,
    else the forms to choose from (`composite`: it is known not to be a single tensor). A
    flat element-wise cut of nested tuples would crash."""
    cut = state_cut(model, call, reads)
    name = name or reads[0].name
    owner = inplace_state_class(model, name)
    if cut is not None and owner is not None:
        return f"`{cut}` (`{owner}.detach()` works in place; its result is None)"
    if cut is not None:
        return f"`{cut}`"
    if container_kind(model, reads, call) == NESTED:
        return (
            f"`{name} = repackage_hidden({name})`, with a `repackage_hidden` that detaches "
            "every tensor of the nested tuples and lists"
        )
    if "[" not in name and any(
        isinstance(read.call.state_args.get(read.name), cst.Subscript) for read in reads
    ):
        # `self.states[i] = layer(x, self.states[i])`: a list, assigned into by index.
        return (
            f"`{name} = [s.detach() for s in {name}]` for a list of tensors, or "
            f"`{name} = [tuple(s.detach() for s in layer) for layer in {name}]` for a list of "
            "`(h, c)` pairs"
        )
    # An object whose detach() works in place must not be rebound to its result (None).
    inplace = (
        f"`{name}.detach()` if it is an object whose `detach()` works in place, "
        if may_be_inplace_object(model, call)
        else ""
    )
    tensor = "" if composite else f"`{name} = {name}.detach()` for a tensor, "
    return (
        f"{inplace}{tensor}`{name} = tuple(s.detach() for s in {name})` for a tuple of "
        f"tensors, or a recursive `repackage_hidden({name})` for nested tuples and lists"
    )


def _backward_statement(
    model: FileModel, loop: cst.CSTNode, site: BackwardSite
) -> cst.SimpleStatementLine | None:
    """The statement line, in an indented block of the loop, that holds the backward call."""
    call_span = model.span(site.call)
    for node in descendants([loop], stop=NESTED_SCOPES):
        if not isinstance(node, cst.IndentedBlock):
            continue
        for statement in node.body:
            if not isinstance(statement, cst.SimpleStatementLine):
                continue
            line, column, end_line, end_column = model.span(statement)
            if (line, column) <= call_span[:2] and call_span[2:] <= (end_line, end_column):
                return statement
    return None


def insert_after_backward(
    model: FileModel, call: RecurrentCall, sites: list[BackwardSite], statement_text: str
) -> Edit | None:
    """An edit that puts `statement_text` on its own line right after the last backward that
    runs through the carrying loop's graph, in that backward's block.

    After the backward is where TBPTT cuts: the state exists there (the recurrent call made it
    earlier in the pass), and a backward that runs only every k steps (`if (t + 1) % k == 0`)
    keeps its k-step horizon, which a cut at the top of a per-step loop would shrink to one.
    """
    carrying = [loop for loop in call.loops if any(loop in site.loops for site in sites)]
    if not carrying:
        return None
    loop = carrying[-1]
    inside = [site for site in sites if loop in site.loops]
    site = max(inside, key=lambda s: model.span(s.call))
    statement = _backward_statement(model, loop, site)
    if statement is None:
        return None
    _, _, end_line, _ = model.span(statement)
    lines = model.source_lines()
    first_line = lines[model.line(statement) - 1]
    indent = first_line[: len(first_line) - len(first_line.lstrip())]
    last = lines[end_line - 1]
    body = last.rstrip("\r\n")
    newline = last[len(body) :] or "\n"
    return Edit(
        f"{newline}{indent}{statement_text}", (end_line, len(body) + 1), (end_line, len(body) + 1)
    )


def cut_after_backward_fix(
    model: FileModel, call: RecurrentCall, reads: list[StateRead], sites: list[BackwardSite]
) -> Fix | None:
    """TBP001/TBP002: cut the carried state right after the backward that ran through it.

    The recurrent call made the state earlier in the same pass, so it is never None there."""
    cut = state_cut(model, call, reads)
    if cut is None:
        return None
    names = ", ".join(f"`{read.name}`" for read in reads)
    cut_names = {n for group in call.groups for n in group} | {read.name for read in reads}
    if _loop_targets(call) & cut_names:
        return None
    edit = insert_after_backward(model, call, sites, cut)
    if edit is None:
        return None
    return Fix(f"Cut {names} after the backward: `{cut}`", UNSAFE, (edit,))


def _loop_targets(call: RecurrentCall) -> set[str]:
    """Names a `for` loop around the call, or inside the outermost loop that holds it, binds
    (`for cell, (h, c) in zip(cells, states)`): each pass takes them anew from what the loop
    iterates, so a cut of them after the backward never reaches the next pass's call."""
    if not call.loops:
        return set()
    found: set[str] = set()
    for node in (
        call.loops[0],
        *descendants([call.loops[0]], stop=NESTED_SCOPES),
    ):
        if isinstance(node, cst.For):
            found.update(target_names(node.target))
    return found
