"""`TBPTTCheck`: a Lightning callback that traces the first training batches of a fit and fails
the fit, as `Trace.assert_tbptt` would, when they are not TBPTT(k1, k2).

    from tbptt_lint.lightning import TBPTTCheck
    trainer = lightning.pytorch.Trainer(callbacks=[TBPTTCheck(k1=5, k2=5)])

With manual optimization (`training_step` walks the batch's sequence in windows and calls
`self.manual_backward` on each) the strides and horizons are the windows'; with automatic
optimization there is one backward per batch, so stride and horizon are the batch's whole
sequence length.

Imports torch and Lightning (`lightning.pytorch`, or `pytorch_lightning` where only that is
installed): the `lightning` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:
    from lightning.pytorch import Callback, LightningModule, Trainer
except ImportError:  # only the older standalone package is installed
    from pytorch_lightning import (  # type: ignore[assignment,no-redef,unused-ignore]
        Callback,
        LightningModule,
        Trainer,
    )

from tbptt_lint.tracer import Trace, trace
from tbptt_lint.tracer.artifacts import write_artifacts


class TBPTTCheck(Callback):
    """Trace the LightningModule over the first `batches` training batches, then check that
    the run is TBPTT(k1, k2) (`None` leaves one unchecked; both `None` checks only that
    carried state is cut somewhere). A mismatch raises `AssertionError` out of `trainer.fit`
    with the tracer's explanation; with `artifacts`, the report, timeline and graph are
    written to that directory, pass or fail. `trace_options` go to `trace(...)`
    (`step_modules`, `max_walk_nodes`, `measure_saved`).

    The trace starts at the first training batch and ends after the `batches`-th one (or at
    the end of training, when fewer ran); an exception out of the fit ends it too, so no
    hook or patch outlives the traced batches."""

    def __init__(
        self,
        k1: int | None = 5,
        k2: int | None = 5,
        batches: int = 2,
        artifacts: str | Path | None = None,
        **trace_options: Any,
    ) -> None:
        if batches < 1:
            raise ValueError(f"batches must be at least 1, not {batches}")
        self.k1 = k1
        self.k2 = k2
        self.batches = batches
        self.artifacts = Path(artifacts) if artifacts is not None else None
        self.trace_options = trace_options
        self.trace: Trace | None = None  # the finished trace, once checked: read it after fit
        self.artifact_paths: list[Path] = []
        self._active: Trace | None = None
        self._traced_batches = 0

    # The callback is pickled for spawned processes (strategy="ddp_spawn"): never with a trace.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_active"] = None
        state["trace"] = None
        return state

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._active is None and self.trace is None:
            active = trace(pl_module, **self.trace_options)
            active.__enter__()
            self._active = active

    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self._active is None:
            return
        self._traced_batches += 1
        if self._traced_batches >= self.batches:
            self._finish(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Training ended before `batches` batches ran (a short epoch, max_steps): check those.
        if self._active is not None:
            self._finish(trainer)

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        # Lightning calls this for any exception out of the fit before re-raising it; a
        # RuntimeError from the user's backward gets the tracer's explanation added here.
        self._close(exception)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._close(None)  # never left entered, whatever path the fit took

    def _close(self, exception: BaseException | None) -> None:
        active, self._active = self._active, None
        if active is None:
            return
        if exception is None:
            active.__exit__(None, None, None)
        else:
            active.__exit__(type(exception), exception, exception.__traceback__)
        self.trace = active

    def _finish(self, trainer: Trainer) -> None:
        active = self._active
        assert active is not None
        self._close(None)
        failure: AssertionError | None = None
        try:
            active.assert_tbptt(self.k1, self.k2)
        except AssertionError as exc:
            failure = exc
        if self.artifacts is not None:
            # One directory per process: ranks of a distributed fit write side by side.
            rank = getattr(trainer, "global_rank", 0)
            stem = "tbptt" if getattr(trainer, "world_size", 1) == 1 else f"tbptt_rank{rank}"
            self.artifact_paths = write_artifacts(active, self.artifacts, stem)
        if failure is None:
            return
        lines = [
            str(failure),
            f"(TBPTTCheck traced {self._traced_batches} training batch"
            f"{'es' if self._traced_batches != 1 else ''} of {type(active.model).__name__}.)",
        ]
        if self.artifact_paths:
            lines.append("Artifacts: " + ", ".join(str(p) for p in self.artifact_paths))
        raise AssertionError("\n".join(lines)) from None
