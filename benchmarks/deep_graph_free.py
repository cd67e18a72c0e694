"""Reproduce the crash that tbptt_lint/tracer/node_keeper.py works around.

    python benchmarks/deep_graph_free.py none|walk [steps]

An LSTMCell loop of `steps` steps (default 8000, about 120k autograd nodes) builds one graph.
With `none`, it is back-propagated and freed: fine. With `walk`, Python first visits every
node (reading `next_functions`, as any graph walk must), then the same backward and free
crash with a segmentation fault on torch 2.13 on CPU (exit code 139): freeing a
graph whose nodes Python has visited recurses once per node (each node is freed through its
Python object's deallocator) and overflows the 8 MiB main-thread stack; the backward is not
what matters, the walk is. Exit code 0 and "freed ok" mean this torch build is not affected.
The tracer holds the nodes it walked and frees them parents first, one at a time.
"""

from __future__ import annotations

import sys

import torch


def visit_every_node(root: torch.autograd.graph.Node) -> int:
    seen: set[torch.autograd.graph.Node] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(child for child, _ in node.next_functions)
    return len(seen)


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "walk"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 8000
    cell = torch.nn.LSTMCell(4, 8)
    h, c, x = torch.zeros(2, 8), torch.zeros(2, 8), torch.randn(2, 4)
    for _ in range(steps):
        h, c = cell(x, (h, c))
    loss = h.sum()
    if mode == "walk":
        print("visited", visit_every_node(loss.grad_fn), "nodes", flush=True)
    loss.backward()
    print("backward done", flush=True)
    del h, c, loss
    print("freed ok", flush=True)


if __name__ == "__main__":
    main()
