"""What a value is made of, as far as `detach_()` cares: a tensor (whose indexing gives views,
which cannot be detached in place), a tuple of tensors (whose indexing gives whole tensors),
or unknown. And, per class, which attributes some method sets to a view of a tensor.

Only what is known is answered: a state from a user's model, a parameter, a helper's result
is unknown, and unknown never makes a finding.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import libcst as cst

from tbptt_lint.analysis.names import ImportMap, dotted_name, method_name, own_attribute
from tbptt_lint.analysis.walk import NESTED_SCOPES, children, descendants

TENSOR = "tensor"
TENSOR_PAIR = "tensor pair"  # an LSTM's `(h, c)` from a torch module
TUPLE = "tuple"  # a tuple or list whose elements are not known
NO_TENSOR = "none"  # `None`: no state yet, which says nothing either way

TENSOR_FUNCTIONS = frozenset(
    {
        "zeros",
        "ones",
        "empty",
        "full",
        "randn",
        "rand",
        "randint",
        "normal",
        "tensor",
        "as_tensor",
        "from_numpy",
        "arange",
        "linspace",
        "eye",
        "stack",
        "cat",
        "zeros_like",
        "ones_like",
        "empty_like",
        "full_like",
        "randn_like",
        "rand_like",
        "tanh",
        "sigmoid",
        "relu",
        "matmul",
        "bmm",
        "mm",
        "einsum",
    }
)
TENSOR_METHODS = frozenset({"new_zeros", "new_ones", "new_empty", "new_full", "new_tensor"})
# Methods that hand back the receiver's kind of thing (a tensor stays a tensor).
SAME_KIND_METHODS = frozenset(
    {"to", "cuda", "cpu", "float", "double", "half", "type", "clone", "detach", "requires_grad_"}
)
# Methods whose result is always a view of the receiver. `reshape`, `flatten` and
# `contiguous` copy only sometimes, so they are left out: a view is claimed only when sure.
VIEW_METHODS = frozenset(
    {
        "view",
        "view_as",
        "unsqueeze",
        "squeeze",
        "transpose",
        "t",
        "permute",
        "narrow",
        "expand",
        "expand_as",
        "select",
        "unfold",
        "diagonal",
        "as_strided",
        "movedim",
        "moveaxis",
        "swapaxes",
        "swapdims",
        "unflatten",
    }
)
VIEW_ATTRIBUTES = frozenset({"T", "mT", "H", "mH", "real", "imag"})
# torch.nn modules whose call returns one tensor, and those whose first result is the output
# sequence (a tensor).
TENSOR_MODULES = frozenset(
    {
        "Linear",
        "Bilinear",
        "Embedding",
        "Conv1d",
        "Conv2d",
        "Conv3d",
        "Dropout",
        "LayerNorm",
        "BatchNorm1d",
        "BatchNorm2d",
        "Tanh",
        "Sigmoid",
        "ReLU",
        "Softmax",
        "LogSoftmax",
        "GRUCell",
        "RNNCell",
    }
)
SEQUENCE_MODULES = frozenset({"RNN", "GRU", "LSTM"})


def expression_shape(node: cst.CSTNode, imports: ImportMap) -> str | None:
    """What an expression builds, read from its text alone: `torch.zeros(...)` a tensor,
    `(h, c)` a tuple, `None` nothing yet; None when unknown."""
    if isinstance(node, (cst.Tuple, cst.List, cst.GeneratorExp, cst.ListComp)):
        return TUPLE
    if isinstance(node, cst.Name) and node.value == "None":
        return NO_TENSOR
    if is_view_expression(node):
        return TENSOR
    if not isinstance(node, cst.Call):
        return None
    method = method_name(node)
    if method in TENSOR_METHODS:
        return TENSOR
    if method in SAME_KIND_METHODS and isinstance(node.func, cst.Attribute):
        return expression_shape(node.func.value, imports)
    qualified = imports.qualify(dotted_name(node.func)) or ""
    module, _, function = qualified.rpartition(".")
    if module == "torch" and function in TENSOR_FUNCTIONS:
        return TENSOR
    return None


def is_view_expression(node: cst.CSTNode, tensors: frozenset[str] = frozenset()) -> bool:
    """Whether an expression is surely a view of a tensor: a view method (`x.unsqueeze(0)`)
    of anything, or basic indexing (`x[-1]`, `x[:, 0]`) of a view or of a name in `tensors`.
    Indexing anything else may index a list or a tuple, which gives the element itself."""
    if isinstance(node, cst.Call):
        return method_name(node) in VIEW_METHODS
    if isinstance(node, cst.Attribute):
        return node.attr.value in VIEW_ATTRIBUTES
    if isinstance(node, cst.Subscript):
        if not all(_is_basic_index(element.slice) for element in node.slice):
            return False
        base = node.value
        return dotted_name(base) in tensors or is_view_expression(base, tensors)
    return False


def _is_basic_index(index: cst.BaseSlice) -> bool:
    if isinstance(index, cst.Slice):
        return True
    value = index.value  # type: ignore[attr-defined]
    if isinstance(value, cst.UnaryOperation) and isinstance(value.operator, cst.Minus):
        value = value.expression
    return isinstance(value, (cst.Integer, cst.Ellipsis)) or dotted_name(value) == "None"


@dataclass
class ClassViews:
    """Per class of a file: attributes some method sets to a view of a tensor
    (`self.feed = out[-1].unsqueeze(0)`), and attributes or properties that gather other
    attributes (`self.all_states = [self.hidden, self.feed]`)."""

    views: dict[str, dict[str, cst.CSTNode]] = field(default_factory=dict)
    gathers: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    def view_made(self, class_name: str | None, attribute: str) -> cst.CSTNode | None:
        """The assignment that sets `attribute` to a view, for objects of `class_name`."""
        return self.views.get(class_name or "", {}).get(attribute)

    def gathered(self, class_name: str | None, attribute: str) -> tuple[str, ...]:
        return self.gathers.get(class_name or "", {}).get(attribute, ())


def class_views(module: cst.Module, modules: dict[str, str]) -> ClassViews:
    """The views and gathering attributes of every class of a module. A class counts the
    assignments of its subclasses in the same file too: a base class's `detach()` runs on
    their objects. `modules` maps the names of objects built in the file to their qualified
    class (`self.proj` -> `torch.nn.Linear`), so that `out = self.proj(x)` makes `out[-1]` a
    view."""
    found = ClassViews()
    classes = [node for node in descendants([module]) if isinstance(node, cst.ClassDef)]
    for node in classes:
        views: dict[str, cst.CSTNode] = {}
        gathers: dict[str, tuple[str, ...]] = {}
        for method in _methods(node):
            tensors = _tensor_names(method, modules)
            viewed_here: set[str] = set()
            for target, value, statement in _attribute_stores(method):
                if is_view_expression(value, tensors):
                    views.setdefault(target, statement)
                    viewed_here.add(target)
                else:
                    viewed_here.discard(target)
                # A list built from attributes holds the tensors they hold at that moment: a
                # view only when this method set one before building it.
                members = tuple(m for m in _gathered(value) if m in viewed_here)
                if members:
                    gathers[target] = gathers.get(target, ()) + members
            if _is_property(method) or _takes_nothing(method):
                for returned in _returned(method):
                    members = _gathered(returned)
                    if members:
                        gathers[method.name.value] = members
        found.views[node.name.value] = views
        found.gathers[node.name.value] = gathers
    for node in classes:
        for base in _bases(node, classes):
            for subclass_fact, base_fact in (
                (found.views[node.name.value], found.views[base]),
                (found.gathers[node.name.value], found.gathers[base]),
            ):
                for key, value in subclass_fact.items():  # type: ignore[assignment]
                    base_fact.setdefault(key, value)  # type: ignore[arg-type]
    return found


def _bases(node: cst.ClassDef, classes: list[cst.ClassDef]) -> Iterator[str]:
    """The classes of the file that `node` derives from, directly or not."""
    by_name = {c.name.value: c for c in classes}
    seen: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        for base in current.bases:
            name = dotted_name(base.value)
            if name in by_name and name not in seen:
                seen.add(name)
                stack.append(by_name[name])
                yield name


def _methods(node: cst.ClassDef) -> Iterator[cst.FunctionDef]:
    for member in node.body.body:
        if isinstance(member, cst.FunctionDef):
            yield member


def _is_property(method: cst.FunctionDef) -> bool:
    return any(dotted_name(d.decorator) == "property" for d in method.decorators)


def _takes_nothing(method: cst.FunctionDef) -> bool:
    """`def states(self):`, called as `self.states()`."""
    params = method.params
    return (
        len(params.params) == 1
        and not params.posonly_params
        and not params.kwonly_params
        and not isinstance(params.star_arg, cst.Param)
        and params.star_kwarg is None
    )


def _returned(method: cst.FunctionDef) -> Iterator[cst.BaseExpression]:
    for node in descendants([method.body], stop=NESTED_SCOPES):
        if isinstance(node, cst.Return) and node.value is not None:
            yield node.value


def _attribute_stores(
    method: cst.FunctionDef,
) -> Iterator[tuple[str, cst.BaseExpression, cst.CSTNode]]:
    """(attribute, value, statement) for `self.attr = value`, element by element for
    `self.h, self.feed = h, out[-1]`."""
    for node in descendants([method.body], stop=NESTED_SCOPES):
        if isinstance(node, cst.Assign):
            for target in node.targets:
                yield from _stores(target.target, node.value, node)
        elif isinstance(node, cst.AnnAssign) and node.value is not None:
            yield from _stores(node.target, node.value, node)


def _stores(
    target: cst.BaseExpression, value: cst.BaseExpression, statement: cst.CSTNode
) -> Iterator[tuple[str, cst.BaseExpression, cst.CSTNode]]:
    attribute = own_attribute(target)
    if attribute is not None:
        yield attribute, value, statement
    elif (
        isinstance(target, (cst.Tuple, cst.List))
        and isinstance(value, (cst.Tuple, cst.List))
        and len(target.elements) == len(value.elements)
    ):
        for t, v in zip(target.elements, value.elements, strict=True):
            yield from _stores(t.value, v.value, statement)


def _gathered(value: cst.BaseExpression) -> tuple[str, ...]:
    """Attributes held as elements of a tuple or list built from `self.<attr>` names
    (`[self.h, self.feed]`, `self.hidden + (self.feed,)`: only `feed` is an element there)."""
    if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, cst.Add):
        return _gathered(value.left) + _gathered(value.right)
    if not isinstance(value, (cst.Tuple, cst.List)):
        return ()
    members = []
    for element in value.elements:
        attribute = own_attribute(element.value)
        if attribute is not None:
            members.append(attribute)
    return tuple(members)


def _tensor_names(method: cst.FunctionDef, modules: dict[str, str]) -> frozenset[str]:
    """Local names every binding of which in the method is a tensor: the output of a torch
    module built in the file (`out, h = self.rnn(x, h)`, `y = self.proj(x)`) or a view."""
    verdicts: dict[str, bool] = {}
    for node in descendants([method.body], stop=NESTED_SCOPES):
        if not isinstance(node, cst.Assign):
            continue
        for target in node.targets:
            for name, is_tensor in _bound_tensors(target.target, node.value, modules):
                verdicts[name] = verdicts.get(name, True) and is_tensor
    return frozenset(name for name, is_tensor in verdicts.items() if is_tensor)


def _bound_tensors(
    target: cst.BaseExpression, value: cst.BaseExpression, modules: dict[str, str]
) -> Iterator[tuple[str, bool]]:
    built = modules.get(dotted_name(value.func) or "") if isinstance(value, cst.Call) else None
    module, _, short = (built or "").rpartition(".")
    from_torch = module in ("torch.nn", "torch.nn.modules.rnn")
    if isinstance(target, (cst.Tuple, cst.List)):
        # `out, h = self.rnn(x, h)`: the output of a sequence module is a tensor.
        for position, element in enumerate(target.elements):
            is_output = from_torch and short in SEQUENCE_MODULES and position == 0
            for name in _names(element.value):
                yield name, is_output and isinstance(element.value, cst.Name)
        return
    name = dotted_name(target)  # type: ignore[assignment]
    if name is not None and "." not in name:
        yield name, is_view_expression(value) or (from_torch and short in TENSOR_MODULES)


def _names(node: cst.CSTNode) -> Iterator[str]:
    if isinstance(node, cst.Name):
        yield node.value
        return
    for child in children(node):
        yield from _names(child)


# ------------------------------------------------------- locals bound to a view, then detached
_BLOCK_FIELDS = ("body", "orelse", "handlers", "finalbody", "cases")


def names_bound_to_views(roots: list[cst.CSTNode]) -> dict[int, cst.BaseExpression]:
    """`h = out[:, -1].unsqueeze(0)` followed in the same block by `h.detach_()`: id of the
    `detach_` call -> the view expression. Read from the statements alone: the binding must be
    the last one of the name before the call in that block (a branch or loop that may rebind
    it, or the indexed name, in between forgets it), and the expression surely a view
    (`is_view_expression`) or basic indexing of a name (`out[-1:]`), which the caller takes
    for a view only where it knows the name holds a tensor."""
    found: dict[int, cst.BaseExpression] = {}
    _walk_block(roots, {}, found)
    return found


def _walk_block(
    statements: list[cst.CSTNode],
    outer: dict[str, cst.BaseExpression],
    found: dict[int, cst.BaseExpression],
) -> None:
    bound = dict(outer)
    for statement in statements:
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            bound.pop(statement.name.value, None)
            continue
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                _simple_statement(small, bound, found)
            continue
        # A compound statement: what it may bind is forgotten, inside and after it.
        for name in _names_bound_in(statement):
            bound.pop(name, None)
        for block in _blocks_of(statement):
            _walk_block(block, bound, found)


def _simple_statement(
    small: cst.BaseSmallStatement,
    bound: dict[str, cst.BaseExpression],
    found: dict[int, cst.BaseExpression],
) -> None:
    if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
        call = small.value
        receiver = call.func.value if isinstance(call.func, cst.Attribute) else None
        if method_name(call) == "detach_" and isinstance(receiver, cst.Name):
            view = bound.get(receiver.value)
            if view is not None:
                found[id(call)] = view
        return
    if isinstance(small, cst.Assign):
        single = len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name)
        for target in small.targets:
            for name in _target_names(target.target):
                bound.pop(name, None)
                _forget_indexing_of(name, bound)
        if single and (is_view_expression(small.value) or indexed_name(small.value)):
            bound[small.targets[0].target.value] = small.value  # type: ignore[attr-defined]
    elif isinstance(small, (cst.AugAssign, cst.AnnAssign)):
        for name in _target_names(small.target):
            bound.pop(name, None)
            _forget_indexing_of(name, bound)
    elif isinstance(small, (cst.Global, cst.Nonlocal)):
        for item in small.names:
            bound.pop(item.name.value, None)


def indexed_name(node: cst.CSTNode) -> str | None:
    """`out[-1:]`, `out[:, -1]`: basic indexing of a plain name, which is a view only when the
    name holds a tensor (the interpreter, which knows, decides). The name, else None."""
    if not isinstance(node, cst.Subscript) or not isinstance(node.value, cst.Name):
        return None
    if not all(_is_basic_index(element.slice) for element in node.slice):
        return None
    return node.value.value


def _forget_indexing_of(name: str, bound: dict[str, cst.BaseExpression]) -> None:
    """A name rebound after `last = name[-1]` may no longer be what was indexed."""
    for alias in [a for a, e in bound.items() if indexed_name(e) == name]:
        del bound[alias]


def _blocks_of(statement: cst.CSTNode) -> Iterator[list[cst.CSTNode]]:
    stack: list[cst.CSTNode] = [statement]
    while stack:
        node = stack.pop()
        for name in _BLOCK_FIELDS:
            child = getattr(node, name, None)
            if isinstance(child, (list, tuple)):
                stack.extend(child)
            elif isinstance(child, (cst.IndentedBlock, cst.SimpleStatementSuite)):
                yield list(child.body)
            elif isinstance(child, cst.CSTNode):
                stack.append(child)


def _names_bound_in(statement: cst.CSTNode) -> set[str]:
    """Plain names a compound statement may bind anywhere inside (not in nested scopes)."""
    names: set[str] = set()
    for node in descendants([statement], stop=NESTED_SCOPES):
        if isinstance(node, cst.Assign):
            for target in node.targets:
                names.update(_target_names(target.target))
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.For, cst.CompFor)):
            names.update(_target_names(node.target))
        elif isinstance(node, cst.AsName):
            names.update(_target_names(node.name))
        elif isinstance(node, cst.NamedExpr):
            names.update(_target_names(node.target))
    if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
        names.add(statement.name.value)
    return names


def _target_names(target: cst.CSTNode) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [name for element in target.elements for name in _target_names(element.value)]
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return []
