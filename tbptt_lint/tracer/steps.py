"""Counting time steps through module forward hooks, and tagging each step's output nodes.

Every module call's output `grad_fn`s get a provisional tag `(session, module, call)` in
`Node.metadata`. Whether that call was a time step is decided later, when the graph is
walked: a hand-written cell is only recognised on its *second* call (its output comes back
as its input), and a module that turns out to wrap a cell is a container, not a step. Lazy
resolution makes both decisions retroactive for free, and the tracer never holds a node.

Each step module numbers its own steps from 0. Stacked cells called once per time step
(layer 1, then layer 2) therefore give the same index to the same time step, which is what
the horizon walk needs to count a time step once. "Steps consumed" is the largest count.
"""

from __future__ import annotations

import bisect
import itertools
import sys
import threading
import traceback
import weakref
from array import array
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Literal

import torch
from torch import nn

from tbptt_lint.tracer.saved_hooks import SavedHooksWatch
from tbptt_lint.tracer.torch_state import compiling, in_backward, is_fake, run_uncompiled

TAG_KEY = "tbptt_lint"
# How deep to look into nested args/outputs for tensors, and how many to keep.
_MAX_DEPTH = 3
_MAX_TENSORS = 16
# How a module counts time steps: a sequence module (T steps a call), a cell (one step a call),
# a module that may be a step until its output comes back as its input, one the user named,
# or a container of step modules. Written as it is into the report.
ModuleKind = Literal["sequence", "cell", "candidate", "explicit", "container"]


def flat_tensors(
    obj: Any, depth: int = 0, out: list[torch.Tensor] | None = None
) -> list[torch.Tensor]:
    """Tensors inside args/outputs (tuples, lists, dicts, PackedSequence), bounded."""
    if out is None:
        out = []
    if len(out) >= _MAX_TENSORS:
        return out
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, nn.utils.rnn.PackedSequence):
        out.append(obj.data)
    elif depth < _MAX_DEPTH:
        if isinstance(obj, (tuple, list)):
            for item in obj:
                flat_tensors(item, depth + 1, out)
        elif isinstance(obj, dict):
            for item in obj.values():
                flat_tensors(item, depth + 1, out)
        elif hasattr(obj, "__dict__") and not isinstance(obj, nn.Module):
            # Small state objects (`state.h`, `state.c`) carry tensors as attributes.
            for item in vars(obj).values():
                if isinstance(item, torch.Tensor):
                    flat_tensors(item, depth + 1, out)
    return out


@dataclass
class StateLeak:
    """A state part passed into a step module still carries the graph of an earlier window."""

    module: str
    part: str  # "h", "c", "input 1", ...
    step: int  # the step being taken
    from_step: int  # the step whose graph the state still references
    backward_index: int  # the root backward that ended that window
    # The caller's name for the state, where its frame holds it: the tuple passed as the
    # state (`hidden`, `part` then names its element) or the tensor itself (`h`). "" if none.
    variable: str = ""
    container: bool = False  # `variable` names the tuple or list the part is in


def _storages_preserved() -> bool:
    """Whether a storage's Python object lives as long as the storage.

    On torch 2.1.2 it does not: `untyped_storage()` makes a new object at every call, and a
    weak reference to one crashed the process later."""
    t = torch.zeros(1)
    return t.untyped_storage() is t.untyped_storage()


STORAGES_PRESERVED = _storages_preserved()


def storage_holder(t: torch.Tensor) -> Any:
    """What stands for a tensor's storage: the storage where storage objects are preserved
    (it outlives the tensor when the caller keeps `h.detach()`), else the tensor itself (so
    feedback through a detached copy is not seen there). Weakly referenced for outputs."""
    return t.untyped_storage() if STORAGES_PRESERVED else t


def storage_key(obj: Any) -> int | None:
    """Identity of a live storage, from a `storage_holder` (None: gone)."""
    if obj is None:
        return None
    if STORAGES_PRESERVED:
        return id(obj)
    try:
        return obj.untyped_storage().data_ptr() or None  # the tensor is alive: so is its storage
    except Exception:  # noqa: BLE001 - tensors without storage
        return None


class SequenceBits:
    """A set of autograd sequence numbers as a bit array: one bit per node the process ever
    made, where a set of numbers cost about 70 bytes per tagged node for the whole run."""

    __slots__ = ("bits", "large")
    # Numbers past this (AccumulateGrad reports 2**64 - 1) go to a plain set.
    LARGEST_BIT = 1 << 34

    def __init__(self) -> None:
        self.bits = bytearray()
        self.large: set[int] = set()

    def add(self, number: int) -> None:
        if not 0 <= number < self.LARGEST_BIT:
            self.large.add(number)
            return
        byte = number >> 3
        if byte >= len(self.bits):
            self.bits.extend(bytes(max(byte + 1 - len(self.bits), len(self.bits))))
        self.bits[byte] |= 1 << (number & 7)

    def __contains__(self, number: int) -> bool:
        if not 0 <= number < self.LARGEST_BIT:
            return number in self.large
        byte = number >> 3
        return byte < len(self.bits) and bool(self.bits[byte] >> (number & 7) & 1)


@dataclass
class ModuleInfo:
    key: int
    name: str
    ref: weakref.ref[nn.Module]
    kind: ModuleKind
    confirmed: bool = False  # a candidate whose output came back as its input
    calls: int = 0
    steps: int = 0
    # Sequence modules: start step of each call (cells: call i is step i).
    starts: array[int] = field(default_factory=lambda: array("q"))
    grad: bytearray = field(default_factory=bytearray)  # grad enabled, per call
    last_out: list[weakref.ref[torch.Tensor]] = field(default_factory=list)  # see storage_holder
    steps_at_backward: int = 0  # own step count at the last root backward
    # Counted modules: the state the last call returned (held until the next call, so that
    # no new tensor can take its address; let go of by `StepTracker.close`), and the first
    # step of every call given a state made anew (`StepTracker._made_anew`: a sequence may
    # start there).
    state_out: tuple[torch.Tensor, ...] = ()
    fresh: array[int] = field(default_factory=lambda: array("q"))

    @property
    def counted(self) -> bool:
        if self.kind == "container":
            return False
        return self.kind in ("sequence", "cell", "explicit") or self.confirmed

    def starts_call(self, step: int) -> bool:
        """Whether one of this module's calls starts at `step`."""
        if self.kind == "sequence" or (self.kind == "explicit" and self.starts):
            at = bisect.bisect_left(self.starts, step)
            return at < len(self.starts) and self.starts[at] == step
        return 0 <= step < self.steps

    def step_range(self, call: int) -> tuple[int, int]:
        if self.kind == "sequence" or (self.kind == "explicit" and self.starts):
            start = self.starts[call]
            end = self.starts[call + 1] if call + 1 < len(self.starts) else self.steps
            return start, max(end - start, 1)
        return call, 1


def returned_state(
    module: nn.Module, output: Any, outputs: list[torch.Tensor]
) -> tuple[torch.Tensor, ...]:
    """The tensors of the state a step module returned: `h_n` (and `c_n`) of a sequence
    module, everything (`outputs`, the tensors of `output`) a cell or hand-written step
    returns."""
    if isinstance(module, nn.RNNBase) and isinstance(output, tuple) and len(output) == 2:
        return tuple(flat_tensors(output[1]))
    return tuple(outputs)


def _storage_address(t: torch.Tensor) -> int:
    try:
        return t.untyped_storage().data_ptr()
    except Exception:  # noqa: BLE001 - tensors without storage
        return 0


def _same_values(state: torch.Tensor, previous: torch.Tensor) -> bool:
    try:
        if state.numel() != previous.numel() or state.numel() == 0:
            return False
        if state.dtype != previous.dtype or state.device != previous.device:
            return False
        return torch.equal(state.reshape(-1), previous.detach().reshape(-1))
    except Exception:  # noqa: BLE001 - fake, meta or sparse tensors: no values to compare
        return False


def first_tensor(obj: Any) -> torch.Tensor | None:
    """The first tensor in a module's output, if any."""
    found = flat_tensors(obj)
    return found[0] if found else None


def compiled_module(module: nn.Module) -> nn.Module | None:
    """The module that a torch.compile wrapper (`OptimizedModule`) runs, or None."""
    if type(module).__name__ != "OptimizedModule":
        return None
    inner = module.__dict__.get("_orig_mod") or module._modules.get("_orig_mod")
    return inner if isinstance(inner, nn.Module) else None


def stepping_module(module: nn.Module) -> nn.Module:
    """The module whose calls are the steps: the compiled one behind a torch.compile wrapper."""
    return compiled_module(module) or module


def sequence_length(module: nn.RNNBase, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """T of one nn.RNN/LSTM/GRU call: the time axis per batch_first, or the longest packed
    length."""
    x = args[0] if args else kwargs.get("input")
    if isinstance(x, nn.utils.rnn.PackedSequence):
        return int(x.batch_sizes.numel())
    if not isinstance(x, torch.Tensor):
        return 1
    if x.dim() == 2:  # unbatched (T, features)
        return int(x.shape[0])
    return int(x.shape[1] if module.batch_first else x.shape[0])


def _state_parts(
    module: nn.Module,  # noqa: ARG001 - the signature of _state_inputs, which reads it
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> list[tuple[str, torch.Tensor]]:
    """The carried state a known recurrent module received, by part name."""
    hx = args[1] if len(args) > 1 else kwargs.get("hx")
    if hx is None:
        return []
    if isinstance(hx, torch.Tensor):
        return [("h", hx)]
    if isinstance(hx, (tuple, list)):
        names = ("h", "c") if len(hx) == 2 else tuple(f"state[{i}]" for i in range(len(hx)))
        return [(n, t) for n, t in zip(names, hx, strict=False) if isinstance(t, torch.Tensor)]
    return []


def _state_inputs(
    module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[tuple[str, torch.Tensor]]:
    """The state a step module was given, by part name: `hx` of a torch.nn recurrent module,
    every input tensor of any other."""
    if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        return _state_parts(module, args, kwargs)
    return [(f"input {i}", t) for i, t in enumerate(flat_tensors((args, kwargs)))]


class StepTracker:
    """Forward hooks that count steps. Thread-safe; hooks are removed by `close()`."""

    def __init__(
        self,
        session_id: int,
        model: nn.Module | None,
        step_modules: list[nn.Module] | None,
        backward_index: Any,
    ) -> None:
        self.session_id = session_id
        self.model = model
        self.explicit = {id(m) for m in step_modules} if step_modules else None
        # Keys are handed out once: a module's id() and a thread's ident are reused once
        # theirs is gone, and a count carried under a reused key reads as a negative stride.
        self.modules: dict[int, ModuleInfo] = {}
        self._by_id: dict[int, ModuleInfo] = {}  # id(module) -> its info, checked by weakref
        self._next_key = itertools.count(1)
        self.leaks: list[StateLeak] = []
        self.saved_hooks_seen = False
        self._saved_hooks = SavedHooksWatch()
        self.errors: list[str] = []  # tracebacks of the tracer's own failures in hooks
        # Changes whenever a module starts or stops counting as a step, which changes what
        # earlier snapshots of the counts mean (see Trace._refresh_steps).
        self.counted_version = 0
        # Sequence numbers of the nodes tagged; see resolve_node.
        self.tagged = SequenceBits()
        self._seq_nr_ok = True  # False on a torch whose nodes lack _sequence_nr()
        self._backward_index = backward_index  # callable: index of the last root backward
        self._lock = threading.RLock()
        self._local = threading.local()
        self._handles: list[Any] = []
        self._names: dict[int, str] = {}
        if model is not None:
            self._names = {id(m): (n or type(m).__name__) for n, m in model.named_modules()}

    # ----- lifecycle -----
    def install(self) -> None:
        self._saved_hooks.install()
        if self.model is None:
            self._install_global()
            return
        targets = list(self.model.modules())
        if self.explicit is not None:
            known = {id(m) for m in targets}
            for m in self._explicit_modules():
                if id(m) not in known:
                    targets.append(m)
        unhookable: set[int] = set()
        for m in targets:
            try:
                self._handles.append(m.register_forward_pre_hook(self._pre))
            except RuntimeError:  # a scripted module (torch.jit.script) takes no hooks
                unhookable.add(id(m))
                continue
            # No always_call: torch calls such hooks without the output when forward raises,
            # and warns. A forward that raised leaves its module on the stack; the next
            # post-hook of an enclosing module pops past it.
            self._handles.append(m.register_forward_hook(self._post, with_kwargs=True))
        if unhookable:
            # Called from Python, a scripted module still runs the global hooks.
            self._install_global(only=unhookable)

    def _install_global(self, only: set[int] | None = None) -> None:
        from torch.nn.modules import module as module_mod

        pre, post = self._pre, self._post
        if only is not None:

            @run_uncompiled
            def pre(module: nn.Module, args: Any) -> None:
                if id(module) in only:
                    self._pre(module, args)

            @run_uncompiled
            def post(module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
                if id(module) in only:
                    self._post(module, args, kwargs, output)

        self._handles.append(module_mod.register_module_forward_pre_hook(pre))
        try:
            handle = module_mod.register_module_forward_hook(post, with_kwargs=True)
        except TypeError:  # older torch: positional inputs only
            handle = module_mod.register_module_forward_hook(lambda m, a, o: post(m, a, {}, o))
        self._handles.append(handle)

    def _explicit_modules(self) -> list[nn.Module]:
        return [m for m in (info.ref() for info in self.modules.values()) if m is not None]

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._saved_hooks.uninstall()
        with self._lock:
            for info in self.modules.values():
                info.state_out = ()  # held only while the trace runs

    # ----- queries -----
    def resolve_node(self, node: Any) -> tuple[int, int] | None:
        """Step range of a node this tracker tagged, or None.

        A bit per sequence number says which nodes may carry a tag, so that `metadata` is not
        read on the others: reading it creates a dict on every node. Sequence numbers count per
        thread, so a node of another thread may share a tagged node's number: its metadata is
        then read and holds no tag, which costs time, never a wrong answer.
        """
        if self._seq_nr_ok and node._sequence_nr() not in self.tagged:
            return None
        meta = node.metadata
        return self.resolve(meta) if meta else None

    def tagged_filter(self) -> SequenceBits | None:
        """The sequence numbers `resolve_node` may tag, for the walk to test inline."""
        return self.tagged if self._seq_nr_ok else None

    def resolve(self, meta: dict[str, Any]) -> tuple[int, int] | None:
        """Step range of a tagged node, or None if none of its tags is a counted step."""
        entries = meta.get(TAG_KEY)
        if not entries:
            return None
        for sid, key, call in entries:
            if sid != self.session_id:
                continue
            info = self.modules.get(key)
            if info is not None and info.counted:
                return info.step_range(call)
        return None

    def counts(self) -> tuple[tuple[int, int], ...]:
        """Per module: (key, steps so far), sorted. The snapshot a backward call keeps (a
        tuple: a long run keeps one per backward).

        Only modules this thread ran, so that independent loops in threads keep their own
        strides; all modules when this thread ran none (forward in another thread).
        """
        mine = getattr(self._local, "keys", None)
        with self._lock:
            if mine:
                pairs = ((k, self.modules[k].steps) for k in mine)
            else:
                pairs = ((k, m.steps) for k, m in self.modules.items())
            return tuple(sorted((k, n) for k, n in pairs if n))

    def fresh_starts(self) -> set[int]:
        """Steps where a sequence starts: some counted module was given a state made anew
        there (first steps included), and every counted module with a call starting there
        was (a stacked layer whose state is carried on keeps the sequence going)."""
        with self._lock:
            infos = [info for info in list(self.modules.values()) if info.counted]
            fresh = [{0, *info.fresh} for info in infos]
            return {
                step
                for made in fresh
                for step in made
                if all(
                    step in other or not info.starts_call(step)
                    for info, other in zip(infos, fresh, strict=True)
                )
            }

    def steps_from(self, counts: tuple[tuple[int, int], ...]) -> tuple[int, frozenset[int]]:
        """Steps consumed at a snapshot, and the step modules it counted, judged with what is
        known *now* about each module."""
        total = 0
        keys = []
        for key, n in counts:
            info = self.modules.get(key)
            if info is not None and info.counted:
                keys.append(key)
                if n > total:
                    total = n
        return total, frozenset(keys)

    def note_root_backward(self) -> None:
        with self._lock:
            for info in self.modules.values():
                info.steps_at_backward = info.steps

    # ----- hooks -----
    def _running(self) -> list[RunningForward]:
        # Forwards running in this thread, outermost first, as pushed and popped by the hooks.
        # Strong references only for the duration of their own forward.
        running = getattr(self._local, "stack", None)
        if running is None:
            running = self._local.stack = []
        return running

    def _stack(self) -> list[nn.Module]:
        """The modules whose forward is running in this thread, outermost first. A forward
        that raised (and was caught), or one that checkpointing stopped early during backward,
        never ran its post-hook: its entry is dropped here once its call has left the Python
        stack, so it is not taken for a module that encloses later calls."""
        running = self._running()
        if running:
            live = _live_calls(running)
            if len(live) != len(running):
                running[:] = live
        return [entry.module for entry in running]

    @run_uncompiled
    def _pre(self, module: nn.Module, args: Any) -> None:  # noqa: ARG002 - a forward pre-hook
        if compiling() or in_backward():
            # Recomputation during backward (checkpointing) is not a step, and a
            # non-reentrant checkpoint stops it by raising inside the forward.
            return
        self._running().append(RunningForward(module, _module_call_frame()))

    @run_uncompiled
    def _post(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        if compiling():
            # torch.compile traces module hooks into its graph; ours must leave nothing
            # there, so steps inside a compiled region are not counted: its backward is an
            # opaque node (CompiledFunctionBackward) instead.
            return
        if in_backward():
            return  # recomputation during backward (checkpointing) is not a new step
        running = self._running()
        # Pop back to this module (a forward that raised may have left others behind).
        while running:
            if running.pop().module is module:
                break
        if is_fake(first_tensor(output)):
            return  # torch 2.1 compiling: run on the compiler's fake tensors, not a step
        try:
            self._record(module, args if isinstance(args, tuple) else (args,), kwargs or {}, output)
        except Exception:  # noqa: BLE001 - the tracer must never break the user's forward
            if len(self.errors) < 20:
                self.errors.append(traceback.format_exc())

    def module_info(self, module: nn.Module) -> ModuleInfo:
        """The record of `module`, made on its first call (or when it is named as a step)."""
        info = self.known(module)
        if info is None:
            info = ModuleInfo(
                next(self._next_key),
                self._name_of(module),
                weakref.ref(module),
                self._kind_of(module),
            )
            self.modules[info.key] = info
            self._by_id[id(module)] = info
        return info

    def known(self, module: nn.Module) -> ModuleInfo | None:
        """This module's info, if it ran (or was named) while tracing."""
        info = self._by_id.get(id(module))
        return info if info is not None and info.ref() is module else None

    def _kind_of(self, module: nn.Module) -> ModuleKind:
        # A torch.compile wrapper runs its module out of sight of the hooks: it steps as
        # that module does, and where that module contains recurrent modules, its calls
        # hide an unknown number of steps (an opaque region, not a step).
        inner = compiled_module(module)
        target = stepping_module(module)
        if self.explicit is not None:
            if id(module) in self.explicit or id(target) in self.explicit:
                return "sequence" if isinstance(target, nn.RNNBase) else "explicit"
            return "container"  # only the named modules are steps
        if isinstance(target, nn.RNNBase):
            return "sequence"
        if isinstance(target, nn.RNNCellBase):
            return "cell"
        fx = sys.modules.get("torch.fx")
        if fx is not None and isinstance(target, fx.GraphModule):
            return "container"  # a compiler's graph, run inside a compiled region
        compiled = (
            inner is not None
            or getattr(module, "_compiled_call_impl", None) is not None  # model.compile()
            or any(compiled_module(outer) is module for outer in self._stack())
        )
        if compiled and any(isinstance(m, (nn.RNNBase, nn.RNNCellBase)) for m in target.modules()):
            return "container"
        return "candidate"

    def _name_of(self, module: nn.Module) -> str:
        name = self._names.get(id(module))
        if name:
            return name
        inner = compiled_module(module)
        if inner is not None:
            return f"{self._name_of(inner)} (compiled)"
        # Global hooks: find the module under the outermost module now running.
        for parent in self._stack()[:1]:
            for qual, sub in parent.named_modules():
                # A compiled model's own names, without its wrapper's attribute.
                qual = ".".join(part for part in qual.split(".") if part != "_orig_mod")
                if sub is module and qual:
                    return qual
        return type(module).__name__

    def _record(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
    ) -> None:
        if self._saved_hooks.active():
            self.saved_hooks_seen = True
        with self._lock:
            info = self.module_info(module)
            if info.kind == "container":
                return
            keys = getattr(self._local, "keys", None)
            if keys is None:
                keys = self._local.keys = set()
            keys.add(info.key)
            just_confirmed = (
                info.kind == "candidate"
                and not info.confirmed
                and self._feeds_back(info, args, kwargs)
            )
            if just_confirmed:
                info.confirmed = True
                self.counted_version += 1
                self._mark_enclosing_containers()
            start = info.steps
            call = info.calls
            info.calls += 1
            info.grad.append(1 if torch.is_grad_enabled() else 0)
            if info.kind == "sequence":
                info.starts.append(info.steps)
                info.steps += sequence_length(stepping_module(module), args, kwargs)  # type: ignore[arg-type]
            else:
                info.steps += 1
            outputs = flat_tensors(output)
            if info.kind in ("candidate",):
                info.last_out = [weakref.ref(storage_holder(t)) for t in outputs]
            if info.counted:
                self._mark_enclosing_containers()
                target = stepping_module(module)
                parts = _state_inputs(target, args, kwargs)
                self._inspect_state(info, parts, args, kwargs)
                if not just_confirmed and self._made_anew(parts, info.state_out):
                    info.fresh.append(start)
                info.state_out = returned_state(target, output, outputs)
            entry = (self.session_id, info.key, call)
            for t in outputs:
                fn = t.grad_fn
                if fn is not None:
                    try:
                        self.tagged.add(fn._sequence_nr())
                    except AttributeError:
                        self._seq_nr_ok = False
                    meta: dict[str, Any] = fn.metadata  # type: ignore[assignment]  # a property
                    tags = meta.get(TAG_KEY)
                    if tags is None:
                        meta[TAG_KEY] = [entry]
                    elif entry not in tags:
                        tags.append(entry)

    def _feeds_back(self, info: ModuleInfo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """True when an input shares storage with this module's previous output (h = cell(x, h),
        also after `h.detach()`, which keeps the storage)."""
        if not info.last_out:
            return False
        previous = {key for key in (storage_key(ref()) for ref in info.last_out) if key}
        if not previous:
            return False
        for t in flat_tensors((args, kwargs)):
            try:
                if storage_key(storage_holder(t)) in previous:
                    return True
            except Exception:  # noqa: BLE001 - tensors without storage
                continue
        return False

    def _mark_enclosing_containers(self) -> None:
        """A module whose forward runs a step is a container, not a step itself."""
        for module in self._stack():
            outer = self.module_info(module)
            if outer.kind == "candidate":
                outer.kind = "container"
                outer.confirmed = False
                self.counted_version += 1

    def _made_anew(
        self, parts: list[tuple[str, torch.Tensor]], previous: tuple[torch.Tensor, ...]
    ) -> bool:
        """Whether the state a step was given starts a sequence: none of it is carried on from
        a step, through a graph (also another module's: a decoder started from an encoder),
        cut (`detach()`, `.data`, `detach_()` keep the storage of `previous`, the state the
        module returned last time, held meanwhile so that no new tensor takes its address) or
        copied (`clone()`, a slice of a stack: the same values elsewhere). A learned initial
        state (`h0.expand(...)`) or an input such as an embedding is not carried."""
        # Cheapest first: the state returned last time, passed back as it is (most steps).
        if any(t is p for _, t in parts for p in previous):
            return False
        addresses = {_storage_address(t) for t in previous} - {0}
        if any(_storage_address(t) in addresses for _, t in parts):
            return False
        graphs = [t.grad_fn for _, t in parts if t.grad_fn is not None]
        if any(_find_tag(fn, self, budget=8) is not None for fn in graphs):
            return False
        # Only here, at most once a window (a new state, or a copy): comparing values waits for
        # the device, where the checks above never do.
        return not any(_same_values(t, p) for _, t in parts if t.grad_fn is None for p in previous)

    def _inspect_state(
        self,
        info: ModuleInfo,
        parts: list[tuple[str, torch.Tensor]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        """Record which part of the carried state still references a window already backpropped."""
        limit = info.steps_at_backward
        if limit == 0 or len(self.leaks) > 200:
            return
        current = info.step_range(info.calls - 1)[0]  # the step the state is passed into
        for part, t in parts:
            fn = t.grad_fn
            if fn is None:
                continue
            tag = _find_tag(fn, self)
            if tag is not None and tag[0] < limit and info.calls - 1 >= 0:
                # Only here, for a leak (rare, and at most 200): the caller's name for it.
                variable, container = caller_name(t, args[1:] + tuple(kwargs.values()))
                self.leaks.append(
                    StateLeak(
                        info.name,
                        part,
                        current,
                        tag[0] + tag[1] - 1,
                        self._backward_index(),
                        variable,
                        container,
                    )
                )


_OWN_MODULES = ("torch", "tbptt_lint")


def _own_frame(module_name: str) -> bool:
    return any(module_name == own or module_name.startswith(own + ".") for own in _OWN_MODULES)


def caller_name(tensor: torch.Tensor, passed: tuple[Any, ...]) -> tuple[str, bool]:
    """The name the user's code gives a state part: in the nearest frame outside torch and
    this package (the line that called the module), a local holding one of the containers
    `passed` with `tensor` in it (`hidden`, True), else one holding `tensor` (`h`, False).
    ("", False) where no local does, as for a state built in the call, `(h.detach(), c)`."""
    containers = [
        arg
        for arg in passed
        if isinstance(arg, (tuple, list)) and any(item is tensor for item in arg)
    ]
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and _own_frame(str(frame.f_globals.get("__name__", ""))):
        frame = frame.f_back
    if frame is None:
        return "", False
    try:
        names = list(frame.f_locals.items())
    except Exception:  # noqa: BLE001 - an odd frame must never break a run
        return "", False
    finally:
        del frame
    for name, value in names:
        if any(value is arg for arg in containers) and not name.startswith("."):
            return name, True
    for name, value in names:
        if value is tensor and not name.startswith("."):
            return name, False
    return "", False


def _find_tag(fn: Any, tracker: StepTracker, budget: int = 24) -> tuple[int, int] | None:
    """The nearest step tag at or below `fn`, looking at a handful of nodes only."""
    queue = [fn]
    seen = 0
    while queue and seen < budget:
        node = queue.pop(0)
        seen += 1
        tag = tracker.resolve_node(node)
        if tag is not None:
            return tag
        queue.extend(child for child, _ in node.next_functions if child is not None)
    return None


@dataclass(slots=True)
class RunningForward:
    module: nn.Module
    # The frame of torch's `Module._call_impl` for this call: alive exactly while the forward
    # runs. None when it was not found (an unknown torch build): the entry is then trusted.
    frame: FrameType | None


def _module_call_frame() -> FrameType | None:
    """The nearest `_call_impl` frame above the hook: the module call the hook belongs to."""
    frame: FrameType | None = sys._getframe(2)
    for _ in range(8):
        if frame is None:
            return None
        if frame.f_code.co_name == "_call_impl":
            return frame
        frame = frame.f_back
    return None


def _live_calls(running: list[RunningForward]) -> list[RunningForward]:
    """The entries whose module call is still on this thread's Python stack. Each entry holds
    its frame, so a frame on the stack now with the same identity is that very call."""
    on_stack: set[int] = set()
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        on_stack.add(id(frame))
        frame = frame.f_back
    return [entry for entry in running if entry.frame is None or id(entry.frame) in on_stack]
