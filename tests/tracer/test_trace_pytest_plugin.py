"""The pytest plugin: `tbptt` fixture, `tbptt` marker, artifacts on failure, `--tbptt-lint`."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

TESTS = textwrap.dedent(
    """
    import pytest
    import torch
    from torch import nn

    torch.set_num_threads(1)


    def loop(leak):
        cell = nn.GRUCell(3, 4)
        x = torch.randn(20, 2, 3)
        h = torch.zeros(2, 4)
        for start in range(0, 20, 5):
            if not leak:
                h = h.detach()
            loss = torch.zeros(())
            for t in range(start, start + 5):
                h = cell(x[t], h)
                loss = loss + h.sum()
            loss.backward(retain_graph=leak)


    @pytest.mark.tbptt(k1=5, k2=5)
    def test_good(tbptt):
        with tbptt.trace(None):
            loop(leak=False)


    @pytest.mark.tbptt(k1=5, k2=5)
    def test_leaky(tbptt):
        with tbptt.trace(None):
            loop(leak=True)


    def test_fixture_object(tbptt):
        with tbptt.trace(None) as t:
            loop(leak=False)
        assert tbptt.last is t and [c.horizon for c in t.calls] == [5] * 4
    """
)


def test_plugin_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import tbptt_lint.pytest_plugin as p\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_marker_and_artifacts(pytester: pytest.Pytester):
    pytest.importorskip("torch")
    pytester.makepyfile(test_loops=TESTS)
    artifacts = pytester.path / "artifacts"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--tbptt-artifacts={artifacts}"
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_leaky*", "*grows by 5 every window*", "*tbptt artifacts*"])
    written = sorted(p.name for p in artifacts.rglob("*") if p.is_file())
    assert "trace0_report.txt" in written and "trace0_report.html" in written
    assert any(name.startswith("trace0_graph") for name in written)


def test_tbptt_lint_option_reports_findings(pytester: pytest.Pytester):
    pytest.importorskip("tbptt_lint.engine")
    pytester.makepyfile(
        test_clean="def test_nothing():\n    assert True\n",
    )
    pytester.makeini("[pytest]\ntbptt_lint_paths = src\n")
    src = pytester.mkdir("src")
    (src / "loop.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn

            def train(x, y):
                model = nn.LSTM(4, 8)
                opt = torch.optim.SGD(model.parameters(), lr=0.1)
                hidden = None
                for i in range(0, x.size(0), 10):
                    out, hidden = model(x[i:i + 10], hidden)
                    loss = (out - y[i:i + 10]).pow(2).mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tbptt-lint", "-q")
    outcomes = result.parseoutcomes()
    # test_clean.py: the lint item passes, the test passes; src/loop.py: TBP001 fails.
    assert outcomes.get("failed") == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*loop.py:*TBP001*"])
    without = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    without.assert_outcomes(passed=1)
