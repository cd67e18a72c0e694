"""What each step cluster of the node-by-node graph holds: for a sequence-module call (nn.LSTM
fed a window), its steps, its layers and the parts of its state, read from the module while the
graph is drawn. The graph alone cannot say it: an nn.LSTM call is one autograd node per layer
on the CPU and one for all layers under cuDNN, and nn.GRU/nn.RNN on the CPU are plain ops."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tbptt_lint.tracer.steps import StepTracker


@dataclass(frozen=True)
class StepGroup:
    module: str  # the module's name in the model ("rnn") or its class name
    kind: str  # the module's class: "nn.LSTM", "nn.GRUCell", or the name of a user class
    steps: int  # time steps the call holds
    layers: int = 1
    directions: int = 1
    state: str = "h"  # the carried state's parts: "h" or "h, c"

    def describe(self) -> str:
        """'rnn (nn.LSTM): 5 steps, 2 layers' for the cluster label."""
        parts = [f"{self.steps} step{'s' if self.steps != 1 else ''}"]
        if self.layers != 1:
            parts.append(f"{self.layers} layers")
        if self.directions == 2:
            parts.append("bidirectional")
        # trace(rnn) names the module by its class: "nn.LSTM", not "LSTM (nn.LSTM)".
        who = (
            self.kind
            if self.kind.removeprefix("nn.") == self.module
            else (f"{self.module} ({self.kind})")
        )
        return f"{who}: {', '.join(parts)}"


def _kind_name(module: object) -> str:
    cls = type(module)
    return f"nn.{cls.__name__}" if cls.__module__.startswith("torch.") else cls.__name__


def _state_words(module: object) -> str:
    from torch import nn

    if isinstance(module, (nn.LSTM, nn.LSTMCell)):
        return "h, c"
    if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        return "h"
    return "state"


def step_groups(tracker: StepTracker, starts: Iterable[int]) -> dict[int, StepGroup]:
    """start step -> what the step module whose call starts there is: a sequence-module call
    (its steps, layers), else the cell that took the step (for the words of its state)."""
    from torch import nn

    from tbptt_lint.tracer.steps import stepping_module

    wanted = set(starts)
    found: dict[int, StepGroup] = {}
    infos = [info for info in list(tracker.modules.values()) if info.counted]
    # Sequence modules first: a step they hold is drawn as their call.
    infos.sort(key=lambda info: info.kind != "sequence")
    for info in infos:
        if not wanted:
            break
        module = info.ref()
        if module is None:
            continue
        target = stepping_module(module)
        for start in sorted(wanted):
            if not info.starts_call(start):
                continue
            if isinstance(target, nn.RNNBase) and info.kind == "sequence":
                _, steps = info.step_range(bisect.bisect_left(info.starts, start))
                found[start] = StepGroup(
                    module=info.name,
                    kind=_kind_name(target),
                    steps=steps,
                    layers=int(target.num_layers),
                    directions=2 if target.bidirectional else 1,
                    state=_state_words(target),
                )
            elif info.kind != "sequence":
                found[start] = StepGroup(
                    info.name, _kind_name(target), 1, state=_state_words(target)
                )
        wanted -= found.keys()
    return found
