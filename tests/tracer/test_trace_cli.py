"""`tbptt-lint trace file.py::function --k1 --k2 ...` runs the function under the tracer."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")

from tbptt_lint.tracer.cli import run_trace_command

SCRIPT = textwrap.dedent(
    """
    import torch
    from torch import nn

    torch.set_num_threads(1)


    def train(leak=False):
        torch.manual_seed(0)
        cell = nn.GRUCell(3, 5)
        x = torch.randn(30, 2, 3)
        h = torch.zeros(2, 5)
        for start in range(0, 30, 10):
            if not leak:
                h = h.detach()
            loss = torch.zeros(())
            for t in range(start, start + 10):
                h = cell(x[t], h)
                loss = loss + h.sum()
            loss.backward(retain_graph=leak)


    def leaky():
        train(leak=True)


    def broken():
        raise ValueError("user bug")


    def needs_data(loader, epochs=1):
        raise AssertionError("never called")
    """
)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "loop.py"
    path.write_text(SCRIPT)
    return path


def test_matching_run_exits_zero_and_writes_outputs(script, tmp_path, capsys):
    pytest.importorskip("tbptt_lint.tracer.report")
    graph = tmp_path / "g.dot"
    json_out = tmp_path / "r.json"
    code = run_trace_command(
        [
            f"{script}::train",
            "--k1",
            "10",
            "--k2",
            "10",
            "--graph",
            str(graph),
            "--json",
            str(json_out),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert graph.exists() and json_out.exists()
    assert f"wrote {graph}" in out


def test_default_function_is_train(script):
    assert run_trace_command([str(script), "--k1", "10", "--k2", "10"]) == 0


def test_failed_assertion_exits_one(script, capsys):
    code = run_trace_command([f"{script}::leaky", "--k1", "10", "--k2", "10"])
    assert code == 1


def test_usage_errors_exit_two(script, tmp_path, capsys):
    assert run_trace_command([str(tmp_path / "missing.py")]) == 2
    assert run_trace_command([f"{script}::nope"]) == 2
    assert run_trace_command([f"{script}::broken"]) == 2
    assert "user bug" in capsys.readouterr().err


def test_a_function_that_needs_arguments_is_a_usage_error(script, capsys):
    assert run_trace_command([f"{script}::needs_data", "--k1", "10"]) == 2
    err = capsys.readouterr().err
    assert "needs_data takes arguments (loader)" in err
    assert "Traceback" not in err and "never called" not in err
