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
    kind: str  # "nn.LSTM", "nn.GRU", "nn.RNN"
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
        return f"{self.module} ({self.kind}): {', '.join(parts)}"


def step_groups(tracker: StepTracker, starts: Iterable[int]) -> dict[int, StepGroup]:
    """start step -> the sequence-module call that starts there, for the given starts."""
    from torch import nn

    from tbptt_lint.tracer.steps import stepping_module

    wanted = set(starts)
    found: dict[int, StepGroup] = {}
    for info in list(tracker.modules.values()):
        if info.kind != "sequence" or not wanted:
            continue
        module = info.ref()
        if module is None:
            continue
        rnn = stepping_module(module)
        if not isinstance(rnn, nn.RNNBase):
            continue
        starts_of = info.starts
        for start in sorted(wanted):
            at = bisect.bisect_left(starts_of, start)
            if at >= len(starts_of) or starts_of[at] != start:
                continue
            _, steps = info.step_range(at)
            found[start] = StepGroup(
                module=info.name,
                kind=f"nn.{type(rnn).__name__}"
                if type(rnn).__module__.startswith("torch")
                else type(rnn).__name__,
                steps=steps,
                layers=int(rnn.num_layers),
                directions=2 if rnn.bidirectional else 1,
                state="h, c" if isinstance(rnn, nn.LSTM) else "h",
            )
        wanted -= found.keys()
    return found
