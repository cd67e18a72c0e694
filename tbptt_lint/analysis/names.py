"""Dotted names of expressions and their qualified names through a module's imports.

libcst's QualifiedNameProvider costs several parses' worth of time per file; a training loop
only needs `torch.nn.LSTM`-style resolution of imports and local aliases, which this does in one
pass over the import statements.
"""

from __future__ import annotations

import libcst as cst

# The hottest calls of the analysis test these two concrete classes (libcst has no subclasses
# of them): `type(node) is` is several times faster than `isinstance`, which goes through abc
# for libcst's nodes.
_ATTRIBUTE = cst.Attribute
_NAME = cst.Name


def dotted_name(node: cst.BaseExpression) -> str | None:
    """`a.b.c` for Name/Attribute chains, else None."""
    node_type = type(node)
    if node_type is _NAME:
        return node.value  # type: ignore[attr-defined,no-any-return]
    if node_type is not _ATTRIBUTE:
        return None
    parts: list[str] = []
    while type(node) is _ATTRIBUTE:
        parts.append(node.attr.value)
        node = node.value
    if type(node) is _NAME:
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


def own_attribute(node: cst.BaseExpression) -> str | None:
    """`x` for `self.x` (one attribute of the object a method runs on), else None."""
    dotted = dotted_name(node)
    if dotted is None or not dotted.startswith("self.") or dotted.count(".") != 1:
        return None
    return dotted[len("self.") :]


def keyed_state(node: cst.BaseExpression) -> str | None:
    """`state['h']` for `state["h"]` or `state['h']`: an entry of a local dict under a constant
    string key, followed as a name of its own (a state kept in a dict between windows)."""
    if not isinstance(node, cst.Subscript) or len(node.slice) != 1:
        return None
    if not isinstance(node.value, cst.Name):
        return None
    index = node.slice[0].slice
    if not isinstance(index, cst.Index) or not isinstance(index.value, cst.SimpleString):
        return None
    key = index.value.evaluated_value
    if not isinstance(key, str):
        return None
    return f"{node.value.value}[{key!r}]"


def target_names(target: cst.BaseExpression) -> list[str]:
    """Flat names bound by an assignment target (`out, (h, c)` -> out, h, c)."""
    if isinstance(target, (cst.Tuple, cst.List)):
        names: list[str] = []
        for element in target.elements:
            names.extend(target_names(element.value))
        return names
    if isinstance(target, cst.StarredElement):
        return target_names(target.value)
    dotted = dotted_name(target) or keyed_state(target)
    return [dotted] if dotted else []


def call_name(call: cst.Call) -> str | None:
    return dotted_name(call.func)


def method_name(call: cst.Call) -> str | None:
    """`detach` for `x.detach()`, the attribute a call is made through."""
    func = call.func
    if type(func) is _ATTRIBUTE:
        return func.attr.value
    return None


def receiver(call: cst.Call) -> cst.BaseExpression | None:
    if type(call.func) is _ATTRIBUTE:
        return call.func.value
    return None


def keyword_arg(call: cst.Call, name: str) -> cst.Arg | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg
    return None


# nn.Module methods that return the module itself: `Model(...).to(device)` is a `Model`.
SELF_RETURNING_METHODS = frozenset(
    {"to", "cuda", "cpu", "float", "double", "half", "bfloat16", "train", "eval", "requires_grad_"}
)


def class_call(call: cst.Call) -> cst.Call:
    """The call that built the object a chain of module methods returning their module hands
    on: `Model(...)` in `Model(...).to(device).train()`; the call itself otherwise."""
    while (
        isinstance(call.func, cst.Attribute)
        and call.func.attr.value in SELF_RETURNING_METHODS
        and isinstance(call.func.value, cst.Call)
    ):
        call = call.func.value
    return call


def is_true_literal(node: cst.BaseExpression | None) -> bool:
    return isinstance(node, cst.Name) and node.value == "True"


class ImportMap:
    """Local names bound by imports, mapped to the qualified names they stand for."""

    def __init__(self, module: cst.Module, module_name: str = "") -> None:
        self.aliases: dict[str, str] = {}
        # `import pkg.mod` binds `pkg`, and `pkg.mod.f` names what the module defines.
        self.dotted_modules: set[str] = set()
        # Modules whose names `from mod import *` binds, unknown one by one.
        self.star_modules: set[str] = set()
        package = module_name.rsplit(".", 1)[0] if "." in module_name else ""
        for statement in module.body:
            self._collect(statement, package)

    def _collect(self, statement: cst.CSTNode, package: str) -> None:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Import):
                    self._add_import(small)
                elif isinstance(small, cst.ImportFrom):
                    self._add_import_from(small, package)
        elif isinstance(statement, (cst.If, cst.Try)):
            # Guarded imports (`try: import torch`) still bind the names.
            for child in statement.body.body:
                self._collect(child, package)
            if isinstance(statement, cst.Try):
                for handler in statement.handlers:
                    for child in handler.body.body:
                        self._collect(child, package)

    def _add_import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = dotted_name(alias.name)
            if full is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.aliases[alias.asname.name.value] = full
            else:
                top = full.split(".")[0]
                self.aliases.setdefault(top, top)
                if full != top:
                    self.dotted_modules.add(full)

    def _add_import_from(self, node: cst.ImportFrom, package: str) -> None:
        base = dotted_name(node.module) if node.module is not None else ""
        if node.relative:
            base = ".".join(p for p in (package, base) if p)
        if isinstance(node.names, cst.ImportStar):
            self.star_modules.add(base)  # type: ignore[arg-type]
            return
        for alias in node.names:
            name = dotted_name(alias.name)
            if name is None:
                continue
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.aliases[local] = f"{base}.{name}" if base else name

    def qualify(self, dotted: str | None) -> str | None:
        """`nn.LSTM` -> `torch.nn.LSTM` when `nn` was imported from torch; unknown heads stay."""
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        if head in self.aliases:
            base = self.aliases[head]
            return f"{base}.{rest}" if rest else base
        return dotted

    def qualify_expr(self, node: cst.BaseExpression) -> str | None:
        return self.qualify(dotted_name(node))
