"""TBP009 window-misaligned: window slices and the loop stride disagree, so windows overlap or
leave gaps."""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import dotted_name, target_names
from tbptt_lint.analysis.queries import queries, spans_contain
from tbptt_lint.analysis.walk import NESTED_SCOPES, descendants
from tbptt_lint.analysis.windows import (
    LinearForm,
    WindowLoop,
    WindowSlice,
    linear_form,
    subtract,
    window_loops,
)
from tbptt_lint.diagnostics import Finding
from tbptt_lint.rules.base import Rule


class WindowMisaligned(Rule):
    """Window slices and the loop stride disagree, so windows overlap or leave gaps.

    With state carried from one window to the next, window i+1 must start where window i ended.
    A slice of length k taken every s steps with k > s feeds overlapping steps twice, each
    time with a state that has already seen them; with k < s steps are skipped while the state
    pretends they were not. Input and target windows of different lengths misalign the loss.
    """

    code = "TBP009"

    INVALID = (
        """
hidden = None
for i in range(0, data.size(0) - 1, 20):
    x, y = data[i:i + 35], data[i + 1:i + 36]
    if hidden is not None:
        hidden = hidden.detach()
    out, hidden = model(x, hidden)
    criterion(out, y).backward()
""",
    )
    VALID = (
        """
hidden = None
for i in range(0, data.size(0) - 1, 35):
    x, y = data[i:i + 35], data[i + 1:i + 36]
    if hidden is not None:
        hidden = hidden.detach()
    out, hidden = model(x, hidden)
    criterion(out, y).backward()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        for window in window_loops(model.loops()):
            if not window.slices:
                continue  # every check below compares the loop's slices: nothing to compare
            carried = _carried_calls(model, window)
            if not carried:
                continue
            findings = list(self._stride_mismatch(model, window, carried))
            findings += self._length_mismatch(model, window)
            yield from findings or self._last_window(model, window)

    def _last_window(self, model: FileModel, window: WindowLoop) -> Iterator[Finding]:
        """`data[i:i + k]` with `data[i + 1:i + 1 + k]` while the range runs to `len(data)`:
        the last target is a step short. A range that stops at `n - k` never visits the last
        window."""
        if window.stop is None or window.stride is None:
            return
        stop = linear_form(window.stop)
        assigned = _assignments(window.loop.body)
        pieces = [
            p
            for p in window.slices
            if p.length is not None
            and _comparable(p.length, window.stride)
            and not _clipped_to(p.length, window.stride, assigned)
        ]
        for first in pieces:
            for second in pieces:
                shifted = subtract(second.lower, first.lower) == {"": 1}
                same = first.sliced == second.sliced and first.length == second.length
                # Only a range measured on the sliced sequence itself is known to reach its end.
                measured = first.sliced is not None and any(
                    re.search(rf"\b{re.escape(first.sliced)}\b", term) for term in stop
                )
                if (
                    shifted
                    and same
                    and measured
                    and _may_overrun(stop)
                    and not _clipped_later(window, second.subscript)
                ):
                    message = (
                        f"the range runs to `{model.code(window.stop)}`, so on the last window "
                        f"`{model.code(second.subscript)}` (the input shifted by one) runs past "
                        "the end and is one step shorter than "
                        f"`{model.code(first.subscript)}`. Stop the range one step earlier, "
                        "or clip the length with `min(k, n - 1 - i)`"
                    )
                    yield model.finding(self.code, second.subscript, message)
                    return
        for piece in pieces:
            length = piece.length or {}
            rest = _add(stop, length)
            subtracts_window = all(stop.get(t, 0) == -c for t, c in length.items())
            if subtracts_window and rest and all(c > 0 for c in rest.values()) and "" not in rest:
                message = (
                    f"the range stops at `{model.code(window.stop)}`, one window before the "
                    f"end, so the last {_text(length)} steps are never trained on while "
                    "the state is carried up to them. Stop the range at the sequence length"
                )
                yield model.finding(self.code, window.stop, message)
                return

    def _stride_mismatch(
        self, model: FileModel, window: WindowLoop, carried: list[cst.Call]
    ) -> Iterator[Finding]:
        if window.stride is None:
            return
        assigned = _assignments(window.loop.body)
        for piece in window.slices:
            if piece.length is None or not _comparable(piece.length, window.stride):
                continue
            if not _feeds(piece.subscript, carried, assigned) and _feeds(
                piece.subscript, _stateless_twins(window, carried), assigned
            ):
                # A window that only a call of the same module with its state thrown away
                # reads (`out, _ = rnn(stream[t - k2:t], h0)`, the overlap of k1 != k2)
                # carries nothing. A target (`y[i + 1:i + k]`) is still compared.
                continue
            if _tiled(piece, window):
                continue
            surely_longer = set(subtract(piece.length, window.stride)) == {""} and _longer(
                piece.length, window.stride
            )
            if not surely_longer and _read_otherwise(piece, window):
                continue  # the steps between windows may be read another way
            if _clipped_to(piece.length, window.stride, assigned):
                continue
            # One extra step is the usual room for the target shifted by one.
            if piece.length != window.stride and subtract(piece.length, window.stride) != {"": 1}:
                kind = "overlap" if _longer(piece.length, window.stride) else "leave gaps"
                message = (
                    f"the window `{model.code(piece.subscript)}` is {_text(piece.length)} steps "
                    f"long but the loop advances {_text(window.stride)} steps, so windows "
                    f"{kind} while the state is carried between them. Use the same length for "
                    "the slice and the stride"
                )
                yield model.finding(self.code, piece.subscript, message)
                return

    def _length_mismatch(self, model: FileModel, window: WindowLoop) -> Iterator[Finding]:
        lengths = [p for p in window.slices if p.length is not None and _comparable(p.length, {})]
        if window.stride is not None and any(p.length != window.stride for p in lengths):
            return  # already reported as a stride mismatch
        for first, second in zip(lengths, lengths[1:], strict=False):
            if first.length != second.length and first.sliced != second.sliced:
                message = (
                    f"the windows `{model.code(first.subscript)}` and "
                    f"`{model.code(second.subscript)}` have different lengths, so input and "
                    "target steps do not line up"
                )
                yield model.finding(self.code, second.subscript, message)
                return


def _carried_calls(model: FileModel, window: WindowLoop) -> list[cst.Call]:
    """The recurrent calls inside the window loop (those that take back a state they return),
    when the state of one of them flows from pass to pass; else none."""
    ask = queries(model)
    found = []
    carried = False
    for unit in model.units:
        for call in unit.recurrent_calls:
            if window.loop in call.loops or spans_contain(model, window.loop, call.call):
                found.append(call.call)
                carried = carried or ask.is_carried(unit, call)
    return found if carried else []


def _feeds(
    subscript: cst.Subscript, calls: list[cst.Call], assigned: dict[str, cst.BaseExpression]
) -> bool:
    """Whether the window `subscript` reaches the arguments of one of `calls`, directly or
    through names assigned in the loop from it (`x = data[i:i + k]`, `emb = enc(x)`)."""
    tainted: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, value in assigned.items():
            if name not in tainted and _mentions(value, subscript, tainted):
                tainted.add(name)
                changed = True
    return any(_mentions(arg.value, subscript, tainted) for call in calls for arg in call.args)


def _stateless_twins(window: WindowLoop, carried: list[cst.Call]) -> list[cst.Call]:
    """Calls in the loop of the same callee as a recurrent call, that are none themselves
    (`out, _ = lstm(window, state)` beside `_, state = lstm(warm, state)`)."""
    callees = {dotted_name(call.func) for call in carried} - {None}
    known = {id(call) for call in carried}
    return [
        node
        for node in descendants([window.loop.body], stop=(cst.FunctionDef, cst.ClassDef))
        if isinstance(node, cst.Call)
        and id(node) not in known
        and dotted_name(node.func) in callees
    ]


def _tiled(piece: WindowSlice, window: WindowLoop) -> bool:
    """Whether slices of the same sequence, end to end, cover the stride together: a warm-up
    `x[i:i + 10]` under `no_grad` then the window `x[i + 10:i + 20]`, every 20 steps."""
    if window.stride is None or piece.length is None:
        return False
    others = [
        p
        for p in window.slices
        if p is not piece
        and p.length is not None
        and p.sliced == piece.sliced
        and p.dimension == piece.dimension
    ]
    low, high = piece.lower, _add(piece.lower, piece.length)
    grown = True
    while grown and others:
        grown = False
        for other in others:
            end = _add(other.lower, other.length or {})
            if not subtract(other.lower, high):
                high, grown = end, True
            elif not subtract(end, low):
                low, grown = other.lower, True
            else:
                continue
            others.remove(other)
            break
    covered = subtract(high, low)
    return covered != piece.length and covered == window.stride


def _read_otherwise(piece: WindowSlice, window: WindowLoop) -> bool:
    """Whether the loop also reads the sliced sequence in a way not taken for a window: a
    burn-in loop stepping `x[t:t + 1]` (or `x[t]`) over `range(i, i + burn_in)` may fill
    what looks like a gap between windows."""
    if piece.sliced is None:
        return False
    windows = {id(p.subscript) for p in window.slices}
    for node in descendants([window.loop.body], stop=(cst.FunctionDef, cst.ClassDef)):
        if (
            isinstance(node, cst.Subscript)
            and id(node) not in windows
            and dotted_name(node.value) == piece.sliced
        ):
            return True
    return False


def _clipped_later(window: WindowLoop, target: cst.Subscript) -> bool:
    """`y = x[i + 1:i + 11]` then `n = min(out.size(1), y.size(1))` (or `len(y)`, `y.shape`):
    the loop measures the target, so a short last one is cut to its length."""
    assigned = _assignments(window.loop.body)
    bound = {name for name, value in assigned.items() if _mentions(value, target, set())}
    for node in descendants([window.loop.body], stop=(cst.FunctionDef, cst.ClassDef)):
        measured: cst.BaseExpression | None = None
        if isinstance(node, cst.Call) and dotted_name(node.func) == "len" and node.args:
            measured = node.args[0].value
        elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            if node.func.attr.value == "size":
                measured = node.func.value
        elif isinstance(node, cst.Attribute) and node.attr.value == "shape":
            measured = node.value
        if measured is not None and (
            measured is target or (isinstance(measured, cst.Name) and measured.value in bound)
        ):
            return True
    return False


def _mentions(node: cst.CSTNode, subscript: cst.Subscript, names: set[str]) -> bool:
    for part in descendants([node], stop=NESTED_SCOPES):
        if part is subscript or (isinstance(part, cst.Name) and part.value in names):
            return True
    return False


def _assignments(body: cst.CSTNode) -> dict[str, cst.BaseExpression]:
    found: dict[str, cst.BaseExpression] = {}
    for node in descendants([body], stop=(cst.FunctionDef, cst.ClassDef)):
        if isinstance(node, cst.Assign):
            for target in node.targets:
                for name in target_names(target.target):
                    found[name] = node.value
    return found


def _clipped_to(
    length: LinearForm, stride: LinearForm, assigned: dict[str, cst.BaseExpression]
) -> bool:
    """`seq_len = min(bptt, n - i)` then `x[i:i + seq_len]`: a window of `bptt`, clipped.
    A length computed inside the loop in any other way is not compared."""
    if len(length) != 1 or "" in length:
        return False
    (name,) = length
    value = assigned.get(name)
    if value is None:
        return False
    if isinstance(value, cst.Call) and dotted_name(value.func) in ("min", "max"):
        return any(linear_form(arg.value) == stride for arg in value.args)
    return True


_PLAIN_ARITHMETIC = re.compile(r"[\w.\s*/%()+-]*")


def _may_overrun(stop: LinearForm) -> bool:
    """Whether the last window of a range over a sequence's full length (`range(0, n, k)`)
    surely reaches past its end by one. With `n - 1` or any other offset it depends on `n`,
    and only a certain overrun is reported."""
    return all(c > 0 for t, c in stop.items() if t != "") and stop.get("", 0) >= 0


def _add(left: LinearForm, right: LinearForm) -> LinearForm:
    return subtract(left, {t: -c for t, c in right.items()})


def _comparable(length: LinearForm, stride: LinearForm) -> bool:
    """Only plain constants and names are compared; anything computed might be clipped."""
    return all(_PLAIN_ARITHMETIC.fullmatch(term) for term in list(length) + list(stride))


def _longer(length: LinearForm, stride: LinearForm) -> bool:
    difference = {t: length.get(t, 0) - stride.get(t, 0) for t in set(length) | set(stride)}
    return difference.get("", 0) > 0 if set(difference) <= {""} else True


def _text(form: LinearForm) -> str:
    parts = [
        (str(c) if t == "" else (t if c == 1 else f"{c}*{t}")) for t, c in sorted(form.items())
    ]
    return " + ".join(parts) or "0"
