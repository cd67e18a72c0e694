"""The `Trace` object: installs hooks and patches on enter, removes every one on exit.

Per root backward it keeps plain data only (`BackwardCall`). Roles of a backward:
- root: a new window's backward;
- continuation: `state.backward(leaf.grad)` of the k1/k2 recipe (non-scalar roots, explicit
  gradient, no step taken since the previous backward): folded into the previous root call,
  adding its horizon;
- re-evaluation: a second backward inside one `optimizer.step(closure)` (LBFGS evaluates the
  closure many times): the same window again, so its steps are not counted twice.
"""

from __future__ import annotations

import gc
import itertools
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from tbptt_lint.tracer import explain
from tbptt_lint.tracer.assertions import RunFacts, check_tbptt, grad_steps_per_call
from tbptt_lint.tracer.graph_walk import WalkResult, walk_graph
from tbptt_lint.tracer.node_keeper import (
    NodeKeeper,
    bury,
    graveyard,
    python_objects_preserved,
    safe_free_nodes,
)
from tbptt_lint.tracer.patching import BackwardInterceptor
from tbptt_lint.tracer.records import BackwardCall, StepRecord, TraceSummary
from tbptt_lint.tracer.steps import StateLeak, StepTracker

DOT_NODE_LIMIT = 400  # torchviz output is kept for graphs up to this many nodes
SNAPSHOT_NODE_LIMIT = 5000  # node/edge lists are kept up to this many nodes
# Why a backward call was made: a window's own, a chained `state.backward(gradient)`, or the
# closure an optimizer step evaluates again.
CallRole = Literal["root", "continuation", "reevaluation"]

_session_ids = itertools.count(1)
_thread_keys = itertools.count(1)
_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def _gc_paused() -> Iterator[None]:
    """A full collection with torch loaded costs ~90 ms: keep it out of the walk (thread-safe)."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


@dataclass(slots=True)
class _Event:
    role: CallRole
    counts: tuple[tuple[int, int], ...]
    thread: int = 0  # re-evaluations inside optimizer.step(closure) are discounted per thread
    call: BackwardCall | None = None


@dataclass
class _CallExtras:
    """Facts kept beside a BackwardCall that reports do not need."""

    stale: list[tuple[tuple[int, ...], int | None]] = field(default_factory=list)
    lo: int | None = None  # lowest step reached by the last part of a chain


SNAPSHOT_HISTORY = 32
# _refresh_steps' running state: discount and previous raw count per thread, and per step
# module the (event index, step) of the latest root backward that counted it.
_RefreshState = tuple[dict[int, int], dict[int, int], dict[int, tuple[int, int]]]


class Trace:
    """`with trace(model) as t: ...` then read `t.calls`, `t.assert_tbptt(k1, k2)`, `t.report()`."""

    def __init__(
        self,
        model: nn.Module | None = None,
        step_modules: list[nn.Module] | None = None,
        *,
        dot_node_limit: int = DOT_NODE_LIMIT,
        snapshot_node_limit: int = SNAPSHOT_NODE_LIMIT,
        measure_saved: bool = True,
        max_walk_nodes: int | None = None,
    ) -> None:
        self.model = model
        # None: no limit. A limit makes bigger graphs' horizons lower bounds.
        self.max_walk_nodes = max_walk_nodes
        self.step_modules = list(step_modules) if step_modules else None
        self.dot_node_limit = dot_node_limit
        self.snapshot_node_limit = snapshot_node_limit
        self.measure_saved = measure_saved
        self.session_id = next(_session_ids)
        self.optimizer_steps = 0
        # Gradients taken with create_graph=True and not accumulated into .grad: not windows.
        self.graph_gradients = 0
        self._errors: list[str] = []  # tracebacks of the tracer's own failures
        self.expected_k1: int | None = None
        self.expected_k2: int | None = None
        self.verdict: str | None = None
        self._events: list[_Event] = []
        # How far _refresh_steps has read, under which tracker version, and its running state.
        self._refreshed_version = -1
        self._refreshed_events = 0
        self._refresh_state: _RefreshState = ({}, {}, {})
        self._calls: list[BackwardCall] = []
        self._extras: list[_CallExtras] = []
        self._lock = threading.RLock()
        self._opt_local = threading.local()
        self._thread_local = threading.local()
        self._tracker = StepTracker(
            self.session_id, model, self.step_modules, lambda: max(len(self._calls) - 1, 0)
        )
        if self.step_modules:
            for m in self.step_modules:
                self._tracker.module_info(m)
        self._interceptor = BackwardInterceptor(self._on_backward)
        self._optim_handles: list[Any] = []
        self._entered = False
        self._param_names: dict[int, str] = {}
        self._walked = NodeKeeper()  # nodes of earlier walks, freed in order: see node_keeper

    # ----- context manager -----
    def __enter__(self) -> Trace:
        if self._entered:
            raise RuntimeError("a Trace can be entered once; create a new one with trace(...)")
        self._entered = True
        graveyard.release()
        try:
            self._tracker.install()
            self._install_optimizer_hooks()
            self._interceptor.install()
        except BaseException:
            self._uninstall()
            raise
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        self._uninstall()
        if isinstance(exc, RuntimeError) and not getattr(exc, "_tbptt_explained", False):
            calls = self.calls
            text = explain.explain_error(str(exc), len(self._calls), [], self._leaks(calls), calls)
            if text:
                explain.add_explanation(exc, text)
        return False

    def _uninstall(self) -> None:
        # Each removal is independent: one failing must not leave the others installed.
        for action in (
            self._interceptor.uninstall,
            self._tracker.close,
            self._remove_optim_hooks,
            self._release_walked,
        ):
            try:
                action()
            except Exception:  # noqa: BLE001 - each removal runs whatever the others raise
                self._errors.append(traceback.format_exc())

    def _release_walked(self) -> None:
        # What the user still references after the trace: small graphs are safe to let go
        # of in any order; big ones wait in the graveyard for an ordered release.
        if self._walked.release() <= safe_free_nodes():
            self._walked.drop()
        else:
            bury(self._walked)

    def _install_optimizer_hooks(self) -> None:
        import torch.optim.optimizer as optim_mod

        pre = getattr(optim_mod, "register_optimizer_step_pre_hook", None)
        post = getattr(optim_mod, "register_optimizer_step_post_hook", None)
        if pre is not None and post is not None:
            self._optim_handles.append(pre(self._optim_pre))
            self._optim_handles.append(post(self._optim_post))

    def _remove_optim_hooks(self) -> None:
        for handle in self._optim_handles:
            handle.remove()
        self._optim_handles.clear()

    def _optim_pre(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self._opt_local.depth = getattr(self._opt_local, "depth", 0) + 1
        self._opt_local.roots = 0

    def _optim_post(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self._opt_local.depth = max(getattr(self._opt_local, "depth", 1) - 1, 0)
        with self._lock:
            self.optimizer_steps += 1

    # ----- the backward hook -----
    def _on_backward(
        self, outputs: Any, grad_tensors: Any, info: dict[str, Any], run: Callable[[], Any]
    ) -> Any:
        __tracebackhide__ = True  # pytest: the user's frames, not the tracer's
        try:
            prepared = self._before_backward(outputs, grad_tensors, info)
        except Exception:  # noqa: BLE001 - never break the user's backward
            self._errors.append(traceback.format_exc())
            prepared = None
        try:
            return run()
        except RuntimeError as exc:
            if prepared is not None:
                index, walk = prepared
                calls = self.calls
                text = explain.explain_error(
                    str(exc),
                    index,
                    walk.unreadable,
                    self._leaks(calls),
                    calls,
                    leaf_states=bool(walk.state_leaves),
                )
                if text:
                    explain.add_explanation(exc, text)
            raise

    def _before_backward(
        self, outputs: Any, grad_tensors: Any, info: dict[str, Any]
    ) -> tuple[int, WalkResult] | None:
        if not info.get("accumulate_grad", True) and info.get("create_graph"):
            with self._lock:
                self.graph_gradients += 1
            return None  # a gradient used inside a loss (penalty, meta-step): not a window
        tensors = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
        roots, root_tensors = [], []
        for t in tensors:
            if isinstance(t, torch.Tensor):
                if t.grad_fn is not None:
                    roots.append(t.grad_fn)
                    root_tensors.append(t)
            elif hasattr(t, "node"):  # GradientEdge
                roots.append(t.node)
        counts = self._tracker.counts()
        with self._lock:
            role = self._role(tensors, grad_tensors, counts)
        walked: list[Any] = []  # held until the next backward: see node_keeper
        with _gc_paused():
            self._walked.release()
            walk = walk_graph(
                roots,
                self._tracker.resolve_node,
                measure_saved=self.measure_saved and not self._tracker.saved_hooks_seen,
                snapshot_limit=self.snapshot_node_limit,
                max_nodes=self.max_walk_nodes,
                param_names=self._param_name,
                keep_alive=walked,
                tagged=self._tracker.tagged_filter(),
            )
            dot = self._dot_source(root_tensors, walk) if role != "reevaluation" else None
            if python_objects_preserved():
                self._walked.hold(walked)
            walked.clear()
        with self._lock:
            return self._record(role, counts, walk, dot, info)

    def _thread_key(self) -> int:
        # Not threading.get_ident(): a finished thread's ident is given to the next one.
        key = getattr(self._thread_local, "key", None)
        if key is None:
            key = self._thread_local.key = next(_thread_keys)
        return key

    def _role(
        self, tensors: list[Any], grad_tensors: Any, counts: tuple[tuple[int, int], ...]
    ) -> CallRole:
        in_step = getattr(self._opt_local, "depth", 0) > 0
        if in_step and getattr(self._opt_local, "roots", 0) > 0:
            return "reevaluation"
        last = self._events[-1] if self._events else None
        non_scalar = all(isinstance(t, torch.Tensor) and t.dim() > 0 for t in tensors)
        if (
            last is not None
            and self._calls
            and non_scalar
            and grad_tensors is not None
            and counts == last.counts
        ):
            return "continuation"
        if in_step:
            self._opt_local.roots = 1
        return "root"

    def _record(
        self,
        role: CallRole,
        counts: tuple[tuple[int, int], ...],
        walk: WalkResult,
        dot: str | None,
        info: dict[str, Any],
    ) -> tuple[int, WalkResult]:
        event = _Event(role, counts, self._thread_key())
        self._events.append(event)
        if role == "reevaluation":
            call = self._calls[-1]
            call.notes.append("re-evaluated inside optimizer.step(closure)")
            return call.index, walk
        lo = min(walk.reached) if walk.reached else None
        if role == "continuation":
            call = self._calls[-1]
            extras = self._extras[-1]
            hi = max(walk.reached) if walk.reached else None
            # A step is cut where neither part links it; the chain links the earlier part's
            # lowest step to this part's highest.
            old_reached, old_cut = set(call.reached_steps), set(call.cut_steps)
            cut = (old_cut - (walk.reached - walk.cut_steps)) | (
                walk.cut_steps - (old_reached - old_cut)
            )
            if hi is not None and extras.lo is not None and hi < extras.lo:
                call.state_links = (*call.state_links, (hi, extras.lo))
                cut.discard(extras.lo)
            call.cut_steps = cut
            call.horizon += walk.horizon
            call.continuations += 1
            call.graph_nodes += walk.node_count
            call.saved_bytes += walk.saved_bytes
            call.reached_steps = tuple(sorted(set(call.reached_steps) | walk.reached))
            call.state_links = tuple(sorted(set(call.state_links) | walk.links))
            call.opaque = tuple(sorted(set(call.opaque) | set(walk.opaque)))
            extras.stale += walk.stale_leaves
            if lo is not None:
                extras.lo = lo
            event.call = call
            return call.index, walk
        self._tracker.note_root_backward()
        call = BackwardCall(
            index=len(self._calls),
            step=0,
            stride=0,
            horizon=walk.horizon,
            graph_nodes=walk.node_count,
            saved_bytes=walk.saved_bytes,
            kind="backward" if info.get("accumulate_grad", True) else "grad",
            reached_steps=tuple(sorted(walk.reached)),
            state_links=tuple(sorted(walk.links)),
            cut_steps=walk.cut_steps,
            opaque=tuple(sorted(set(walk.opaque))),
            snapshot=walk.snapshot,
        )
        if walk.snapshot is not None and dot is not None:
            walk.snapshot.dot_source = dot
        if not walk.saved_bytes_known or self._tracker.saved_hooks_seen:
            call.notes.append(
                "saved tensors are packed by hooks (checkpointing?): bytes not counted"
            )
        if walk.node_limited:
            call.walk_limited = True
            call.notes.append(
                f"the graph has more nodes than max_walk_nodes lets the walk visit "
                f"({walk.node_count} seen): the horizon is a lower bound"
            )
        if call.opaque:
            call.notes.append(
                "the gradient passes through "
                + ", ".join(call.opaque)
                + ": steps inside it are not visible, so the horizon is a lower bound"
            )
        event.call = call
        self._calls.append(call)
        self._extras.append(_CallExtras(stale=list(walk.stale_leaves), lo=lo))
        # Node-by-node snapshots are kept for the latest calls only, so that a long run's
        # memory stays flat; older calls are still drawn, in the condensed view.
        if len(self._calls) > SNAPSHOT_HISTORY:
            self._calls[-SNAPSHOT_HISTORY - 1].snapshot = None
        self._refresh_steps()
        return call.index, walk

    def _dot_source(self, root_tensors: list[torch.Tensor], walk: WalkResult) -> str | None:
        if not root_tensors or walk.node_count > self.dot_node_limit:
            return None
        try:
            from tbptt_lint.tracer.torchviz_compat import dot_source_for
        except ImportError:
            return None
        try:
            from tbptt_lint.tracer.graph_groups import step_groups

            groups = step_groups(self._tracker, set(walk.node_steps.values()))
            return dot_source_for(
                root_tensors,
                walk.node_steps,
                walk.cut_node_ids,
                cut_steps=walk.cut_steps,
                groups=groups,
            )
        except Exception:  # noqa: BLE001 - a picture must never break training
            return None

    def _param_name(self, param: Any) -> str | None:
        name = self._param_names.get(id(param))
        if name is None:
            self._refresh_param_names()
            name = self._param_names.get(id(param))
        return name

    def _refresh_param_names(self) -> None:
        names: dict[int, str] = {}
        owners: list[nn.Module | None] = [self.model] if self.model is not None else []
        owners += [info.ref() for info in self._tracker.modules.values()]
        for owner in reversed(owners):  # the model last, so its qualified names win
            if owner is None:
                continue
            info = self._tracker.known(owner)
            prefix = "" if owner is self.model or info is None else f"{info.name}."
            for pname, p in owner.named_parameters():
                names[id(p)] = pname if owner is self.model else prefix + pname
        self._param_names = names

    # ----- results -----
    def _refresh_steps(self) -> None:
        """Fill step and stride from the per-backward snapshots, with what is known now (a
        hand-written cell is recognised only on its second call).

        A stride counts from the latest earlier root backward that counted one of the same
        step modules, whichever thread ran it: independent loops in threads keep their own
        strides, and a loop whose backward runs in another thread (a new one per window, or
        threads taking turns on one model) keeps one. Re-evaluations inside
        `optimizer.step(closure)` are discounted in the thread that ran them.

        Only events not yet seen are read, unless what counts as a step changed since: a run
        of n backward calls costs O(n), where re-reading every event each time cost O(n^2)."""
        version = self._tracker.counted_version
        if version != self._refreshed_version:
            self._refreshed_version = version
            self._refreshed_events = 0
            self._refresh_state = ({}, {}, {})
        discount, prev_raw, last_root = self._refresh_state
        first = self._refreshed_events
        events = self._events[first:]
        self._refreshed_events = len(self._events)
        for order, event in enumerate(events, start=first):
            th = event.thread
            raw, keys = self._tracker.steps_from(event.counts)
            if event.role == "reevaluation":
                discount[th] = discount.get(th, 0) + raw - prev_raw.get(th, 0)
                prev_raw[th] = raw
                continue
            prev_raw[th] = raw
            if event.role == "root" and event.call is not None:
                step = raw - discount.get(th, 0)
                previous = max((last_root[k] for k in keys if k in last_root), default=(-1, 0))
                event.call.step = step
                event.call.stride = step - previous[1]
                for key in keys:
                    last_root[key] = (order, step)

    @property
    def internal_errors(self) -> list[str]:
        """The tracer's own failures (never the user's): empty in a healthy run."""
        return self._errors + self._tracker.errors

    @property
    def calls(self) -> list[BackwardCall]:
        with self._lock:
            self._refresh_steps()
            return list(self._calls)

    @property
    def steps(self) -> list[StepRecord]:
        """One record per time step, in the order taken."""
        records: dict[int, StepRecord] = {}
        for info in list(self._tracker.modules.values()):
            if not info.counted:
                continue
            for call in range(info.calls):
                start, count = info.step_range(call)
                grad = bool(info.grad[call]) if call < len(info.grad) else True
                for idx in range(start, start + count):
                    rec = records.get(idx)
                    if rec is None:
                        records[idx] = StepRecord(idx, info.name, grad)
                    elif grad and not rec.grad_enabled:
                        rec.grad_enabled = True
        return [records[i] for i in sorted(records)]

    def _leaks(self, calls: list[BackwardCall]) -> list[StateLeak]:
        """The recorded leaks whose earlier step the named backward really went through: a
        window's backward run after the next window's first step counts that step in its
        window, but does not reach it."""
        reached: dict[int, set[int]] = {}
        kept = []
        for leak in self._tracker.leaks:
            index = leak.backward_index
            if index < len(calls) and index not in reached:
                reached[index] = set(calls[index].reached_steps)
            if index >= len(calls) or leak.from_step in reached[index]:
                kept.append(leak)
        return kept

    @property
    def findings(self) -> list[str]:
        found: list[str] = []
        stale = [(i, s) for i, extras in enumerate(self._extras) for s in extras.stale]
        if stale:
            first_call, (shape, step) = stale[0]
            found.append(explain.stale_grad_finding(len(stale), first_call, shape, step))
        calls = self.calls
        leaks = self._leaks(calls)
        growth = explain.growth_explanation(
            [c.horizon for c in calls if not c.opaque], leaks, calls
        )
        if growth:
            found.append(growth[0].upper() + growth[1:])
        elif leaks:
            found.append(explain.describe_leaks(leaks, calls))
        for call in calls:
            if call.opaque:
                hint = explain.opaque_hint(call.opaque)
                found.append(
                    f"Backward #{call.index}: {call.notes[-1]}." + (f" {hint}" if hint else "")
                )
                break
        if not calls and self.graph_gradients:
            found.append(explain.graph_gradients_note(self.graph_gradients))
        if self.internal_errors:
            found.append(
                f"The tracer hit {len(self.internal_errors)} internal error(s); results may be "
                "incomplete. First: " + self.internal_errors[0].strip().splitlines()[-1]
            )
        return found

    def check(self, k1: int | None = None, k2: int | None = None) -> list[str]:
        """The problems `assert_tbptt` would raise for, without raising."""
        calls, steps = self.calls, self.steps
        facts = RunFacts(grad_steps_per_call(calls, steps), sorted(self._tracker.fresh_starts()))
        problems = check_tbptt(calls, k1, k2, self._leaks(calls), len(steps), facts)
        if not calls and problems and self.graph_gradients:
            problems[0] += " " + explain.graph_gradients_note(self.graph_gradients)
        return problems

    def assert_tbptt(self, k1: int | None = None, k2: int | None = None) -> None:
        """Raise AssertionError in plain words unless the steady state is stride k1, horizon k2."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        self.expected_k1, self.expected_k2 = k1, k2
        problems = self.check(k1, k2)
        self.verdict = "ok" if not problems else "failed: " + problems[0]
        if problems:
            want = ", ".join(f"{n}={v}" for n, v in (("k1", k1), ("k2", k2)) if v is not None)
            lines = [f"the traced run is not TBPTT({want}):"] + [f"  - {p}" for p in problems]
            raise AssertionError("\n".join(lines))

    def summary(self) -> TraceSummary:
        return TraceSummary(
            calls=self.calls,
            steps=self.steps,
            findings=self.findings,
            expected_k1=self.expected_k1,
            expected_k2=self.expected_k2,
            verdict=self.verdict,
        )

    def report(self) -> str:
        from tbptt_lint.tracer.report import render_text

        return render_text(self.summary())

    def to_dict(self) -> dict[str, Any]:
        from tbptt_lint.tracer.report import to_dict

        return to_dict(self.summary())

    def save_report(self, path: str | Path) -> Path:
        from tbptt_lint.tracer.report import render_html

        out = Path(path)
        out.write_text(render_html(self.summary()), encoding="utf-8")
        return out

    def save_graph(self, path: str | Path, call: int = -1) -> Path:
        from tbptt_lint.tracer.graph_image import save_graph

        return save_graph(self.summary(), path, call=call)

    def save_timeline(self, path: str | Path, k2: int | None = None) -> Path:
        """The timeline as .svg or .png; `k2` (else the one `assert_tbptt` was given)
        outlines the window each backward should reach."""
        from tbptt_lint.tracer.timeline import save_timeline

        return save_timeline(self.summary(), path, k2)


def trace(
    model: nn.Module | None = None,
    step_modules: list[nn.Module] | None = None,
    *,
    dot_node_limit: int = DOT_NODE_LIMIT,
    snapshot_node_limit: int = SNAPSHOT_NODE_LIMIT,
    measure_saved: bool = True,
    max_walk_nodes: int | None = None,
) -> Trace:
    """Watch `model` (or every module, when None) while the user's own code runs. The keyword
    options are `Trace`'s."""
    return Trace(
        model,
        step_modules,
        dot_node_limit=dot_node_limit,
        snapshot_node_limit=snapshot_node_limit,
        measure_saved=measure_saved,
        max_walk_nodes=max_walk_nodes,
    )
