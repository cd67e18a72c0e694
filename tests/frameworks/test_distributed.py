"""`trace(ddp_model)` and `trace(fsdp_model)` in each rank of a 2-process gloo run spawned with
`torch.multiprocessing` on the CPU: each rank measures its own windows exactly, and a rank
that carries its state on fails the spawn with the tracer's explanation."""

from __future__ import annotations

import json
import multiprocessing

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("needs torch.distributed with gloo", allow_module_level=True)

import torch.multiprocessing as mp  # noqa: E402
from _distributed_ranks import LEAKING_RANK, WINDOW, run_rank  # noqa: E402

WORLD = 2
# mp.spawn's start method re-imports torch in every child: 2-3x the whole test's time on a
# loaded 2-core machine. Forked children measure the same; spawn where there is no fork.
START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def test_each_rank_measures_its_own_windows(tmp_path) -> None:
    pytest.importorskip("torch.distributed.fsdp", reason="no FSDP in this torch")
    if not hasattr(torch.distributed.fsdp, "fully_shard"):
        pytest.skip("fully_shard (FSDP2) is torch.distributed.fsdp's from torch 2.6")
    with pytest.raises(mp.ProcessRaisedException) as raised:
        mp.start_processes(
            run_rank,
            args=(WORLD, str(tmp_path / "init"), str(tmp_path)),
            nprocs=WORLD,
            start_method=START_METHOD,
        )
    # The leaking rank's assert_tbptt failed the spawn, its explanation carried to the parent.
    message = str(raised.value)
    assert f"Process {LEAKING_RANK} terminated with the following error" in message
    assert f"the traced run is not TBPTT(k1={WINDOW}, k2={WINDOW})" in message
    assert "still references the graph" in message
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    windows = 3
    for rank, measured in enumerate(ranks):
        assert measured["fsdp"] == [[WINDOW, WINDOW]] * windows
        assert measured["fsdp_problems"] == []
        horizons = [h for _, h in measured["ddp"]]
        assert [s for s, _ in measured["ddp"]] == [WINDOW] * windows
        if rank == LEAKING_RANK:
            assert horizons == [WINDOW * (i + 1) for i in range(windows)]
        else:
            assert horizons == [WINDOW] * windows
