"""Which units are worth interpreting: most functions of a file that passed the prefilter
cannot hold a finding, and interpreting them is the expensive part."""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from tbptt_lint.analysis.context import FileContext
from tbptt_lint.analysis.names import dotted_name
from tbptt_lint.analysis.walk import descendants, node_fact

BACKWARD_METHODS = frozenset({"backward", "manual_backward"})
DETACH_METHODS = frozenset({"detach", "detach_"})
# Attributes a helper worth summarising touches.
# A unit's own statements: nested functions and classes are units of their own.
NESTED_SCOPES = (cst.FunctionDef, cst.ClassDef)
HELPER_ATTRIBUTES = frozenset({"detach", "detach_", "data", "backward", "manual_backward"})


def is_candidate_unit(
    body: Sequence[cst.CSTNode], context: FileContext, backward_helpers: set[str]
) -> bool:
    has_loop = has_backward = False
    nested: set[str] = set()  # functions defined in the unit that call backward themselves
    # `type(node) is`: these classes have no subclasses, and isinstance goes through abc.
    for node in descendants(body, stop=NESTED_SCOPES):
        node_type = type(node)
        if node_type is cst.For or node_type is cst.While:
            has_loop = True
        elif node_type is cst.FunctionDef and _calls_backward(node, context):  # type: ignore[arg-type]
            nested.add(node.name.value)  # type: ignore[attr-defined]
        elif node_type is cst.Call:
            has_backward = has_backward or (
                isinstance(node.func, cst.Name) and node.func.value in nested  # type: ignore[attr-defined]
            )
            has_backward = has_backward or _is_backward_call(node, context, backward_helpers)  # type: ignore[arg-type]
        elif node_type is cst.Expr and _is_detach_statement(node.value):  # type: ignore[attr-defined]
            return True
        if has_loop and has_backward:
            return True
    return False


def _calls_backward(function: cst.FunctionDef, context: FileContext) -> bool:
    """A nested function whose own body calls backward (`def run_epoch(hidden): ...`)."""
    return any(
        isinstance(node, cst.Call) and _is_backward_call(node, context, set())
        for node in descendants([function.body], stop=NESTED_SCOPES)
    )


def _is_backward_call(call: cst.Call, context: FileContext, helpers: set[str]) -> bool:
    if isinstance(call.func, cst.Attribute) and call.func.attr.value in BACKWARD_METHODS:
        return True
    callee = dotted_name(call.func)
    if callee is None:
        return False
    if context.imports.qualify(callee) in ("torch.autograd.backward", "torch.autograd.grad"):
        return True
    return callee in helpers or callee.removeprefix("self.") in helpers


def _is_detach_statement(value: cst.BaseExpression) -> bool:
    if isinstance(value, (cst.ListComp, cst.GeneratorExp)):
        value = value.elt
    return (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value in DETACH_METHODS
    )


def mentions_helper_attributes(function: cst.FunctionDef) -> bool:
    return node_fact("mentions_helper_attributes", function, _mentions_helper_attributes)


# Words of a function that may return a copy made without gradients (`@torch.no_grad()`,
# `with torch.inference_mode():`): a cut helper too.
NO_GRAD_WORDS = frozenset({"no_grad", "inference_mode"})


def _mentions_helper_attributes(function: cst.FunctionDef) -> bool:
    for node in descendants([*function.decorators, function.body], stop=NESTED_SCOPES):
        if isinstance(node, cst.Attribute) and node.attr.value in HELPER_ATTRIBUTES:
            return True
        if isinstance(node, cst.Call) and dotted_name(node.func) in ("grad", "autograd.grad"):
            return True
        if isinstance(node, (cst.Name, cst.Attribute)) and _word(node) in NO_GRAD_WORDS:
            return True
    return False


def _word(node: cst.Name | cst.Attribute) -> str:
    return node.value if isinstance(node, cst.Name) else node.attr.value


def gradient_backward_calls(context: FileContext) -> frozenset[str]:
    """What a unit may call to run a backward through a class of the run (TBP012 follows
    these): method names (`backward_step` of `Trainer.backward_step`), and the objects built
    here whose `__call__` or `forward` runs one (`self.loss_compute`)."""
    methods: set[str] = set()
    callable_classes: set[str] = set()
    for name, facts in context.functions.items():
        owner, dot, method = name.rpartition(".")
        if not dot or not (facts.does_backward or facts.grad_backward):
            continue
        if method in ("__call__", "forward"):
            callable_classes.add(owner.rsplit(".", 1)[-1])
        else:
            methods.add(method)
    objects = {
        name
        for name, built in context.constructions.items()
        if built.qualified_class.rsplit(".", 1)[-1] in callable_classes
    }
    return frozenset(methods | objects)


def calls_backward_method(body: Sequence[cst.CSTNode], calls: frozenset[str]) -> bool:
    """A unit with a loop and a call that may run a backward through a class of the run:
    `trainer.backward_step(x)`, `self.loss_compute(out, y)`. The rule resolves the call
    before it counts."""
    has_loop = has_call = False
    for node in descendants(body, stop=NESTED_SCOPES):
        if isinstance(node, (cst.For, cst.While)):
            has_loop = True
        elif isinstance(node, cst.Call) and not has_call:
            func = node.func
            has_call = (isinstance(func, cst.Attribute) and func.attr.value in calls) or (
                dotted_name(func) in calls
            )
        if has_loop and has_call:
            return True
    return False
