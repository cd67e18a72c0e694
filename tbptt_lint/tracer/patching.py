"""Intercept every backward before the autograd engine runs (and frees) its graph.

`Tensor.backward`, `torch.autograd.backward` and `torch.autograd.grad` all end in the
private `torch.autograd.graph._engine_run_backward` (torch 2.3+), which `torch.autograd`
re-imports under the same name; patching both names catches a `backward` imported before
tracing began too. That function is private, so where it is missing (older torch) the engine
object those entry points call, `Variable._execution_engine`, is replaced by a proxy whose
`run_backward` takes the same arguments; where even that is missing the public entry points
are wrapped. Either way a thread-local depth plus the engine's current graph task make
nested calls (reentrant checkpointing, a backward inside a custom Function's backward,
`torch.set_default_device` re-entering `Tensor.backward`) count once.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import torch

from tbptt_lint.tracer.torch_state import compiler_backward, in_backward

# on_backward(outputs, grad_tensors, kwargs_of_engine_call, run) -> result of run()
Handler = Callable[[Any, Any, dict[str, Any], Callable[[], Any]], Any]


def _engine_owner() -> Any:
    """The class whose `_execution_engine` the autograd entry points call, if it has one."""
    try:
        from torch.autograd.variable import Variable
    except ImportError:
        return None
    engine = getattr(Variable, "_execution_engine", None)
    return Variable if callable(getattr(engine, "run_backward", None)) else None


class _EngineProxy:
    """Stands in for the autograd engine object: `run_backward` intercepted, the rest as is."""

    def __init__(self, engine: Any, run_backward: Callable[..., Any]) -> None:
        self._engine = engine
        self.run_backward = run_backward

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class BackwardInterceptor:
    """Installs wrappers; `uninstall()` puts the exact originals back."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._saved: list[tuple[Any, str, Any]] = []  # (owner, attribute, original)
        self.mode = "none"
        self.active = False
        # Depth per interceptor and thread: nested traces each see a backward once.
        self._local = threading.local()

    def _passes_through(self, outputs: Any) -> bool:
        """Not a backward to record: not tracing, nested in one already seen, or a compiler's."""
        return (
            not self.active
            or getattr(self._local, "depth", 0) > 0
            or in_backward()
            or compiler_backward(outputs)
        )

    def install(self) -> None:
        graph_mod = torch.autograd.graph
        autograd_mod = torch.autograd
        original = getattr(graph_mod, "_engine_run_backward", None)
        if callable(original):
            wrapper = self._wrap_engine(original)
            self._patch(graph_mod, "_engine_run_backward", wrapper)
            if getattr(autograd_mod, "_engine_run_backward", None) is not None:
                self._patch(autograd_mod, "_engine_run_backward", wrapper)
            self.mode = "engine"
        elif (owner := _engine_owner()) is not None:
            engine = owner._execution_engine
            self._patch(
                owner,
                "_execution_engine",
                _EngineProxy(engine, self._wrap_engine(engine.run_backward)),
            )
            self.mode = "engine-object"
        else:
            self._patch(torch.Tensor, "backward", self._wrap_public(torch.Tensor.backward, True))
            self._patch(autograd_mod, "backward", self._wrap_public(autograd_mod.backward, True))
            self._patch(autograd_mod, "grad", self._wrap_public(autograd_mod.grad, False))
            self.mode = "public"
        self.active = True

    def uninstall(self) -> None:
        self.active = False
        for owner, attr, original in reversed(self._saved):
            setattr(owner, attr, original)
        self._saved.clear()

    def _patch(self, owner: Any, attr: str, replacement: Any) -> None:
        self._saved.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, replacement)

    def _wrap_engine(self, original: Callable[..., Any]) -> Callable[..., Any]:
        handler = self._handler
        interceptor = self

        @functools.wraps(original)
        def _engine_run_backward(t_outputs: Any, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True  # pytest: a failing backward shows the user's frames
            if interceptor._passes_through(t_outputs):
                return original(t_outputs, *args, **kwargs)
            grad_tensors = args[0] if args else kwargs.get("grad_tensors")
            info = {
                "accumulate_grad": kwargs.get("accumulate_grad", True),
                "create_graph": args[2] if len(args) > 2 else kwargs.get("create_graph", False),
            }
            local = interceptor._local
            local.depth = getattr(local, "depth", 0) + 1
            try:
                # A partial, not a lambda: no frame of ours between the engine and the user.
                run = functools.partial(original, t_outputs, *args, **kwargs)
                return handler(t_outputs, grad_tensors, info, run)
            finally:
                local.depth -= 1

        return _engine_run_backward

    def _wrap_public(self, original: Callable[..., Any], accumulate: bool) -> Callable[..., Any]:
        handler = self._handler
        interceptor = self

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            outputs = args[0] if args else kwargs.get("tensors", kwargs.get("outputs"))
            if interceptor._passes_through(outputs):
                return original(*args, **kwargs)
            grads = kwargs.get("gradient", kwargs.get("grad_tensors", kwargs.get("grad_outputs")))
            if grads is None and len(args) > (2 if not accumulate else 1):
                grads = args[2] if not accumulate else args[1]
            info = {
                "accumulate_grad": accumulate,
                "create_graph": kwargs.get("create_graph", False),
            }
            local = interceptor._local
            local.depth = getattr(local, "depth", 0) + 1
            try:
                return handler(outputs, grads, info, functools.partial(original, *args, **kwargs))
            finally:
                local.depth -= 1

        return wrapper
