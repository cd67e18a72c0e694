"""The pytest plugin: `tbptt` fixture, `tbptt` marker, artifacts on failure, `--tbptt-lint`."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# Only the pytester subprocesses import torch: importing it here would be undone by pytester's
# sys.modules snapshot after the test, and torch cannot be imported twice in one process.
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")

# A helper module, not a test module: the projects below import `loop` from it.
LOOPS = textwrap.dedent(
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
    """
)

TESTS = LOOPS + textwrap.dedent(
    """


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


@needs_torch
def test_marker_and_artifacts(pytester: pytest.Pytester):
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


# ----- the marker: failures in plain words, misuse reported before the test runs -----

MARKER_USE = textwrap.dedent(
    """
    import pytest

    from loops import loop


    @pytest.mark.tbptt(k1=5, k2=5)
    def test_leaky(tbptt):
        with tbptt.trace(None):
            loop(leak=True)


    @pytest.mark.tbptt(k1=5, k2=5)
    def test_no_fixture():
        loop(leak=True)


    @pytest.mark.tbptt(k=5)
    def test_typo(tbptt):
        loop(leak=True)


    @pytest.mark.tbptt(k1="5", k2=5)
    def test_string(tbptt):
        loop(leak=True)


    @pytest.mark.tbptt(k1=5, k2=0)
    def test_zero(tbptt):
        loop(leak=True)


    @pytest.mark.tbptt(5, 5, 5)
    def test_three(tbptt):
        loop(leak=True)


    @pytest.mark.tbptt(5, k1=5)
    def test_twice(tbptt):
        loop(leak=True)


    @pytest.mark.tbptt
    def test_bare(tbptt):
        with tbptt.trace(None):
            loop(leak=False)


    @pytest.mark.tbptt(5, k2=None)
    def test_positional(tbptt):
        with tbptt.trace(None):
            loop(leak=False)


    @pytest.fixture
    def traced(tbptt):
        with tbptt.trace(None):
            yield


    @pytest.mark.tbptt(k1=5, k2=5)
    def test_through_a_fixture(traced):
        loop(leak=False)
    """
)


@needs_torch
def test_marker_failure_and_misuse(pytester: pytest.Pytester):
    pytester.makepyfile(loops=LOOPS, test_marker_use=MARKER_USE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rfE")
    # Misuse is an error at setup: the test body does not run, no traceback is shown.
    result.assert_outcomes(passed=3, failed=1, errors=6)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_no_fixture*",
            "@pytest.mark.tbptt needs the `tbptt` fixture: *",
            "*ERROR at setup of test_typo*",
            "@pytest.mark.tbptt: unknown argument k=5; it takes k1= (the stride) and k2= *",
            "*ERROR at setup of test_string*",
            "@pytest.mark.tbptt: k1 must be a positive int or None, got '5' (str)",
            "*ERROR at setup of test_zero*",
            "@pytest.mark.tbptt: k2 must be a positive int or None, got 0 (int)",
            "*ERROR at setup of test_three*",
            "@pytest.mark.tbptt takes at most 2 positional arguments (k1, k2), got 3",
            "*ERROR at setup of test_twice*",
            "@pytest.mark.tbptt: k1 is given twice, by position and as k1=",
            "*_ test_leaky _*",
            "the traced run is not TBPTT(k1=5, k2=5):",
            "*grows by 5 every window*",
        ]
    )
    # The explanation, not the plugin's or the tracer's frames.
    for internal in (
        "pytest_plugin.py",
        "pytest_fixture.py",
        "session.py",
        "def assert_tbptt",
        "raise AssertionError",
    ):
        assert internal not in out, internal
    result.stdout.fnmatch_lines(["FAILED test_marker_use.py::test_leaky - Failed: the traced run*"])


@needs_torch
def test_bare_marker_calls_assert_tbptt_without_arguments(pytester: pytest.Pytester):
    pytester.makeconftest(
        """
        from tbptt_lint.tracer import Trace

        calls = []


        def record(self, **kwargs):
            calls.append(kwargs)


        # Only what reaches assert_tbptt matters here, not what it checks.
        Trace.assert_tbptt = record


        def pytest_sessionfinish(session):
            print("assert_tbptt calls:", calls)
        """
    )
    pytester.makepyfile(
        """
        import pytest


        @pytest.mark.tbptt
        def test_bare(tbptt):
            with tbptt.trace(None):
                pass


        @pytest.mark.tbptt(k2=7)
        def test_k2(tbptt):
            with tbptt.trace(None):
                pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=2)
    assert "assert_tbptt calls: [{}, {'k2': 7}]" in result.stdout.str()


# ----- a trace left open -----

LEFT_OPEN = textwrap.dedent(
    """
    import torch
    import torch.autograd.graph as graph
    from torch import nn
    from torch.autograd.variable import Variable
    from torch.nn.modules import module as module_mod

    from loops import loop


    def engine_functions():
        # What the tracer may patch, on every torch it supports (2.1 has no
        # _engine_run_backward).
        return (
            getattr(graph, "_engine_run_backward", None),
            Variable._execution_engine,
            torch.Tensor.backward,
            torch.autograd.backward,
        )


    ORIGINAL = engine_functions()


    def patched():
        return engine_functions() != ORIGINAL or bool(module_mod._global_forward_pre_hooks)


    def test_a_left_open(tbptt):
        tbptt.trace(None).__enter__()
        loop(leak=False)


    def test_b_patches_undone():
        assert not patched()


    def test_c_nested_left_open(tbptt):
        outer, inner = tbptt.trace(None), tbptt.trace(nn.GRUCell(3, 4))
        inner.__enter__()  # entered first although created second: closed last
        outer.__enter__()
        loop(leak=False)


    def test_d_patches_undone():
        assert not patched()


    def test_e_closed_by_a_fixture(tbptt):
        with tbptt.trace(None) as t:
            loop(leak=False)
        assert not patched() and t.calls
    """
)


@needs_torch
def test_trace_left_open_is_closed_and_reported(pytester: pytest.Pytester):
    pytester.makepyfile(loops=LOOPS, test_left_open=LEFT_OPEN)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_left_open.py")
    result.assert_outcomes(passed=5, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_a_left_open*",
            "tbptt.trace(...) was entered but never exited (1 still open at the end of the test;"
            " its patches are now undone): use `with tbptt.trace(model):`",
            "*ERROR at teardown of test_c_nested_left_open*",
            "tbptt.trace(...) was entered but never exited (2 still open*",
        ]
    )
    assert "pytest_plugin.py" not in result.stdout.str()
    assert "pytest_fixture.py" not in result.stdout.str()


# ----- artifacts: one directory per test -----

ARTIFACT_IDS = textwrap.dedent(
    """
    import pytest

    from loops import loop


    @pytest.mark.parametrize("leak", [True, True], ids=["lstm cell", "lstm_cell"])
    @pytest.mark.tbptt(k1=5, k2=5)
    def test_ids(tbptt, leak):
        with tbptt.trace(None):
            loop(leak=leak)


    @pytest.mark.tbptt(k1=5, k2=5)
    def test_default_location(tbptt, tmp_path):
        (tmp_path / "mine.txt").write_text("the test's own file")
        with tbptt.trace(None):
            loop(leak=True)
    """
)


@needs_torch
def test_artifact_directories_are_unique_per_test(pytester: pytest.Pytester):
    pytester.makepyfile(loops=LOOPS)
    long_name = "test_" + "window_configuration_" * 8
    for package in ("unit", "integration"):
        pytester.mkpydir(package)
        (pytester.path / package / "test_same.py").write_text(
            ARTIFACT_IDS.replace("def test_ids", f"def {long_name}"), encoding="utf-8"
        )
    artifacts = pytester.path / "artifacts"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--tbptt-artifacts=artifacts", "-k", "not default_location"
    )
    result.assert_outcomes(failed=4)
    reports = sorted(artifacts.rglob("trace0_report.txt"))
    assert len({report.parent for report in reports}) == 4, reports
    for report in reports:
        assert len(report.parent.name) <= 111 and report.parent.name.startswith(("unit", "integ"))


@needs_torch
def test_artifacts_default_to_the_tests_tmp_path(pytester: pytest.Pytester):
    pytester.makepyfile(loops=LOOPS, test_default=ARTIFACT_IDS)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--basetemp={pytester.path / 'base'}", "-k", "default_location"
    )
    result.assert_outcomes(failed=1)
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "tbptt artifacts" in line)
    listed = [Path(line) for line in lines[start + 1 :] if line.endswith("_report.txt")]
    assert listed and (listed[0].parent / "mine.txt").is_file(), lines[start:]


# ----- tracebacks without the tracer's frames -----


@needs_torch
def test_failures_show_the_users_frames_not_the_tracers(pytester: pytest.Pytester):
    pytester.makepyfile(loops=LOOPS)
    pytester.makepyfile(
        test_frames=textwrap.dedent(
            """
            import torch
            from torch import nn

            from loops import loop


            def test_assert(tbptt):
                with tbptt.trace(None) as t:
                    loop(leak=True)
                t.assert_tbptt(k1=5, k2=5)


            def test_second_backward(tbptt):
                cell = nn.GRUCell(3, 4)
                with tbptt.trace(None):
                    h = torch.zeros(2, 4)
                    for _ in range(2):
                        loss = torch.zeros(())
                        for _ in range(3):
                            h = cell(torch.randn(2, 3), h)
                            loss = loss + h.sum()
                        loss.backward()
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tb=long")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "grows by 5 every window" in out and "a graph an earlier backward already freed" in out
    assert "t.assert_tbptt(k1=5, k2=5)" in out and "loss.backward()" in out
    for own in ("session.py", "patching.py"):
        assert own not in out
