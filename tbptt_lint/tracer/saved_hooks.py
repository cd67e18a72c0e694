"""Whether saved-tensor hooks (non-reentrant checkpointing, offloading) are active right now.

The walk reads saved tensors to count their bytes, and reading one runs its unpack hook: for
non-reentrant checkpointing that recomputes the forward. So where hooks were active, bytes
are not counted. torch 2.3 and later say which hooks are on top; before that, entering and
leaving `torch.autograd.graph.saved_tensors_hooks` (which checkpointing and `save_on_cpu`
subclass) is counted per thread while a trace runs.
"""

from __future__ import annotations

import threading
from typing import Any

import torch


class SavedHooksWatch:
    def __init__(self) -> None:
        self._top = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)
        self._local = threading.local()
        self._original: tuple[Any, Any] | None = None

    def install(self) -> None:
        if self._top is not None:
            return
        hooks_cls: Any = torch.autograd.graph.saved_tensors_hooks  # its methods are patched
        enter, leave = hooks_cls.__enter__, hooks_cls.__exit__
        local = self._local

        def counted_enter(hooks: Any) -> Any:
            result = enter(hooks)
            local.depth = getattr(local, "depth", 0) + 1
            return result

        def counted_exit(hooks: Any, *exc: Any) -> Any:
            local.depth = max(getattr(local, "depth", 0) - 1, 0)
            return leave(hooks, *exc)

        self._original = (enter, leave)
        hooks_cls.__enter__ = counted_enter
        hooks_cls.__exit__ = counted_exit

    def uninstall(self) -> None:
        if self._original is not None:
            hooks_cls: Any = torch.autograd.graph.saved_tensors_hooks  # its methods are patched
            hooks_cls.__enter__, hooks_cls.__exit__ = self._original
            self._original = None

    def active(self) -> bool:
        if self._top is not None:
            return self._top(False) is not None
        return getattr(self._local, "depth", 0) > 0
