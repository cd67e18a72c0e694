"""An abstract interpreter over one unit's statements that follows recurrent state.

It runs every loop body to a fixpoint, keeps paths apart where the same condition guards a
backward and a cut (`if (t + 1) % k == 0:` twice), and records what the rules need: the value
of every state when a recurrent call reads it, the backward calls, discarded detaches, and more.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import libcst as cst

from tbptt_lint.analysis.attributes import (
    FRAMEWORK_HEADS,
    apply_call,
    find_method,
    takes_only_numbers,
)
from tbptt_lint.analysis.chunks import dedented, member_blocks, top_level_blocks
from tbptt_lint.analysis.conditions import Conditions, mentions
from tbptt_lint.analysis.context import (
    ASSUMED_CUT,
    CELL_MODULES,
    PAIR_STATE_MODULES,
    RECURRENT_MODULES,
    SUMMARY_PASSES,
    FileContext,
)
from tbptt_lint.analysis.events import (
    Accumulation,
    AliasCut,
    BackwardSite,
    DataCut,
    DiscardedDetach,
    InplaceDetachOnView,
    Loops,
    OptimizerCall,
    RecurrentCall,
    StatelessCall,
    StateRead,
    UnitEvents,
)
from tbptt_lint.analysis.index import FunctionFacts
from tbptt_lint.analysis.names import (
    dotted_name,
    is_true_literal,
    keyed_state,
    keyword_arg,
    method_name,
    own_attribute,
    target_names,
)
from tbptt_lint.analysis.records import record_arguments, record_fields, replaced_fields
from tbptt_lint.analysis.values import (
    CUT,
    FRESH_UNRELATED,
    LEAF,
    NO_GRAD,
    PARTIAL_CUT,
    RESET,
    UNKNOWN,
    Env,
    Status,
    Value,
    after_partial_cut,
    composite,
    fresh,
    join,
    join_envs,
    join_items,
    with_carried,
)
from tbptt_lint.analysis.views import (
    NO_TENSOR,
    TENSOR,
    TENSOR_PAIR,
    TUPLE,
    expression_shape,
    indexed_name,
    is_view_expression,
    names_bound_to_views,
)
from tbptt_lint.analysis.walk import NESTED_SCOPES, children, descendants, node_fact
from tbptt_lint.strict import unparsable_cut

NO_GRAD_CONTEXTS = frozenset(
    {"torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad", "torch.enable_grad"}
    # `from torch import no_grad` in a block read alone (phase 1), which sees no import.
    | {"no_grad", "inference_mode"}
)
BACKWARD_FUNCTIONS = frozenset({"torch.autograd.backward", "torch.autograd.grad"})
RESET_METHODS = frozenset({"new_zeros", "new_ones", "new_empty", "new_full", "new_tensor"})
# torch's factories build a tensor from sizes alone: new, whatever the sizes are read from
# (`torch.zeros(bs, self.hidden_size)` inside a method summarised for its callers).
RESET_FACTORIES = frozenset(
    {"torch.zeros", "torch.ones", "torch.empty", "torch.full", "torch.rand", "torch.randn"}
)
DETACHING_METHODS = frozenset({"detach", "detach_"})
# Results that are plain Python numbers: they cannot hold a graph.
SCALAR_METHODS = frozenset({"item", "tolist"})
SCALAR_FUNCTIONS = frozenset({"float", "int", "bool", "len", "str", "repr"})
# What describes a tensor without holding its values: a state sized from a batch
# (`init_state(x.shape[0])`, `torch.zeros(len(x), n)`) is made anew, not carried from `x`.
SIZE_ATTRIBUTES = frozenset({"shape", "device", "dtype", "ndim"})
SIZE_METHODS = frozenset({"size", "dim", "numel"})
SIZE_FUNCTIONS = frozenset({"len"})
# Calls that cannot run a model: a helper made only of them is arithmetic on its arguments.
ARITHMETIC_BUILTINS = frozenset(
    {"float", "int", "bool", "len", "abs", "min", "max", "round", "isinstance", "math.isfinite"}
)
ARITHMETIC_METHODS = frozenset({"item", "tolist", "detach", "size", "dim", "numel"})
NOT_ARITHMETIC = (cst.FunctionDef, cst.ClassDef, cst.Lambda, cst.Yield, cst.Raise, cst.Await)
# Tensor methods whose result holds the receiver's values (and graph, if any) and nothing of
# their arguments, which are devices, dtypes, sizes or dimensions: `h.data.cuda(device_id)`
# stays cut, whatever `device_id` is.
RECEIVER_METHODS = frozenset(
    {
        "cuda",
        "cpu",
        "to",
        "float",
        "double",
        "half",
        "bfloat16",
        "long",
        "int",
        "bool",
        "type",
        "contiguous",
        "pin_memory",
        "view",
        "reshape",
        "permute",
        "transpose",
        "squeeze",
        "unsqueeze",
        "flatten",
    }
)
# Methods of a dict that change none of its entries.
READ_ONLY_DICT_METHODS = frozenset({"items", "keys", "values", "get", "copy", "__contains__"})
ELEMENTWISE_WRAPPERS = frozenset({"tuple", "list", "set"})
NOT_RECURRENT_BUILTINS = frozenset(
    {
        "len",
        "list",
        "tuple",
        "dict",
        "set",
        "zip",
        "map",
        "filter",
        "enumerate",
        "range",
        "sorted",
        "reversed",
        "min",
        "max",
        "sum",
        "any",
        "all",
        "isinstance",
        "getattr",
        "setattr",
        "hasattr",
        "print",
        "float",
        "int",
        "str",
        "bool",
        "type",
        "iter",
        "next",
        "super",
        "round",
        "abs",
        "id",
        "repr",
        "format",
        "open",
        "vars",
        "copy",
        "deepcopy",
    }
)
# Heads of qualified names that are functions, not stateful modules.
NOT_RECURRENT_HEADS = ("numpy.", "np.", "math.", "random.", "os.", "itertools.", "functools.")
# Methods of modules, optimizers and other objects that no tensor has: their receiver is an
# object, never a state (`model, opt = amp.initialize(model, opt, ...)` rebinds no state).
OBJECT_METHODS = frozenset(
    {
        "parameters",
        "named_parameters",
        "buffers",
        "modules",
        "children",
        "state_dict",
        "load_state_dict",
        "zero_grad",
        "step",
        "train",
        "eval",
        "add_param_group",
        "register_forward_hook",
        "register_buffer",
    }
)
# Functions that hand back a function: `functools.partial(torch.Tensor.detach)`.
PARTIAL_FUNCTIONS = frozenset({"functools.partial", "partial"})
# Products of a tensor with a weight matrix: what a hand-written recurrent cell computes.
MATRIX_PRODUCTS = frozenset(
    {"torch.mm", "torch.matmul", "torch.bmm", "torch.addmm", "torch.nn.functional.linear"}
)
METHOD_CALLERS = frozenset({"operator.methodcaller", "methodcaller"})
# `isinstance(t, torch.Tensor)`, `torch.is_tensor(t)`: tests that a name is a tensor.
TENSOR_CLASSES = frozenset({"torch.Tensor", "Tensor", "torch.autograd.Variable"})
TENSOR_TESTS = frozenset({"torch.is_tensor"})
# Method names whose functions say they cut the state they are given or hold (`detach`,
# `repackage_hidden`, `detach_state`): inside such a method of a class, a detach whose result
# is thrown away is that method's bug.
CUTTING_METHOD_WORDS = ("detach", "repackage")
MAX_PATHS = 16
MAX_LOOP_PASSES = 4
# Groups of paths that enter a loop with different assumptions about a condition tested in it,
# interpreted apart; more are merged.
MAX_LOOP_GROUPS = 4
# Replay the run of a loop entered again in the state of an earlier run (run_loop) rather
# than interpret it again; off only to check that replaying changes nothing.
REPLAY_LOOP_RUNS = True


# Builtins that gather what they are given as it is: no tensor is computed.
GATHERING_BUILTINS = frozenset({"tuple", "list", "dict", "set", "zip", "sorted", "reversed"})
# Tensor methods that may hand back the tensor itself (`h.to(device)` on its own device), or
# work in place (any method ending `_`).
SELF_RETURNING_METHODS = frozenset(
    {"to", "cuda", "cpu", "contiguous", "type", "type_as", "float", "double", "half", "long"}
    | {"int", "bool", "bfloat16", "requires_grad_"}
)


def fixed_truth(test: cst.BaseExpression, truths: dict[str, bool]) -> bool | None:
    """The truth of `flag` or `not flag` for a name of `truths`; None for any other test."""
    negated = False
    while isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        negated, test = not negated, test.expression
    if isinstance(test, cst.Name) and test.value in truths:
        return truths[test.value] != negated
    return None


def constant_truth(node: cst.BaseExpression) -> int:
    """1 or 0 for `True`, `False`, `None` or a number written out; -1 for anything else."""
    if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
        return int(node.value == "True")
    if isinstance(node, (cst.Integer, cst.Float)):
        return int(float(node.value.replace("_", "")) != 0)
    return -1


def computed_anew(node: cst.BaseExpression) -> bool:
    """Whether every tensor the expression stands for is computed by it (a call, an operator),
    through tuples, lists, dicts, comprehensions, `tuple(...)` and conditional choices: run
    without gradients, such a result holds no graph. A name, an attribute or a subscript is
    handed on as it is (a name bound under `no_grad` is evaluated as what it was bound to)."""
    if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
        return all(computed_anew(e.value) for e in node.elements)
    if isinstance(node, cst.Dict):
        return all(isinstance(e, cst.DictElement) and computed_anew(e.value) for e in node.elements)
    if isinstance(node, (cst.GeneratorExp, cst.ListComp, cst.SetComp)):
        return computed_anew(node.elt)
    if isinstance(node, cst.DictComp):
        return computed_anew(node.value)
    if isinstance(node, cst.IfExp):
        return computed_anew(node.body) and computed_anew(node.orelse)
    if isinstance(node, (cst.BinaryOperation, cst.UnaryOperation)):
        return True
    if isinstance(node, cst.Call):
        if isinstance(node.func, cst.Name) and node.func.value in GATHERING_BUILTINS:
            return bool(node.args) and all(computed_anew(a.value) for a in node.args)
        if isinstance(node.func, cst.Attribute):
            method = node.func.attr.value
            return method not in SELF_RETURNING_METHODS and not method.endswith("_")
        return True
    return False


@dataclass
class ExecPath:
    """One path through the code: variable values, plus the conditions known on it."""

    env: Env
    assumptions: frozenset[tuple[str, bool]] = frozenset()


class UnitScan:
    """What walks of one unit tell, each made once when first needed: the names it uses as
    objects, and the functions it defines (or binds to lambdas)."""

    def __init__(self, unit: cst.CSTNode) -> None:
        body = unit.body if isinstance(unit, cst.FunctionDef) else unit
        self.roots = list(body.body) if isinstance(body, cst.Module) else [body]
        self._objects: set[str] | None = None
        self._functions: dict[str, cst.FunctionDef | cst.Lambda] | None = None
        self._partials: dict[str, cst.Call] = {}
        self._stored_back: dict[str, frozenset[str]] | None = None
        self._renamed: dict[str, frozenset[str]] | None = None
        self._view_detaches: dict[int, cst.BaseExpression] | None = None
        self._none_companions: dict[str, frozenset[str]] | None = None
        # Facts of the functions it defines, summarised when first called.
        self.nested_facts: dict[str, FunctionFacts] = {}
        # Function -> what it does to the names of this unit it declares `nonlocal` or
        # `global` (`shared_state_summary`), made when first called.
        self.shared_summaries: dict[str, dict[str, tuple[str | None, Value | None]]] = {}

    @property
    def none_companions(self) -> dict[str, frozenset[str]]:
        """Names set to None in one statement with each name (`ha = hc = None`, `h, c =
        None, None`): states started together, whose None test one of them stands for."""
        if self._none_companions is None:
            groups: dict[str, set[str]] = {}
            for node in descendants(self.roots, stop=(cst.FunctionDef, cst.ClassDef)):
                if not isinstance(node, cst.Assign):
                    continue
                names = _names_set_to_none(node)
                if len(names) > 1:
                    for name in names:
                        groups.setdefault(name, set()).update(names - {name})
            self._none_companions = {k: frozenset(v) for k, v in groups.items()}
        return self._none_companions

    @property
    def view_detaches(self) -> dict[int, cst.BaseExpression]:
        """`h.detach_()` calls whose local was just bound to a view (`names_bound_to_views`)."""
        if self._view_detaches is None:
            statements: list[cst.CSTNode] = []
            for root in self.roots:
                block = isinstance(root, (cst.IndentedBlock, cst.SimpleStatementSuite))
                statements.extend(root.body if block else [root])  # type: ignore[attr-defined]
            self._view_detaches = names_bound_to_views(statements)
        return self._view_detaches

    @property
    def stored_back(self) -> dict[str, frozenset[str]]:
        """Locals the unit stores, whole or cut, on an attribute: `h` -> `self.hidden` for
        `self.hidden = h.detach()` or `self.hidden = tuple(s.detach() for s in h)`, so that
        `out, h = rnn(x, self.hidden)` hands its state back to the attribute it read."""
        if self._stored_back is None:
            stored: dict[str, set[str]] = {}
            for node in descendants(self.roots, stop=(cst.FunctionDef, cst.ClassDef)):
                if not isinstance(node, cst.Assign) or len(node.targets) != 1:
                    continue
                holder = node.targets[0].target
                attribute = (
                    dotted_name(holder)
                    if isinstance(holder, cst.Attribute)
                    else keyed_state(holder)
                )
                local = handed_on(node.value) if attribute is not None else None
                if attribute is not None and local is not None:
                    stored.setdefault(local, set()).add(attribute)
            self._stored_back = {k: frozenset(v) for k, v in stored.items()}
        return self._stored_back

    @property
    def renamed(self) -> dict[str, frozenset[str]]:
        """Locals the unit hands on to another local, whole or cut: `h_new` -> `h_prev` for
        `h_prev = h_new` or `h_prev, c_prev = h_new.detach(), c_new.detach()`."""
        if self._renamed is None:
            found: dict[str, set[str]] = {}
            for node in descendants(self.roots, stop=(cst.FunctionDef, cst.ClassDef)):
                if isinstance(node, cst.Assign) and len(node.targets) == 1:
                    for name, local in _renamed_locals(node.targets[0].target, node.value):
                        found.setdefault(local, set()).add(name)
            self._renamed = {k: frozenset(v) for k, v in found.items()}
        return self._renamed

    @property
    def objects(self) -> set[str]:
        if self._objects is None:
            objects = {"self"}
            for node in descendants(self.roots, stop=(cst.FunctionDef, cst.ClassDef)):
                if not isinstance(node, cst.Call):
                    continue
                callee = dotted_name(node.func)
                if callee is not None:
                    objects.add(callee)
                if isinstance(node.func, cst.Attribute) and node.func.attr.value in OBJECT_METHODS:
                    receiver = dotted_name(node.func.value)
                    if receiver is not None:
                        objects.add(receiver)
            self._objects = objects
        return self._objects

    @property
    def functions(self) -> dict[str, cst.FunctionDef | cst.Lambda]:
        """`def f(...)` and `f = lambda ...` statements, found without entering expressions."""
        if self._functions is None:
            functions: dict[str, cst.FunctionDef | cst.Lambda] = {}
            stack = list(reversed(self.roots))
            while stack:
                node = stack.pop()
                if isinstance(node, cst.FunctionDef):
                    functions.setdefault(node.name.value, node)
                elif isinstance(node, cst.SimpleStatementLine):
                    for small in node.body:
                        if isinstance(small, cst.Assign) and isinstance(small.value, cst.Lambda):
                            for target in small.targets:
                                if isinstance(target.target, cst.Name):
                                    functions.setdefault(target.target.value, small.value)
                        elif isinstance(small, cst.Assign) and isinstance(small.value, cst.Call):
                            for target in small.targets:
                                if isinstance(target.target, cst.Name):
                                    self._partials.setdefault(target.target.value, small.value)
                elif not isinstance(node, (cst.ClassDef, cst.BaseExpression)):
                    stack.extend(reversed(list(_statement_children(node))))
            self._functions = functions
        return self._functions

    @property
    def bound_calls(self) -> dict[str, cst.Call]:
        """`f = functools.partial(...)` and other `name = call(...)` statements, found with
        `functions` (which of them bind a partial is for the caller to tell)."""
        _ = self.functions
        return self._partials


def _names_set_to_none(node: cst.Assign) -> set[str]:
    """`a = b = None` -> {a, b}; `a, b = None, None` -> {a, b}; anything else: nothing."""
    value = node.value
    if dotted_name(value) == "None":
        return {name for target in node.targets for name in target_names(target.target)}
    if len(node.targets) != 1 or not isinstance(value, (cst.Tuple, cst.List)):
        return set()
    target = node.targets[0].target
    if not isinstance(target, (cst.Tuple, cst.List)) or len(target.elements) != len(value.elements):
        return set()
    found: set[str] = set()
    for left, right in zip(target.elements, value.elements, strict=True):
        name = dotted_name(left.value)
        if name is None or dotted_name(right.value) != "None":
            return set()
        found.add(name)
    return found


def _renamed_local(value: cst.BaseExpression) -> str | None:
    """`h_new` or `h_new.detach()`: a plain local handed on as it is or cut."""
    if (
        isinstance(value, cst.Call)
        and not value.args
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value == "detach"
    ):
        value = value.func.value
    return value.value if isinstance(value, cst.Name) else None


def _renamed_locals(holder: cst.BaseExpression, value: cst.BaseExpression) -> list[tuple[str, str]]:
    """(name, local) for a state handed on by a rename: `h_prev = h_new`, `h_prev =
    h_new.detach()`, `h_prev, c_prev = h_new, c_new`; nothing for anything else."""
    if isinstance(holder, cst.Name):
        local = _renamed_local(value)
        return [(holder.value, local)] if local is not None and local != holder.value else []
    if not isinstance(holder, (cst.Tuple, cst.List)) or not isinstance(
        value, (cst.Tuple, cst.List)
    ):
        return []
    if len(holder.elements) != len(value.elements):
        return []
    pairs: list[tuple[str, str]] = []
    for left, right in zip(holder.elements, value.elements, strict=True):
        if isinstance(left, cst.StarredElement) or isinstance(right, cst.StarredElement):
            return []
        pairs += _renamed_locals(left.value, right.value)
    return pairs


def handed_on(value: cst.BaseExpression) -> str | None:
    """The one plain local an expression hands on, as it is or cut element by element: `h`,
    `h.detach()`, `repackage(h)`, `tuple(s.detach() for s in h)`, `(h[0].detach(),
    h[1].detach())`; None for anything else."""
    if isinstance(value, cst.Call) and len(value.args) == 1:
        inner = value.args[0].value
        if isinstance(inner, (cst.GeneratorExp, cst.ListComp)):
            value = inner
    if isinstance(value, (cst.GeneratorExp, cst.ListComp)):
        loop = value.for_in
        if loop.inner_for_in is None and not loop.ifs and isinstance(loop.iter, cst.Name):
            return loop.iter.value
        return None
    if isinstance(value, cst.Tuple) and value.elements:
        heads = {_subscript_head(e.value) for e in value.elements}
        return heads.pop() if len(heads) == 1 else None
    if isinstance(value, cst.Call):
        if isinstance(value.func, cst.Attribute) and not value.args:
            value = value.func.value  # `h.detach()`
        elif len(value.args) == 1 and value.args[0].keyword is None:
            value = value.args[0].value  # `repackage_hidden(h)`
    return value.value if isinstance(value, cst.Name) else None


def _subscript_head(element: cst.BaseExpression) -> str | None:
    """`h` for `h[0]` or `h[0].detach()`."""
    if isinstance(element, cst.Call) and isinstance(element.func, cst.Attribute):
        element = element.func.value
    if isinstance(element, cst.Subscript) and isinstance(element.value, cst.Name):
        return element.value.value
    return None


WINDOW_CUTS = frozenset({"detach", "detach_"})


def threads_through_windows(
    function: cst.FunctionDef,
    state: str,
    rebinds_to_cut: Callable[[cst.BaseExpression, str], bool] | None = None,
) -> bool:
    """Whether `function` runs a loop whose body steps its parameter `state` (`out, state =
    model(x, state)`), cuts it (`state.detach_()`, `state = state.detach()`, or any rebinding
    `rebinds_to_cut` vouches for: `state = repackage(state)`) and runs a backward, and returns
    `state` (alone or in a tuple): a whole pass of windows."""
    returned = False
    for node in descendants([function.body], stop=NESTED_SCOPES):
        if isinstance(node, cst.Return) and node.value is not None:
            values = node.value.elements if isinstance(node.value, cst.Tuple) else ()
            parts = [e.value for e in values] or [node.value]
            returned = returned or any(dotted_name(part) == state for part in parts)
    if not returned:
        return False
    for loop in descendants([function.body], stop=NESTED_SCOPES):
        if isinstance(loop, (cst.For, cst.While)) and _steps_cuts_and_backs(
            loop, state, rebinds_to_cut
        ):
            return True
    return False


def cuts_parameter_first(
    function: cst.FunctionDef,
    param: str,
    rebinds_to_cut: Callable[[cst.BaseExpression, str], bool],
) -> bool:
    """Whether `function` cuts its parameter `param` before reading it for anything else: the
    first statement that reads it rebinds it to a cut (`h = h.detach()`, `h =
    repackage_hidden(h)`, also under `if h is not None:`) or cuts it in place
    (`h.detach_()`), or every read of it is a cut (`out, h = gru(x, h.detach())`). A state
    passed to such a function carries no graph into it, whatever the caller did."""
    if not isinstance(function.body, cst.IndentedBlock) or not _reads(function.body, param):
        return False
    return _first_read_cuts(function.body.body, param, rebinds_to_cut)


def _reads(node: cst.CSTNode, param: str) -> bool:
    return any(
        isinstance(n, cst.Name) and n.value == param
        for n in descendants([node], stop=NESTED_SCOPES)
    )


def _only_cut_reads(node: cst.CSTNode, param: str) -> bool:
    """Every read of `param` in `node` is `param.detach()`."""
    reads = sum(
        1
        for n in descendants([node], stop=NESTED_SCOPES)
        if isinstance(n, cst.Name) and n.value == param
    )
    cuts = sum(
        1
        for n in descendants([node], stop=NESTED_SCOPES)
        if isinstance(n, cst.Call)
        and isinstance(n.func, cst.Attribute)
        and n.func.attr.value == "detach"
        and not n.args
        and isinstance(n.func.value, cst.Name)
        and n.func.value.value == param
    )
    return reads == cuts


def _first_read_cuts(
    body: Sequence[cst.BaseStatement],
    param: str,
    rebinds_to_cut: Callable[[cst.BaseExpression, str], bool],
) -> bool:
    for statement in body:
        if not _reads(statement, param):
            continue
        if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
            small = statement.body[0]
            if isinstance(small, cst.Assign):
                bound = {n for t in small.targets for n in target_names(t.target)}
                if bound == {param} and rebinds_to_cut(small.value, param):
                    return True
                if any(
                    isinstance(n, (cst.Subscript, cst.Attribute)) and _reads(n, param)
                    for t in small.targets
                    for n in descendants([t.target])
                ):
                    return False  # `h[0] = ...`, `h.x = ...`: written through, not rebound
                if _only_cut_reads(small.value, param):
                    if param in bound:
                        return True  # `out, h = gru(x, h.detach())`
                    continue  # read only cut, the parameter kept: look further
                return False
            if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
                func = small.value.func
                return (
                    isinstance(func, cst.Attribute)
                    and func.attr.value == "detach_"
                    and isinstance(func.value, cst.Name)
                    and func.value.value == param
                )
            return False
        if (
            isinstance(statement, cst.If)
            and statement.orelse is None
            and isinstance(statement.test, cst.Comparison)
            and isinstance(statement.test.left, cst.Name)
            and statement.test.left.value == param
            and len(statement.test.comparisons) == 1
            and isinstance(statement.test.comparisons[0].operator, cst.IsNot)
            and isinstance(statement.test.comparisons[0].comparator, cst.Name)
            and statement.test.comparisons[0].comparator.value == "None"
            and isinstance(statement.body, cst.IndentedBlock)
        ):
            return _first_read_cuts(statement.body.body, param, rebinds_to_cut)
        return False
    return False


def _steps_cuts_and_backs(
    loop: cst.For | cst.While,
    state: str,
    rebinds_to_cut: Callable[[cst.BaseExpression, str], bool] | None,
) -> bool:
    stepped = cut = backward = False
    for node in descendants([loop.body], stop=NESTED_SCOPES):
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            method = node.func.attr.value
            backward = backward or method == "backward"
            cut = cut or (method in WINDOW_CUTS and dotted_name(node.func.value) == state)
        elif isinstance(node, cst.Assign):
            bound = {n for t in node.targets for n in target_names(t.target)}
            if isinstance(node.value, cst.Call):
                args = node.value.args
                passed = {n for arg in args for n, _ in arg_state_names(arg.value)}
                stepped = stepped or (state in bound and state in passed and len(args) > 1)
            cut = cut or (
                bound == {state}
                and rebinds_to_cut is not None
                and rebinds_to_cut(node.value, state)
            )
    return stepped and cut and backward


def _statement_children(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """The blocks and statements under a compound statement or block (no expressions)."""
    for name in ("body", "orelse", "handlers", "finalbody", "cases"):
        child = getattr(node, name, None)
        if isinstance(child, (list, tuple)):
            yield from child
        elif isinstance(child, cst.CSTNode):
            yield child


@dataclass
class LoopFrame:
    node: cst.CSTNode
    continues: list[Env] = field(default_factory=list)
    breaks: list[Env] = field(default_factory=list)


def _value_key(value: Value) -> tuple[object, ...]:
    """Every field of a value, the ones equality leaves out (origin, backwards, sources)
    included: two values with the same key are the same to every rule."""
    elements = None if value.elements is None else tuple(_value_key(e) for e in value.elements)
    return (
        value.status,
        value.how,
        id(value.origin),
        value.backwards,
        value.via_data,
        elements,
        value.sources,
        value.carried,
        None if value.item is None else _value_key(value.item),
    )


def _env_key(env: Env) -> frozenset[tuple[str, tuple[object, ...]]]:
    return frozenset((name, _value_key(value)) for name, value in env.items())


@dataclass(frozen=True)
class InterpreterState:
    aliases: frozenset[tuple[str, str]]
    unpacked: frozenset[tuple[str, tuple[str, tuple[str, ...]]]]
    keyed_bases: frozenset[str]
    binding_guard: frozenset[str]
    indexed_states: frozenset[str]
    tensor_names: frozenset[str]
    element_names: frozenset[str]
    no_grad_depth: int
    partial_index_cuts: frozenset[tuple[str, frozenset[int]]]


@dataclass
class LoopRun:
    """What one run of a loop did, kept to be replayed when the same loop is entered again
    in the same state (a nested loop, met again on every pass of the loops around it): the
    paths after it, the interpreter's own state after it, the returns it made and the
    cut copies it found written back."""

    result: list[ExecPath]
    after: InterpreterState
    returns: list[tuple[cst.CSTNode, Env]]
    return_values: list[Value]
    written_back: list[tuple[list[str], cst.BaseExpression]]


@dataclass
class LoopRecording:
    """Effects a loop run has while it is recorded, besides those on its paths and the
    interpreter's state, which a replay has to make again."""

    written_back: list[tuple[list[str], cst.BaseExpression]] = field(default_factory=list)


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def names_in(node: cst.CSTNode) -> set[str]:
    """Dotted names read anywhere inside an expression."""
    return set(node_fact("names_in", node, _names_in))


def _names_in(node: cst.CSTNode) -> frozenset[str]:
    found: set[str] = set()
    stack: list[cst.CSTNode] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (cst.Name, cst.Attribute)):
            dotted = dotted_name(current)
            if dotted is not None:
                parts = dotted.split(".")
                found.update(".".join(parts[: i + 1]) for i in range(len(parts)))
                if isinstance(current, cst.Attribute):
                    continue
        stack.extend(children(current))
    return frozenset(found)


def _calls_in(expression: cst.CSTNode) -> tuple[cst.Call, ...]:
    stack: list[cst.CSTNode] = [expression]
    found: list[cst.Call] = []
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.Lambda, cst.FunctionDef)):
            continue
        if isinstance(node, cst.Call):
            found.append(node)
        stack.extend(reversed(list(children(node))))
    # Inner calls run before the calls that take their results.
    return tuple(reversed(found))


def arg_state_names(value: cst.BaseExpression) -> list[tuple[str, cst.BaseExpression]]:
    """Names an argument passes whole: `h`, `(h, c)`, `[h, c]`, or `h.detach()`-like wrappers
    of one name, each with the expression that carries it."""
    dotted = dotted_name(value) or keyed_state(value)
    if dotted is not None:
        return [(dotted, value)]
    if isinstance(value, (cst.Tuple, cst.List)):
        found: list[tuple[str, cst.BaseExpression]] = []
        for element in value.elements:
            found.extend(arg_state_names(element.value))
        return found
    if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
        inner = dotted_name(value.func.value)
        if inner is not None:
            return [(inner, value)]
    if isinstance(value, cst.Call) and len(value.args) == 1:
        inner = dotted_name(value.args[0].value)
        if inner is not None:
            return [(inner, value)]
    return []


def indexed_containers(target: cst.BaseExpression) -> set[str]:
    """`self.states` for a target `self.states[i]` (or `x, (h[l], c[l])`): containers an
    assignment stores into by an index that is no constant string key."""
    if isinstance(target, (cst.Tuple, cst.List)):
        return {name for e in target.elements for name in indexed_containers(e.value)}
    if isinstance(target, cst.StarredElement):
        return indexed_containers(target.value)
    if isinstance(target, cst.Subscript) and keyed_state(target) is None:
        base = dotted_name(target.value)
        if base is not None:
            return {base}
    return set()


def indexed_state_args(
    value: cst.BaseExpression, containers: set[str]
) -> list[tuple[str, cst.BaseExpression]]:
    """`arg_state_names`, with an element of one of `containers` (`self.states[i]`) passing
    that container: a per-layer state read from the list the call's result goes back into."""
    if isinstance(value, (cst.Tuple, cst.List)):
        found: list[tuple[str, cst.BaseExpression]] = []
        for element in value.elements:
            found.extend(indexed_state_args(element.value, containers))
        return found
    if containers and isinstance(value, cst.Subscript) and keyed_state(value) is None:
        base = dotted_name(value.value)
        if base in containers:
            return [(base, value)]
    return arg_state_names(value)


class UnitInterpreter:
    def __init__(
        self,
        unit: cst.CSTNode,
        context: FileContext,
        *,
        class_name: str | None = None,
        summarising: Sequence[str] = (),
    ) -> None:
        self._record_fields: dict[str, tuple[str, ...] | None] = {}
        self.unit = unit
        self.context = context
        self.class_name = class_name
        self.events = UnitEvents(unit, class_name)
        self.loop_stack: list[LoopFrame] = []
        self.no_grad_depth = 0
        # Set while summarising a function: its parameters start as INPUT.
        self.summarising = tuple(summarising)
        self.return_values: list[Value] = []
        self.final_env: Env = {}
        # Local copies of state: `h` -> `hidden` after `h, c = hidden` or `for h in hidden`.
        self.aliases: dict[str, str] = {}
        # `h` -> (`hidden`, (`h`, `c`)) after `h, c = hidden`.
        self.unpacked: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._recurrent_cache: dict[int, RecurrentCall | None] = {}
        # Names taken to be tensors: the parameter of a function handed to a mapper, to learn
        # whether it cuts the tensors it is applied to (`isinstance(t, torch.Tensor)` holds).
        self.tensor_names: frozenset[str] = frozenset()
        self.binding_guard: set[str] = set()
        # Names of the elements a comprehension maps over.
        self.element_names: frozenset[str] = frozenset()
        # A state class's own cutting method, in a file that works with torch (a stream's
        # `detach()` hands back its raw stream, and throwing that away is no bug).
        self.cutting_method = _is_cutting_method(unit, class_name) and any(
            name == "torch" or name.startswith("torch.")
            for name in context.imports.aliases.values()
        )

        # Calls of modules that keep state on themselves, apart: `out = model(x)` is such a
        # call, and must not be taken for a recurrent call of the assignment's own names.
        self._module_state_cache: dict[int, RecurrentCall] = {}
        # State on attributes (attributes.py): the env at every return, whether the body can
        # end without one, the object whose attributes a summarised method sets, and the
        # attribute states recurrent calls read so far.
        self.return_envs: list[tuple[cst.CSTNode, Env]] = []
        self.fell_through = False
        self.effects_receiver: str | None = None
        self.attribute_state_cache: tuple[int, frozenset[str]] = (0, frozenset())
        self.conditions = Conditions()
        # Parameters taken to hold a constant truth (a helper read once per value of a flag
        # it tests, `return h if keep_graph else h.detach()`): see summaries.flag_cut.
        self.fixed_truths: dict[str, bool] = {}
        # Locals with entries followed under constant keys (`state["h"]`): reading the local
        # whole reads those entries too.
        self.keyed_bases: set[str] = set()
        # While a recurrent call binds its result: its states, whose parts it may store into.
        self.indexed_states: set[str] = set()
        # The subscript stores that cut only part of a list by index, per list name.
        self.partial_index_cuts: dict[str, set[int]] = {}
        # Runs of loops, by loop and the whole state they were entered in (run_loop): a
        # nested loop is entered again on every pass of each loop around it, mostly in the
        # same state, and replaying its run keeps the work from growing with 4**depth.
        self.loop_runs: dict[tuple[object, ...], LoopRun] = {}
        self.loop_recordings: list[LoopRecording] = []

    # ----------------------------------------------------------------- objects
    @property
    def object_names(self) -> set[str]:
        """Names the unit uses as objects, never as tensors: what it calls (`model(x, h)`),
        the receivers of module or optimizer methods (`optimizer.step()`), `self`."""
        return self.scan().objects

    def scan(self) -> UnitScan:
        """What one walk of the unit tells, shared by every interpreter of the same unit."""
        return self.scan_of(self.unit)

    def scan_of(self, unit: cst.CSTNode) -> UnitScan:
        cached = self.context.unit_scans.get(id(unit))
        if cached is None or cached[0] is not unit:
            cached = (unit, UnitScan(unit))
            self.context.unit_scans[id(unit)] = cached
        return cached[1]  # type: ignore[return-value]

    def visible_function(self, name: str) -> tuple[UnitScan, cst.FunctionDef | cst.Lambda] | None:
        """A function (or bound lambda) defined in this unit or, for a nested function, in a
        function around it (`def detach_all(h)` in `main`, called by `run_epoch` beside it),
        with the scan of the unit that defines it; the nearest definition wins."""
        unit: cst.CSTNode | None = self.unit
        while unit is not None:
            scan = self.scan_of(unit)
            found = scan.functions.get(name)
            if found is not None:
                return scan, found
            unit = (
                self.context.enclosing_function(unit) if isinstance(unit, cst.FunctionDef) else None
            )
        return None

    def visible_def(self, name: str) -> cst.FunctionDef | cst.Lambda | None:
        found = self.visible_function(name)
        return found[1] if found is not None else None

    def is_object(self, name: str | None) -> bool:
        return name is not None and name in self.object_names

    # ----------------------------------------------------------------- driving
    def run(self, body: Sequence[cst.CSTNode], entry: Env | None = None) -> UnitEvents:
        env: Env = {name: Value(Status.INPUT) for name in self.summarising}
        env.update(entry or {})
        self.return_envs = []
        ends = self.exec_block(body, [ExecPath(env)])
        self.fell_through = bool(ends)
        self.final_env = self.merge(ends).env if ends else {}
        return self.events

    @property
    def loops(self) -> Loops:
        return tuple(frame.node for frame in self.loop_stack)

    def exec_block(self, body: Sequence[cst.CSTNode], paths: list[ExecPath]) -> list[ExecPath]:
        for statement in body:
            if not paths:
                break
            paths = self.exec_statement(statement, paths)
        return paths

    def exec_statement(self, statement: cst.CSTNode, paths: list[ExecPath]) -> list[ExecPath]:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                paths = [p for path in paths for p in self.exec_small(small, path)]
            return paths
        if isinstance(statement, cst.BaseSmallStatement):
            # The body of a one-line suite (`if h is not None: h.detach_()`), common in
            # notebooks: its statements run as the lines of an indented block would.
            return [p for path in paths for p in self.exec_small(statement, path)]
        if isinstance(statement, cst.If):
            return self.exec_if(statement, paths)
        if isinstance(statement, (cst.For, cst.While)):
            return self.exec_loop(statement, paths)
        if isinstance(statement, cst.With):
            return self.exec_with(statement, paths)
        if isinstance(statement, cst.Try):
            return self.exec_try(statement, paths)
        if isinstance(statement, cst.Match):
            merged = self.merge(paths)
            results = [
                p
                for case in statement.cases
                for p in self.exec_block(case.body.body, [ExecPath(dict(merged.env))])
            ]
            return [self.merge(results + [merged])]
        # Nested functions and classes are units of their own.
        return paths

    @staticmethod
    def merge(paths: list[ExecPath]) -> ExecPath:
        env: Env | None = None
        for path in paths:
            env = join_envs(env, path.env)
        return ExecPath(env or {})

    def limit(self, paths: list[ExecPath]) -> list[ExecPath]:
        if len(paths) <= MAX_PATHS:
            return paths
        return [self.merge(paths)]

    # ------------------------------------------------------------ statements
    def exec_small(self, small: cst.BaseSmallStatement, path: ExecPath) -> list[ExecPath]:
        env = dict(path.env)
        if isinstance(small, cst.Assign):
            self.exec_assign(small, [t.target for t in small.targets], small.value, env)
        elif isinstance(small, cst.AnnAssign) and small.value is not None:
            self.exec_assign(small, [small.target], small.value, env)
        elif isinstance(small, cst.AugAssign):
            self.exec_aug_assign(small, env)
        elif isinstance(small, cst.Expr):
            self.exec_expression_statement(small.value, env)
        elif isinstance(small, cst.Return):
            if small.value is not None and dotted_name(small.value) != "None":
                self.scan_calls(small.value, env)
                self.return_values.append(self.evaluate_returned(small.value, env))
            self.return_envs.append((small, env))
            return []
        elif isinstance(small, cst.Continue):
            if self.loop_stack:
                self.loop_stack[-1].continues.append(env)
            return []
        elif isinstance(small, cst.Break):
            if self.loop_stack:
                self.loop_stack[-1].breaks.append(env)
            return []
        elif isinstance(small, cst.Raise):
            return []
        assigned = self.assigned_names(small)
        assumptions = frozenset(
            (text, truth)
            for text, truth in path.assumptions
            if not any(mentions(text, name) for name in assigned)
        )
        return [ExecPath(env, assumptions)]

    @staticmethod
    def assigned_names(small: cst.BaseSmallStatement) -> set[str]:
        if isinstance(small, cst.Assign):
            return {n for t in small.targets for n in target_names(t.target)}
        if isinstance(small, (cst.AnnAssign, cst.AugAssign)):
            return set(target_names(small.target))
        return set()

    def exec_assign(
        self,
        statement: cst.CSTNode,
        targets: list[cst.BaseExpression],
        value: cst.BaseExpression,
        env: Env,
    ) -> None:
        recurrent = None
        if isinstance(value, cst.Call) and len(targets) == 1:
            recurrent = self.recurrent_call(statement, targets[0], value)
        if recurrent is not None:
            self.exec_recurrent_call(recurrent, targets[0], env)
            return
        if isinstance(value, cst.Call) and len(targets) == 1:
            self.note_stateless_call(value, targets[0], env)
        self.scan_calls(value, env)
        result = self.evaluate(value, env)
        if isinstance(value, cst.Call) and len(targets) == 1:
            result = self.with_returned_cuts(value, targets[0], result)
            if result.has_graph and self.rebinds_through_unknown(value, targets[0], env):
                result = UNKNOWN
        carried = self.carried_marks(value, result, env)
        fields = self.record_values(value, env) if isinstance(value, cst.Call) else None
        for target in targets:
            if isinstance(target, cst.Subscript) and keyed_state(target) is None:
                # `state[k] = state[k].detach()` under a key the analysis cannot read: what
                # was known of `state["h"]` no longer holds.
                self.forget_keyed(dotted_name(target.value), env)
                self.assign_subscript(target, result, env)
            else:
                self.note_alias(target, value, result)
                self.bind(target, result, env)
                if fields is not None and isinstance(target, cst.Name):
                    # `state = State(h, c)`: each field followed as a name of its own.
                    for field_name, field_value in fields.items():
                        env[f"{target.value}.{field_name}"] = field_value
                self.note_unpacked(target, value)
                if carried:
                    self.mark_carried(target, carried, env)
            self.note_accumulation(statement, target, value, env)

    def record_class_fields(self, call: cst.Call) -> tuple[str, ...] | None:
        """The fields of the dataclass or NamedTuple of this file a call constructs."""
        callee = dotted_name(call.func)
        node = self.context.class_defs.get(callee) if callee is not None else None
        if callee is None or node is None or not self.context.source:
            return None
        if callee not in self._record_fields:
            self._record_fields[callee] = record_fields(
                node, self.context.imports, self.context.source
            )
        return self._record_fields[callee]

    def record_parts(
        self, call: cst.Call
    ) -> tuple[str | None, list[tuple[str, cst.BaseExpression]]] | None:
        """(the object copied or None, (field, expression) given) for `State(h, c)`,
        `s._replace(h=e)` or `dataclasses.replace(s, h=e)`; None for any other call."""
        fields = self.record_class_fields(call)
        if fields is not None:
            given = record_arguments(call, fields)
            return (None, given) if given is not None else None
        return replaced_fields(call, self.context.imports.qualify(dotted_name(call.func)))

    def record_values(self, call: cst.Call, env: Env) -> dict[str, Value] | None:
        """What each field of the record a call makes holds, before the name is bound."""
        parts = self.record_parts(call)
        if parts is None:
            return None
        source, given = parts
        values: dict[str, Value] = {}
        if source is not None:
            prefix = source + "."
            known = {k[len(prefix) :]: v for k, v in env.items() if k.startswith(prefix)}
            if not known:
                return None  # a record whose fields are not followed
            values.update({k: v for k, v in known.items() if "." not in k and "[" not in k})
        for field_name, expression in given:
            values[field_name] = self.evaluate(expression, env)
        return values

    @cached_property
    def record_renames(self) -> dict[str, set[str]]:
        """Locals the unit stores in a field of a record it binds: `h` -> `state.h` for
        `state = State(h, c)` or `state = state._replace(h=h.detach())`."""
        found: dict[str, set[str]] = {}
        for node in descendants(self.scan().roots, stop=(cst.FunctionDef, cst.ClassDef)):
            if not isinstance(node, cst.Assign) or len(node.targets) != 1:
                continue
            target = node.targets[0].target
            if not isinstance(target, cst.Name) or not isinstance(node.value, cst.Call):
                continue
            parts = self.record_parts(node.value)
            for field_name, expression in parts[1] if parts is not None else ():
                local = _renamed_local(expression)
                if local is not None:
                    found.setdefault(local, set()).add(f"{target.value}.{field_name}")
        return found

    def rebinds_through_unknown(self, call: cst.Call, target: cst.BaseExpression, env: Env) -> bool:
        """`hidden = repackage_hidden(hidden)` with the function imported from outside the run,
        `hidden = model.repackage(hidden)` on an object of a class the run does not define:
        a name rebound to what a body the analysis cannot read makes of it alone. Such a
        rebinding is how states get cut, so whether it keeps the graph cannot be told: the
        value is unknown, which no rule reports on."""
        name = dotted_name(target)
        positional = [arg for arg in call.args if arg.keyword is None]
        if not self.context.source or name is None or len(positional) != 1 or positional[0].star:
            return False  # (no source: a summary of the file, before what it imports is known)
        callee = dotted_name(call.func)
        if callee is None or dotted_name(positional[0].value) != name:
            return False
        qualified = self.context.imports.qualify(callee) or callee
        if qualified.startswith(FRAMEWORK_HEADS):
            return False
        facts = self.resolved_facts(callee, env)
        if facts:
            # A body the run holds, which detaches something but is not known to hand back
            # a cut (`state["h"] = state["h"].detach(); return state`; or a class that cuts
            # beside a base that hands the state back as it is): whether it cuts is unknown.
            return not any(f.returns_cut for f in facts) and any(f.detaches for f in facts)
        if not isinstance(call.func, cst.Attribute):
            if self.defined_function(callee) is not None or self.visible_def(callee) is not None:
                return False
            if callee in self.context.imports.aliases:
                return self.outside_run(qualified)
            # A name no import binds: a builtin, or one a star import may bring.
            return bool(self.context.imports.star_modules) and not hasattr(builtins, callee)
        receiver = dotted_name(call.func.value)
        if receiver is None or receiver == "self" or self.context.construction_of(callee):
            return False  # `self.norm(h)`, `self.cell(h)`: a module of the object, called
        held = env.get(receiver)
        if held is not None and held.has_graph:
            return False  # a tensor's own method: `h.to(device)`
        if receiver.split(".")[0] in self.context.imports.aliases:
            return self.outside_run(qualified)  # `utils.repackage(h)`: a module's function
        # Only an object built from a class imported from outside the run: one of unknown
        # class may be of any class of the run, and a method none of them has is no cut.
        built = self.context.construction_of(receiver)
        qualified_class = built.qualified_class if built is not None else ""
        if "." not in qualified_class or qualified_class.startswith(FRAMEWORK_HEADS):
            return False  # unknown, this file's own (or a star import's), or torch's
        short = qualified_class.rsplit(".", 1)[-1]
        if short in self.context.class_defs or self.context.mentions(f"class {short}"):
            return False
        return self.outside_run(qualified_class)

    def outside_run(self, qualified: str) -> bool:
        """Whether `pkg.mod.name` is defined by no file of the run."""
        index = self.context.index
        return index is None or index.lookup(qualified) is None

    def note_stateless_call(self, call: cst.Call, target: cst.BaseExpression, env: Env) -> None:
        """`out, h = gru(x)` or `gru(x, None)`: a torch recurrent module that starts from zeros
        while its new state is bound (TBP015 asks whether a cut state was meant to go in)."""
        built = self.context.construction_of(dotted_name(call.func))
        if built is None or built.qualified_class not in RECURRENT_MODULES:
            if not self.model_starts_from_zeros(call):
                return
            if not isinstance(target, (cst.Tuple, cst.List)) or len(target.elements) != 2:
                return
            states = target_names(target.elements[1].value)
        elif not state_left_out(call):
            return
        elif built.qualified_class in CELL_MODULES:
            states = target_names(target)
        elif isinstance(target, (cst.Tuple, cst.List)) and len(target.elements) == 2:
            states = target_names(target.elements[1].value)
        else:
            return
        # `out, _ = gru(x)`: `_` names what is thrown away, not a state left out.
        states = [name for name in states if name.strip("_")]
        if not states:
            return
        before = {name: env[name] for name in states if name in env}
        event = StatelessCall(call, tuple(states), before, self.loops, bool(self.no_grad_depth))
        self.events.add("stateless_calls", call, event)
        for recorded in self.events.stateless_calls:
            if recorded.call is call and recorded is not event:
                for name, value in before.items():
                    recorded.before[name] = join(recorded.before.get(name), value) or value

    def model_starts_from_zeros(self, call: cst.Call) -> bool:
        """`net(x)` on a model of the file whose `forward(self, x, h=None)` hands `h` to a
        torch recurrent module as its state and hands back that module's new state: the
        module's result whole (`return self.gru(x, h)`), or, in a forward of plain
        assignments, the new state last beside what it makes of the output (`e =
        self.embed(x)`, `out, h_new = self.gru(e, h)`, `return self.head(out), h_new`). A
        call that leaves `h` out starts from zeros, as `gru(x)` does. A forward that does
        anything else with the state (falls back to one kept on `self` under an `if`, reads it
        again) is not read."""
        callee = dotted_name(call.func)
        class_name = self.context.class_of(callee, self.class_name) if callee else None
        if class_name is None:
            return False
        forward = parsed_method(self.context, class_name, "forward")
        if forward is None:
            return False
        state_name = self.forward_state_parameter(class_name, forward)
        if state_name is None:
            return False
        params = list(forward.params.params)[1:]
        index = next((i for i, p in enumerate(params) if p.name.value == state_name), None)
        if index is None or dotted_name(params[index].default or cst.Name("x")) != "None":
            return False
        if any(arg.star for arg in call.args):
            return False
        given = [arg for arg in call.args if arg.keyword is None]
        named = [arg for arg in call.args if arg.keyword is not None]
        if len(given) > index:
            return dotted_name(given[index].value) == "None"
        left = [arg for arg in named if arg.keyword.value == state_name]  # type: ignore[union-attr]
        return not left or dotted_name(left[0].value) == "None"

    def forward_state_parameter(self, class_name: str, forward: cst.FunctionDef) -> str | None:
        """The parameter of `forward` that is the state of its one torch recurrent module,
        when the forward hands that module's new state back (see model_starts_from_zeros)."""
        smalls: list[cst.BaseSmallStatement] = []
        for line in forward.body.body:
            if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
                return None
            smalls.append(line.body[0])
        if not smalls:
            return None
        returned = smalls[-1]
        if not isinstance(returned, cst.Return) or returned.value is None:
            return None
        assigns = [small for small in smalls[:-1] if isinstance(small, cst.Assign)]
        if len(assigns) != len(smalls) - 1:
            return None
        modules = RECURRENT_MODULES - CELL_MODULES
        inner: cst.Call | None = None
        for node in descendants(smalls, stop=NESTED_SCOPES):
            if (
                isinstance(node, cst.Call)
                and isinstance(node.func, cst.Attribute)
                and self.module_built_in_init(class_name, dotted_name(node.func)) in modules
            ):
                if inner is not None:
                    return None  # two recurrent modules: not read
                inner = node
        if inner is None:
            return None
        positional = [arg.value for arg in inner.args if arg.keyword is None]
        keywords = {arg.keyword.value: arg.value for arg in inner.args if arg.keyword is not None}
        if any(arg.star for arg in inner.args) or len(positional) > 2 or set(keywords) - {"hx"}:
            return None
        state = positional[1] if len(positional) == 2 else keywords.get("hx")
        state_name = dotted_name(state) if isinstance(state, cst.Name) else None
        if state_name is None:
            return None
        # The state is read by the module's call alone and never bound again.
        reads = [
            node
            for node in descendants(smalls, stop=NESTED_SCOPES)
            if isinstance(node, cst.Name) and node.value == state_name
        ]
        if len(reads) != 1 or reads[0] is not state:
            return None
        if returned.value is inner:
            return state_name
        holder = next((assign for assign in assigns if assign.value is inner), None)
        if holder is None or len(holder.targets) != 1:
            return None
        target = holder.targets[0].target
        if not isinstance(target, cst.Tuple) or len(target.elements) != 2:
            return None
        new_state = target.elements[1].value
        handed = returned.value
        if not (
            isinstance(new_state, cst.Name)
            and isinstance(handed, cst.Tuple)
            and len(handed.elements) == 2
            and isinstance(handed.elements[1].value, cst.Name)
            and handed.elements[1].value.value == new_state.value
        ):
            return None
        bound = [
            name for assign in assigns for t in assign.targets for name in target_names(t.target)
        ]
        if bound.count(new_state.value) != 1:
            return None
        return state_name

    def module_built_in_init(self, class_name: str, attribute: str | None) -> str | None:
        """The qualified class `self.gru = nn.GRU(...)` in the class's `__init__` builds."""
        init = parsed_method(self.context, class_name, "__init__")
        if init is None or attribute is None or not attribute.startswith("self."):
            return None
        built = None
        for node in descendants([init.body], stop=(cst.FunctionDef, cst.ClassDef)):
            if isinstance(node, cst.Assign) and any(
                dotted_name(t.target) == attribute for t in node.targets
            ):
                if built is not None or not isinstance(node.value, cst.Call):
                    return None  # bound twice, or to something else
                built = self.context.imports.qualify(dotted_name(node.value.func))
        return built

    def carried_marks(
        self, expression: cst.BaseExpression, result: Value, env: Env
    ) -> frozenset[cst.CSTNode]:
        """The loops from an earlier pass of which `expression`'s value may come: those of
        the names it is computed from (`h.detach()` carries `h` on), none when it makes its
        value anew (`init_hidden(b)`, `None`, `h.new_zeros(...)`)."""
        if not _holds_state(result):
            return frozenset()
        marks = result.carried
        if result.status != Status.FRESH:
            return marks  # read through names, joins keep their marks
        for name in names_in(expression):
            value = env.get(name)
            if value is not None and value.carried:
                marks = marks | value.carried
        return marks

    @staticmethod
    def mark_carried(target: cst.BaseExpression, carried: frozenset[cst.CSTNode], env: Env) -> None:
        for name in target_names(target):
            value = env.get(name)
            if value is not None and _holds_state(value):
                env[name] = with_carried(value, carried)

    def note_alias(
        self, target: cst.BaseExpression, value: cst.BaseExpression, result: Value
    ) -> None:
        """`h, c = hidden` makes local copies of a state; `h = h.detach()` then cuts the copy
        only, which TBP003 reports when `hidden` itself is never cut."""
        names = target_names(target)
        self.note_written_back(names, value)
        source = self.subscript_base(value)
        if source is not None and source not in names:
            for name in names:
                self.aliases[name] = source
            return
        is_cut = result.status == Status.FRESH and result.how == CUT and result.origin is not None
        if len(names) == 1 and names[0] in self.aliases and is_cut:
            cut = AliasCut(result.origin, names[0], self.aliases[names[0]])  # type: ignore[arg-type]
            self.events.add("alias_cuts", result.origin, cut)  # type: ignore[arg-type]

    def note_unpacked(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        """`h, c = hidden`: the names are the very tensors of `hidden`, so detaching each of
        them in place detaches `hidden`."""
        source = dotted_name(value)
        if source is None or not isinstance(target, (cst.Tuple, cst.List)):
            return
        elements = [e.value for e in target.elements]
        if not all(isinstance(e, cst.Name) for e in elements):
            return
        group = tuple(e.value for e in elements)  # type: ignore[attr-defined]
        for name in group:
            self.unpacked[name] = (source, group)

    def cut_unpacked_source(
        self, name: str, before: Value | None, call: cst.Call, env: Env
    ) -> None:
        """After `name.detach_()`: when `name` still held its part of the state it was unpacked
        from, and every other part was detached in place too, the state is cut."""
        source, group = self.unpacked.get(name, (None, ()))
        current = env.get(source) if source is not None else None
        if before is None or current is None or before.origin is not current.origin:
            return
        if all(
            other == name
            or (
                self.unpacked.get(other, (None,))[0] == source
                and other in env
                and env[other].status == Status.FRESH
                and isinstance(env[other].origin, cst.Call)
                and method_name(env[other].origin) == "detach_"  # type: ignore[arg-type]
            )
            for other in group
        ):
            env[source] = with_carried(fresh(CUT, call), current.carried)  # type: ignore[index]

    def note_written_back(self, names: list[str], value: cst.BaseExpression) -> None:
        """`hidden = (h, c)` after `h = h.detach()` writes the cut copy back: whatever `hidden`
        still leaks is then the uncut `c` (TBP002), not a copy cut in vain."""
        for recording in self.loop_recordings:
            recording.written_back.append((names, value))
        read = names_in(value)
        kept = [
            cut for cut in self.events.alias_cuts if not (cut.state in names and cut.alias in read)
        ]
        if len(kept) != len(self.events.alias_cuts):
            self.events.alias_cuts[:] = kept

    def bind(self, target: cst.BaseExpression, value: Value, env: Env) -> None:
        if isinstance(target, (cst.Tuple, cst.List)):
            elements = [e.value for e in target.elements]
            if value.elements is not None and len(value.elements) == len(elements):
                for element, element_value in zip(elements, value.elements, strict=False):
                    self.bind(element, element_value, env)
            else:
                part = replace(value, elements=None) if value.elements is not None else value
                for element in elements:
                    self.bind(element, part, env)
            return
        if isinstance(target, cst.StarredElement):
            self.bind(target.value, value, env)
            return
        if isinstance(target, cst.Subscript) and keyed_state(target) is None:
            # `self.states[i] = layer(x, self.states[i])`: one part of the list replaced.
            base = dotted_name(target.value)
            if base is not None and base in self.indexed_states:
                current = env.get(base)
                part = replace(value, elements=None)
                if current is not None:
                    part = join(replace(current, elements=None, item=None), part) or part
                env[base] = part
            return
        name = dotted_name(target) or keyed_state(target)
        if name is None:
            return
        self.unpacked.pop(name, None)  # rebound: no longer a part of the state it came from
        if self.no_grad_depth and value.status != Status.FRESH:
            value = with_carried(fresh(NO_GRAD, value.origin), value.carried)
        if value.has_graph and self.is_object(name):
            value = UNKNOWN  # a module or optimizer holds no state of its own here
        if value.status == Status.FRESH and value.via_data and value.origin is not None:
            self.events.add("data_cuts", value.origin, DataCut(value.origin, name))
        env[name] = value
        # Rebinding `h` forgets what was known of `h.x` (and of `h["x"]`).
        for key in [k for k in env if k.startswith((name + ".", name + "["))]:
            del env[key]
        if "[" in name:
            self.keyed_bases.add(name.split("[", 1)[0])

    def assign_subscript(self, target: cst.Subscript, value: Value, env: Env) -> None:
        """`hidden[i] = hidden[i].detach()`: a cut of every element when it runs for every
        index of a loop over the container, a partial cut otherwise."""
        container = dotted_name(target.value)
        if container is None or container not in env:
            return
        current = env[container]
        if (
            value.status == Status.PARTIAL
            and value.elements is not None
            and current.status in (Status.STALE, Status.PARTIAL)
            and current.elements is None
            and self.subscript_covers_all(target)
        ):
            # `states[k] = (h.detach(), c)` for every layer: each element partly cut.
            env[container] = replace(current, status=Status.PARTIAL, item=value)
            return
        if value.status != Status.FRESH:
            return
        if current.status == Status.INPUT:
            # A summarised function's parameter (`def detach_all(states): for k in
            # range(len(states)): states[k] = states[k].detach()`): every element replaced by
            # a cut cuts the caller's list in place; a part of it tells the summary nothing.
            if self.subscript_covers_all(target):
                env[container] = with_carried(replace(value, elements=None), current.carried)
            return
        sites = self.partial_index_cuts.setdefault(container, set())
        if current.status == Status.PARTIAL and current.item is None and sites - {id(target)}:
            # Another store cuts more of a list already cut in part by index (`states[0]`
            # after `range(1, len(states))`): whether every index is now cut cannot be told.
            env[container] = UNKNOWN
            return
        # Cutting part of a container matters only once a backward has consumed its graph.
        if current.status != Status.STALE:
            return
        coverage = self.subscript_coverage(target)
        if coverage == ALL_INDICES:
            env[container] = replace(value, elements=None)
        elif coverage == SOME_INDICES:
            sites.add(id(target))
            env[container] = replace(current, status=Status.PARTIAL, elements=None)
        else:
            env[container] = UNKNOWN

    def subscript_covers_all(self, target: cst.Subscript) -> bool:
        return self.subscript_coverage(target) == ALL_INDICES

    def subscript_coverage(self, target: cst.Subscript) -> str:
        """Whether `states[k]` in the innermost loop reaches every index of `states`
        (ALL_INDICES: `for k in range(len(states))`, `enumerate(states)`, a stop of unknown
        value), only some (SOME_INDICES: a constant index, `range(1, len(states))`, `range(0,
        n, 2)`, `range(len(states) - 1)`), or cannot be told (a start or step of unknown value,
        an enumerate over a slice or from another start)."""
        if not self.loop_stack or len(target.slice) != 1:
            return SOME_INDICES
        index = target.slice[0].slice
        if not isinstance(index, cst.Index):
            return SOME_INDICES
        loop = self.loop_stack[-1].node
        if not isinstance(loop, cst.For):
            return SOME_INDICES
        if dotted_name(index.value) not in target_names(loop.target):
            return SOME_INDICES
        return _range_coverage(loop.iter, dotted_name(target.value))

    def exec_aug_assign(self, statement: cst.AugAssign, env: Env) -> None:
        self.scan_calls(statement.value, env)
        name = dotted_name(statement.target)
        added = self.evaluate(statement.value, env)
        if name is not None:
            previous = env.get(name)
            combined = join(previous, added) if previous is not None else added
            env[name] = combined if not self.no_grad_depth else fresh(NO_GRAD, statement)  # type: ignore[assignment]
        self.note_accumulation(statement, statement.target, statement.value, env, augmented=True)

    def note_accumulation(
        self,
        statement: cst.CSTNode,
        target: cst.BaseExpression,
        value: cst.BaseExpression,
        env: Env,
        augmented: bool = False,
    ) -> None:
        accumulator = dotted_name(target) or keyed_name(target)
        if accumulator is None or self.no_grad_depth:
            return  # under `torch.no_grad()` what is added holds no graph
        if not self.loop_stack and not _kept_on_self(accumulator):
            return  # outside a loop only a total kept on the object outlives the pass
        added: cst.BaseExpression | None = None
        if augmented and isinstance(statement, cst.AugAssign):
            if isinstance(statement.operator, (cst.AddAssign, cst.SubtractAssign)):
                added = value
        else:
            # `avg = loss if avg is None else 0.9 * avg + 0.1 * loss`: the branch that adds.
            branches = [value.body, value.orelse] if isinstance(value, cst.IfExp) else [value]
            for branch in branches:
                terms = additive_terms(branch)
                # `smooth = smooth * 0.999 + loss * 0.001`: a moving average keeps its own
                # (scaled) past as a term, and so the graph of every loss added before.
                others = [term for term in terms if _unscaled(term, target) != accumulator]
                if len(others) < len(terms):
                    # `avg = avg + loss`: the other term; `r = r + a + b`: the whole sum.
                    added = others[0] if len(others) == 1 else branch
                    break
        if added is None:
            return
        accumulation = Accumulation(
            statement, accumulator, dotted_name(added) or "", self.loops, added
        )
        self.events.add("accumulations", statement, accumulation)

    def note_meter_update(self, call: cst.Call, receiver: str, method: str) -> None:
        """`meter.update(loss, n)` on an object of a class of this file whose method adds
        that argument to a total it keeps (`self.sum += val * n`, `self.values.append(val)`):
        an accumulation into the object, as `meter_sum += loss * n` would be."""
        if self.no_grad_depth or not self.loop_stack:
            return
        class_name = self.context.class_of(receiver, self.class_name)
        if class_name is None or receiver == "self":
            return
        found = find_method(self.context, class_name, method)
        if not found:
            return
        function, _ = found
        params = function.params.params[1:]
        for position, attribute in _kept_totals(function):
            if position < len(params):
                name = params[position].name.value
                arg = next(
                    (
                        a
                        for i, a in enumerate(call.args)
                        if (a.keyword is None and i == position)
                        or (a.keyword is not None and a.keyword.value == name)
                    ),
                    None,
                )
                if arg is None or isinstance(arg.value, (cst.Integer, cst.Float)):
                    continue
                accumulation = Accumulation(
                    call,
                    f"{receiver}.{attribute}",
                    dotted_name(arg.value) or "",
                    self.loops,
                    arg.value,
                )
                self.events.add("accumulations", call, accumulation)
                return

    def exec_expression_statement(self, expression: cst.BaseExpression, env: Env) -> None:
        self.scan_calls(expression, env, statement=expression)
        if isinstance(expression, cst.Tuple):
            # `h.detach_(), c.detach_()`: each element runs as a statement of its own.
            for element in expression.elements:
                if isinstance(element.value, cst.Call):
                    self.exec_call_statement(element.value, env)
        elif isinstance(expression, cst.Call):
            self.exec_call_statement(expression, env)
        elif isinstance(expression, (cst.ListComp, cst.GeneratorExp)):
            # `[h.detach_() for h in hidden]` as a statement: an in-place cut of each element.
            element = expression.elt  # type: ignore[assignment]
            if isinstance(element, cst.Call) and method_name(element) == "detach_":
                for name in names_in(expression.for_in.iter):
                    if name in env:
                        env[name] = cut_in_place(env[name], expression)
            elif self.detaches_each(expression):
                self.exec_comprehension_detach(expression, env)

    def mapped_inplace_cut(self, call: cst.Call) -> cst.BaseExpression | None:
        """What `list(map(torch.Tensor.detach_, state))` (or `tuple(...)`, or a lambda that
        calls `detach_()` on its argument) cuts in place: `state`. A bare `map(...)` as a
        statement is lazy and runs nothing."""
        if dotted_name(call.func) not in ("list", "tuple", "set") or len(call.args) != 1:
            return None
        inner = call.args[0].value
        if not isinstance(inner, cst.Call) or dotted_name(inner.func) != "map":
            return None
        if len(inner.args) != 2 or any(arg.keyword or arg.star for arg in inner.args):
            return None
        function = inner.args[0].value
        if isinstance(function, cst.Lambda):
            params = function.params.params
            body = function.body
            if not (
                len(params) == 1
                and isinstance(body, cst.Call)
                and method_name(body) == "detach_"
                and not body.args
                and dotted_name(body.func.value) == params[0].name.value  # type: ignore[attr-defined]
            ):
                return None
        elif self.context.imports.qualify(dotted_name(function)) != "torch.Tensor.detach_":
            return None
        return inner.args[1].value

    @staticmethod
    def detaches_each(expression: cst.ListComp | cst.GeneratorExp) -> bool:
        """`[s.detach() for s in states]`: the out-of-place detach of each element."""
        element, clause = expression.elt, expression.for_in
        return (
            isinstance(element, cst.Call)
            and method_name(element) == "detach"
            and not element.args
            and clause.inner_for_in is None
            and isinstance(clause.target, cst.Name)
            and dotted_name(element.func.value) == clause.target.value  # type: ignore[attr-defined]
        )

    def exec_comprehension_detach(
        self, expression: cst.ListComp | cst.GeneratorExp, env: Env
    ) -> None:
        """`[s.detach() for s in states]` as a statement throws every result away, unless the
        elements are objects whose `detach()` works in place."""
        container = dotted_name(expression.for_in.iter)
        if container is None:
            return
        if self.detaches_in_place(container, env):
            if container in env:
                env[container] = cut_in_place(env[container], expression)
            return
        variable = expression.for_in.target.value  # type: ignore[attr-defined]
        self.note_discarded_detach(expression, variable, container, env)

    def exec_call_statement(self, call: cst.Call, env: Env) -> None:
        mapped = self.mapped_inplace_cut(call)
        if mapped is not None:
            # `list(map(torch.Tensor.detach_, state))`: each element cut in place.
            for name in names_in(mapped):
                if name in env:
                    env[name] = cut_in_place(env[name], call)
            return
        method = method_name(call)
        receiver_node = call.func.value if isinstance(call.func, cst.Attribute) else None
        receiver = dotted_name(receiver_node) if receiver_node is not None else None
        if method == "detach_" and receiver_node is not None:
            keyed = keyed_state(receiver_node)
            if keyed is not None and keyed in env:
                env[keyed] = cut_in_place(env[keyed], call)  # `state["h"].detach_()`
                return
            if isinstance(receiver_node, cst.Subscript):
                if not self.note_inplace_on_view(call, receiver_node, env):
                    self.cut_element_in_place(call, receiver_node, env)
            elif receiver is not None and self.bound_to_view(call, env):
                # `h = out[:, -1].unsqueeze(0)` then `h.detach_()`: raises, cuts nothing.
                event = InplaceDetachOnView(call, receiver, receiver)
                self.events.add("inplace_view_detaches", call, event)
            elif receiver is not None:
                # `for s in self.all_states: s.detach_()` cuts every attribute it gathers
                # (or, on a view, raises: TBP014 then explains, and no leak is reported).
                gatherer = self.iterated_container(receiver) or self.iterated_method(receiver)
                on_view = self.note_attribute_view(call, receiver, env)
                for path in self.attributes_reached(receiver, gatherer):
                    env[path] = cut_in_place(env.get(path), call)
                if on_view:
                    return
                container = self.iterated_container(receiver)
                if container is not None and self.shape_of(container, env) == TENSOR:
                    # Iterating a tensor yields views of it.
                    self.events.add(
                        "inplace_view_detaches",
                        call,
                        InplaceDetachOnView(call, receiver, container),
                    )
                    return
                before = env.get(receiver)
                env[receiver] = cut_in_place(before, call)
                if container is not None:
                    env[container] = cut_in_place(env.get(container), call)
                self.cut_unpacked_source(receiver, before, call, env)
            return
        if method == "detach" and not call.args and receiver_node is not None:
            if receiver is not None and self.detaches_in_place(receiver, env):
                for name in [n for n in env if n == receiver or n.startswith(receiver + ".")]:
                    env[name] = cut_in_place(env[name], call)
                return
            base = receiver or self.subscript_base(receiver_node)
            if base is not None:
                self.note_discarded_detach(call, _code(receiver_node), base, env)
            return
        if method in ("append", "extend") and receiver is not None and len(call.args) == 1:
            if receiver in env:
                # A list built here holds what is appended to it (`out.append(x.detach())`).
                appended = self.evaluate(call.args[0].value, env)
                current = env[receiver]
                grown = join(replace(current, elements=None), appended) or appended
                if appended.elements is not None and appended.status == Status.PARTIAL:
                    # `new.append((h.detach(), c))`: a list of partly cut tuples.
                    item = (
                        appended
                        if current.elements == ()
                        else join_items(current, replace(appended, item=appended))
                    )
                    grown = replace(grown, elements=None, item=item)
                env[receiver] = grown
            added = call.args[0].value
            if self.loop_stack or (_kept_on_self(receiver) and not self.no_grad_depth):
                accumulation = Accumulation(
                    call, receiver, dotted_name(added) or "", self.loops, added
                )
                self.events.add("accumulations", call, accumulation)
            return
        if receiver is not None and method is not None:
            self.note_meter_update(call, receiver, method)
        if method in ("requires_grad_",) and receiver is not None and receiver in env:
            current = env[receiver]
            if current.status == Status.FRESH and current.how == CUT:
                env[receiver] = replace(current, how=LEAF)
            return
        callee = dotted_name(call.func)
        if any(facts.inplace_cut for facts in self.resolved_facts(callee, env)):
            for arg in call.args:
                name = dotted_name(arg.value)  # type: ignore[assignment]
                if name is not None and name in env:
                    env[name] = cut_in_place(env[name], call)
            return
        self.note_discarded_helper_cut(call, callee, env)

    def note_discarded_helper_cut(self, call: cst.Call, callee: str | None, env: Env) -> None:
        """`repackage_hidden(hidden)` as a statement: a function of the file that only returns
        its argument cut (and cuts nothing in place) throws the cut away (TBP003)."""
        if callee is None or not callee.isidentifier() or len(call.args) != 1:
            return
        facts = self.function_facts(callee)
        if facts is None or not facts.returns_cut or facts.inplace_cut or facts.cuts_tensor:
            return
        if facts.does_backward or not self.loop_stack or self.no_grad_depth:
            return
        argument = call.args[0]
        name = dotted_name(argument.value)
        value = env.get(name) if name is not None and not argument.keyword else None
        if name is None or value is None or not value.has_graph:
            return
        if not self.context.mentions(f"def {callee}("):
            return  # defined in another file: whether it also cuts in place is not seen
        event = DiscardedDetach(call, name, self.loops, True, name, helper=callee)
        self.events.add("discarded_detaches", call, event)

    def iterated_container(self, name: str) -> str | None:
        """`states` when `name` is the variable of the innermost `for name in states:`."""
        if not self.loop_stack:
            return None
        loop = self.loop_stack[-1].node
        if isinstance(loop, cst.For) and target_names(loop.target) == [name]:
            return dotted_name(loop.iter)
        return None

    def iterated_method(self, name: str) -> str | None:
        """`self.states` when `name` is the variable of `for name in self.states():`."""
        loop = self.loop_stack[-1].node if self.loop_stack else None
        if not isinstance(loop, cst.For) or target_names(loop.target) != [name]:
            return None
        called = loop.iter
        if isinstance(called, cst.Call) and not called.args:
            return dotted_name(called.func)
        return None

    def inplace_classes(self) -> set[str]:
        """Classes of the run whose `detach()` works in place. Inside such a class's own
        cutting method, what it detaches is not one of its own objects."""
        classes = self.context.inplace_detach_classes
        if self.cutting_method and self.class_name in classes:
            return classes - {self.class_name}
        return classes

    def detaches_in_place(self, receiver: str, env: Env) -> bool:
        """Whether `receiver.detach()` may be a custom object's in-place cut: an object of a
        class whose `detach()` works in place, or one of unknown class (a state that a model
        of the run hands back may be such an object) while such a class exists in the run."""
        classes = self.inplace_classes()
        if not classes:
            return False
        built = self.context.construction_of(receiver)
        if built is not None:
            qualified = built.qualified_class
            return qualified in classes or qualified.rsplit(".", 1)[-1] in classes
        value = env.get(receiver)
        if value is not None and value.has_graph:
            return not self.made_by_tensor_code(value)
        return True

    def made_by_tensor_code(self, value: Value) -> bool:
        """Whether every recurrent call a value may come from is a torch module's, whose
        state is a tensor (or a tuple of them), never an object of the user's."""
        for origin, _ in value.all_sources():
            call = self._recurrent_cache.get(id(origin))
            if call is None:
                continue
            module = call.module_class
            if module is None or not module.startswith("torch."):
                return False
        return True

    @staticmethod
    def subscript_base(node: cst.BaseExpression) -> str | None:
        while isinstance(node, cst.Subscript):
            node = node.value
        return dotted_name(node)

    def note_discarded_detach(
        self, node: cst.CSTNode, target: str, variable: str, env: Env
    ) -> None:
        value = env.get(variable)
        state = self.iterated_container(variable) or variable
        known_tensor = value is not None and value.has_graph
        # Inside a state class's own `detach()`, what it detaches from `self` is the state
        # its callers rely on it to cut.
        method = ""
        if self.cutting_method and not known_tensor and state.startswith("self."):
            if self.inplace_classes():
                return  # `self.parts` may hold objects whose detach() works in place
            known_tensor = True
            method = f"{self.class_name}.{self.unit.name.value}"  # type: ignore[attr-defined]
        if not known_tensor and not self.loop_stack:
            return
        # An object with its own in-place detach() is fine; without knowing the type, only
        # say so when no such class exists in the run.
        certain = known_tensor and not self.inplace_classes()
        if self.inplace_classes() and not known_tensor:
            return
        event = DiscardedDetach(node, target, self.loops, certain or known_tensor, state, method)
        self.events.add("discarded_detaches", node, event)
        # A later pass over the loop may learn that the target holds a graph.
        for recorded in self.events.discarded_detaches:
            if recorded.node is node:
                recorded.certain = recorded.certain or event.certain

    def bound_to_view(self, call: cst.Call, env: Env) -> bool:
        """Whether the receiver of `call` (`h.detach_()`) was just bound to a view: a view
        expression, or basic indexing of a name that holds a tensor (`last = out[-1:]`)."""
        expression = self.scan().view_detaches.get(id(call))
        if expression is None:
            return False
        if is_view_expression(expression):
            return True
        indexed = indexed_name(expression)
        if indexed is None:
            return False  # `top = states[k]`: an element, not known to be a view
        value = env.get(indexed)
        return (
            value is not None and value.elements is None and self.shape_of(indexed, env) == TENSOR
        )

    def note_inplace_on_view(self, call: cst.Call, view: cst.Subscript, env: Env) -> bool:
        """`hidden[0].detach_()` where `hidden` is known to be a tensor. Returns whether the
        detached element was a view."""
        if isinstance(view.value, cst.Subscript):
            # `hidden[0][-1]`: indexing an element of a tuple of states gives a view of it, but
            # only an LSTM's pair is known to hold tensors (a list of layers holds pairs).
            base = self.subscript_base(view) or ""
            if self.shape_of(base, env) not in (TENSOR, TENSOR_PAIR):
                return False
            event = InplaceDetachOnView(call, _code(view), base)
            self.events.add("inplace_view_detaches", call, event)
            return True
        base = dotted_name(view.value)  # type: ignore[assignment]
        if base is None:
            return False
        value = env.get(base)
        if value is None or value.elements is not None or self.shape_of(base, env) != TENSOR:
            return False
        self.events.add("inplace_view_detaches", call, InplaceDetachOnView(call, _code(view), base))
        return True

    def cut_element_in_place(self, call: cst.Call, element: cst.Subscript, env: Env) -> None:
        """`hidden[0].detach_()`: one element of a tuple of states cut in place."""
        if isinstance(element.value, cst.Subscript):
            # `hidden[layer][0]` of a state whose make-up is unknown (a list of layers' pairs):
            # whether every part gets cut cannot be told. Taken as cut, to stay silent.
            nested = self.subscript_base(element)
            if nested is not None and nested in env and env[nested].has_graph:
                env[nested] = cut_in_place(env[nested], call)
            return
        base = dotted_name(element.value)
        value = env.get(base) if base is not None else None
        if base is None or value is None or not value.has_graph:
            return
        coverage = self.subscript_coverage(element)
        if coverage == ALL_INDICES:
            env[base] = cut_in_place(value, call)
            return
        if coverage == UNKNOWN_INDICES:
            env[base] = UNKNOWN
            return
        index_node = element.slice[0].slice
        if (
            coverage == SOME_INDICES
            and isinstance(index_node, cst.Index)
            and self.loop_stack
            and isinstance(self.loop_stack[-1].node, cst.For)
            and dotted_name(index_node.value) in target_names(self.loop_stack[-1].node.target)
        ):
            # `for j in range(1, len(states)): states[j].detach_()`: the first one uncut.
            env[base] = replace(value, status=Status.PARTIAL, elements=None)
            return
        index = element.slice[0].slice if len(element.slice) == 1 else None
        position = (
            int(index.value.value)
            if isinstance(index, cst.Index) and isinstance(index.value, cst.Integer)
            else None
        )
        elements = value.elements
        if elements is None and self.shape_of(base, env) == TENSOR_PAIR:
            elements = (replace(value, elements=None),) * 2
        if elements is None:
            # A user's model's state: how many elements it has is unknown, so whether every
            # one gets cut cannot be told. Taken as cut, to stay silent.
            env[base] = cut_in_place(value, call)
            return
        if position is None or not -len(elements) <= position < len(elements):
            env[base] = replace(value, status=Status.PARTIAL, elements=None)
            return
        updated = list(elements)
        updated[position] = cut_in_place(with_carried(elements[position], value.carried), call)
        env[base] = composite(tuple(updated), value.origin)

    def shape_of(self, name: str, env: Env) -> str | None:
        """TENSOR, TENSOR_PAIR or TUPLE when every value `name` may hold here is known to be
        that; None when any of them is unknown (a user's model's state, a parameter)."""
        value = env.get(name)
        if value is None:
            return None
        if value.elements is not None:
            return TUPLE
        shapes = {self.origin_shape(origin, name) for origin, _ in value.all_sources()}
        shapes.discard(NO_TENSOR)
        return shapes.pop() if len(shapes) == 1 else None

    def origin_shape(self, origin: cst.CSTNode, name: str) -> str | None:
        recurrent = self._recurrent_cache.get(id(origin))
        if recurrent is None:
            return expression_shape(origin, self.context.imports)
        if name not in recurrent.states:
            statement = recurrent.statement
            targets = (
                target_names(statement.targets[0].target)
                if isinstance(statement, cst.Assign)
                else []
            )
            return TENSOR if targets and targets[0] == name else None  # the output sequence
        if recurrent.module_class not in RECURRENT_MODULES:
            return None
        if recurrent.module_class not in PAIR_STATE_MODULES:
            return TENSOR
        # `out, (h, c) = lstm(x, (h, c))`: h alone is a tensor; `hidden` is the pair.
        in_pair = any(name in group and len(group) > 1 for group in recurrent.groups)
        return TENSOR if in_pair else TENSOR_PAIR

    def note_attribute_view(self, call: cst.Call, receiver: str, env: Env) -> bool:
        """`self.feed.detach_()`, or `s.detach_()` in `for s in self.all_states:`, where some
        method of the class sets `self.feed` to a view of a tensor. Returns whether it was."""
        container = self.iterated_container(receiver) or self.iterated_method(receiver)
        for holder in self.attributes_reached(receiver, container):
            instance, _, attribute = holder.rpartition(".")
            if holder in env:
                continue  # rebound in this very unit: what it holds here is not that view
            class_name = self.context.class_of(instance, self.class_name)
            made = self.context.class_views().view_made(class_name, attribute)
            if made is None:
                continue
            event = InplaceDetachOnView(call, receiver, container or receiver, made, holder)
            self.events.add("inplace_view_detaches", call, event)
            return True
        return False

    def attributes_reached(self, receiver: str, container: str | None) -> list[str]:
        """The `obj.attr` paths a detached name may be: itself, or what the loop it is the
        variable of runs over (`self.all_states` and the attributes it gathers, or the
        attributes of a literal `(self.h, self.feed)`)."""
        paths = [receiver] if "." in receiver else []
        loop = self.loop_stack[-1].node if self.loop_stack else None
        if container is not None and "." in container:
            instance, _, attribute = container.rpartition(".")
            class_name = self.context.class_of(instance, self.class_name)
            gathered = self.context.class_views().gathered(class_name, attribute)
            paths += [f"{instance}.{member}" for member in gathered]
        elif (
            container is None
            and isinstance(loop, cst.For)
            and target_names(loop.target) == [receiver]
            and isinstance(loop.iter, (cst.Tuple, cst.List))
        ):
            for element in loop.iter.elements:
                path = dotted_name(element.value)
                if path is not None and "." in path:
                    paths.append(path)
        return paths

    # ----------------------------------------------------------- control flow
    def exec_if(self, statement: cst.If, paths: list[ExecPath]) -> list[ExecPath]:
        results: list[ExecPath] = []
        tensor_test = self.is_tensor_test(statement.test)
        for path in paths:
            known = self.conditions.truth_of(statement.test, dict(path.assumptions))
            if known is None:
                known = tensor_test
            if known is None and self.fixed_truths:
                known = fixed_truth(statement.test, self.fixed_truths)
            if known is not False:
                then_env = dict(path.env)
                self.refine(statement.test, then_env, truth=True)
                self.scan_calls(statement.test, then_env)
                learnt = self.conditions.facts_of(statement.test, True)
                then_paths = [ExecPath(then_env, path.assumptions | learnt)]
                results += self.exec_block(statement.body.body, then_paths)
            if known is not True:
                else_env = dict(path.env)
                self.refine(statement.test, else_env, truth=False)
                learnt = self.conditions.facts_of(statement.test, False)
                else_paths = [ExecPath(else_env, path.assumptions | learnt)]
                orelse = statement.orelse
                if isinstance(orelse, cst.If):
                    results += self.exec_if(orelse, else_paths)
                elif isinstance(orelse, cst.Else):
                    results += self.exec_block(orelse.body.body, else_paths)
                else:
                    results += else_paths
        return self.limit(results)

    def refine(self, test: cst.BaseExpression, env: Env, truth: bool) -> None:
        """`if h is None:` means h holds no graph on that branch, nor do the names set to
        None with it (`ha = hc = None`, tested through `ha` alone)."""
        if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
            target = test.comparisons[0]
            name = dotted_name(test.left)
            is_none = isinstance(target.comparator, cst.Name) and target.comparator.value == "None"
            if name is not None and is_none:
                none_branch = isinstance(target.operator, cst.Is) == truth
                if none_branch:
                    env[name] = FRESH_UNRELATED
                    for companion in self.scan().none_companions.get(name, ()):
                        if companion in env:
                            env[companion] = FRESH_UNRELATED
        elif isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
            name = dotted_name(test.expression)
            if name is not None and truth:
                env[name] = FRESH_UNRELATED
        else:
            name = dotted_name(test)
            if name is not None and not truth:
                env[name] = FRESH_UNRELATED

    def exec_loop(self, statement: cst.For | cst.While, paths: list[ExecPath]) -> list[ExecPath]:
        self.events.loop_parents.setdefault(statement, self.loops)
        results: list[ExecPath] = []
        for assumptions, group in self.loop_entry_groups(statement, paths):
            results += self.run_loop(statement, self.merge(group).env, assumptions)
        return self.limit(results)

    def loop_entry_groups(
        self, statement: cst.For | cst.While, paths: list[ExecPath]
    ) -> list[tuple[frozenset[tuple[str, bool]], list[ExecPath]]]:
        """Paths grouped by what they assume about conditions the loop tests but cannot
        change (`if not random_iter: h = None` before `for x in loader: if random_iter: h =
        init()`): each group runs the loop on its own, so that complementary resets cover
        every path. Other assumptions are dropped at the loop, as are all where the groups
        would be too many."""
        wanted = {text for path in paths for text, _ in path.assumptions}
        if not wanted:
            return [(frozenset(), paths)]
        invariant = self.conditions.loop_invariant(statement, wanted)
        if not invariant:
            return [(frozenset(), paths)]
        groups: dict[frozenset[tuple[str, bool]], list[ExecPath]] = {}
        for path in paths:
            kept = frozenset(a for a in path.assumptions if a[0] in invariant)
            groups.setdefault(kept, []).append(path)
        if len(groups) > MAX_LOOP_GROUPS:
            return [(frozenset(), paths)]
        return list(groups.items())

    def interpreter_state(self) -> InterpreterState:
        """The interpreter's own state besides the paths, as far as it steers a loop run."""
        return InterpreterState(
            frozenset(self.aliases.items()),
            frozenset(self.unpacked.items()),
            frozenset(self.keyed_bases),
            frozenset(self.binding_guard),
            frozenset(self.indexed_states),
            self.tensor_names,
            self.element_names,
            self.no_grad_depth,
            frozenset((name, frozenset(sites)) for name, sites in self.partial_index_cuts.items()),
        )

    def restore_state(self, state: InterpreterState) -> None:
        self.aliases = dict(state.aliases)
        self.unpacked = dict(state.unpacked)
        self.keyed_bases = set(state.keyed_bases)
        self.binding_guard = set(state.binding_guard)
        self.indexed_states = set(state.indexed_states)
        self.tensor_names = state.tensor_names
        self.element_names = state.element_names
        self.no_grad_depth = state.no_grad_depth
        self.partial_index_cuts = {name: set(sites) for name, sites in state.partial_index_cuts}

    def run_loop(
        self,
        statement: cst.For | cst.While,
        head: Env,
        assumptions: frozenset[tuple[str, bool]],
    ) -> list[ExecPath]:
        """The paths after a loop entered with `head`. A loop entered again in the very state
        of an earlier run (the same paths, interpreter state, enclosing loops and recurrent
        calls known so far) is not interpreted again: its run is replayed. Events are recorded
        once per node, and a reread joins what was read already, so that skipping the second
        interpretation records nothing new; what a run does beside its events (returns, cut
        copies written back, the interpreter's state) is made again."""
        if not REPLAY_LOOP_RUNS:
            return self.interpret_loop(statement, head, assumptions)
        key = (
            id(statement),
            tuple(id(frame.node) for frame in self.loop_stack),
            assumptions,
            _env_key(head),
            self.interpreter_state(),
            len(self.events.recurrent_calls),
        )
        known = self.loop_runs.get(key)
        if known is not None:
            for names, value in known.written_back:
                self.note_written_back(names, value)
            self.return_envs += known.returns
            self.return_values += known.return_values
            self.restore_state(known.after)
            return [ExecPath(dict(path.env), path.assumptions) for path in known.result]
        recording = LoopRecording()
        self.loop_recordings.append(recording)
        returns, return_values = len(self.return_envs), len(self.return_values)
        try:
            result = self.interpret_loop(statement, head, assumptions)
        finally:
            self.loop_recordings.pop()
        if len(self.events.recurrent_calls) == key[-1]:
            self.loop_runs[key] = LoopRun(
                [ExecPath(dict(path.env), path.assumptions) for path in result],
                self.interpreter_state(),
                self.return_envs[returns:],
                self.return_values[return_values:],
                recording.written_back,
            )
        return result

    def interpret_loop(
        self,
        statement: cst.For | cst.While,
        head: Env,
        assumptions: frozenset[tuple[str, bool]],
    ) -> list[ExecPath]:
        frame = LoopFrame(statement)
        self.loop_stack.append(frame)
        exits: list[Env] = []
        try:
            for _ in range(MAX_LOOP_PASSES):
                frame.continues.clear()
                frame.breaks.clear()
                body_env = dict(head)
                if isinstance(statement, cst.For):
                    self.scan_calls(statement.iter, body_env)
                    self.bind_loop_target(statement, body_env)
                else:
                    self.scan_calls(statement.test, body_env)
                ends = self.exec_block(statement.body.body, [ExecPath(body_env, assumptions)])
                end_env: Env | None = None
                for env in [p.env for p in ends] + frame.continues:
                    end_env = join_envs(end_env, env)
                back_edge = (
                    _carried_around(end_env, statement, self.object_names)
                    if end_env is not None
                    else None
                )
                new_head = join_envs(head, back_edge) or head
                exits = list(frame.breaks)
                if end_env is not None:
                    exits.append(end_env)
                if new_head == head:
                    break
                head = new_head
        finally:
            self.loop_stack.pop()
        # Loops are taken to run at least once: a loop that may be skipped would otherwise
        # undo every cut made inside it, and precision matters more than that corner.
        after: Env | None = None if exits else head
        for env in exits:
            after = join_envs(after, env)
        result = [ExecPath(after or {}, assumptions)]
        if statement.orelse is not None:
            result = self.exec_block(statement.orelse.body.body, result)
        return result

    def bind_loop_target(self, statement: cst.For, env: Env) -> None:
        source = (
            self.evaluate(statement.iter, env)
            if names_in(statement.iter) & env.keys()
            else FRESH_UNRELATED
        )
        shaped = source.item is not None and source.elements is None
        element = self.element_of(replace(source, item=None) if shaped else source)
        if statement in element.carried:
            # Python evaluates the iterable once: each pass takes a new element of it, not a
            # value an earlier pass left behind.
            element = replace(element, carried=element.carried - {statement})
        container = dotted_name(statement.iter)
        for name in target_names(statement.target):
            env[name] = element
            if container is not None:
                self.aliases[name] = container
        if shaped and source.item is not None:
            # `for cell, (h, c) in zip(cells, states)` over tuples of a known shape: each
            # name takes its own part.
            item = source.item
            if statement in item.carried:
                item = replace(item, carried=item.carried - {statement})
            _unpack_parts(statement.target, item, env)

    @staticmethod
    def element_of(value: Value) -> Value:
        if value.item is not None and value.elements is None:
            return value.item
        if value.elements:
            joined: Value | None = None
            for element in value.elements:
                joined = join(joined, element)
            return joined or FRESH_UNRELATED
        if value.status == Status.PARTIAL:
            return replace(value, status=Status.STALE, elements=None)
        return replace(value, elements=None)

    def exec_with(self, statement: cst.With, paths: list[ExecPath]) -> list[ExecPath]:
        no_grad = False
        for item in statement.items:
            call = item.item
            qualified = self.context.qualify(call.func if isinstance(call, cst.Call) else call)
            if qualified in NO_GRAD_CONTEXTS and qualified != "torch.enable_grad":
                no_grad = True
            elif qualified == "torch.set_grad_enabled" and isinstance(call, cst.Call):
                first = call.args[0].value if call.args else None
                no_grad = isinstance(first, cst.Name) and first.value == "False"
        self.no_grad_depth += no_grad
        try:
            return self.exec_block(statement.body.body, paths)
        finally:
            self.no_grad_depth -= no_grad

    def exec_try(self, statement: cst.Try, paths: list[ExecPath]) -> list[ExecPath]:
        start = self.merge(paths)
        body = self.exec_block(statement.body.body, [ExecPath(dict(start.env))])
        results = list(body)
        for handler in statement.handlers:
            results += self.exec_block(handler.body.body, [ExecPath(dict(start.env))])
        if statement.orelse is not None:
            results = self.exec_block(statement.orelse.body.body, results)
        if statement.finalbody is not None:
            results = self.exec_block(statement.finalbody.body.body, [self.merge(results)])
        return self.limit(results)

    # ------------------------------------------------------- recurrent calls
    def recurrent_call(
        self, statement: cst.CSTNode, target: cst.BaseExpression, call: cst.Call
    ) -> RecurrentCall | None:
        key = id(call)
        if key in self._recurrent_cache:
            return self._recurrent_cache[key]
        found = self._find_recurrent_call(statement, target, call)
        self._recurrent_cache[key] = found
        if found is not None:
            self.events.recurrent_calls.append(found)
        return found

    def _find_recurrent_call(
        self, statement: cst.CSTNode, target: cst.BaseExpression, call: cst.Call
    ) -> RecurrentCall | None:
        callee = dotted_name(call.func)
        if callee is None and isinstance(call.func, cst.Subscript):
            callee = _code(call.func)  # `cells[0](x, h)`: one module of a ModuleList
        if callee is None:
            return None
        qualified = self.context.imports.qualify(callee)
        if qualified in NOT_RECURRENT_BUILTINS or self.is_cut_callee(callee):
            return None
        if qualified is not None and qualified.startswith(NOT_RECURRENT_HEADS):
            return None
        construction = self.context.construction_of(callee)
        module_class = construction.qualified_class if construction else None
        if module_class is None and callee.endswith(".forward"):
            owner = self.context.construction_of(callee.rsplit(".", 1)[0])
            module_class = owner.qualified_class if owner else None
        if (
            module_class is not None
            and module_class.startswith("torch.nn.")
            and not (self.context.is_recurrent_class(module_class))
        ):
            return None
        if qualified is not None and qualified.startswith("torch.") and module_class is None:
            return None
        if callee.split(".")[-1] in ("detach", "clone", "to", "cuda", "cpu", "contiguous"):
            return None
        if self.is_arithmetic_helper(callee):
            return None  # `avg = self.update_average(loss, avg)`: a running figure, no step
        bound = target_names(target)
        # `self.states[i] = layer(x, self.states[i])`: the list is the state, stepped by parts.
        indexed = indexed_containers(target)
        bound += sorted(indexed - set(bound))
        # `out, h = rnn(x, self.hidden)` ... `self.hidden = h.detach()`: the attribute the
        # call reads is handed its new state through a local.
        stored = self.scan().stored_back
        bound += [
            attribute
            for name in bound
            for attribute in stored.get(name, ())
            if attribute not in bound
            and (
                attribute in names_in(call)
                or any(
                    attribute == name for arg in call.args for name, _ in arg_state_names(arg.value)
                )
            )
        ]
        passed_by_arg = [indexed_state_args(arg.value, indexed) for arg in call.args]
        if not any(name in bound for passed in passed_by_arg for name, _ in passed):
            # `out, h_new = gru(x, h_prev)` ... `h_prev = h_new`: what it returns is handed
            # back under another name (only for a call that takes back nothing else, and
            # only for torch's recurrent modules: `obs = roll_out(env, obs)` ... `obs =
            # last` hands back an observation, no state). A field of a record of the file
            # (`state = State(h, c)`) is handed back whatever the call.
            recurrent_module = self.context.is_recurrent_class(module_class)
            renamed = self.scan().renamed if recurrent_module else {}
            records = self.record_renames
            bound += [
                local
                for name in bound
                for local in sorted(renamed.get(name, frozenset()) | records.get(name, set()))
                if local not in bound and local in names_in(call)
            ]
        if not any(name in bound for passed in passed_by_arg for name, _ in passed):
            return None  # nothing it returns is passed back in
        if self.maps_a_function(call):
            return None  # `h = tree_map(fn, h)`: a function applied to the state, not a step
        # Modules and optimizers a call hands back (`model, opt = amp.initialize(model, opt,
        # opt_level="O1")`) are objects, not state.
        bound = [name for name in bound if not self.is_object(name)]
        carried: dict[str, cst.BaseExpression] = {}
        groups: list[tuple[str, ...]] = []
        for passed in passed_by_arg:
            in_group = [name for name, _ in passed if name in bound]
            for name, expression in passed:
                if name in bound:
                    carried[name] = expression
            if len(in_group) > 1:
                groups.append(tuple(in_group))
        if not carried:
            return None
        # `h = f(h)` with nothing else passed in (or only settings: `f(h, scale=2.0)`,
        # `tqdm(batches, total=n)`, or objects: `prepare(model, loader)`) transforms the
        # state rather than stepping it: a recurrent call also takes an input.
        positional_state = not any(
            arg.keyword is not None and _only_carries(arg.value, carried) for arg in call.args
        )
        runs_windows = self.runs_windows(callee, call, carried)
        # A torch recurrent module fed its own state as input still steps it.
        # `x, hidden[l] = cell(x, hidden[l])`: a layer's state read from the list its new
        # state goes back into, beside the layer's input, is a step, not a transform.
        steps_a_layer = bool(indexed & set(carried)) and len(call.args) >= 2
        if steps_a_layer:
            # The layer's input (`x`, rebound to its output) is no state of the stack.
            carried = {name: arg for name, arg in carried.items() if name in indexed}
            groups = [group for group in groups if set(group) <= indexed]
        if (
            not runs_windows
            and not steps_a_layer
            and not self.context.is_recurrent_class(module_class)
            and all(
                _is_constant(arg.value)
                or _only_carries(arg.value, carried)
                or self.is_object(dotted_name(arg.value))
                or (positional_state and arg.keyword is not None)
                for arg in call.args
            )
        ):
            return None
        if takes_only_numbers(call, carried.values()):
            return None
        states = tuple(carried)
        return RecurrentCall(
            call=call,
            statement=statement,
            callee=callee,
            module_class=module_class,
            states=states,
            state_args=carried,
            groups=tuple(groups) or (states,),
            loops=self.loops,
            no_grad=bool(self.no_grad_depth),
            cuts_input=self.class_cuts_input(construction, call)
            or self.function_cuts_input(callee, call, carried),
            runs_windows=runs_windows,
        )

    def function_cuts_input(
        self, callee: str, call: cst.Call, carried: dict[str, cst.BaseExpression]
    ) -> bool:
        """`h = train_window(x, h)` where the function of the file (or `self.method`) cuts
        every state it is passed before reading it (`h = h.detach()` at its top): whatever
        the caller hands it, no graph reaches the function's own backward."""
        function = self.defined_function(callee)
        if function is None or not carried:
            return False
        params = [p.name.value for p in function.params.params]
        if "." in callee and params:
            params = params[1:]  # `self.method(x, h)`: the method's `self` is not passed
        expressions = [expression for expression in carried.values()]
        found = 0
        for position, arg in enumerate(call.args):
            if not any(arg.value is expression for expression in expressions):
                continue
            if arg.star:
                return False
            if arg.keyword is not None:
                name = arg.keyword.value
            elif position < len(params):
                name = params[position]
            else:
                return False
            if name not in params or not cuts_parameter_first(function, name, self.rebinds_to_cut):
                return False
            found += 1
        return found == len(expressions)

    def runs_windows(
        self, callee: str, call: cst.Call, carried: dict[str, cst.BaseExpression]
    ) -> bool:
        """`hidden = run_epoch(hidden)`: a function of the file (or one defined in this
        unit) that threads the parameter the state is passed as through a loop of windows."""
        if "." in callee or len(carried) != 1:
            return False
        function = self.visible_def(callee) or self.context.function_defs.get(callee)
        if not isinstance(function, cst.FunctionDef):
            return False
        expression = next(iter(carried.values()))
        params = [p.name.value for p in function.params.params]
        for position, arg in enumerate(call.args):
            if arg.value is expression:
                if arg.keyword is not None:
                    name = arg.keyword.value
                    return name in params and threads_through_windows(
                        function, name, self.rebinds_to_cut
                    )
                return position < len(params) and threads_through_windows(
                    function, params[position], self.rebinds_to_cut
                )
        return False

    def rebinds_to_cut(self, value: cst.BaseExpression, state: str) -> bool:
        """`state = repackage_hidden(state)`, `state = tuple(s.detach() for s in state)`,
        `state = detach_all(state)`: the state handed back cut, through a cut the analysis
        knows (a method that detaches, or a function or mapper of the file that cuts)."""
        if handed_on(value) != state:
            return False
        for node in (value, *descendants([value])):
            if not isinstance(node, cst.Call):
                continue
            if isinstance(node.func, cst.Attribute) and node.func.attr.value in WINDOW_CUTS:
                return True
            if self.is_cut_callee(dotted_name(node.func)) or self.maps_a_cut(node):
                return True
        return False

    def is_arithmetic_helper(self, callee: str) -> bool:
        """A function of this file (or method of this unit's class) that only does arithmetic
        on what it is passed, calling nothing that could run a model (`float(loss)`,
        `torch.isfinite(loss)`): its result holds no graph beyond those of its arguments, so
        rebinding a name to it steps no recurrent state."""
        function = self.defined_function(callee)
        if function is None:
            return False
        returns = False
        for node in descendants([function.body]):
            if isinstance(node, NOT_ARITHMETIC):
                return False  # `raise NotImplementedError`: a subclass supplies the body
            if isinstance(node, cst.Call) and not self.is_arithmetic_call(node):
                return False
            if self.is_matrix_product(node):
                # `torch.tanh(x @ W + h @ U)`: a hand-written cell, whose weights multiply
                # the state it is given; a running figure is never multiplied by a matrix.
                return False
            returns = returns or (isinstance(node, cst.Return) and node.value is not None)
        return returns

    def is_matrix_product(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.MatrixMultiply):
            return True
        if isinstance(node, cst.Call):
            qualified = self.context.imports.qualify(dotted_name(node.func)) or ""
            return qualified in MATRIX_PRODUCTS or method_name(node) in ("mm", "matmul")
        return False

    def defined_function(self, callee: str) -> cst.FunctionDef | None:
        """The body a call runs, when this file holds it: a function of the unit or module,
        or `self.method` of the unit's class (not one it may inherit)."""
        if callee.isidentifier():
            local = self.visible_def(callee)
            if isinstance(local, cst.FunctionDef):
                return local
            return self.context.function_defs.get(callee) or parsed_method(
                self.context, None, callee
            )
        owner, _, method = callee.partition(".")
        if owner != "self" or "." in method or self.class_name is None:
            return None
        node = self.context.class_defs.get(self.class_name)
        members = node.body.body if node is not None else ()
        found = next(
            (m for m in members if isinstance(m, cst.FunctionDef) and m.name.value == method),
            None,
        )
        return found or parsed_method(self.context, self.class_name, method)

    def is_arithmetic_call(self, call: cst.Call) -> bool:
        method = method_name(call)
        if method is not None and method in ARITHMETIC_METHODS:
            return True
        qualified = self.context.imports.qualify(dotted_name(call.func))
        if qualified is None:
            return False
        if qualified in ARITHMETIC_BUILTINS:
            return True
        return qualified.startswith("torch.") and qualified.count(".") == 1

    def class_cuts_input(self, construction: object, call: cst.Call) -> bool:
        forward_cuts = self.context.forward_cuts
        if not forward_cuts:
            return False
        qualified = getattr(construction, "qualified_class", None)
        if qualified is not None:
            short = qualified.rsplit(".", 1)[-1]
            return bool(forward_cuts.get(short) or forward_cuts.get(qualified))
        # The object's class is unknown: a forward in this file that cuts its state input
        # may be the one called, so stay silent rather than guess.
        return any(forward_cuts.values())

    def exec_recurrent_call(
        self, recurrent: RecurrentCall, target: cst.BaseExpression, env: Env
    ) -> None:
        for arg in recurrent.call.args:
            if not any(arg.value is expr for expr in recurrent.state_args.values()):
                self.scan_calls(arg.value, env)
        for name, expression in recurrent.state_args.items():
            value = self.evaluate(expression, env)
            carried = self.carried_marks(expression, value, env)
            if recurrent.cuts_input and value.has_graph:
                value = fresh(CUT, recurrent.call)
            self.record_read(recurrent, name, value, carried)
        facts = self.function_facts(recurrent.callee)
        if facts is not None and facts.does_backward:
            self.apply_helper_backward(recurrent.call, recurrent.callee, env)
        if self.no_grad_depth:
            produced = fresh(NO_GRAD, recurrent.call)
        elif recurrent.runs_windows:
            # The function cuts the state before each window: what it hands back is the state
            # the next call starts from, cut there.
            produced = fresh(CUT, recurrent.call)
        elif facts is not None and facts.returns_stale:
            produced = Value(Status.STALE, "", recurrent.call, frozenset({recurrent.call}))
            self.events.consumed.add(id(recurrent.call))
        elif facts is not None and facts.returns_cut:
            produced = fresh(CUT, recurrent.call)
        else:
            produced = self.produced_by(recurrent, target)
        self.indexed_states = set(recurrent.states)
        try:
            self.bind(target, produced, env)
        finally:
            self.indexed_states = set()

    def with_returned_cuts(
        self, call: cst.Call, target: cst.BaseExpression, result: Value
    ) -> Value:
        """`out, states = self(x, prev)` in a model's `loss` method: the parts of the result
        that the called function cuts before returning them are cut here too, though the call
        is no recurrent step of this unit (what it returns is not passed back in)."""
        callee = dotted_name(call.func)
        if callee is None or result.status == Status.FRESH or self.no_grad_depth:
            return result
        known = (
            self.function_facts(callee) is not None
            or self.is_method_call(callee)
            or self.context.class_of(callee, self.class_name) is not None
        )
        if not known:
            return result  # a plain name of unknown class is not guessed to be a model here
        arity = _unpacked_length(target)
        partly = self.partly_cut_result(callee, arity, replace(result, elements=None), call)
        if partly is not None:
            return partly
        cuts = self.returned_cuts(callee, arity)
        if not any(cuts):
            return result
        if arity is None:
            return fresh(CUT, call)
        rest = replace(result, elements=None)
        parts = tuple(fresh(CUT, call) if cut else rest for cut in cuts)
        return composite(parts, call)

    def produced_by(self, recurrent: RecurrentCall, target: cst.BaseExpression) -> Value:
        """What a recurrent call hands back: a live graph, except the parts its own function
        cuts before returning them (a `forward` ending `return out, h.detach()`)."""
        live = Value(Status.LIVE, "", recurrent.call)
        arity = _unpacked_length(target)
        partly = self.partly_cut_result(recurrent.callee, arity, live, recurrent.call)
        if partly is not None:
            return partly
        cuts = self.returned_cuts(recurrent.callee, arity)
        if not any(cuts):
            return live
        if arity is None:
            return fresh(CUT, recurrent.call)
        parts = tuple(fresh(CUT, recurrent.call) if cut else live for cut in cuts)
        return composite(parts, recurrent.call)

    def partly_cut_result(
        self, callee: str, arity: int | None, rest: Value, call: cst.Call
    ) -> Value | None:
        """What a call hands back when its function cuts only some elements of a tuple it
        returns (`return h.detach(), c`; `return out, (h.detach(), c)`): those cut, the
        others `rest`, so that a backward leaves the state partly cut (TBP002). None when
        the function's facts do not agree on one such tuple, or the target does not take it
        apart as the function returns it."""
        shapes = {facts.returns_partly_cut for facts in self.callee_facts(callee)}
        if len(shapes) != 1:
            return None
        shape = shapes.pop()
        if shape is None:
            return None
        path, mask = shape
        inner = composite(tuple(fresh(CUT, call) if cut else rest for cut in mask), call)
        if path == ():
            return inner if arity is None or arity == len(mask) else None
        if arity is None or path[0] >= arity:
            return None
        cuts = self.returned_cuts(callee, arity)
        parts = tuple(
            inner if i == path[0] else fresh(CUT, call) if cuts[i] else rest for i in range(arity)
        )
        return composite(parts, call)

    def returned_cuts(self, callee: str, arity: int | None) -> tuple[bool, ...]:
        """Which parts of the call's result its function cut, for a result unpacked into
        `arity` names (None: bound whole)."""
        cuts = (False,) * (arity or 1)
        for facts in self.callee_facts(callee):
            if facts.returns_cut:
                return (True,) * len(cuts)
            if arity is not None and len(facts.returns_cut_elements) == arity:
                cuts = tuple(a or b for a, b in zip(cuts, facts.returns_cut_elements, strict=True))
        return cuts

    def callee_facts(self, callee: str) -> list[FunctionFacts]:
        """Facts of what a call runs: a function, `self.step`, the `forward` of an object's
        class (`model(x, h)`), or one of its methods (`model.training_step(x, h)`).

        When a plain name's class is unknown (a parameter, `model: M`), every class of the run
        with that method may be the one called, so all of them are returned: the caller takes
        a cut by any of them as a cut, because a false alarm costs more than a missed leak.
        Not for the `forward` of `self.lstm`: submodules are built in an `__init__` the
        analysis may not have read, and are rarely the file's own model class."""
        facts = self.function_facts(callee)
        if facts is not None:
            return [facts]
        if self.is_method_call(callee):
            return self.method_facts(callee)
        class_name = self.context.class_of(callee, self.class_name)
        if class_name is not None:
            return self.context.methods_of_class(class_name, "forward")
        if not callee.isidentifier() or callee in self.context.imports.aliases:
            return []  # `tqdm(...)`: an imported name is no object of unknown class
        return self.context.methods_named("forward")

    def is_method_call(self, callee: str) -> bool:
        """`model.repackage_hidden`, `self.net.detach_state`: a method some class of the file
        or the run defines, called on an object (not a function's own name)."""
        instance, _, method = callee.rpartition(".")
        return bool(instance) and self.context.has_method(method)

    def method_facts(self, callee: str) -> list[FunctionFacts]:
        """Facts of `obj.method`, through the class of `obj` (built in this file, `self`, or an
        attribute built in `__init__`), wherever in the run that class is defined; for an
        object of unknown class, that method of every class of the run."""
        instance, _, method = callee.rpartition(".")
        class_name = self.context.class_of(instance, self.class_name)
        if class_name is not None:
            return self.context.methods_of_class(class_name, method)
        return self.context.methods_named(method)

    def resolved_facts(self, callee: str | None, env: Env) -> list[FunctionFacts]:
        """What a called name is known to do: a function's facts, or an object's method's. A
        method called on a state (`h.clone()`) is a tensor's, whatever classes define it."""
        if callee is None:
            return []
        facts = self.function_facts(callee)
        if facts is not None:
            return [facts]
        receiver, _, method = callee.rpartition(".")
        if method == "forward" or not self.is_method_call(callee):
            return []  # `model.forward(x, h)` is a step of the model, as `model(x, h)` is
        value = env.get(receiver)
        if value is not None and value.has_graph:
            return []
        return self.method_facts(callee)

    def record_read(
        self,
        recurrent: RecurrentCall,
        name: str,
        value: Value,
        carried: frozenset[cst.CSTNode] = frozenset(),
    ) -> None:
        key = (id(recurrent.call), name)
        read = self.events.reads.get(key)
        if read is None:
            read = self.events.reads[key] = StateRead(recurrent, name, value)
        else:
            read.value = join(read.value, value) or value
        read.carried_across |= carried
        for origin, how in value.all_sources():
            if id(origin) not in read.how_by_origin:
                read.origins.append(origin)
                read.how_by_origin[id(origin)] = how

    # --------------------------------------------------------- side effects
    def scan_calls(
        self, expression: cst.CSTNode, env: Env, statement: cst.CSTNode | None = None
    ) -> None:
        """Backward and optimizer calls anywhere inside an expression (`statement`: the
        expression statement it is, whose call is made for its effects)."""
        for call in self.calls_in(expression):
            if self.keyed_bases:
                self.forget_keyed_touched(call, env)
            if isinstance(call.func, cst.Name):
                self.shared_state_call(call, env)
            site = self.backward_site(call)
            if site is not None:
                self.events.add("backwards", call, site)
                for loop in site.loops:
                    self.events.loops_with_backward.add(loop)
                if site.via_helper is not None:
                    self.apply_helper_backward(call, site.via_helper, env)
                else:
                    self.apply_backward(call, env)
                continue
            if (
                self.context.stateful_classes or self.context.carrying_methods
            ) and self.module_state_call(call, env):
                continue
            apply_call(self, call, env, call is statement)
            method = method_name(call)
            if method in ("zero_grad", "step") and isinstance(call.func, cst.Attribute):
                receiver = dotted_name(call.func.value)
                if receiver is not None:
                    self.events.add(
                        "optimizer_calls", call, OptimizerCall(call, receiver, method, self.loops)
                    )

    def _record_stepping_call(
        self, call: cst.Call, callee: str, module_class: str | None, states: tuple[str, ...]
    ) -> RecurrentCall:
        """A call that steps `states` as one recurrent call would (a stateful object's method,
        a closure sharing the state), recorded once per call node."""
        recurrent = RecurrentCall(
            call=call,
            statement=call,
            callee=callee,
            module_class=module_class,
            states=states,
            state_args={state: call for state in states},
            groups=(states,),
            loops=self.loops,
            no_grad=bool(self.no_grad_depth),
        )
        self._module_state_cache[id(call)] = recurrent
        self.events.recurrent_calls.append(recurrent)
        return recurrent

    def shared_state_call(self, call: cst.Call, env: Env) -> None:
        """`step(x)` where `step`, defined in this unit, declares `nonlocal hidden` (or, at a
        module's top level, `global hidden`) and steps it: the state is carried through the
        closure as through `out, hidden = step(x, hidden)`, and cut only when the closure
        cuts it before its recurrent call."""
        summary = self.shared_state_summary(call.func.value)  # type: ignore[attr-defined]
        states = tuple(name for name in summary if name in env)
        if not states:
            return
        stepped = tuple(name for name in states if summary[name][0] is not None)
        recurrent = self._module_state_cache.get(id(call))
        if recurrent is None and stepped:
            callee = call.func.value  # type: ignore[attr-defined]
            recurrent = self._record_stepping_call(call, callee, None, stepped)
        for name in states:
            read, final = summary[name]
            value = env[name]
            if recurrent is not None and read is not None:
                if read == CUT and value.has_graph:
                    value = with_carried(fresh(CUT, call), value.carried)
                elif read == "unknown":
                    value = UNKNOWN
                self.record_read(recurrent, name, value, value.carried)
            if final is None or final.status in (Status.UNKNOWN, Status.PARTIAL):
                env[name] = UNKNOWN
            elif final.status == Status.FRESH:
                env[name] = fresh(final.how or RESET, call)
            elif final.status != Status.INPUT:
                env[name] = (
                    fresh(NO_GRAD, call) if self.no_grad_depth else Value(Status.LIVE, "", call)
                )

    def shared_state_summary(self, name: str) -> dict[str, tuple[str | None, Value | None]]:
        """For a function this unit defines that declares names of it `nonlocal` (`global`
        for the module's own), each such name -> (how the function's recurrent calls read it:
        None when none does, CUT when always cut first, "live" or "unknown"; its value when
        the function returns, read from the value it was called with as INPUT)."""
        scan = self.scan()
        known = scan.shared_summaries.get(name)
        if known is not None:
            return known
        scan.shared_summaries[name] = {}  # a closure that calls itself: nothing, meanwhile
        function = scan.functions.get(name)
        at_top = isinstance(self.unit, cst.Module)
        if function is None and at_top and "global " in (self.context.source or ""):
            # A function of the script that runs no backward and cuts nothing is left out of
            # the blocks parsed: read alone from the text.
            function = parsed_method(self.context, None, name)
        if not isinstance(function, cst.FunctionDef) or self.no_grad_depth:
            return {}
        keyword = cst.Global if at_top else cst.Nonlocal
        declared = {
            item.name.value
            for node in descendants([function.body], stop=(cst.FunctionDef, cst.ClassDef))
            if isinstance(node, keyword)
            for item in node.names
        }
        if not declared:
            return {}
        params = [p.name.value for p in function.params.params]
        inner = UnitInterpreter(function, self.context, summarising=params)
        inner.run(function.body.body, {n: Value(Status.INPUT) for n in declared})
        summary: dict[str, tuple[str | None, Value | None]] = {}
        ends = [env for _, env in inner.return_envs]
        if inner.fell_through:
            ends.append(inner.final_env)
        for state in declared:
            reads = [r.value for r in inner.events.reads.values() if r.name == state]
            read: str | None = None
            if reads:
                statuses = {r.status for r in reads}
                if statuses == {Status.FRESH}:
                    read = CUT
                elif Status.UNKNOWN in statuses:
                    read = "unknown"
                else:
                    read = "live"
            final: Value | None = None
            for env in ends:
                final = join(final, env.get(state, UNKNOWN))
            summary[state] = (read, final)
        scan.shared_summaries[name] = summary
        return summary

    def module_state_call(self, call: cst.Call, env: Env) -> bool:
        """`model(x)` on a module whose forward carries `self.hidden`, and `model.reset()`
        on one of its methods that cuts or resets it. Returns whether the call was one."""
        callee = dotted_name(call.func)
        if callee is None:
            return False
        instance, method = callee, None
        if self.context.class_of(callee, self.class_name) not in self.context.stateful_classes:
            if not isinstance(call.func, cst.Attribute):
                return False
            instance = dotted_name(call.func.value) or ""
            method = call.func.attr.value
        class_name = self.context.class_of(instance, self.class_name)
        # `agent.act(obs)` with `act` stepping `self.hx` as a forward would: a step of it.
        carrying = self.context.carrying_methods.get(class_name or "", {}).get(method or "")
        attributes = carrying or self.context.stateful_classes.get(class_name or "")
        if not attributes or class_name is None:
            return False
        if method is not None and method != "forward" and carrying is None:
            touched = self.context.state_methods.get(class_name, {}).get(method)
            if not touched:
                return False
            for attribute, how in touched.items():
                state = f"{instance}.{attribute}"
                if how == PARTIAL_CUT:
                    updated = after_partial_cut(env.get(state))
                    if updated is not None:
                        env[state] = updated
                    continue
                made = fresh(how, call)
                if how in (CUT, LEAF) and state in env:
                    # A cut carries the state on: it comes from the same passes as what it cut.
                    made = with_carried(made, env[state].carried)
                env[state] = made
                if how == RESET:
                    self.events.attribute_resets.add((id(call), f"{instance}.{attribute}"))
            return True
        recurrent = self._module_state_cache.get(id(call))
        if recurrent is None:
            states = tuple(f"{instance}.{a}" for a in attributes)
            recurrent = self._record_stepping_call(call, instance, class_name, states)
        for attribute, how in attributes.items():
            state = f"{instance}.{attribute}"
            if how == RESET:
                continue
            value = env.get(state, FRESH_UNRELATED)
            carried = value.carried
            if how in (CUT, LEAF) and value.has_graph:
                value = fresh(CUT, call)
            self.record_read(recurrent, state, value, carried)
            env[state] = (
                fresh(NO_GRAD, call) if self.no_grad_depth else Value(Status.LIVE, "", call)
            )
        return True

    @staticmethod
    def calls_in(expression: cst.CSTNode) -> Iterator[cst.Call]:
        return iter(node_fact("calls_in", expression, _calls_in))

    def backward_site(self, call: cst.Call) -> BackwardSite | None:
        method = method_name(call)
        roots: tuple[cst.BaseExpression, ...] = ()
        helper = None
        if method in ("backward", "manual_backward"):
            receiver = call.func.value  # type: ignore[attr-defined]
            roots = (receiver,) + tuple(arg.value for arg in call.args if arg.keyword is None)
        else:
            qualified = self.context.qualify(call.func)
            if qualified in BACKWARD_FUNCTIONS:
                roots = tuple(arg.value for arg in call.args[:1])
            else:
                facts = self.function_facts(dotted_name(call.func))
                if facts is None or not facts.does_backward:
                    return None
                helper = dotted_name(call.func)
                roots = tuple(arg.value for arg in call.args)
        retain = keyword_arg(call, "retain_graph")
        return BackwardSite(
            call=call,
            loops=self.loops,
            retain_graph=retain is not None and is_true_literal(retain.value),
            roots=roots,
            via_helper=helper,
        )

    def apply_helper_backward(self, call: cst.Call, helper: str, env: Env) -> None:
        """A helper's backward runs through the graphs that reach it: those of what it is
        passed (and what shares a recurrent call with that: `loss` made from `out` carries
        the graph of `hidden`), the attributes of the objects it is passed or called on, and
        the names of this unit its body reads without binding them. A state the caller keeps
        for itself (an agent's acting state beside `train(q_net, memory)`) is not consumed."""
        passed = [arg.value for arg in call.args]
        roots = {name for node in passed for name in names_in(node)}
        receiver, _, method = helper.rpartition(".")
        # A method of this class reaches only the attributes it (or what it calls on `self`)
        # reads: an early-stopping counter kept on the trainer is not in its graph.
        read = self.self_attributes_read(method) if receiver == "self" else None
        if receiver and read is None:
            roots.add(receiver.split(".")[0])
        roots |= self.free_names_of(helper)

        def reaches(name: str) -> bool:
            return name.split(".")[0] in roots or (
                read is not None and any(name == a or name.startswith(a + ".") for a in read)
            )

        values = [self.evaluate(node, env) for node in passed]
        values += [value for name, value in env.items() if reaches(name)]
        origins = {
            origin
            for value in values
            for part in (value, *(value.elements or ()))
            for origin, how in part.all_sources()
            if how == "LIVE"
        }
        reached = {
            name
            for name, value in env.items()
            if reaches(name)
            or any(how == "LIVE" and origin in origins for origin, how in value.all_sources())
            or any(
                how == "LIVE" and origin in origins
                for element in value.elements or ()
                for origin, how in element.all_sources()
            )
        }
        self.apply_backward(call, env, reached)

    def self_attributes_read(self, method: str) -> set[str] | None:
        """The `self.<attr>` paths a method of this unit's class reads, through the methods of
        the class it calls on `self`; None when the class or the method cannot be read, or
        when `self` is handed on whole (`self(x)`, `helper(self)`), which may read anything. A
        method the file does not define (inherited from another file) counts as its own
        attribute."""
        if self.class_name is None or not self.context.source:
            return None
        read: set[str] = set()
        todo, seen = [method], set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            function = parsed_method(self.context, self.class_name, name)
            if function is None:
                if name == method:
                    return None
                read.add(f"self.{name}")
                continue
            bare_self = 0
            for node in descendants([function.body]):
                if isinstance(node, cst.Name) and node.value == "self":
                    bare_self += 1
                elif (
                    isinstance(node, cst.Attribute)
                    and isinstance(node.value, cst.Name)
                    and node.value.value == "self"
                ):
                    bare_self -= 1
                    read.add(f"self.{node.attr.value}")
                elif isinstance(node, cst.Call):
                    owner, _, called = (dotted_name(node.func) or "").rpartition(".")
                    if owner == "self":
                        todo.append(called)  # a method of the class, or a module it holds
            if bare_self > 0:
                return None
        return read

    def free_names_of(self, helper: str) -> set[str]:
        """Names a function defined in this unit (or, at module level, this module) reads
        from the enclosing scope: every name it mentions that it does not bind. A helper
        defined elsewhere cannot read this unit's names."""
        function = self.scan().functions.get(helper) if helper.isidentifier() else None
        if not isinstance(function, cst.FunctionDef):
            return set()
        return free_names(function)

    def apply_backward(self, call: cst.Call, env: Env, reached: set[str] | None = None) -> None:
        for name, value in list(env.items()):
            if reached is not None and name not in reached:
                continue
            if value.has_graph or (value.elements and any(e.has_graph for e in value.elements)):
                if value.status == Status.LIVE:
                    self.events.consumed.update(
                        id(origin) for origin, how in value.all_sources() if how == "LIVE"
                    )
                env[name] = value.consumed_by(call)

    # ------------------------------------------------------------ evaluation
    def function_facts(self, callee: str | None) -> FunctionFacts | None:
        if callee is None:
            return None
        facts = self.context.functions.get(callee)
        if facts is None and callee.startswith("self.") and self.class_name:
            facts = self.context.functions.get(f"{self.class_name}.{callee[5:]}")
        if facts is None and callee.isidentifier():
            facts = self.nested_function_facts(callee)
        return facts

    def nested_function_facts(self, name: str) -> FunctionFacts | None:
        """Facts of a function defined inside this unit (`def get_loss(x, h): ... return
        loss, h.detach()` within `train`), summarised the first time it is called."""
        visible = self.visible_function(name)
        if visible is None:
            return None
        scan, function = visible
        if not isinstance(function, cst.FunctionDef):
            return None
        if name not in scan.nested_facts:
            interpretation = self.context.interpretation
            if interpretation is None:
                return None
            # A helper that calls itself (`detach_all(v) for v in h`) starts, as a module's
            # do, from the guess that it cuts, and the passes take back what is false.
            recursive = name in names_in(function.body)
            scan.nested_facts[name] = ASSUMED_CUT if recursive else FunctionFacts()
            for _ in range(SUMMARY_PASSES if recursive else 1):
                summary = interpretation.summarise_function(function, self.context, None)
                settled = summary == scan.nested_facts[name]
                scan.nested_facts[name] = summary
                if settled:
                    break
        return scan.nested_facts[name]

    def flag_outcome(self, call: cst.Call, callee: str | None, env: Env) -> str | None:
        """For a call of a helper whose cut a flag parameter decides (`FunctionFacts.flag_cut`),
        directly or through a `partial` bound in this unit: "cut" or "kept" when the flag's
        value is a constant of the call (or its default), "unknown" otherwise; None for any
        other call."""
        given: list[cst.Arg] = list(call.args)
        bound: cst.Call | None = None
        if callee is None and isinstance(call.func, cst.Call):
            if self.context.qualify(call.func.func) in PARTIAL_FUNCTIONS:
                bound = call.func  # `functools.partial(repackage, keep_graph=False)(h)`
        elif callee is not None and "." not in callee:
            bound = self.bound_partial(callee)
        if bound is not None and bound.args and dotted_name(bound.args[0].value):
            callee = dotted_name(bound.args[0].value)
            given = [*bound.args[1:], *call.args]
        if callee is None:
            return None
        facts = self.resolved_facts(callee, env)
        if len(facts) != 1 or facts[0].flag_cut is None:
            return None
        name, position, default, when_true, when_false = facts[0].flag_cut
        truth = default
        positional = [a for a in given if a.keyword is None]
        if any(a.star for a in given):
            return "unknown"
        keyword = next((a for a in given if a.keyword and a.keyword.value == name), None)
        if keyword is not None:
            truth = constant_truth(keyword.value)
        elif 0 <= position < len(positional):
            truth = constant_truth(positional[position].value)
        if truth < 0:
            return "unknown"
        return "cut" if (when_true if truth else when_false) else "kept"

    def bound_partial(self, name: str) -> cst.Call | None:
        """The `functools.partial(...)` call this unit (or a function around it) binds
        `name` to."""
        unit: cst.CSTNode | None = self.unit
        while unit is not None:
            scan = self.scan_of(unit)
            if name in scan.functions:
                return None
            call = scan.bound_calls.get(name)
            if call is not None:
                return call if self.context.qualify(call.func) in PARTIAL_FUNCTIONS else None
            unit = (
                self.context.enclosing_function(unit) if isinstance(unit, cst.FunctionDef) else None
            )
        return None

    def is_cut_callee(self, callee: str | None, env: Env | None = None) -> bool:
        if callee is None:
            return False
        if any(facts.returns_cut for facts in self.resolved_facts(callee, env or {})):
            return True
        qualified = self.context.imports.qualify(callee)
        if self.context.is_detach_function(qualified, callee):
            return True
        return "." not in callee and self.bound_cut(callee)

    def bound_cut(self, name: str) -> bool:
        """A name this unit (or a function around it) binds to a lambda or a `partial` of a
        function that cuts what it is applied to (`cut = functools.partial(repackage,
        device=d)`, `cut = lambda t: repackage(t, d)`): calling it is that cut."""
        if name in self.binding_guard:
            return False
        unit: cst.CSTNode | None = self.unit
        while unit is not None:
            scan = self.scan_of(unit)
            bound: cst.CSTNode | None = scan.functions.get(name)
            if bound is None:
                call = scan.bound_calls.get(name)
                if call is not None and self.context.qualify(call.func) in PARTIAL_FUNCTIONS:
                    bound = call
            if bound is not None:
                if not isinstance(bound, (cst.Lambda, cst.Call)):
                    return False  # a def: its summary already told
                self.binding_guard.add(name)
                try:
                    return bool(self.function_cuts(bound))
                finally:
                    self.binding_guard.discard(name)
            unit = (
                self.context.enclosing_function(unit) if isinstance(unit, cst.FunctionDef) else None
            )
        return False

    # ---------------------------------------------------------------- mappers
    def maps_a_function(self, call: cst.Call) -> bool:
        """A call handed a function to apply (`tree_map(lambda t: t.detach(), h)`,
        `apply_to_tensor(h, torch.Tensor.detach)`, `h.apply(fn)`): a lambda, a `partial`, a
        `methodcaller`, or a function known to cut. It maps the function over what it is
        given; it is no recurrent step."""
        return any(self.function_cuts(arg.value) is not None for arg in call.args)

    def maps_a_cut(self, call: cst.Call) -> bool:
        """Whether a call is handed a function that cuts what it is applied to: the mapper is
        then a cut of what it maps, whatever its name."""
        if len(call.args) < 2 and not isinstance(call.func, cst.Attribute):
            return False  # nothing to map a function over
        return any(self.function_cuts(arg.value) for arg in call.args)

    def function_cuts(self, node: cst.BaseExpression) -> bool | None:
        """For an argument that is a function, whether it cuts the tensors it is applied to;
        None when the argument is not known to be a function."""
        if isinstance(node, cst.Lambda):
            return self.lambda_cuts(node)
        if isinstance(node, cst.Call):
            qualified = self.context.qualify(node.func)
            if qualified in PARTIAL_FUNCTIONS and node.args:
                return bool(self.function_cuts(node.args[0].value))
            if qualified in METHOD_CALLERS and node.args:
                name = node.args[0].value
                return isinstance(name, cst.SimpleString) and (
                    name.evaluated_value in DETACHING_METHODS
                )
            return None
        dotted = dotted_name(node)
        if dotted is None:
            return None
        qualified = self.context.qualify(node) or dotted
        # `torch.Tensor.detach`, `Tensor.detach_`, `torch.detach`: the cut itself.
        if "." in qualified and qualified.rsplit(".", 1)[-1] in DETACHING_METHODS:
            return True
        if qualified.startswith("torch.Tensor."):
            return False  # `torch.Tensor.clone`: a tensor method, which keeps the graph
        facts = self.resolved_facts(dotted, {})
        if any(f.returns_cut or f.cuts_tensor or f.inplace_cut for f in facts):
            return True
        return self.local_function_cuts(dotted)

    def lambda_cuts(self, function: cst.Lambda) -> bool:
        params = function.params.params
        if not params:
            return False
        name = params[0].name.value
        applied_to = {name: Value(Status.LIVE, "", function)}
        return self.cuts_tensor_named(name, lambda: self._evaluate(function.body, applied_to))

    def cuts_tensor_named(self, name: str, evaluate: Callable[[], Value]) -> bool:
        """Whether `evaluate` (of a function applied to the tensor `name`) gives a cut."""
        before = self.tensor_names
        self.tensor_names = before | {name}
        try:
            value = evaluate()
        finally:
            self.tensor_names = before
        return value.status == Status.FRESH and value.how in (CUT, LEAF)

    def local_function_cuts(self, name: str) -> bool | None:
        """A function defined (or a lambda bound) in this unit, handed to a mapper by name."""
        function = self.visible_def(name)
        if function is None:
            return None
        if isinstance(function, cst.Lambda):
            return self.lambda_cuts(function)
        params = [p.name.value for p in function.params.params]
        if not params:
            return False
        inner = UnitInterpreter(function, self.context, summarising=params[:1])
        inner.tensor_names = frozenset(params[:1])
        inner.run(function.body.body)
        returns = inner.return_values
        return bool(returns) and all(
            v.status == Status.FRESH and v.how in (CUT, LEAF) for v in returns
        )

    def is_tensor_test(self, test: cst.BaseExpression) -> bool | None:
        """The truth of a tensor test of a name taken to be a tensor; None for any other test."""
        tested = self.tensor_test(test)
        if tested is None or tested[0] not in self.tensor_names:
            return None
        return tested[1]

    def tensor_test(self, test: cst.BaseExpression) -> tuple[str, bool] | None:
        """`isinstance(t, torch.Tensor)` or `torch.is_tensor(t)`, or their negation: the name
        tested, and whether the test holds when it is a tensor."""
        negated = False
        while isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
            negated, test = not negated, test.expression
        if not isinstance(test, cst.Call) or not test.args:
            return None
        name = dotted_name(test.args[0].value)
        if name is None:
            return None
        qualified = self.context.qualify(test.func)
        if qualified in TENSOR_TESTS and len(test.args) == 1:
            return name, not negated
        if qualified == "isinstance" and len(test.args) == 2:
            classes = test.args[1].value
            options = (
                [e.value for e in classes.elements]
                if isinstance(classes, (cst.Tuple, cst.List))
                else [classes]
            )
            if any(self.context.qualify(option) in TENSOR_CLASSES for option in options):
                return name, not negated
        return None

    def evaluate_tensor_choice(self, node: cst.IfExp, env: Env) -> Value | None:
        """`t.detach() if isinstance(t, torch.Tensor) else t`: for a tensor, only its branch;
        for an element of a collection being mapped, the other branch holds something that is
        no tensor (a number, None), which holds no graph. None for any other choice."""
        tested = self.tensor_test(node.test)
        if tested is None:
            return None
        name, holds_for_tensor = tested
        tensor_branch, other = (
            (node.body, node.orelse) if holds_for_tensor else (node.orelse, node.body)
        )
        if name in self.tensor_names:
            return self._evaluate(tensor_branch, env)
        if name not in self.element_names:
            return None
        not_a_tensor = {**env, name: FRESH_UNRELATED}
        return (
            join(self._evaluate(tensor_branch, env), self._evaluate(other, not_a_tensor))
            or FRESH_UNRELATED
        )

    def evaluate_returned(self, node: cst.BaseExpression, env: Env) -> Value:
        """What a `return` hands back. Without gradients, a tensor the expression computes
        holds no graph, but one it hands on as it was given (`return h`, `return s[0]`,
        `return tuple(t for t in s)`, `return h.to(device)`) keeps its own."""
        if not self.no_grad_depth:
            return self.evaluate(node, env)
        # Read as if with gradients (names bound under `no_grad` are already no graph): a
        # comprehension's own names are the elements of what it is given.
        depth, self.no_grad_depth = self.no_grad_depth, 0
        try:
            value = self._evaluate(node, env)
        finally:
            self.no_grad_depth = depth
        if value.status != Status.FRESH and computed_anew(node):
            return fresh(NO_GRAD, node)
        return value

    def evaluate(self, node: cst.BaseExpression, env: Env) -> Value:
        value = self._evaluate(node, env)
        if self.no_grad_depth and value.status != Status.FRESH:
            return fresh(NO_GRAD, node)
        return value

    def _evaluate(self, node: cst.BaseExpression, env: Env) -> Value:
        dotted = dotted_name(node)
        if dotted is not None:
            if dotted in self.keyed_bases and dotted in env:
                return self.with_keyed_entries(dotted, env)
            if dotted in env:
                return env[dotted]
            if isinstance(node, cst.Attribute) and node.attr.value in SIZE_ATTRIBUTES:
                return FRESH_UNRELATED
            if isinstance(node, cst.Attribute):
                if node.attr.value == "data":
                    inner = self._evaluate(node.value, env)
                    if inner.status != Status.FRESH or inner.elements is not None:
                        return fresh(CUT, node, via_data=True)
                    return inner
                return self._evaluate(node.value, env)
            if dotted == "None":
                return fresh(RESET, node)
            return FRESH_UNRELATED
        if isinstance(node, cst.Attribute):
            if node.attr.value == "data":
                return fresh(CUT, node, via_data=True)
            return self._evaluate(node.value, env)
        if _describes_size(node):
            return FRESH_UNRELATED
        if isinstance(node, cst.Call):
            return self.evaluate_call(node, env)
        if isinstance(node, (cst.Tuple, cst.List)):
            elements = tuple(
                self._evaluate(e.value, env)
                for e in node.elements
                if not isinstance(e, cst.StarredElement)
            )
            return composite(elements, node)
        if isinstance(node, cst.Dict):
            values = tuple(
                self._evaluate(e.value, env)
                for e in node.elements
                if isinstance(e, cst.DictElement)
            )
            return composite(values, node)
        if isinstance(node, (cst.GeneratorExp, cst.ListComp, cst.SetComp)):
            return self.evaluate_comprehension(node, node.elt, env)
        if isinstance(node, cst.DictComp):
            return self.evaluate_comprehension(node, node.value, env)
        if isinstance(node, cst.Subscript):
            keyed = keyed_state(node)
            if keyed is not None and keyed in env:
                return env[keyed]
            base = self._evaluate(node.value, env)
            if base.elements is not None and len(node.slice) == 1:
                index = node.slice[0].slice
                if isinstance(index, cst.Index) and isinstance(index.value, cst.Integer):
                    position = int(index.value.value)
                    if -len(base.elements) <= position < len(base.elements):
                        return base.elements[position]
            return self.element_of(base) if base.elements is not None else base
        if isinstance(node, cst.IfExp):
            fixed = fixed_truth(node.test, self.fixed_truths) if self.fixed_truths else None
            if fixed is not None:
                return self._evaluate(node.body if fixed else node.orelse, env)
            chosen = self.evaluate_tensor_choice(node, env)
            if chosen is not None:
                return chosen
            return (
                join(self._evaluate(node.body, env), self._evaluate(node.orelse, env))
                or FRESH_UNRELATED
            )
        if isinstance(node, (cst.Lambda, cst.SimpleString, cst.Integer, cst.Float)):
            return FRESH_UNRELATED
        if isinstance(node, cst.BinaryOperation):
            # `hx.detach() * masks`: each operand as it evaluates, so a cut operand stays cut
            # (the names inside `hx.detach()` are not the uncut `hx`).
            joined = join(self._evaluate(node.left, env), self._evaluate(node.right, env))
            return FRESH_UNRELATED if joined is None else replace(joined, elements=None)
        if isinstance(node, cst.UnaryOperation):
            return replace(self._evaluate(node.expression, env), elements=None)
        return self.join_of_names(node, env)

    def forget_keyed(self, name: str | None, env: Env) -> None:
        """Drop what is known of `name["h"]`-style entries: they read `name` again."""
        if name is None or name not in self.keyed_bases:
            return
        for key in [k for k in env if k.startswith(name + "[")]:
            del env[key]

    def forget_keyed_touched(self, call: cst.Call, env: Env) -> None:
        """A dict whose entries are followed, handed whole to a call (`detach_all_(state)`)
        or changed by a method of its own (`state.update(...)`): its entries may have
        changed in ways the analysis does not follow."""
        receiver = call.func.value if isinstance(call.func, cst.Attribute) else None
        if receiver is not None and method_name(call) not in READ_ONLY_DICT_METHODS:
            self.forget_keyed(dotted_name(receiver), env)
        for arg in call.args:
            self.forget_keyed(dotted_name(arg.value), env)

    def with_keyed_entries(self, name: str, env: Env) -> Value:
        """A dict read whole after some of its entries were bound (`state["h"] = h`): its
        value joined with theirs."""
        value = env[name]
        entries = [v for k, v in env.items() if k.startswith(name + "[")]
        if not entries:
            return value
        result: Value | None = replace(value, elements=None)
        for entry in entries:
            result = join(result, replace(entry, elements=None))
        return result or value

    def join_of_names(self, node: cst.CSTNode, env: Env) -> Value:
        result: Value | None = None
        for name in names_in(node):
            if name in env:
                result = join(result, replace(env[name], elements=None))
        return result or FRESH_UNRELATED

    def evaluate_call(self, call: cst.Call, env: Env) -> Value:
        method = method_name(call)
        receiver_node = call.func.value if isinstance(call.func, cst.Attribute) else None
        if method in DETACHING_METHODS:
            return fresh(CUT, call)
        if method in SCALAR_METHODS:
            return fresh(CUT, call)
        if method in RESET_METHODS:
            return fresh(RESET, call)
        if method == "requires_grad_" and receiver_node is not None:
            inner = self._evaluate(receiver_node, env)
            if inner.status == Status.FRESH and inner.how == CUT:
                return replace(inner, how=LEAF)
            return inner
        callee = dotted_name(call.func)
        qualified = self.context.imports.qualify(callee)
        if qualified in SCALAR_FUNCTIONS:
            return fresh(CUT, call)
        if qualified in ("torch.autograd.Variable", "Variable") and call.args:
            inner = self._evaluate(call.args[0].value, env)
            return (
                inner
                if inner.status == Status.FRESH and inner.how == CUT
                else self.join_of_names(call, env)
            )
        flagged = self.flag_outcome(call, callee, env)
        if flagged == "cut":
            return fresh(CUT, call)
        if flagged == "unknown":
            return UNKNOWN
        if flagged is None and self.is_cut_callee(callee, env):
            return fresh(CUT, call)
        if qualified in ELEMENTWISE_WRAPPERS and len(call.args) == 1:
            return self._evaluate(call.args[0].value, env)
        if qualified in ("zip", "enumerate"):
            zipped = self.evaluate_zip(call, qualified, env)
            if zipped is not None:
                return zipped
        if qualified == "map" and len(call.args) == 2:
            return self.evaluate_map(call, env)
        if self.maps_a_cut(call):
            return fresh(CUT, call)
        if qualified is not None and qualified.endswith("_like") and qualified.startswith("torch."):
            return fresh(RESET, call)
        if qualified in RESET_FACTORIES:
            return fresh(RESET, call)
        # `h.clone()`, `h.to(device)`, `f(h, x)`: the values passed in, receiver included. A
        # call that takes nothing with a graph or a cut builds a new value. An object's method
        # (`model.init_hidden(b)`) builds what it returns from what it is passed: should the
        # object hold a graph, the analysis lost track of it, and the result is unknown.
        value: Value | None = None
        if method is not None and receiver_node is not None:
            value = self._evaluate(receiver_node, env)
            if value.has_graph and self.is_object(dotted_name(receiver_node)):
                value = UNKNOWN
            if method in RECEIVER_METHODS and value.status == Status.FRESH:
                return value
        for arg in call.args:
            value = join(value, self._evaluate(arg.value, env))
        if value is None or (value.status == Status.FRESH and value.how in (RESET, NO_GRAD)):
            return fresh(RESET, call)
        if value.status != Status.FRESH:
            return replace(value, elements=None, item=None)
        return replace(value, item=None) if value.item is not None else value

    def evaluate_zip(self, call: cst.Call, qualified: str, env: Env) -> Value | None:
        """`zip(cells, states)` (or `enumerate(states)`) over a list whose elements are
        tuples of a known shape: each element is the tuple of what each list holds, so `for
        cell, (h, c) in zip(cells, states)` unpacks `h` and `c` from `states` alone. None when
        no list has such elements (each element is then the join of all of them)."""
        args = [arg for arg in call.args if not arg.keyword]
        if any(arg.star for arg in call.args) or not args:
            return None
        if len(args) != 1 if qualified == "enumerate" else len(args) < 2:
            return None
        values = [self._evaluate(arg.value, env) for arg in args]
        if qualified == "enumerate" and values[0].item is None:
            return None
        parts = tuple(self.element_of(value) for value in values)
        if qualified == "enumerate":
            parts = (FRESH_UNRELATED, *parts)
        whole: Value | None = None
        for value in values:
            whole = join(whole, replace(value, elements=None, item=None))
        assert whole is not None
        return replace(whole, item=composite(parts, call))

    def evaluate_map(self, call: cst.Call, env: Env) -> Value:
        function, iterable = call.args[0].value, call.args[1].value
        source = self._evaluate(iterable, env)
        if isinstance(function, cst.Lambda) and function.params.params:
            inner = dict(env)
            inner[function.params.params[0].name.value] = self.element_of(source)
            result = self._evaluate(function.body, inner)
        elif self.function_cuts(function):
            result = fresh(CUT, call)
        else:
            result = self.element_of(source)
        if result.status == Status.FRESH and source.has_graph:
            return fresh(result.how or CUT, call, via_data=result.via_data)
        return replace(result, elements=None) if result.status != Status.FRESH else result

    def evaluate_comprehension(
        self, node: cst.BaseExpression, element: cst.BaseExpression, env: Env
    ) -> Value:
        inner = dict(env)
        clause: cst.CompFor | None = node.for_in  # type: ignore[attr-defined]
        source: Value = FRESH_UNRELATED
        # The comprehension's names are the elements of what it is given, computed by nothing
        # (under `no_grad` too): `[t.clone() for t in s]` copies the tensors of `s`.
        depth, self.no_grad_depth = self.no_grad_depth, 0
        try:
            while clause is not None:
                source = self._evaluate(clause.iter, inner)
                item = self.element_of(source)
                if isinstance(clause.iter, cst.Call) and method_name(clause.iter) == "items":
                    item = replace(item, elements=None)
                    if isinstance(clause.target, cst.Tuple) and len(clause.target.elements) == 2:
                        self.bind(clause.target.elements[0].value, FRESH_UNRELATED, inner)
                        self.bind(clause.target.elements[1].value, item, inner)
                        clause = clause.inner_for_in
                        continue
                self.bind(clause.target, item, inner)
                clause = clause.inner_for_in
        finally:
            self.no_grad_depth = depth
        before = self.element_names
        self.element_names = before | set(target_names(node.for_in.target))  # type: ignore[attr-defined]
        try:
            value = self._evaluate(element, inner)
        finally:
            self.element_names = before
        if value.status == Status.FRESH:
            return Value(Status.FRESH, value.how or RESET, node, via_data=value.via_data)
        if value.status == Status.PARTIAL:
            # `[(h.detach(), c) for h, c in states]`: each element is the same partly cut
            # tuple, which the layers' loop unpacks again.
            shape = value if value.elements is not None else None
            return Value(Status.PARTIAL, "", node, value.backwards, item=shape)
        return replace(value, elements=None, item=None)


ALL_INDICES = "all"
SOME_INDICES = "some"
UNKNOWN_INDICES = "unknown"


def _int_value(node: cst.BaseExpression | None) -> int | None:
    if isinstance(node, cst.Integer):
        return int(node.value, 0)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        inner = _int_value(node.expression)
        return None if inner is None else -inner
    return None


def _is_len_of(node: cst.BaseExpression, container: str | None) -> bool:
    return (
        container is not None
        and isinstance(node, cst.Call)
        and dotted_name(node.func) == "len"
        and len(node.args) == 1
        and dotted_name(node.args[0].value) == container
    )


def _range_coverage(iterable: cst.BaseExpression, container: str | None) -> str:
    """Which indices of `container` a loop over `iterable` takes (see subscript_coverage)."""
    if not isinstance(iterable, cst.Call) or any(arg.star or arg.keyword for arg in iterable.args):
        if isinstance(iterable, cst.Call) and dotted_name(iterable.func) == "enumerate":
            return UNKNOWN_INDICES  # `enumerate(states, start=1)`
        return ALL_INDICES
    callee = dotted_name(iterable.func)
    args = [arg.value for arg in iterable.args]
    if callee == "enumerate":
        if len(args) == 2 and _int_value(args[1]) != 0:
            return UNKNOWN_INDICES
        if args and isinstance(args[0], cst.Subscript):
            return UNKNOWN_INDICES  # `enumerate(states[1:])`
        return ALL_INDICES
    if callee != "range" or not 1 <= len(args) <= 3:
        return ALL_INDICES
    start = args[0] if len(args) >= 2 else None
    stop = args[1] if len(args) >= 2 else args[0]
    step = args[2] if len(args) == 3 else None
    verdict = ALL_INDICES
    if start is not None:
        first = _int_value(start)
        if first is None:
            verdict = UNKNOWN_INDICES
        elif first != 0:
            return SOME_INDICES
    if step is not None:
        stride = _int_value(step)
        if stride is None:
            verdict = UNKNOWN_INDICES
        elif stride != 1:
            return SOME_INDICES
    if (
        isinstance(stop, cst.BinaryOperation)
        and isinstance(stop.operator, cst.Subtract)
        and _is_len_of(stop.left, container)
        and (_int_value(stop.right) or 0) > 0
    ):
        return SOME_INDICES  # `range(len(states) - 1)`
    return verdict


def _unpack_parts(target: cst.BaseExpression, value: Value, env: Env) -> None:
    """Each name of a loop's target bound to its part of `value`, where the shapes agree."""
    if isinstance(target, (cst.Tuple, cst.List)):
        parts = [element.value for element in target.elements]
        if any(isinstance(part, cst.StarredElement) for part in parts):
            return
        if value.elements is None:
            whole = replace(value, elements=None, item=None)
            if value.item is not None:
                whole = value.item
            elif value.status == Status.PARTIAL:
                whole = replace(whole, status=Status.STALE)
            for part in parts:
                _unpack_parts(part, whole, env)
            return
        if len(value.elements) != len(parts):
            return
        for part, part_value in zip(parts, value.elements, strict=True):
            _unpack_parts(part, with_carried(part_value, value.carried), env)
    elif isinstance(target, cst.Name):
        env[target.value] = value


def _only_carries(node: cst.BaseExpression, carried: dict[str, cst.BaseExpression]) -> bool:
    """An argument that passes the state and nothing else: `h`, or `(x, h)` when both are
    rebound by the call (`x, h = require_grad((x, h))`)."""
    if any(node is expression for expression in carried.values()):
        return True
    if isinstance(node, (cst.Tuple, cst.List)) and node.elements:
        return all(_only_carries(element.value, carried) for element in node.elements)
    return False


def _is_constant(node: cst.BaseExpression) -> bool:
    """A literal setting (`"O1"`, `2.0`, `True`, `None`, `-1`, `(1, 2)`), never an input."""
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString, cst.Integer, cst.Float)):
        return True
    if isinstance(node, cst.Name):
        return node.value in ("True", "False", "None")
    if isinstance(node, cst.UnaryOperation):
        return _is_constant(node.expression)
    if isinstance(node, (cst.Tuple, cst.List)):
        return all(_is_constant(element.value) for element in node.elements)
    return False


def _is_cutting_method(unit: cst.CSTNode, class_name: str | None) -> bool:
    """A method whose name promises a cut of the state its object holds (`detach`,
    `repackage_hidden`, `detach_state`) and that returns nothing else than its object: its
    callers rely on it to cut in place, so a detach in it whose result is thrown away is a bug
    whatever the objects it is called on."""
    if class_name is None or not isinstance(unit, cst.FunctionDef):
        return False
    name = unit.name.value.lower()
    if not any(word in name for word in CUTTING_METHOD_WORDS):
        return False
    for node in descendants([unit.body], stop=NESTED_SCOPES):
        returned = node.value if isinstance(node, cst.Return) else None
        if returned is not None and dotted_name(returned) not in ("self", "None"):
            return False
    return True


def cut_in_place(value: Value | None, call: cst.CSTNode) -> Value:
    """What `detach_()` (or any in-place cut) leaves: the same object, cut. It keeps the loops
    it was carried across, as `h = h.detach()` does: a cut is no reset (TBP011)."""
    cut = fresh(CUT, call)
    return with_carried(cut, value.carried) if value is not None else cut


def parsed_method(
    context: FileContext, class_name: str | None, method: str
) -> cst.FunctionDef | None:
    """A method of a class of the file (or, with no class, a top-level function) that phase 2
    did not parse, as it keeps only the blocks that may matter: parsed alone from the file's
    text."""
    key = (class_name, method)
    if not context.source:
        return None  # the text is set on the context only for the final pass over the file
    if key not in context.parsed_methods:
        context.parsed_methods[key] = _parse_method(context.source, class_name, method)  # type: ignore[index]
    return context.parsed_methods[key]  # type: ignore[index]


def _parse_method(source: str, class_name: str | None, method: str) -> cst.FunctionDef | None:
    header = f"class {class_name}"
    if class_name is not None and header not in source:
        return None
    lines = source.splitlines(keepends=True)
    for block in top_level_blocks(source):
        if class_name is None:
            if _defines(block.text, method):
                return _parse_function(block.text, source)
            continue
        lines_of_block = (line for line in block.text.splitlines() if not line.startswith("@"))
        if not next(lines_of_block, "").startswith((f"{header}(", f"{header}:")):
            continue
        for member in member_blocks(lines, block):
            text = dedented(member)
            if _defines(text, method):
                return _parse_function(text, source)
    return None


def _defines(text: str, name: str) -> bool:
    return text.startswith((f"def {name}(", f"async def {name}("))


def _parse_function(text: str, source: str) -> cst.FunctionDef | None:
    try:
        parsed = cst.parse_module(text)
    except cst.ParserSyntaxError:
        unparsable_cut(f"the function {text.partition('(')[0]!r} parsed alone", source)
        return None
    first = parsed.body[0] if parsed.body else None
    return first if isinstance(first, cst.FunctionDef) else None


BINDING_TARGETS = (cst.AssignTarget, cst.AugAssign, cst.AnnAssign, cst.For, cst.CompFor)


def free_names(function: cst.FunctionDef) -> set[str]:
    """Names a function mentions but never binds (nor takes as parameters), plus those it
    declares `global` or `nonlocal`: what it reads from the scopes around it."""
    mentioned: set[str] = set()
    bound = {p.name.value for p in function.params.params}
    bound |= {p.name.value for p in function.params.posonly_params}
    bound |= {p.name.value for p in function.params.kwonly_params}
    for star in (function.params.star_arg, function.params.star_kwarg):
        if isinstance(star, cst.Param):
            bound.add(star.name.value)
    declared: set[str] = set()
    for node in descendants([function.body]):
        if isinstance(node, cst.Name):
            mentioned.add(node.value)
        elif isinstance(node, (cst.Global, cst.Nonlocal)):
            declared |= {item.name.value for item in node.names}
        elif isinstance(node, BINDING_TARGETS):
            bound.update(target_names(node.target))
        elif isinstance(node, (cst.FunctionDef, cst.ClassDef)) or (
            isinstance(node, cst.AsName) and isinstance(node.name, cst.Name)
        ):
            bound.add(node.name.value)  # type: ignore[union-attr]
    return (mentioned - bound) | declared


def _describes_size(node: cst.BaseExpression) -> bool:
    """`x.shape[0]`, `x.size(1)`, `len(x)`, `x.device`: a number or a description of a
    tensor, which holds neither its graph nor its values."""
    while isinstance(node, cst.Subscript):
        node = node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value in SIZE_ATTRIBUTES
    if isinstance(node, cst.Call):
        func = node.func
        if isinstance(func, cst.Attribute):
            return func.attr.value in SIZE_METHODS
        return isinstance(func, cst.Name) and func.value in SIZE_FUNCTIONS
    return False


def _holds_state(value: Value) -> bool:
    """Whether a value may be state carried on: anything but a value made anew."""
    return value.status != Status.FRESH or value.how != RESET


def _carried_around(env: Env, loop: cst.CSTNode, objects: set[str]) -> Env:
    """The values at the end of a pass, as the next pass of `loop` sees them: every state
    among them now comes from an earlier pass. Objects (a model, an optimizer) are not state:
    what their methods make anew (`decoder.init_hidden(8)`) is not carried by them."""
    marks = frozenset({loop})
    return {
        name: with_carried(value, marks) if _holds_state(value) and name not in objects else value
        for name, value in env.items()
    }


def _unpacked_length(target: cst.BaseExpression) -> int | None:
    """How many names a tuple target unpacks a result into (`loss, h = ...`: 2); None for a
    single name or a starred target."""
    if not isinstance(target, (cst.Tuple, cst.List)):
        return None
    if any(isinstance(e, cst.StarredElement) for e in target.elements):
        return None
    return len(target.elements)


def keyed_name(target: cst.BaseExpression) -> str | None:
    """`stats["loss"]`, `meters[0]`: an entry of a named container under a constant key, named
    by its code, so that `stats["loss"] += loss` is an accumulation as `total += loss` is."""
    if not isinstance(target, cst.Subscript) or len(target.slice) != 1:
        return None
    holder = dotted_name(target.value)
    index = target.slice[0].slice
    if holder is None or not isinstance(index, cst.Index):
        return None
    if not isinstance(index.value, (cst.SimpleString, cst.Integer)):
        return None
    return f"{holder}[{index.value.value}]"


def _unscaled(term: cst.BaseExpression, target: cst.BaseExpression) -> str | None:
    """The name a term of a sum reads, through one scaling by a factor: `avg` for `avg`,
    `avg * 0.9`, `0.9 * avg` or `avg / 2`."""
    if isinstance(term, cst.BinaryOperation) and isinstance(
        term.operator, (cst.Multiply, cst.Divide)
    ):
        sides = [term.left, term.right] if isinstance(term.operator, cst.Multiply) else [term.left]
        for side in sides:
            name = dotted_name(side) or keyed_name(side)
            if name is not None and name == (dotted_name(target) or keyed_name(target)):
                return name
        return None
    return dotted_name(term) or keyed_name(term) or _got_entry(term)


def _got_entry(term: cst.BaseExpression) -> str | None:
    """`stats.get("loss", 0)`: the entry `stats["loss"]` read with a default, named as
    `keyed_name` names it."""
    if not (
        isinstance(term, cst.Call)
        and isinstance(term.func, cst.Attribute)
        and term.func.attr.value == "get"
        and term.args
        and term.args[0].keyword is None
    ):
        return None
    holder = dotted_name(term.func.value)
    key = term.args[0].value
    if holder is None or not isinstance(key, (cst.SimpleString, cst.Integer)):
        return None
    return f"{holder}[{key.value}]"


def additive_terms(value: cst.BaseExpression) -> list[cst.BaseExpression]:
    """`a + b - c` -> a, b, c; anything else is one term."""
    if isinstance(value, cst.BinaryOperation) and isinstance(
        value.operator, (cst.Add, cst.Subtract)
    ):
        return additive_terms(value.left) + additive_terms(value.right)
    return [value]


def state_left_out(call: cst.Call) -> bool:
    """Whether a torch recurrent module's call passes no state: `gru(x)`, `gru(x, None)`,
    `gru(x, hx=None)`. A state passed any other way, or `*args`, counts as passed."""
    if any(arg.star for arg in call.args):
        return False
    positional = [arg.value for arg in call.args if arg.keyword is None]
    keywords = {arg.keyword.value: arg.value for arg in call.args if arg.keyword is not None}
    if len(positional) > 2 or set(keywords) - {"hx"}:
        return False
    state = positional[1] if len(positional) == 2 else keywords.get("hx")
    return state is None or dotted_name(state) == "None"


def is_cell_class(qualified: str | None) -> bool:
    return qualified in CELL_MODULES


def _kept_on_self(accumulator: str) -> bool:
    """`self.total_loss`: an attribute of the object a method runs on outlives each call of
    the method, so a total kept there spans every call (an agent's `learn()` once per update)."""
    return accumulator.startswith("self.")


def _kept_totals(method: cst.FunctionDef) -> list[tuple[int, str]]:
    """(position after `self`, attribute) for each parameter a method adds, with its value,
    to a total kept on `self`: `self.sum += val * n`, `self.total = self.total + val`,
    `self.values.append(val)`. A parameter made a number first (`val = val.item()`, `val =
    float(val)`) or rebound at all adds no graph."""
    params = [p.name.value for p in method.params.params[1:]]
    rebound: set[str] = set()
    kept: list[tuple[int, str]] = []
    for node in descendants([method.body], stop=NESTED_SCOPES):
        if isinstance(node, cst.Assign):
            for target in node.targets:
                rebound.update(target_names(target.target))
    for node in descendants([method.body], stop=NESTED_SCOPES):
        attribute: str | None = None
        added: cst.BaseExpression | None = None
        if isinstance(node, cst.AugAssign) and isinstance(node.operator, cst.AddAssign):
            attribute, added = own_attribute(node.target), node.value
        elif isinstance(node, cst.Assign) and len(node.targets) == 1:
            attribute = own_attribute(node.targets[0].target)
            value = node.value
            if (
                attribute is not None
                and isinstance(value, cst.BinaryOperation)
                and isinstance(value.operator, cst.Add)
                and own_attribute(value.left) == attribute
            ):
                added = value.right
        elif (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value == "append"
            and len(node.args) == 1
        ):
            attribute, added = own_attribute(node.func.value), node.args[0].value
        if attribute is None or added is None:
            continue
        for position, name in enumerate(params):
            if name not in rebound and name in _plain_names(added):
                kept.append((position, attribute))
    return kept


def _plain_names(node: cst.BaseExpression) -> set[str]:
    """Names an expression adds as they are, up to arithmetic (`val * n`, `-val`): not inside
    a call (`val.item()`, `float(val)`), which may make a number of them."""
    if isinstance(node, cst.Name):
        return {node.value}
    if isinstance(node, cst.BinaryOperation):
        return _plain_names(node.left) | _plain_names(node.right)
    if isinstance(node, cst.UnaryOperation):
        return _plain_names(node.expression)
    return set()
