"""What each rank of the spawned 2-process gloo run in test_distributed.py does: a module
from which `torch.multiprocessing.spawn` can import the rank function in its children."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from tbptt_lint import trace
from tbptt_lint.tracer import Trace

SEQ, WINDOW = 12, 4
LEAKING_RANK = 1  # this rank carries its state on without detach (DDP part only)


class Model(nn.Module):
    """The windowed forward one DDP or FSDP call runs: WINDOW cell steps from `h`."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.GRUCell(3, 5)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        for t in range(x.shape[0]):
            h = self.cell(x[t], h)
        return h


def _windows(model: nn.Module, leak: bool) -> Trace:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(SEQ, 2, 3)
    h = torch.zeros(2, 5)
    with trace(model) as t:
        for start in range(0, SEQ, WINDOW):
            if not leak:
                h = h.detach()
            h = model(x[start : start + WINDOW], h)
            h.pow(2).mean().backward(retain_graph=leak)
            if not leak:  # a step would change weights the leaking graph saved
                optimizer.step()
            optimizer.zero_grad()
    return t


def run_rank(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(rank)
        ddp = _windows(DistributedDataParallel(Model()), leak=rank == LEAKING_RANK)
        from torch.distributed.fsdp import fully_shard  # FSDP2, torch 2.6+

        sharded = Model()
        fully_shard(sharded)
        fsdp = _windows(sharded, leak=False)
        measured = {
            name: [(c.stride, c.horizon) for c in t.calls]
            for name, t in (("ddp", ddp), ("fsdp", fsdp))
        }
        measured["fsdp_problems"] = fsdp.check(WINDOW, WINDOW)
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(measured))
        dist.barrier()  # every rank has written its measurements before any fails
    finally:
        dist.destroy_process_group()
    # As a test around a spawned run asserts: in each rank, failing the spawn with its reason.
    ddp.assert_tbptt(k1=WINDOW, k2=WINDOW)
