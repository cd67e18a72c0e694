"""State kept on `self` that a method's step loop re-initialises on every pass.

`for t in ...: self.init_states(bs); self.h = self.cell(x[t], self.h)`: the loop is written to
carry `self.h` (the call reads it and its result is stored back), but a method of the same
class that sets `self.h` anew runs first on every pass, so the state the call returned is
never read. The loop need not back-propagate (it is usually a model's `forward`).

This is read from the syntax of one class: the reset must be a plain statement of the loop's
body (not under a condition), the method it calls must set the attribute in its own top-level
body from something that does not read it, and nothing else may write the attribute between
the reset and the call that reads it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import libcst as cst

from tbptt_lint.analysis.interpreter import names_in
from tbptt_lint.analysis.names import dotted_name, target_names
from tbptt_lint.analysis.walk import descendants

SCOPES = (cst.FunctionDef, cst.ClassDef)

# A method of `self` called as a statement (`self.init_states(bs)`), and an attribute that a
# statement both reads inside a call and stores back (`self.h, c = self.cell(x, self.h)`).
BARE_SELF_CALL = re.compile(r"(?m)^[ \t]+self\.(\w+)\([^\n]*\)[ \t]*(?:#[^\n]*)?$")
# Starts with the literal `self.` (which the regex engine searches for fast) and is bounded
# to the line, or the next one for a call that wraps after its `(`: a pattern anchored at
# line starts backtracked for seconds over torch's test files.
SELF_CARRY = re.compile(r"self\.(\w+)\b[^\n=(]*=(?!=)[^\n(]*\((?:[ \t]*\n)?[^\n]*?\bself\.\1\b")


FUNCTION_START = re.compile(r"\n(?=[ \t]*(?:async[ \t]+)?def[ \t])")


def per_step_reset_blocks(source: str) -> Callable[[str], bool] | None:
    """Cheap text test on a whole file: None when it cannot hold a per-step attribute reset;
    otherwise which blocks phase 2 must keep to read one: those that both call a method of
    `self` as a statement and feed an attribute back into a call (the loop), and the
    definitions of the methods so called (torch's test files call `self.assert...` in every
    test: keeping every block with a bare call cost a tenth of the run)."""
    methods = sorted(_called_beside_carries(source))
    if not methods:
        return None
    defines = re.compile(rf"(?m)^[ \t]*def[ \t]+(?:{'|'.join(methods)})\b")

    def wanted(text: str) -> bool:
        if defines.search(text) and not text.lstrip().startswith("class"):
            return True
        return bool(SELF_CARRY.search(text) and BARE_SELF_CALL.search(text))

    return wanted


def _called_beside_carries(source: str) -> set[str]:
    """The methods of `self` called bare in a function that also carries an attribute (the
    text from one `def` line to the next, found around each carry: splitting a long file at
    every `def` cost more than the search)."""
    spans: set[tuple[int, int]] = set()
    for carry in SELF_CARRY.finditer(source):
        spans.add(_function_around(source, carry.start()))
    return {name for start, end in spans for name in BARE_SELF_CALL.findall(source, start, end)}


def _function_around(source: str, position: int) -> tuple[int, int]:
    """From the last `def` line before `position` (or the start) to the next `def` line."""
    start = source.rfind("def", 0, position)
    while start > 0 and not _starts_line(source, start):
        start = source.rfind("def", 0, start)
    start = source.rfind("\n", 0, start) + 1 if start > 0 else 0
    end = FUNCTION_START.search(source, position)
    return start, end.start() if end is not None else len(source)


def _starts_line(source: str, position: int) -> bool:
    """Whether only indentation (or `async`) comes before `position` on its line."""
    line_start = source.rfind("\n", 0, position) + 1
    return source[line_start:position].strip() in ("", "async")


SETS_SELF_ATTRIBUTE = re.compile(r"(?m)^[ \t]+self\.(\w+)[ \t]*=(?!=)")


def may_reset_per_step(source: str) -> bool:
    """Whether a file may hold a per-step reset even though it runs no backward (a model's
    `forward` is judged from its class alone): see `reset_methods`."""
    return bool(reset_methods(source))


def reset_methods(source: str) -> dict[str, frozenset[str]]:
    """The methods of the file called bare beside a carry that set an attribute some call of
    the file carries, each with those attributes. Looser than the rule (where the calls sit is
    not read), stricter than `per_step_reset_blocks`, which picks blocks of a file checked
    anyway: a file with no backward is parsed for these alone."""
    found: dict[str, frozenset[str]] = {}
    for method in _called_beside_carries(source):
        start = source.find(f"def {method}(")
        if start < 0:
            continue
        end = FUNCTION_START.search(source, start)
        body = source[start : end.start() if end is not None else len(source)]
        carried = {a for a in SETS_SELF_ATTRIBUTE.findall(body) if _carry(a).search(source)}
        if carried:
            found[method] = frozenset(carried)
    return found


def reset_blocks(source: str) -> Callable[[str], bool] | None:
    """The blocks a file with no backward keeps for a per-step reset: the classes that define
    a method of `reset_methods`, that method, and the functions that call it bare and carry
    one of its attributes. None when there is none."""
    resets = reset_methods(source)
    if not resets:
        return None
    names = "|".join(sorted(map(re.escape, resets)))
    defines = re.compile(rf"(?:async[ \t]+)?def[ \t]+(?:{names})\(")
    calls = re.compile(rf"(?m)^[ \t]+self\.(?:{names})\(")
    carries = [_carry(attribute) for attribute in sorted(set().union(*resets.values()))]

    def wanted(text: str) -> bool:
        lines = (line.strip() for line in text.splitlines())
        header = next((line for line in lines if line and not line.startswith("@")), "")
        if header.startswith("class"):
            return bool(defines.search(text))
        if defines.match(header):
            return True
        return bool(calls.search(text)) and any(carry.search(text) for carry in carries)

    return wanted


def _carry(attribute: str) -> re.Pattern[str]:
    """`SELF_CARRY` for one attribute: `self.h = self.cell(x, self.h)`."""
    name = re.escape(attribute)
    return re.compile(rf"self\.{name}\b[^\n=(]*=(?!=)[^\n(]*\((?:[ \t]*\n)?[^\n]*?\bself\.{name}\b")


@dataclass
class StepReset:
    reset: cst.Call  # `self.init_states(bs)` inside the loop
    method: str  # `init_states`
    attribute: str  # `h`: the attribute it sets anew
    carry: cst.Call  # the call that reads `self.h` and whose result is stored back
    loop: cst.CSTNode


def per_step_attribute_resets(module: cst.Module) -> Iterator[StepReset]:
    for node in module.body:
        if isinstance(node, cst.ClassDef):
            yield from _class_resets(node)


def _class_resets(cls: cst.ClassDef) -> Iterator[StepReset]:
    methods = {
        member.name.value: member for member in cls.body.body if isinstance(member, cst.FunctionDef)
    }
    resets: dict[str, frozenset[str]] = {}
    for method in methods.values():
        for loop in _statement_loops(method.body.body):
            called = {
                call.func.attr.value  # type: ignore[attr-defined]
                for statement in loop.body.body
                if isinstance(statement, cst.SimpleStatementLine)
                and (call := _bare_self_call(statement)) is not None
            }
            if not called & set(methods):
                continue
            for name in called & set(methods):
                if name not in resets:
                    resets[name] = _attributes_set_anew(methods[name])
            yield from _loop_resets(loop, resets)


def _statement_loops(statements: Sequence[cst.CSTNode]) -> Iterator[cst.For]:
    """The `for` loops among statements and the blocks nested in them, without walking any
    expression (a full walk of every method cost too much on large files)."""
    for statement in statements:
        if isinstance(statement, (cst.SimpleStatementLine, *SCOPES)):
            continue
        if isinstance(statement, cst.For) and isinstance(statement.body, cst.IndentedBlock):
            yield statement
        for block in _blocks(statement):
            yield from _statement_loops(block)


def _blocks(statement: cst.CSTNode) -> Iterator[Sequence[cst.CSTNode]]:
    for name in ("body", "orelse", "finalbody"):
        part = getattr(statement, name, None)
        if isinstance(part, cst.IndentedBlock):
            yield part.body
        elif isinstance(part, (cst.Else, cst.Finally)) and isinstance(part.body, cst.IndentedBlock):
            yield part.body.body
        elif isinstance(part, cst.If):
            yield [part]
    for handler in getattr(statement, "handlers", ()):
        if isinstance(handler.body, cst.IndentedBlock):
            yield handler.body.body


def _attributes_set_anew(method: cst.FunctionDef) -> frozenset[str]:
    """Attributes a method assigns in its top-level body from values that do not read them
    (`self.h = torch.zeros(...)`): whatever they held before the call is thrown away."""
    found: set[str] = set()
    for statement in method.body.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if not isinstance(small, cst.Assign):
                continue
            read = names_in(small.value)
            for target in small.targets:
                for name in target_names(target.target):
                    if name.count(".") == 1 and name.startswith("self.") and name not in read:
                        found.add(name.removeprefix("self."))
    return frozenset(found)


def _loop_resets(
    loop: cst.For | cst.While, resets: dict[str, frozenset[str]]
) -> Iterator[StepReset]:
    if not isinstance(loop, cst.For) or not isinstance(loop.body, cst.IndentedBlock):
        return  # a while loop names no step
    body = loop.body.body
    bound_by_loop = set(target_names(loop.target))
    statements = [s for s in body if isinstance(s, cst.SimpleStatementLine)]
    for index, statement in enumerate(statements):
        call = _bare_self_call(statement)
        if call is None or _varies_per_pass(call, loop):
            continue
        method = call.func.attr.value  # type: ignore[attr-defined]
        for attribute in sorted(resets.get(method, ())):
            carry = _first_carry(statements[index + 1 :], f"self.{attribute}", bound_by_loop)
            if carry is not None and _steps_in_time(carry, loop, bound_by_loop):
                yield StepReset(call, method, attribute, carry, loop)
                break


def _steps_in_time(call: cst.Call, loop: cst.For, bound_by_loop: set[str]) -> bool:
    """Whether the call takes one time step picked by the loop (`x[t]`, `x[:, t]`, or a name
    the loop's body binds to one: `x_t = x[t] * 2`): a loop over batches (`for x in loader`)
    or windows (`x[i:i + bptt]`) may start each one anew."""
    if any(_picks_step(arg.value, bound_by_loop) for arg in call.args):
        return True
    picked: set[str] = set()
    for node in descendants([loop.body], stop=(cst.FunctionDef, cst.Lambda, cst.ClassDef)):
        if isinstance(node, cst.Assign) and _picks_step(node.value, bound_by_loop):
            picked.update(n for t in node.targets for n in target_names(t.target))
    return any(names_in(arg.value) & picked for arg in call.args)


def _picks_step(expression: cst.BaseExpression, bound_by_loop: set[str]) -> bool:
    for node in descendants([expression], stop=(cst.Lambda,)):
        if not isinstance(node, cst.Subscript):
            continue
        for element in node.slice:
            if isinstance(element.slice, cst.Index) and names_in(element.slice.value) & (
                bound_by_loop
            ):
                return True
    return False


def _bare_self_call(statement: cst.SimpleStatementLine) -> cst.Call | None:
    if len(statement.body) != 1 or not isinstance(statement.body[0], cst.Expr):
        return None
    call = statement.body[0].value
    if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute):
        return None
    return call if dotted_name(call.func.value) == "self" else None


def _first_carry(
    statements: list[cst.SimpleStatementLine], state: str, bound_by_loop: set[str]
) -> cst.Call | None:
    """The first later statement that reads `state` in a call and stores the result back into
    it: `self.h = self.cell(x, self.h)`. None when something else writes it first, or when
    the callee comes from the loop itself (`for layer in layers`: a state per layer)."""
    for statement in statements:
        for small in statement.body:
            if not isinstance(small, cst.Assign):
                if isinstance(small, (cst.AugAssign, cst.AnnAssign)) and state in target_names(
                    small.target
                ):
                    return None
                continue
            written = {n for t in small.targets for n in target_names(t.target)}
            call = small.value
            if isinstance(call, cst.Call) and state in written:
                callee = names_in(call.func)
                reads = any(state in names_in(arg.value) for arg in call.args)
                if reads and not callee & bound_by_loop and state not in callee:
                    return call
            if state in written:
                return None
    return None


def _varies_per_pass(call: cst.Call, loop: cst.For | cst.While) -> bool:
    """Whether the reset's arguments read something the loop changes (`self.load(states[t])`
    injects a state per pass on purpose); a reset from loop-invariant arguments
    (`self.init_states(batch_size)`) sets the same state on every pass."""
    changed = set(target_names(loop.target)) if isinstance(loop, cst.For) else set()
    for node in descendants([loop.body], stop=(cst.FunctionDef, cst.Lambda, cst.ClassDef)):
        if isinstance(node, cst.Assign):
            changed.update(n for t in node.targets for n in target_names(t.target))
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.For)):
            changed.update(target_names(node.target))
    return any(names_in(arg.value) & changed for arg in call.args)
