"""torchviz's `make_dot`, importable on Python 3.12+, and DOT post-processing by time step.

torchviz 0.0.3 starts with `from distutils.version import LooseVersion`, and compares
`torch.__version__` against "1.9" with it on every `make_dot` call. Python 3.12 removed
`distutils` (only setuptools' shim brings it back), and where it exists (3.11) each of those
comparisons warns "distutils Version classes are deprecated": two DeprecationWarnings per
traced backward, and with warnings as errors (`-W error`, pytest's `filterwarnings = error`)
no torchviz picture at all. So torchviz is always imported with a minimal stand-in in
`sys.modules`, put there for the duration of the import and taken out again, so nothing else
in the process sees a fake `distutils`.
"""

from __future__ import annotations

import importlib
import re
import sys
import types
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# ColorBrewer Set3 (pastel, distinct) so neighbouring steps never share a colour.
STEP_COLOURS = (
    "#8dd3c7",
    "#ffffb3",
    "#bebada",
    "#fb8072",
    "#80b1d3",
    "#fdb462",
    "#b3de69",
    "#fccde5",
    "#d9d9d9",
    "#bc80bd",
    "#ccebc5",
    "#ffed6f",
)
CUT_COLOUR = "#d62728"


class LooseVersion:
    """Just enough of `distutils.version.LooseVersion` for torchviz: parse and compare."""

    _component = re.compile(r"(\d+|[a-z]+|\.)", re.IGNORECASE)

    def __init__(self, vstring: str) -> None:
        self.vstring = str(vstring)
        parts = [p for p in self._component.split(self.vstring) if p and p != "."]
        # Tag each part so numbers and words compare without a TypeError ("2.1.0+cpu" vs "1.9").
        self.version = [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]

    def _key(self, other: object) -> list[tuple[int, int, str]]:
        if not isinstance(other, LooseVersion):
            other = LooseVersion(str(other))
        return other.version

    def __eq__(self, other: object) -> bool:
        return self.version == self._key(other)

    def __lt__(self, other: object) -> bool:
        return self.version < self._key(other)

    def __le__(self, other: object) -> bool:
        return self.version <= self._key(other)

    def __gt__(self, other: object) -> bool:
        return self.version > self._key(other)

    def __ge__(self, other: object) -> bool:
        return self.version >= self._key(other)

    def __hash__(self) -> int:
        return hash(self.vstring)

    def __str__(self) -> str:
        return self.vstring

    def __repr__(self) -> str:
        return f"LooseVersion({self.vstring!r})"


def load_make_dot() -> Callable[..., Any]:
    """Return `torchviz.make_dot`, shimming `distutils.version` only while torchviz imports
    (a torchviz the program imported itself is used as it is)."""
    if "torchviz" in sys.modules and sys.modules["torchviz"] is not None:
        return sys.modules["torchviz"].make_dot

    names = ("distutils", "distutils.version")
    missing = object()
    saved = {name: sys.modules.get(name, missing) for name in names}
    package = types.ModuleType("distutils")
    package.__path__ = []  # a package, so `distutils.version` resolves as a submodule
    version = types.ModuleType("distutils.version")
    version.LooseVersion = LooseVersion  # type: ignore[attr-defined]
    package.version = version  # type: ignore[attr-defined]
    sys.modules["distutils"] = package
    sys.modules["distutils.version"] = version
    try:
        return importlib.import_module("torchviz").make_dot
    finally:
        for name, previous in saved.items():
            if previous is missing:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous  # type: ignore[assignment]


_NODE = re.compile(r"\t(\S+) \[(.*)\]\n?\Z", re.DOTALL)
_EDGE = re.compile(r"\t(\S+) -> (\S+)(?: \[(.*)\])?\n?\Z", re.DOTALL)


def step_colour(step: int) -> str:
    return STEP_COLOURS[step % len(STEP_COLOURS)]


def dot_source_for(
    roots: list[torch.Tensor],
    node_steps: dict[int, int],
    cut_node_ids: set[int],
    *,
    params: dict[str, torch.Tensor] | None = None,
) -> str:
    """torchviz DOT for `roots`, with nodes coloured and clustered by time step and cuts marked.

    `node_steps` maps `id(grad_fn)` (the name torchviz gives a node) to its global step;
    `cut_node_ids` holds the `id(grad_fn)` of nodes where carried state was cut, i.e. where the
    gradient stops flowing into the previous step. Must be called while the graph is alive.
    """
    make_dot = load_make_dot()
    graph = make_dot(tuple(roots) if len(roots) != 1 else roots[0], params=params)
    return _restyle(
        graph.body, dict(graph.graph_attr), dict(graph.node_attr), node_steps, cut_node_ids
    )


def _attrs(items: dict[str, str]) -> str:
    return " ".join(f"{k}={_quote(v)}" for k, v in items.items())


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fill_steps(body: list[str], steps: dict[str, int]) -> dict[str, int]:
    """Give unmapped nodes the step of the nodes they feed, when those all share one step.

    A caller may tag only each step's output node; the matmuls and adds that produced it feed
    nothing but that step, so they belong to it. Parameters and loss glue feed several steps or
    untagged nodes and stay outside the clusters.
    """
    consumers: dict[str, set[str]] = {}
    for entry in body:
        edge = _EDGE.match(entry)
        if edge and "dir=none" not in (edge.group(3) or ""):
            consumers.setdefault(edge.group(1), set()).add(edge.group(2))
    steps = dict(steps)
    changed = True
    while changed:
        changed = False
        for name, outs in consumers.items():
            if name in steps or not all(o in steps for o in outs):
                continue
            found = {steps[o] for o in outs}
            if len(found) == 1:
                steps[name] = found.pop()
                changed = True
    return steps


def _restyle(
    body: Iterable[str],
    graph_attr: dict[str, str],
    node_attr: dict[str, str],
    node_steps: dict[int, int],
    cut_node_ids: set[int],
) -> str:
    body = list(body)
    steps_by_name = _fill_steps(body, {str(k): v for k, v in node_steps.items()})
    cuts = {str(k) for k in cut_node_ids}
    clustered: dict[int, list[str]] = {}
    loose: list[str] = []
    edges: list[str] = []
    drawn: set[str] = set()
    for entry in body:
        node = _NODE.match(entry)
        edge = None if node else _EDGE.match(entry)
        if edge:
            src, dst, attrs = edge.group(1), edge.group(2), edge.group(3) or ""
            extra = []
            s_src, s_dst = steps_by_name.get(src), steps_by_name.get(dst)
            if s_src is not None and s_dst is not None and s_src != s_dst:
                # Carried state crossing from one step into the next: the path BPTT follows.
                extra.append("penwidth=2")
            edges.append(
                f"\t{src} -> {dst}"
                + (f" [{' '.join([attrs, *extra]).strip()}]" if attrs or extra else "")
                + "\n"
            )
            continue
        if not node:
            loose.append(entry)  # anything torchviz adds that is neither node nor edge
            continue
        name, attrs = node.group(1), node.group(2)
        drawn.add(name)
        step = steps_by_name.get(name)
        extra = []
        if step is not None:
            extra.append(f'fillcolor="{step_colour(step)}"')
        if name in cuts:
            extra.append(f'style="filled,dashed" color="{CUT_COLOUR}" penwidth=2')
        line = f"\t{name} [{attrs}{' ' if extra else ''}{' '.join(extra)}]\n"
        if step is None:
            loose.append(line)
        else:
            clustered.setdefault(step, []).append(line)

    out = ["digraph {\n"]
    out.append(
        f"\tgraph [{_attrs(graph_attr)} compound=true]\n"
        if graph_attr
        else "\tgraph [compound=true]\n"
    )
    if node_attr:
        out.append(f"\tnode [{_attrs(node_attr)}]\n")
    for step in sorted(clustered):
        out.append(f"\tsubgraph cluster_step_{step} {{\n")
        out.append(f'\t\tlabel="t={step}" style=rounded color="#888888" fontname=monospace\n')
        out.extend("\t" + line for line in clustered[step])
        out.append("\t}\n")
    out.extend(loose)
    out.extend(edges)
    for name in sorted(cuts & drawn):
        # The cut itself has no autograd edge (that is the point of detach), so draw one.
        marker = f"cut_{name}"
        out.append(
            f'\t{marker} [label="detached state" shape=plaintext style="" '
            f'fontcolor="{CUT_COLOUR}"]\n'
        )
        out.append(
            f'\t{marker} -> {name} [label="cut" style=dashed color="{CUT_COLOUR}" '
            f'fontcolor="{CUT_COLOUR}" penwidth=2]\n'
        )
    out.append("}\n")
    return "".join(out)
