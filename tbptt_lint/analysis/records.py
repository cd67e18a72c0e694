"""Record classes of a file: a `@dataclass` or a `typing.NamedTuple` whose fields hold a
state (`state = State(h, c)`, `s._replace(h=s.h.detach())`). A field of such an object is
followed as a name of its own (`state.h`)."""

from __future__ import annotations

import re

import libcst as cst

from tbptt_lint.analysis.chunks import top_level_blocks
from tbptt_lint.analysis.names import ImportMap, dotted_name

# A block that defines one (kept by the block filter: its fields are what the loop reads).
RECORD_BLOCK = re.compile(
    r"(?m)^[ \t]*(?:@(?:dataclasses\.)?dataclass\b"
    r"|class[ \t]+\w+[ \t]*\([ \t]*(?:typing\.)?NamedTuple[ \t]*\))"
)
RECORD_MAKERS = frozenset({"dataclasses.dataclass", "typing.NamedTuple"})
# A body that changes what the constructor stores.
OWN_CONSTRUCTORS = frozenset({"__init__", "__post_init__", "__new__"})
OWN_CONSTRUCTOR_TEXT = re.compile(r"\bdef[ \t]+(?:__init__|__post_init__|__new__)[ \t]*\(")


def record_fields(node: cst.ClassDef, imports: ImportMap, source: str) -> tuple[str, ...] | None:
    """The fields, in order, of a top-level dataclass or NamedTuple of `source` whose
    constructor stores its arguments as they are; None for any other class. (The tree may
    hold only the members the block filter kept: the constructors are looked for in the
    source's text of the class.)"""
    text = next(
        (
            block.text
            for block in top_level_blocks(source)
            if re.search(rf"(?m)^class[ \t]+{re.escape(node.name.value)}\b", block.text)
        ),
        None,
    )
    if text is None or OWN_CONSTRUCTOR_TEXT.search(text):
        return None
    makers: list[cst.BaseExpression] = [base.value for base in node.bases]
    for decorator in node.decorators:
        inner = decorator.decorator
        makers.append(inner.func if isinstance(inner, cst.Call) else inner)
    if not any(imports.qualify(dotted_name(maker) or "") in RECORD_MAKERS for maker in makers):
        return None
    fields: list[str] = []
    body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
    for statement in body:
        if isinstance(statement, cst.FunctionDef) and statement.name.value in OWN_CONSTRUCTORS:
            return None
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                annotation = dotted_name(small.annotation.annotation) or ""
                if not annotation.endswith("ClassVar"):
                    fields.append(small.target.value)
    return tuple(fields) or None


def record_arguments(
    call: cst.Call, fields: tuple[str, ...]
) -> list[tuple[str, cst.BaseExpression]] | None:
    """(field, expression) for each argument of a constructor call; None when an argument
    cannot be placed (`*args`, `**kwargs`, an unknown keyword, too many)."""
    found: list[tuple[str, cst.BaseExpression]] = []
    for position, arg in enumerate(call.args):
        if arg.star:
            return None
        if arg.keyword is None:
            if position >= len(fields):
                return None
            found.append((fields[position], arg.value))
        elif arg.keyword.value in fields:
            found.append((arg.keyword.value, arg.value))
        else:
            return None
    return found


def replaced_fields(
    call: cst.Call, qualified: str | None
) -> tuple[str, list[tuple[str, cst.BaseExpression]]] | None:
    """`s._replace(h=e)` (a NamedTuple) or `dataclasses.replace(s, h=e)`: the object copied
    and the fields given anew."""
    if isinstance(call.func, cst.Attribute) and call.func.attr.value == "_replace":
        source = dotted_name(call.func.value)
        given = call.args
    elif qualified == "dataclasses.replace" and call.args:
        source = dotted_name(call.args[0].value) if call.args[0].keyword is None else None
        given = call.args[1:]
    else:
        return None
    if source is None or any(arg.keyword is None or arg.star for arg in given):
        return None
    return source, [(arg.keyword.value, arg.value) for arg in given if arg.keyword is not None]
