"""What torch is doing right now, as the tracer's hooks need to know it."""

from __future__ import annotations

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
            return probe
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
