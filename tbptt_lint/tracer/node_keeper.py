"""Holds the autograd nodes a walk visited, and frees them parents first, one at a time.

Why: on torch 2.13 (not on 2.12.1 or older), an autograd node whose Python object exists (any
walk creates one per node: `next_functions` returns them) is freed through Python's
deallocator, and that frees its children the same way, one C stack frame per node. Freeing
an unwalked graph is iterative, but freeing a walked one of ~45k nodes overflows an 8 MiB
stack (a segmentation fault in the user's process; benchmarks/deep_graph_free.py reproduces
it). Holding every walked node and letting go of them parents first means each release
frees one node whose children are still held, so nothing recurses.

Whether a node is still referenced elsewhere (by its parents, a tensor's `grad_fn` or the
user) shows in its Python reference count: on those torch versions the C++ node owns one
reference to its Python object while anything else holds the node. Nodes still referenced
are kept for a later release; `graveyard` takes over the big ones a finished trace could not
free.
"""

from __future__ import annotations

import atexit
import sys
import threading
from collections.abc import Iterable
from typing import Any


def _refcount(node: Any) -> int:
    return sys.getrefcount(node)


def _probe_refcount(output_kept: bool) -> int:
    """What `_refcount` reads, through the same steps as `NodeKeeper.release`, on a fresh node
    that only the caller holds, or that its output tensor holds too."""
    import torch

    out = torch.zeros(1, requires_grad=True) * 2
    probe = [out.grad_fn]
    if not output_kept:
        del out  # only the list holds the node now
    node = probe[0]
    probe[0] = None
    return _refcount(node)


_free_refcount: int | None = None
_preserved: bool | None = None


def _free_node_refcount() -> int:
    """The reference count `_refcount` reads on a node that nothing but the caller holds."""
    global _free_refcount
    if _free_refcount is None:
        _free_refcount = _probe_refcount(output_kept=False)
    return _free_refcount


def python_objects_preserved() -> bool:
    """Whether a node's Python object lives as long as the node while something else holds
    it (torch 2.13; not 2.12.1 or older). Only then does freeing a walked graph recurse, and
    only then does the reference count show that something else holds a node."""
    global _preserved
    if _preserved is None:
        _preserved = _probe_refcount(output_kept=True) > _free_node_refcount()
    return _preserved


# How many walked nodes a graph may have for freeing it to be safe without the ordered
# release below. On torch 2.13 (CPU), freeing a graph whose nodes Python has visited
# recurses once per node: with the default 8 MiB main-thread stack, a graph of 45k nodes (a
# plain chain) or 75k (5000 LSTMCell steps) segfaulted when the user dropped it, while 30k
# (chain) and 60k (4000 LSTMCell steps) were safe (benchmarks/deep_graph_free.py). torch
# 2.12.1 and older free 120k walked nodes fine: their nodes' Python objects are not
# preserved. The main thread's stack grows up to the soft RLIMIT_STACK, so the size scales
# with it.
SAFE_FREE_NODES = 30_000
MEASURED_STACK_BYTES = 8 << 20  # the stack limit SAFE_FREE_NODES was measured safe under


def safe_free_nodes() -> int:
    """The most walked nodes a graph may have for an unordered free not to crash."""
    if not python_objects_preserved():
        return sys.maxsize
    try:
        import resource
    except ImportError:  # not on Linux/macOS: nothing to read, stay safe
        return SAFE_FREE_NODES
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    if soft == resource.RLIM_INFINITY:
        return sys.maxsize
    return max(SAFE_FREE_NODES, SAFE_FREE_NODES * soft // MEASURED_STACK_BYTES)


class NodeKeeper:
    """Walked nodes in batches, newest last; each batch lists parents before children."""

    def __init__(self) -> None:
        self._batches: list[list[Any]] = []
        self._kept_ids: set[int] = set()  # ids of nodes a release could not free yet
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(batch) for batch in self._batches)

    def hold(self, nodes_parents_first: Iterable[Any]) -> None:
        batch = list(nodes_parents_first)
        with self._lock:
            if self._kept_ids:  # a graph the user still holds is walked again: hold it once
                kept = self._kept_ids
                batch = [node for node in batch if id(node) not in kept]
            if batch:
                self._batches.append(batch)

    def release(self) -> int:
        """Free every held node nothing else references; return how many are still held."""
        with self._lock:
            batches, self._batches = self._batches, []
        free = _free_node_refcount()
        survivors: list[list[Any]] = []
        # Newer graphs point into older ones, never the reverse: newest batch first.
        for batch in reversed(batches):
            kept: list[Any] = []
            for i in range(len(batch)):
                node = batch[i]
                batch[i] = None
                if _refcount(node) > free:
                    kept.append(node)  # still referenced: freeing it now would do nothing
                node = None  # frees it, alone: its parents are gone, its children held
            if kept:
                survivors.append(kept)
        survivors.reverse()
        with self._lock:
            self._batches[:0] = survivors
            self._kept_ids = {id(node) for batch in self._batches for node in batch}
            return sum(len(batch) for batch in self._batches)

    def adopt(self, other: NodeKeeper) -> None:
        """Take over what `other` still holds, as newer than anything held here."""
        with other._lock:
            batches, other._batches, other._kept_ids = other._batches, [], set()
        with self._lock:
            self._batches.extend(batches)
            for batch in batches:
                self._kept_ids.update(id(node) for node in batch)

    def drop(self) -> None:
        """Let go of everything, parents first (safe when what is left is small)."""
        with self._lock:
            batches, self._batches, self._kept_ids = self._batches, [], set()
        for batch in reversed(batches):
            for i in range(len(batch)):
                batch[i] = None


# What finished traces could not free because the user still referenced it, and was too big
# to let go of without the crash above. Released again when a trace starts, and at exit.
graveyard = NodeKeeper()
_exit_hook_registered = False


def bury(keeper: NodeKeeper) -> None:
    global _exit_hook_registered
    graveyard.adopt(keeper)
    if not _exit_hook_registered:
        _exit_hook_registered = True
        atexit.register(_release_at_exit)


def _release_at_exit() -> None:
    if graveyard.release():
        # Still referenced by the program's globals, which the interpreter frees after this,
        # with the recursion above. The process is ending: its memory goes back to the
        # system either way, so these nodes are kept rather than freed.
        _immortal.append(graveyard._batches)
        import ctypes

        ctypes.pythonapi.Py_IncRef(ctypes.py_object(_immortal))


_immortal: list[Any] = []
