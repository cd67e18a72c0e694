"""Fuzz the linter: hypothesmith programs and mutated fixtures, zero crashes and zero hangs.

Off unless `TBPTT_FUZZ_EXAMPLES` is set (see conftest.py). All shards run in one process pool
sized to the CPUs, started once for the module, so that the kinds share the cores; every shard
has a fixed seed, so a failure names the kind and seed that reproduce it:

    cd tests/fuzz && python -c "import fuzz_harness as h; print(h.run_shard(('grammar', 3, 500)))"
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

import pytest
from fuzz_harness import STATS, WALL, ShardResult, examples_budget, run_shard

from tbptt_lint.engine import available_cpus

pytestmark = pytest.mark.fuzz

# Programs per shard: small enough to balance the pool, large enough to amortise start-up.
SHARD_SIZE = {"grammar": 250, "node": 25, "mutations": 250}


def plan(budget: int) -> dict[str, int]:
    """How the budget of generated programs is spent. from_node is about 5x slower per program
    than from_grammar, so it gets a small share. The fixtures are mutated as many times as the
    budget: the mutations are what found the bugs so far (test_fuzz_regressions.py), and they
    cost half as much per program as hypothesmith's generation."""
    node = budget // 50
    return {"grammar": budget - node, "node": node, "mutations": max(budget, 1)}


def shards(kind: str, total: int) -> list[tuple[str, int, int]]:
    size = SHARD_SIZE[kind]
    return [
        (kind, seed, min(size, total - start)) for seed, start in enumerate(range(0, total, size))
    ]


def _pool_context() -> multiprocessing.context.BaseContext:
    # Not fork: pytest (or torch, if another test imported it) may have started threads.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


@pytest.fixture(scope="module")
def fuzz_run() -> Iterator[dict[str, list[tuple[tuple[str, int, int], Future[ShardResult]]]]]:
    budget = examples_budget()
    tasks = [task for kind, total in plan(budget).items() for task in shards(kind, total)]
    # The slowest shards first, so that the pool does not end on one long shard.
    tasks.sort(key=lambda task: task[0] != "node")
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=available_cpus(), mp_context=_pool_context()) as pool:
        futures: dict[str, list[tuple[tuple[str, int, int], Future[ShardResult]]]] = {}
        for task in tasks:
            futures.setdefault(task[0], []).append((task, pool.submit(run_shard, task)))
        yield futures
    WALL["wall"] = time.perf_counter() - started


def collect(kind: str, fuzz_run: dict) -> None:
    programs = calls = failures = known = 0
    seconds = 0.0
    reports = []
    for (name, seed, count), future in fuzz_run[kind]:
        result = future.result()
        assert result.programs == count, f"{name} seed {seed}: {result.programs} of {count} ran"
        programs += result.programs
        calls += result.calls
        seconds += result.seconds
        failures += result.failures
        known += result.known
        reports += [f"--- {name} seed {seed}: {why}\ninput: {src!r}" for src, why in result.kept]
    STATS[kind] = (programs, calls, seconds, known)
    assert failures == 0, f"{failures} failing inputs; the first ones:\n" + "\n".join(reports)


def test_programs_from_the_grammar(fuzz_run):
    collect("grammar", fuzz_run)


def test_programs_from_libcst_nodes(fuzz_run):
    if not fuzz_run.get("node"):
        pytest.skip("the budget is too small for from_node (it gets 1 in 50)")
    collect("node", fuzz_run)


def test_mutated_fixtures(fuzz_run):
    collect("mutations", fuzz_run)
