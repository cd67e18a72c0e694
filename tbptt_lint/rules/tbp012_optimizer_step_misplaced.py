"""TBP012 optimizer-step-misplaced: `zero_grad()` and `step()` sit at different loop levels."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from tbptt_lint.analysis.events import OptimizerCall, UnitEvents
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule

GRADIENT_CLEARING = ("zero_grad", ".grad = None", "grad.zero_", "grad.data.zero_", "set_to_none")


class OptimizerStepMisplaced(Rule):
    """`zero_grad()` and `step()` sit at different loop levels, so gradients are lost or never
    cleared.

    With `zero_grad()` inside the window loop and `step()` after it, each window wipes the
    gradient of the one before, and the single update uses only the last window. With
    `step()` inside the window loop and no `zero_grad()` anywhere, gradients pile up across all
    windows and every update applies the sum of all of them. Accumulate-then-step (one
    `zero_grad()` before the loop, one `step()` after it) is correct.
    """

    code = "TBP012"
    name = "optimizer-step-misplaced"
    severity = Severity.ERROR

    INVALID = (
        """
hidden = model.init_hidden(8)
for i in range(0, 100, 10):
    optimizer.zero_grad()
    hidden = hidden.detach()
    out, hidden = model(x[i:i + 10], hidden)
    criterion(out, y[i:i + 10]).backward()
optimizer.step()
""",
    )
    VALID = (
        """
hidden = model.init_hidden(8)
optimizer.zero_grad()
for i in range(0, 100, 10):
    hidden = hidden.detach()
    out, hidden = model(x[i:i + 10], hidden)
    criterion(out, y[i:i + 10]).backward()
optimizer.step()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        for unit in model.units:
            # Only loops that carry recurrent state are TBPTT window loops.
            recurrent_loops = {loop for call in unit.recurrent_calls for loop in call.loops}
            optimizers = _optimizer_receivers(model, unit)
            steps = [
                c for c in unit.optimizer_calls if c.method == "step" and c.receiver in optimizers
            ]
            clears = [c for c in unit.optimizer_calls if c.method == "zero_grad"]
            yield from self._zero_grad_inside(model, unit, clears, steps, recurrent_loops)
            if not clears and not _clears_gradients(model, unit.unit):
                yield from self._step_without_zero_grad(model, unit, steps, recurrent_loops)

    def _zero_grad_inside(
        self,
        model: FileModel,
        unit: UnitEvents,
        clears: list[OptimizerCall],
        steps: list[OptimizerCall],
        recurrent_loops: set[cst.CSTNode],
    ) -> Iterator[Finding]:
        for clear in clears:
            for loop in clear.loops:
                if loop not in unit.loops_with_backward or loop not in recurrent_loops:
                    continue
                if any(loop in step.loops for step in steps):
                    continue
                after = [
                    s
                    for s in steps
                    if set(s.loops) <= set(unit.loop_parents.get(loop, ()))
                    and model.line(s.node) > model.span(loop)[2]
                ]
                if not after:
                    continue
                message = (
                    f"`{model.code(clear.node.func)}()` runs on every pass of the loop at line "
                    f"{model.line(loop)}, but `{model.code(after[0].node.func)}()` runs once "
                    f"after it (line {model.line(after[0].node)}): each pass wipes the gradient "
                    "of the one before, so the update uses only the last window. Move "
                    "`zero_grad()` before the loop, or `step()` into it"
                )
                yield model.finding(self.code, clear.node, message)
                break

    def _step_without_zero_grad(
        self,
        model: FileModel,
        unit: UnitEvents,
        steps: list[OptimizerCall],
        recurrent_loops: set[cst.CSTNode],
    ) -> Iterator[Finding]:
        for step in steps:
            loops = [loop for loop in step.loops if loop in recurrent_loops]
            if not any(loop in unit.loops_with_backward for loop in loops):
                continue
            message = (
                f"`{model.code(step.node.func)}()` runs on every pass of the loop but gradients "
                "are never cleared, so each update applies the sum of all earlier windows' "
                "gradients. Call `zero_grad()` before each backward"
            )
            yield model.finding(self.code, step.node, message)


def _optimizer_receivers(model: FileModel, unit: UnitEvents) -> set[str]:
    receivers: set[str] = set()
    zeroed = {c.receiver for c in unit.optimizer_calls if c.method == "zero_grad"}
    for call in unit.optimizer_calls:
        if call.method != "step":
            continue
        built = model.context.construction_of(call.receiver)
        if built is not None:
            if (
                built.qualified_class.startswith("torch.optim.")
                and "lr_scheduler" not in built.qualified_class
            ):
                receivers.add(call.receiver)
        elif call.receiver in zeroed:
            receivers.add(call.receiver)
    return receivers


def _clears_gradients(model: FileModel, unit: cst.CSTNode) -> bool:
    text = model.code(unit) if not isinstance(unit, cst.Module) else unit.code
    return any(word in text for word in GRADIENT_CLEARING)
