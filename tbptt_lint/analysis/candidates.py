"""Which units are worth interpreting: most functions of a file that passed the prefilter
cannot hold a finding, and interpreting them is the expensive part."""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from tbptt_lint.analysis.context import FileContext
from tbptt_lint.analysis.names import dotted_name
from tbptt_lint.analysis.walk import descendants

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
    for node in descendants(body, stop=NESTED_SCOPES):
        if isinstance(node, (cst.For, cst.While)):
            has_loop = True
        elif isinstance(node, cst.Call):
            has_backward = has_backward or _is_backward_call(node, context, backward_helpers)
        elif isinstance(node, cst.Expr) and _is_detach_statement(node.value):
            return True
        if has_loop and has_backward:
            return True
    return False


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
    for node in descendants([function.body], stop=NESTED_SCOPES):
        if isinstance(node, cst.Attribute) and node.attr.value in HELPER_ATTRIBUTES:
            return True
        if isinstance(node, cst.Call) and dotted_name(node.func) in ("grad", "autograd.grad"):
            return True
    return False
