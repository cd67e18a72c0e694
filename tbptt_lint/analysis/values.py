"""Abstract values of recurrent state, as the loop interpreter tracks them.

A value says whether a tensor (or a tuple/list/dict of them) still references an autograd graph
and whether a backward has already run through that graph:

- FRESH: no graph to leak: cut, re-initialised, built under no_grad, or unrelated to any state.
- LIVE: produced by a recurrent call since the last backward; its graph is still to be used.
- PARTIAL: a composite whose elements are a mix of FRESH and STALE.
- STALE: its graph was consumed by a backward. Feeding it to a recurrent call links the next
  window to a graph that has been backpropagated (and freed), which is the TBPTT leak.
- UNKNOWN: something the analysis cannot model (an object it lost track of, a mapper handed a
  function it cannot read). No rule reports on it: it is neither a cut nor a graph, and a join
  with a cut stays unknown rather than turning the cut into an uncut state.
- INPUT: a function parameter while a function is summarised; unknown until a call site.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import libcst as cst


class Status(IntEnum):
    # Ordered from best to worst: a join keeps the worse one, so that a cut must happen on
    # every path for the result to be FRESH.
    FRESH = 0
    UNKNOWN = 1
    INPUT = 2
    LIVE = 3
    PARTIAL = 4
    STALE = 5


# How a FRESH value came to be; rules tell cuts from resets from no-grad values.
CUT = "cut"
RESET = "reset"
NO_GRAD = "no_grad"
LEAF = "leaf"  # cut and then made a leaf with requires_grad: the k1/k2 recipe
# What a method leaves on a state its object keeps when it cuts some parts and writes the
# others back as they were (`self.hidden = (self.hidden[0].detach(), self.hidden[1])`).
PARTIAL_CUT = "partial"


@dataclass(frozen=True)
class Value:
    status: Status
    # FRESH: CUT/RESET/NO_GRAD/LEAF. Others: "".
    how: str = ""
    # The node that produced the value: a cut expression, a recurrent call, a reset.
    origin: cst.CSTNode | None = field(default=None, compare=False)
    # Backward calls that consumed this value's graph (STALE and PARTIAL).
    backwards: frozenset[cst.CSTNode] = field(default=frozenset(), compare=False)
    # Whether the cut used `.data` (reported by TBP008).
    via_data: bool = False
    # Element values when the value is a tuple/list literal of known length.
    elements: tuple[Value, ...] | None = None
    # (node, how) for every cut, reset or recurrent call the value may come from, over all
    # paths that were joined into it.
    sources: frozenset[tuple[cst.CSTNode, str]] = field(default=frozenset(), compare=False)
    # Loops (For/While nodes) from an earlier pass of which the value may come with no reset
    # on the way: a state read with a loop here is carried across that loop's passes (TBP011).
    # Compared, so that a loop runs until these reach its head.
    carried: frozenset[cst.CSTNode] = frozenset()
    # What every element of a list of unknown length holds, when each is known to be a tuple
    # of the same shape: `[(h.detach(), c) for h, c in states]` holds `(cut, stale)` pairs.
    item: Value | None = None

    def all_sources(self) -> frozenset[tuple[cst.CSTNode, str]]:
        if self.origin is None:
            return self.sources
        own = self.how if self.status == Status.FRESH else self.status.name
        return self.sources | {(self.origin, own)}

    @property
    def has_graph(self) -> bool:
        return self.status in (Status.LIVE, Status.PARTIAL, Status.STALE)

    def consumed_by(self, backward: cst.CSTNode) -> Value:
        """The value after `backward` ran through its graph."""
        if self.elements is not None:
            elements = tuple(element.consumed_by(backward) for element in self.elements)
            return with_carried(composite(elements, self.origin), self.carried)
        if self.item is not None:
            consumed = self.item.consumed_by(backward)
            if self.status == Status.LIVE:
                return replace(
                    self, status=Status.STALE, backwards=frozenset({backward}), item=consumed
                )
            return self if consumed == self.item else replace(self, item=consumed)
        if self.status == Status.LIVE:
            return replace(self, status=Status.STALE, backwards=frozenset({backward}))
        return self


def replace(value: Value, **changes: object) -> Value:
    """`dataclasses.replace` for a Value, several times faster: joins at every merge point of
    every loop pass make hundreds of thousands of them in a large file. (A Value has no
    `__post_init__` and no field left out of `__init__`, so a copy of its fields is the same.)"""
    copy = object.__new__(Value)
    fields = copy.__dict__
    fields.update(value.__dict__)
    fields.update(changes)
    return copy


FRESH_UNRELATED = Value(Status.FRESH, RESET)
UNKNOWN = Value(Status.UNKNOWN)


def partly_cut(value: Value | None) -> bool:
    """A tuple or list of which some elements are cut and the others are still the caller's
    (INPUT, while a method is summarised): `(self.hidden[0].detach(), self.hidden[1])`."""
    if value is None or not value.elements:
        return False
    return any(e.status == Status.FRESH and e.how in (CUT, LEAF) for e in value.elements) and any(
        e.status == Status.INPUT for e in value.elements
    )


def after_partial_cut(previous: Value | None) -> Value | None:
    """A state after a call that cut some of its parts (PARTIAL_CUT): partial once a backward
    has consumed its graph, as `hidden[0] = hidden[0].detach()` leaves it; else as it was."""
    if previous is None or previous.status != Status.STALE:
        return previous
    return replace(previous, status=Status.PARTIAL, elements=None)


def fresh(how: str, origin: cst.CSTNode | None, via_data: bool = False) -> Value:
    return Value(Status.FRESH, how, origin, via_data=via_data)


def composite(elements: tuple[Value, ...], origin: cst.CSTNode | None) -> Value:
    """A tuple/list literal: FRESH only if every element is, PARTIAL if cut elements sit next to
    stale ones."""
    if not elements:
        return Value(Status.FRESH, RESET, origin, elements=())
    return with_carried(_composite(elements, origin), *(e.carried for e in elements))


def _composite(elements: tuple[Value, ...], origin: cst.CSTNode | None) -> Value:
    statuses = {element.status for element in elements}
    backwards = frozenset().union(*(element.backwards for element in elements))
    if statuses == {Status.FRESH}:
        how = CUT if any(element.how in (CUT, LEAF) for element in elements) else RESET
        via_data = any(element.via_data for element in elements)
        return Value(Status.FRESH, how, origin, via_data=via_data, elements=elements)
    if Status.STALE in statuses and Status.FRESH in statuses:
        status = Status.PARTIAL
    else:
        status = max(statuses)
    return Value(status, "", origin, backwards, elements=elements)


def with_carried(value: Value, *marks: frozenset[cst.CSTNode]) -> Value:
    """The value, also carried across the passes of the loops in `marks`."""
    carried = value.carried.union(*marks)
    return value if carried == value.carried else replace(value, carried=carried)


def join(left: Value | None, right: Value | None) -> Value | None:
    """The value at a merge point of two paths (None: the variable is unbound on that path)."""
    if left is None:
        return right
    if right is None:
        return left
    joined = _join(left, right)
    if left.carried or right.carried:
        return with_carried(joined, left.carried, right.carried)
    return joined


def _join(left: Value, right: Value) -> Value:
    joined = _join_whole(left, right)
    if left.item is None and right.item is None:
        return joined
    item = join_items(left, right)
    return joined if item == joined.item else replace(joined, item=item)


def item_of(value: Value) -> Value:
    """What an element of the list `value` holds, as far as the value tells."""
    if value.item is not None:
        return value.item
    if value.status == Status.PARTIAL:
        return replace(value, status=Status.STALE, elements=None)
    return replace(value, elements=None)


def join_items(left: Value, right: Value) -> Value | None:
    """The element shape of a list that may be `left` or `right`, where either holds tuples
    of a known shape: joined element by element with what the other list holds (a list of
    unknown shape adds its whole value to each part of the tuple), or None when the shapes
    disagree."""
    a, b = item_of(left), item_of(right)
    if a.elements is None and b.elements is None:
        return None
    if a.elements is not None and b.elements is not None:
        if len(a.elements) != len(b.elements):
            return None
        return join(a, b)
    shaped, other = (a, b) if a.elements is not None else (b, a)
    parts = tuple(join(part, other) or part for part in shaped.elements or ())
    return composite(parts, shaped.origin)


def _join_whole(left: Value, right: Value) -> Value:
    sources = left.all_sources() | right.all_sources()
    if left == right and left.origin is right.origin:
        return replace(left, sources=sources)
    if (
        left.elements is not None
        and right.elements is not None
        and len(left.elements) == len(right.elements)
    ):
        elements = tuple(
            join(a, b) or FRESH_UNRELATED
            for a, b in zip(left.elements, right.elements, strict=False)
        )
        return replace(composite(elements, left.origin), sources=sources)
    worse, other = (left, right) if left.status >= right.status else (right, left)
    if worse.status == Status.FRESH:
        # Both fresh: a cut on one path and a reset on the other is still a cut somewhere.
        how = worse.how if worse.how == other.how else CUT
        return Value(
            Status.FRESH,
            how,
            worse.origin,
            via_data=worse.via_data or other.via_data,
            sources=sources,
        )
    return replace(
        worse, backwards=worse.backwards | other.backwards, elements=None, sources=sources
    )


Env = dict[str, Value]


def join_envs(left: Env | None, right: Env | None) -> Env | None:
    if left is None:
        return None if right is None else dict(right)
    if right is None:
        return dict(left)
    merged: Env = {}
    for name in left.keys() | right.keys():
        value = join(left.get(name), right.get(name))
        if value is not None:
            merged[name] = value
    return merged
