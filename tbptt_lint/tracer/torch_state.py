"""What torch is doing right now, as the tracer's hooks need to know it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch


def in_backward() -> bool:
    """True inside a running backward (a reentrant backward, possibly in an engine thread)."""
    getter = getattr(torch._C, "_current_graph_task_id", None)
    return getter is not None and getter() != -1


def _compiling_probe() -> Callable[[], bool]:
    for owner, name in (
        (getattr(torch, "compiler", None), "is_compiling"),  # torch 2.3+
        (torch._utils, "is_compiling"),
    ):
        probe = getattr(owner, name, None)
        if probe is not None:
            found: Callable[[], bool] = probe
            return found
    return lambda: False


# True while torch.compile or torch.export traces a function: the forward and backward it
# runs then are on fake tensors, not the user's training. Dynamo evaluates the probe as a
# constant, so a hook that returns on it is traced as empty (no graph break, no guard on
# tracer state).
compiling: Callable[[], bool] = _compiling_probe()


_PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)


def is_fake(value: Any) -> bool:
    """True for a tensor without data that a compiler traces with (a FakeTensor, also behind
    functionalization). Older torch (2.1) runs module hooks on them while compiling."""
    if not isinstance(value, torch.Tensor):
        return False
    if type(value) in _PLAIN_TENSORS and not torch._is_functional_tensor(value):
        return False  # the common case, without the import and the unwrapping below
    try:
        from torch._subclasses.fake_tensor import is_fake as torch_is_fake

        return bool(torch_is_fake(value))
    except Exception:  # noqa: BLE001 - an odd subclass is a real tensor to the tracer
        return False


def _frame_skipper() -> Callable[[Any], None] | None:
    """Marks a code object so that torch.compile never compiles frames of it, or of what it
    calls (from torch's C extension: no import of torch._dynamo, which takes about a second)."""
    frames = getattr(getattr(torch._C, "_dynamo", None), "eval_frame", None)
    if frames is None:
        return None
    set_strategy = getattr(frames, "set_code_exec_strategy", None)
    action = getattr(frames, "_FrameAction", None)
    strategy = getattr(frames, "_FrameExecStrategy", None)
    if set_strategy is not None and action is not None and strategy is not None:
        skip_all = strategy(action.SKIP, action.SKIP)
        return lambda code: set_strategy(code, skip_all)
    return getattr(frames, "skip_code", None)  # torch 2.1: skips that frame


_skip_frames = _frame_skipper()


def run_uncompiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """Lets `function` (a hook) run as written when compiled code calls it as a frame of its
    own: where dynamo skips the caller (torch.nn's own modules under `module.compile()`), it
    would otherwise compile the hook, and `compiling()` makes that a no-op. Inlined into a
    graph, the hook is still traced (to nothing)."""
    code = getattr(function, "__code__", None)
    if _skip_frames is not None and code is not None:
        with contextlib.suppress(Exception):  # an unknown torch build: hooks as before
            _skip_frames(code)
    return function


# Dispatch modes under which tensors hold no data: a compiler tracing a graph (AOT autograd
# differentiates the forward to build the backward: torch 2.6 does it on FunctionalTensors
# that `is_fake` does not recognise, with `is_compiling()` False).
_TRACING_MODES = frozenset({"FakeTensorMode", "ProxyTorchDispatchMode"})
try:
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack
except ImportError:  # a torch without the private helper: no mode is seen
    _get_current_dispatch_mode_stack = list


def compiler_backward(outputs: Any) -> bool:
    """True for a backward a compiler runs to build its own backward graph (on fake tensors,
    while compiling or under a tracing dispatch mode): not the user's training."""
    first = outputs[0] if isinstance(outputs, (tuple, list)) and outputs else outputs
    if compiling() or is_fake(first):
        return True
    return any(type(mode).__name__ in _TRACING_MODES for mode in _get_current_dispatch_mode_stack())
