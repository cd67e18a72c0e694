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

from tbptt_lint.tracer.graph_legend import (
    BEYOND_BACKGROUND,
    BEYOND_BORDER,
    BEYOND_TEXT,
    CUT_COLOUR,
    CUT_TEXT,
)

if TYPE_CHECKING:
    import torch

    from tbptt_lint.tracer.graph_groups import StepGroup

# ColorBrewer Set3 (pastel, distinct) so neighbouring steps never share a colour, less its red
# and orange (they would read as the cut and as "further back than k2") and its grey (glue).
STEP_COLOURS = (
    "#8dd3c7",
    "#ffffb3",
    "#bebada",
    "#80b1d3",
    "#b3de69",
    "#fccde5",
    "#bc80bd",
    "#ccebc5",
    "#ffed6f",
)


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
        make_dot: Callable[..., Any] = sys.modules["torchviz"].make_dot
        return make_dot

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
        make_dot = importlib.import_module("torchviz").make_dot
        return make_dot
    finally:
        for name, previous in saved.items():
            if previous is missing:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous  # type: ignore[assignment]


_NODE = re.compile(r"\t(\S+) \[(.*)\]\n?\Z", re.DOTALL)
_EDGE = re.compile(r"\t(\S+) -> (\S+)(?: \[(.*)\])?\n?\Z", re.DOTALL)
_OP_NAME = re.compile(r"(?<!AccumulateGrad)Backward\d*\Z")
_LABEL = re.compile(r'label="?([^" \]]+)')
# Fused RNN nodes: each takes the carried state of one layer (and direction), or of all.
_RNN_NODE = re.compile(r"(Mkldnn|Cudnn|Miopen)Rnn(Layer)?Backward\d*\Z")


def step_colour(step: int) -> str:
    return STEP_COLOURS[step % len(STEP_COLOURS)]


def dot_source_for(
    roots: list[torch.Tensor],
    node_steps: dict[int, int],
    cut_node_ids: set[int],
    *,
    params: dict[str, torch.Tensor] | None = None,
    cut_steps: set[int] | None = None,
    groups: dict[int, StepGroup] | None = None,
) -> str:
    """torchviz DOT for `roots`, with nodes coloured and clustered by time step and cuts marked.

    `node_steps` maps `id(grad_fn)` (the name torchviz gives a node) to its global step;
    `cut_node_ids` holds the `id(grad_fn)` of nodes where carried state was cut, i.e. where the
    gradient stops flowing into the previous step. `cut_steps` (the walk's) says which steps'
    clusters the gradient stops at, and `groups` what a sequence-module call's cluster holds
    (steps, layers). Must be called while the graph is alive.
    """
    make_dot = load_make_dot()
    graph = make_dot(tuple(roots) if len(roots) != 1 else roots[0], params=params)
    return _restyle(
        graph.body,
        dict(graph.graph_attr),
        dict(graph.node_attr),
        node_steps,
        cut_node_ids,
        cut_steps,
        groups,
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


def _node_label(attrs: str) -> str:
    found = _LABEL.search(attrs)
    return found.group(1) if found else ""


def _rnn_layers(
    members: list[str], labels: dict[str, str], sources: dict[str, list[str]]
) -> dict[str, int]:
    """Layer number (1 = nearest the input) of each fused RNN node among `members`: one per
    layer and direction on the CPU (`MkldnnRnnLayerBackward0`), one for all under cuDNN."""
    fused = [m for m in members if _RNN_NODE.match(labels.get(m, ""))]
    inside = set(members)
    depth: dict[str, int] = {}

    def layer_of(node: str) -> int:
        if node in depth:
            return depth[node]
        depth[node] = 1  # provisional: a cycle cannot happen in a DAG, but stay finite
        below, stack, seen = 0, list(sources.get(node, ())), set()
        while stack:
            src = stack.pop()
            if src in seen or src not in inside:
                continue
            seen.add(src)
            if src in fused_set:
                below = max(below, layer_of(src))
            else:
                stack.extend(sources.get(src, ()))
        depth[node] = below + 1
        return depth[node]

    fused_set = set(fused)
    return {node: layer_of(node) for node in fused}


def _entry_node(members: list[str], labels: dict[str, str], sources: dict[str, list[str]]) -> str:
    """The op of a cluster nearest its inputs: where an unfused RNN call's state enters, so
    that the cut drawn into the cluster meets it at the top, not at its output."""
    inside = set(members)
    rank: dict[str, int] = {}
    for name in members:
        stack = [name]
        while stack:  # iterative longest path from the cluster's own inputs
            node = stack[-1]
            below = [s for s in sources.get(node, ()) if s in inside and s not in rank]
            if below:
                stack.extend(below)
                continue
            stack.pop()
            rank[node] = 1 + max((rank[s] for s in sources.get(node, ()) if s in inside), default=0)
    ops = [m for m in members if _OP_NAME.search(labels.get(m, ""))]
    return min(ops or members, key=lambda m: rank.get(m, 0))


def _restyle(  # noqa: C901 - one pass over torchviz's DOT lines, each kind handled inline
    body: Iterable[str],
    graph_attr: dict[str, str],
    node_attr: dict[str, str],
    node_steps: dict[int, int],
    cut_node_ids: set[int],
    cut_steps: set[int] | None = None,
    groups: dict[int, StepGroup] | None = None,
) -> str:
    body = list(body)
    groups = groups or {}
    steps_by_name = _fill_steps(body, {str(k): v for k, v in node_steps.items()})
    cuts = {str(k) for k in cut_node_ids}
    clustered: dict[int, list[str]] = {}
    members: dict[int, list[str]] = {}
    labels: dict[str, str] = {}
    sources: dict[str, list[str]] = {}
    nodes: list[tuple[str, str]] = []
    loose: list[str] = []
    edges: list[str] = []
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
            if "dir=none" not in attrs:
                sources.setdefault(dst, []).append(src)
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
        labels[name] = _node_label(attrs)
        nodes.append((name, attrs))
        step = steps_by_name.get(name)
        if step is not None:
            members.setdefault(step, []).append(name)

    # Where the gradient stops. A fused RNN call (nn.LSTM on the CPU: a node per layer) takes
    # each layer's state at its own node, so each gets the cut; an unfused one (nn.GRU on the
    # CPU: plain ops) and a cell get one cut into their cluster (a cut state enters their first
    # ops with no autograd edge), naming the layers; a leaf state (the k1/k2 recipe) is marked
    # itself. Without `cut_steps` the cuts go on the nodes the caller named.
    marked: set[str] = set()
    markers: list[tuple[str, str, str]] = []  # (target node, marker text, extra edge attrs)
    for step, names in members.items():
        group = groups.get(step)
        stopped = step in cut_steps if cut_steps is not None else bool(cuts & set(names))
        layers = _rnn_layers(names, labels, sources)
        state = group.state if group else "state"
        if layers:
            own = [n for n in names if n in cuts and labels.get(n) == "AccumulateGrad"]
            marked.update(own)
            markers.extend((n, "leaf state", "") for n in own)
            if stopped:
                for n, layer in sorted(layers.items(), key=lambda item: item[1]):
                    marked.add(n)
                    if "RnnLayer" not in labels[n]:
                        # cuDNN: one node takes every layer's state.
                        count = group.layers if group is not None else 1
                        every = f" of {count} layers" if count > 1 else ""
                        markers.append((n, f"state ({state}){every}", ""))
                        continue
                    one_way = ", one direction" if group and group.directions == 2 else ""
                    markers.append((n, f"layer {layer} state ({state}){one_way}", ""))
        elif group is not None and group.steps > 1:
            if stopped:
                layer_words = f" of {group.layers} layers" if group.layers > 1 else ""
                markers.append(
                    (
                        _entry_node(names, labels, sources),
                        f"state ({state}){layer_words}",
                        f" lhead=cluster_step_{step}",
                    )
                )
        elif cut_steps is not None:
            # A cell: the state enters its first ops with no autograd edge once cut, so the
            # cut is drawn into the cluster; a leaf state (the k1/k2 recipe) is drawn itself.
            leaves = [n for n in names if n in cuts and labels.get(n) == "AccumulateGrad"]
            marked.update(leaves)
            markers.extend((n, "leaf state", "") for n in leaves)
            if stopped and not leaves:
                markers.append(
                    (
                        _entry_node(names, labels, sources),
                        "state" if state == "state" else f"state ({state})",
                        f" lhead=cluster_step_{step}",
                    )
                )
        else:
            hit = [n for n in names if n in cuts]
            marked.update(hit)
            markers.extend((n, "detached state", "") for n in hit)
    loose_names = {n for n in cuts if steps_by_name.get(n) is None}  # leaves outside steps
    for n in sorted(loose_names & set(labels)):
        marked.add(n)
        markers.append((n, "detached state", ""))

    for name, attrs in nodes:
        step = steps_by_name.get(name)
        extra = []
        if step is not None:
            extra.append(f'fillcolor="{step_colour(step)}"')
        if name in marked:
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
        group = groups.get(step)
        label = (
            f"t={step}"
            if group is None or group.steps == 1
            else (f"t={step}\u2013{step + group.steps - 1}")
        )
        if group is not None and (group.steps > 1 or group.layers > 1):
            label += "\\n" + group.describe()
        stopped = step in cut_steps if cut_steps is not None else False
        colour = CUT_COLOUR if stopped else "#888888"
        if stopped:
            label += "\\ncut: no state from earlier steps flows in"
        out.append(f"\tsubgraph cluster_step_{step} {{\n")
        out.append(f'\t\tlabel="{label}" style=rounded color="{colour}" fontname=Helvetica\n')
        out.extend("\t" + line for line in clustered[step])
        out.append("\t}\n")
    out.extend(loose)
    out.extend(edges)
    for k, (target, text, edge_extra) in enumerate(markers):
        # The cut itself has no autograd edge (that is the point of detach), so draw one.
        marker = f"cut_{target}" if k == 0 or markers[k - 1][0] != target else f"cut{k}_{target}"
        out.append(
            f'\t{marker} [label="{text}" shape=plaintext style="" fontname=Helvetica '
            f'fontcolor="{CUT_COLOUR}"]\n'
        )
        out.append(
            f'\t{marker} -> {target} [label="cut" style=dashed color="{CUT_COLOUR}" '
            f'fontcolor="{CUT_COLOUR}" penwidth=2{edge_extra}]\n'
        )
    out.append("}\n")
    return "".join(out)


_CLUSTER_HEAD = re.compile(
    r'(\tsubgraph cluster_step_\d+ \{\n\t\tlabel=")(t=(\d+)(?:\u2013(\d+))?[^"]*)" '
    r'style=rounded color="([^"]*)"'
)


def finish_dot(dot: str, title: str, window_end: int, k2: int | None) -> str:
    """Add, at drawing time, what was not known when the graph was copied: a title, the K2
    boundary (clusters further back than k2 steps before `window_end` are shaded, and the
    cluster where the expected window begins says so) and a legend."""
    boundary = window_end - k2 if k2 is not None else None

    def cluster(match: re.Match[str]) -> str:
        head, label, colour = match.group(1), match.group(2), match.group(5)
        first = int(match.group(3))
        last = int(match.group(4) or first)
        style = "rounded"
        extra = ""
        if boundary is not None:
            if last < boundary:
                label += f"\\nfurther back than k2={k2}"
                style = "rounded,filled"
                extra = f' fillcolor="{BEYOND_BACKGROUND}"'
                if colour != CUT_COLOUR:
                    colour = BEYOND_BORDER
            elif first == boundary:
                label += f"\\nthe expected window (k2={k2}) begins here"
            elif first < boundary <= last:
                label += f"\\nthe expected window (k2={k2}) begins at t={boundary}"
        return f'{head}{label}" style="{style}" color="{colour}"{extra}'

    body = _CLUSTER_HEAD.sub(cluster, dot)
    end = body.rstrip().rfind("}")
    if end < 0:
        return dot
    tail = [
        f'\tlegend [shape=plaintext style="" fontname=Helvetica fontsize=11 '
        f"label=<{_legend(k2)}>]\n",
        f'\tlabel="{title}" labelloc=t fontname=Helvetica fontsize=14\n',
    ]
    return body[:end] + "".join(tail) + body[end:]


def _legend(k2: int | None) -> str:
    """An HTML-like table: a sample of each mark, then what it means."""
    rows = [
        (
            '<td border="1" color="#888888">t=55</td>',
            "a box: one time step, or one nn.LSTM/GRU/RNN call (t=55\u201359: the steps it holds)",
        ),
        (
            f'<td bgcolor="{STEP_COLOURS[0]}" border="1" color="#888888"> </td>',
            # torchviz's own fills, but for the nodes of a step, which take the step's colour
            "node colour: one per time step; grey: outside the steps (output layer, loss); "
            "light blue: a parameter outside the steps",
        ),
        (
            "<td>\u2192</td>",
            "arrows point the way the forward pass went; the gradient flows against them, "
            "from the loss at the bottom",
        ),
        (
            '<td><font point-size="16"><b>\u2192</b></font></td>',
            "thick arrow: state carried from one step into the next",
        ),
        (
            f'<td><font color="{CUT_COLOUR}">- - \u2192</font></td>',
            f'<font color="{CUT_COLOUR}">cut: no state from an earlier step flows in; '
            f"{CUT_TEXT}</font>",
        ),
    ]
    if k2 is not None:
        rows.append(
            (
                f'<td bgcolor="{BEYOND_BACKGROUND}" border="1" color="{BEYOND_BORDER}"> </td>',
                f"shaded box: further back than k2={k2} steps, {BEYOND_TEXT}",
            )
        )
    cells = "".join(f'<tr>{sample}<td align="left">{text}</td></tr>' for sample, text in rows)
    return f'<table border="0" cellspacing="3" cellpadding="2">{cells}</table>'
