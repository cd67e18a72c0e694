"""`tbptt_lint.lightning.TBPTTCheck` in a real `Trainer.fit` on the CPU: manual-optimization
TBPTT passes, the same loop with state carried across windows fails the fit with the
tracer's explanation, and automatic optimization measures the batch's whole sequence.

The single-process fits run on `TBPTT_LIGHTNING_ACCELERATOR` (default "cpu"); on a GPU machine
`TBPTT_LIGHTNING_ACCELERATOR=gpu python -m pytest -q tests/frameworks/test_lightning.py` runs the
same checks on CUDA. The two-process fit stays on the CPU (gloo)."""

from __future__ import annotations

import multiprocessing
import os
import re

import pytest

pl = pytest.importorskip("lightning.pytorch")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from tbptt_lint.lightning import TBPTTCheck  # noqa: E402

torch.set_num_threads(1)

SEQ = 12  # time steps per sequence
WINDOW = 4  # TBPTT window of the manual-optimization module
ACCELERATOR = os.environ.get("TBPTT_LIGHTNING_ACCELERATOR", "cpu")


def _loader(batches: int = 3) -> DataLoader:
    torch.manual_seed(0)
    x = torch.randn(2 * batches, SEQ, 3)
    return DataLoader(TensorDataset(x, x.sum(-1, keepdim=True)), batch_size=2)


class ManualTBPTT(pl.LightningModule):
    """Windows of WINDOW steps over each batch's sequence, one backward and step per window."""

    def __init__(self, detach: bool = True, step_each_window: bool = True) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.detach = detach
        self.step_each_window = step_each_window
        self.cell = nn.GRUCell(3, 5)
        self.head = nn.Linear(5, 1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        opt = self.optimizers()
        x, y = batch
        h = x.new_zeros(x.shape[0], 5)
        opt.zero_grad()
        for start in range(0, SEQ, WINDOW):
            if self.detach:
                h = h.detach()
            loss = x.new_zeros(())
            for t in range(start, start + WINDOW):
                h = self.cell(x[:, t], h)
                loss = loss + (self.head(h) - y[:, t]).pow(2).mean()
            # retain_graph lets the buggy variant run on, so the tracer (not autograd) finds it
            self.manual_backward(loss, retain_graph=not self.detach)
            if self.step_each_window:
                opt.step()
                opt.zero_grad()
        if not self.step_each_window:
            opt.step()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


class AutomaticBPTT(pl.LightningModule):
    """An nn.GRU over the whole sequence, one loss per batch: full BPTT within the batch."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 5, batch_first=True)
        self.head = nn.Linear(5, 1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
        out, _ = self.rnn(x)
        return (self.head(out) - y).pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _fit(module: pl.LightningModule, check: TBPTTCheck, batches: int = 3) -> None:
    trainer = pl.Trainer(
        max_epochs=1,
        callbacks=[check],
        accelerator=ACCELERATOR,
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
    )
    trainer.fit(module, _loader(batches))


def _hooks_left(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


def test_manual_optimization_tbptt_passes_and_measures_windows() -> None:
    module = ManualTBPTT()
    check = TBPTTCheck(k1=WINDOW, k2=WINDOW, batches=2)
    _fit(module, check)
    assert check.trace is not None
    calls = check.trace.calls
    # Two batches traced, SEQ // WINDOW windows each: every one a full window.
    assert len(calls) == 2 * SEQ // WINDOW
    assert [c.horizon for c in calls] == [WINDOW] * len(calls)
    assert [c.stride for c in calls] == [WINDOW] * len(calls)
    assert check.trace.verdict == "ok"
    assert _hooks_left(module) == 0


def test_state_carried_without_detach_fails_the_fit_with_the_explanation(tmp_path) -> None:
    # One optimizer step per batch: the carried graph stays valid, and only the tracer objects.
    module = ManualTBPTT(detach=False, step_each_window=False)
    check = TBPTTCheck(k1=WINDOW, k2=WINDOW, batches=2, artifacts=tmp_path / "tbptt")
    with pytest.raises(AssertionError) as raised:
        _fit(module, check)
    message = str(raised.value)
    assert raised.type is AssertionError  # not wrapped by Lightning
    assert message.startswith(f"the traced run is not TBPTT(k1={WINDOW}, k2={WINDOW}):")
    assert "horizon:" in message and "Likely cause" in message
    assert "TBPTTCheck traced 2 training batches of ManualTBPTT" in message
    # The same explanation assert_tbptt gives for the trace.
    assert check.trace is not None
    with pytest.raises(AssertionError) as direct:
        check.trace.assert_tbptt(WINDOW, WINDOW)
    assert str(direct.value) in message
    names = sorted(p.name for p in check.artifact_paths)
    assert "tbptt_report.html" in names and "tbptt_report.txt" in names
    assert all(p.exists() and p.parent == tmp_path / "tbptt" for p in check.artifact_paths)
    assert str(check.artifact_paths[0]) in message
    assert _hooks_left(module) == 0


def test_backward_error_of_carried_state_is_explained_through_the_fit() -> None:
    # A step per window changes the weights the carried graph saved: autograd raises, and the
    # fit re-raises that RuntimeError with the tracer's explanation of which state carried on.
    module = ManualTBPTT(detach=False)
    with pytest.raises(RuntimeError, match="modified by an inplace operation") as raised:
        _fit(module, TBPTTCheck(k1=WINDOW, k2=WINDOW))
    assert raised.type is RuntimeError
    assert "[tbptt-lint]" in str(raised.value)
    assert "`h` passed to 'cell' at step 4" in str(raised.value)
    assert _hooks_left(module) == 0


def test_automatic_optimization_measures_the_whole_sequence() -> None:
    module = AutomaticBPTT()
    check = TBPTTCheck(k1=SEQ, k2=SEQ, batches=2)
    _fit(module, check)
    assert check.trace is not None
    calls = check.trace.calls
    assert [c.horizon for c in calls] == [SEQ, SEQ]
    assert [c.stride for c in calls] == [SEQ, SEQ]
    # Asking for TBPTT windows of that module fails the fit.
    with pytest.raises(AssertionError, match=r"not TBPTT\(k1=4, k2=4\)"):
        _fit(AutomaticBPTT(), TBPTTCheck(k1=4, k2=4))


def test_an_exception_inside_the_fit_leaves_no_hook() -> None:
    class Broken(ManualTBPTT):
        def training_step(self, batch, batch_idx):
            super().training_step(batch, batch_idx)
            raise ValueError("user bug")

    module = Broken()
    check = TBPTTCheck(k1=WINDOW, k2=WINDOW, batches=2)
    with pytest.raises(ValueError, match="user bug"):
        _fit(module, check)
    assert _hooks_left(module) == 0
    assert check.trace is not None and len(check.trace.calls) == SEQ // WINDOW
    # The tracer's global patches are gone too: a backward outside is not recorded.
    before = len(check.trace.calls)
    device = next(module.parameters()).device
    module.cell(torch.zeros(1, 3, device=device)).sum().backward()
    assert len(check.trace.calls) == before


def test_fewer_batches_than_asked_are_checked_at_the_end_of_training() -> None:
    check = TBPTTCheck(k1=WINDOW, k2=WINDOW, batches=5)
    traced = r"horizon: (?s:.*)TBPTTCheck traced 2 training batches"
    with pytest.raises(AssertionError, match=traced):
        _fit(ManualTBPTT(detach=False, step_each_window=False), check, batches=2)
    assert check.trace is not None and len(check.trace.calls) == 2 * SEQ // WINDOW


def test_validation_between_traced_batches_passes() -> None:
    class Validated(ManualTBPTT):
        def validation_step(self, batch, batch_idx) -> None:
            h = batch[0].new_zeros(batch[0].shape[0], 5)
            for t in range(SEQ):
                h = self.cell(batch[0][:, t], h)

    check = TBPTTCheck(k1=WINDOW, k2=WINDOW, batches=2)
    trainer = pl.Trainer(
        max_epochs=1,
        callbacks=[check],
        accelerator=ACCELERATOR,
        devices=1,
        val_check_interval=1,  # a validation after every training batch
        limit_val_batches=1,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
    )
    trainer.fit(Validated(), _loader(), _loader())
    assert check.trace is not None and check.trace.verdict == "ok"
    # The first window after the validation came SEQ no-grad steps later than the last.
    strides = [c.stride for c in check.trace.calls]
    assert strides[SEQ // WINDOW] == SEQ + WINDOW


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="ddp_fork needs fork"
)
def test_every_rank_of_a_two_process_fit_checks_its_own_batches(tmp_path) -> None:
    from torch.multiprocessing import ProcessRaisedException

    check = TBPTTCheck(k1=WINDOW, k2=WINDOW, batches=2, artifacts=tmp_path)
    trainer = pl.Trainer(
        max_epochs=1,
        callbacks=[check],
        accelerator="cpu",
        devices=2,
        strategy="ddp_fork",  # gloo on the CPU; forked ranks need no re-import
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
    )
    with pytest.raises(ProcessRaisedException) as raised:
        trainer.fit(ManualTBPTT(detach=False, step_each_window=False), _loader(4))
    # A rank's AssertionError reaches the parent with the explanation and that rank's files.
    message = str(raised.value)
    assert "AssertionError: the traced run is not TBPTT(k1=4, k2=4)" in message
    assert "still references the graph" in message
    assert re.search(r"Artifacts: \S+/tbptt_rank[01]_report\.txt", message)
