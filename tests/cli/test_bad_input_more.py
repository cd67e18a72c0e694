"""More bad input through the real CLI and the real analysis: tabs, a 20 MB file, binary files,
NUL bytes, deep nesting, a path given twice, a directory named like a Python file.

For each: a one-line message naming the path, the documented exit code (1 for findings, TBP900
and TBP901 included; 0 when clean), every other file still linted, and no traceback. The
Some tests hold the minimal inputs of bugs found while writing them (fixed since).
"""

from __future__ import annotations

import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import TBP001_LINE, TBP001_SNIPPET, write

# A second file in every run, whose finding must survive the bad one next to it.
OTHER = "other.py"
OTHER_FINDING = f"{OTHER}:{TBP001_LINE}:"
LOSS_LINE = "    loss = ((out - y) ** 2).mean()"


def run_concise(cli, *paths: str, jobs: str = "1"):
    return cli("--isolated", "--jobs", jobs, "--output-format", "concise", "-q", *paths)


def assert_clean_failure(run) -> None:
    """No traceback and no internal error anywhere in the output."""
    for stream in (run.out, run.err):
        assert "Traceback" not in stream
        assert "internal error" not in stream


def lines_for(run, path: str) -> list[str]:
    return [line for line in run.out.splitlines() if line.startswith(f"{path}:")]


def python_error_line(source: str) -> int:
    try:
        compile(source, "x.py", "exec")
    except SyntaxError as error:
        assert error.lineno is not None
        return error.lineno
    raise AssertionError("Python accepts this source")


@pytest.fixture
def other(project: Path) -> Path:
    return write(project / OTHER, TBP001_SNIPPET)


# --- tabs ---------------------------------------------------------------------------------------


def test_tab_indented_training_loop_is_still_analysed(cli, project, other):
    write(project / "tabs.py", TBP001_SNIPPET.replace("    ", "\t"))
    run = run_concise(cli, "tabs.py", OTHER)
    assert run.code == 1
    assert_clean_failure(run)
    [line] = lines_for(run, "tabs.py")
    # columns count characters: one tab instead of four spaces moves the finding 3 to the left
    [other_line] = lines_for(run, OTHER)
    other_column = int(other_line.split(":")[2])
    assert line.startswith(f"tabs.py:{TBP001_LINE}:{other_column - 3}: TBP001 ")


def test_tabs_in_one_block_and_spaces_in_another_are_accepted(cli, project, other):
    helper = "def helper(x):\n    if x:\n        return x\n    return None\n\n\n"
    write(project / "both.py", helper + TBP001_SNIPPET.replace("    ", "\t"))
    run = run_concise(cli, "both.py", OTHER)
    assert run.code == 1
    assert_clean_failure(run)
    [line] = lines_for(run, "both.py")
    assert line.startswith(f"both.py:{TBP001_LINE + 6}:") and " TBP001 " in line


def test_inconsistent_tabs_and_spaces_is_a_tbp900_at_pythons_line(cli, project, other):
    lines = TBP001_SNIPPET.splitlines(keepends=True)
    # inside the loop, every other line is indented with a tab instead of four spaces
    mixed = "".join(
        line.replace("    ", "\t", 1) if number > TBP001_LINE - 1 and number % 2 else line
        for number, line in enumerate(lines)
    )
    write(project / "mixed.py", mixed)
    run = run_concise(cli, "mixed.py", OTHER)
    assert run.code == 1
    assert_clean_failure(run)
    [line] = lines_for(run, "mixed.py")
    assert line.startswith(f"mixed.py:{python_error_line(mixed)}:")
    assert " TBP900 syntax error: " in line
    assert len(lines_for(run, OTHER)) == 1


# --- a 20 MB file -------------------------------------------------------------------------------

BIG_FILE_BYTES = 20 * 1024 * 1024
# A large generated file: blocks of model code with no backward, and every hundredth block a
# buggy training loop. (With a loop in every tenth block, 7,000 loops, a run took 58 s and the
# peak RSS grew by 1.1 GB on a 2-core machine; with one loop in the whole file, 10 s and 460 MB.)
LOOP_EVERY = 100
BIG_BLOCK = """\
def train_{n}(rnn, batches, opt):
    hidden = None
    for x, y in batches:
        out, hidden = rnn(x, hidden)
        loss = ((out - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


"""
FILLER_BLOCK = '''\
class Layer_{n}(nn.Module):
    """Generated layer {n}."""

    def __init__(self, size: int = {n}) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(size, size))
        self.table = [{table}]

    def forward(self, x):
        return x @ self.weight + sum(self.table)


'''


def big_source() -> tuple[str, int]:
    """About 20 MB, a buggy training loop every LOOP_EVERY blocks. Returns (text, loops)."""
    table = ", ".join(str(i) for i in range(60))
    parts = ["import torch\nimport torch.nn as nn\n\n\n"]
    size = len(parts[0])
    loops = 0
    n = 0
    while size < BIG_FILE_BYTES:
        if n % LOOP_EVERY == 0:
            part = BIG_BLOCK.format(n=n)
            loops += 1
        else:
            part = FILLER_BLOCK.format(n=n, table=table)
        parts.append(part)
        size += len(part)
        n += 1
    return "".join(parts), loops


def test_a_20_mb_file_finishes_in_bounded_time_and_memory(cli, project, other):
    text, loops = big_source()
    (project / "big.py").write_text(text, encoding="utf-8")
    assert (project / "big.py").stat().st_size >= BIG_FILE_BYTES
    peak_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # CPU seconds of this process (the run is in-process, one job): a bound that a loaded
    # machine does not trip, where wall time would.
    started = time.process_time()
    run = run_concise(cli, "big.py", OTHER)
    elapsed = time.process_time() - started
    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before_kb) / 1024
    assert run.code == 1
    assert_clean_failure(run)
    found = lines_for(run, "big.py")
    assert len(found) == loops  # every loop reported, the first and the last included
    assert all(" TBP001 " in line for line in found)
    assert found[0].startswith("big.py:8:")
    assert len(lines_for(run, OTHER)) == 1
    assert elapsed < 120, f"{elapsed:.0f} s of CPU"
    assert growth_mb < 1024, f"peak RSS grew by {growth_mb:.0f} MB"


# --- binary files and NUL bytes -----------------------------------------------------------------


def test_binary_file_named_py_is_one_tbp900_line(cli, project, other):
    data = random.Random(1).randbytes(4096)
    assert b"\0" in data and b"\xff" in data
    (project / "blob.py").write_bytes(data + b"\nloss.backward()\n")
    run = run_concise(cli, "blob.py", OTHER)
    assert run.code == 1
    assert_clean_failure(run)
    [line] = lines_for(run, "blob.py")
    assert " TBP900 syntax error: file is not valid utf-8" in line
    assert len(lines_for(run, OTHER)) == 1
    assert len(run.out.splitlines()) == 2  # one line per file, nothing else


def test_nul_byte_inside_valid_code_is_one_tbp900_line(cli, project, other):
    source = TBP001_SNIPPET.replace("opt.step()", "opt.step()\0")
    write(project / "nul.py", source)
    run = run_concise(cli, "nul.py", OTHER)
    assert run.code == 1
    assert_clean_failure(run)
    [line] = lines_for(run, "nul.py")
    assert " TBP900 syntax error: " in line and "null bytes" in line
    # Python names no position for a NUL; the report points at it.
    [(row, text)] = [(n, t) for n, t in enumerate(source.splitlines(), 1) if "\0" in t]
    assert line.startswith(f"nul.py:{row}:{text.index(chr(0)) + 1}: TBP900 "), line
    assert len(lines_for(run, OTHER)) == 1


# --- deep nesting -------------------------------------------------------------------------------


def nested_ifs(depth: int) -> str:
    """The TBP001 snippet's loop inside `depth` nested ifs."""
    lines = TBP001_SNIPPET.splitlines()
    ifs = "".join("    " * level + f"if c{level}:\n" for level in range(depth))
    loop = "".join("    " * depth + line + "\n" for line in lines[5:])
    return "\n".join(lines[:5]) + "\n" + ifs + loop


def test_a_loop_inside_98_nested_ifs_is_analysed(cli, project, other):
    write(project / "deep.py", nested_ifs(98))
    run = run_concise(cli, "deep.py", OTHER)
    assert run.code == 1
    assert_clean_failure(run)
    [line] = lines_for(run, "deep.py")
    assert line.startswith(f"deep.py:{TBP001_LINE + 98}:") and " TBP001 " in line


def test_200_nested_ifs_around_a_loop_is_a_tbp900_at_pythons_line(cli, project, other):
    source = nested_ifs(200)
    write(project / "deep.py", source)
    run = run_concise(cli, "deep.py", OTHER)
    assert run.code == 1
    assert_clean_failure(run)
    [line] = lines_for(run, "deep.py")
    assert line.startswith(f"deep.py:{python_error_line(source)}:")
    assert " TBP900 syntax error: too many levels of indentation" in line
    assert len(lines_for(run, OTHER)) == 1


def test_500_nested_parentheses_in_the_loop_do_not_crash(cli, project, other):
    # Python refuses more than 200 nested parentheses; libcst parses them. Either a TBP900 or
    # the loop's finding is right; a crash is not.
    deep = "    loss = " + "(" * 500 + "(out - y) ** 2" + ")" * 500 + ".mean()"
    write(project / "deep.py", TBP001_SNIPPET.replace(LOSS_LINE, deep))
    run = run_concise(cli, "deep.py", OTHER)
    assert run.code == 1
    assert_clean_failure(run)
    [line] = lines_for(run, "deep.py")
    assert " TBP001 " in line or " TBP900 " in line
    assert len(lines_for(run, OTHER)) == 1


def test_a_long_sum_in_the_loop_does_not_stop_the_run(cli, project, other):
    long_sum = "    out = " + " + ".join(["out"] * 1000) + "\n" + LOSS_LINE
    write(project / "sum.py", TBP001_SNIPPET.replace(LOSS_LINE, long_sum))
    run = run_concise(cli, "sum.py", OTHER)
    assert_clean_failure(run)
    assert run.code == 1
    assert len(lines_for(run, OTHER)) == 1
    assert all(" TBP001 " in line or " TBP900 " in line for line in lines_for(run, "sum.py"))


def test_deeply_nested_calls_in_the_loop_are_not_an_internal_error(cli, project, other):
    nested = "    hidden = " + "f(" * 600 + "hidden" + ")" * 600 + "\n" + LOSS_LINE
    write(project / "calls.py", TBP001_SNIPPET.replace(LOSS_LINE, nested))
    run = run_concise(cli, "calls.py", OTHER)
    assert_clean_failure(run)
    assert run.code == 1
    assert len(lines_for(run, OTHER)) == 1
    assert all(" TBP900 " in line for line in lines_for(run, "calls.py"))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_nesting_that_crashes_the_parser_is_a_tbp900(project, other, jobs):
    write(project / "seg.py", "loss.backward()\nx = " + "(" * 3000 + "a" + ")" * 3000 + "\n")
    process = subprocess.run(
        [sys.executable, "-m", "tbptt_lint", "--isolated", "--jobs", jobs]
        + ["--output-format", "concise", "-q", "seg.py", OTHER],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 1, process.stderr[-500:]
    assert "internal error" not in process.stderr
    lines = process.stdout.splitlines()
    assert next(line for line in lines if line.startswith("seg.py:")).startswith("seg.py:2:")
    assert len([line for line in lines if line.startswith(OTHER_FINDING)]) == 1


# --- paths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_path_given_twice_is_linted_once(cli, project, other, jobs):
    run = cli("--isolated", "--jobs", jobs, "--output-format", "concise", OTHER, f"./{OTHER}", ".")
    assert run.code == 1
    assert_clean_failure(run)
    assert len(lines_for(run, OTHER)) == 1
    assert "Found 1 error." in run.out.splitlines()


def test_a_path_given_relative_and_absolute_is_linted_once(cli, project, other):
    run = cli("--isolated", "--jobs", "1", "--output-format", "concise", OTHER, str(other))
    assert run.code == 1
    assert_clean_failure(run)
    assert len(lines_for(run, OTHER)) == 1
    assert "Found 1 error." in run.out.splitlines()


def test_a_directory_named_x_py_is_a_directory(cli, project, other):
    (project / "x.py").mkdir()
    run = cli("--isolated", "--jobs", "1", "--output-format", "concise", "x.py", OTHER)
    assert run.code == 1
    assert_clean_failure(run)
    assert run.err == "tbptt-lint: warning: No Python files found under x.py\n"
    assert len(lines_for(run, OTHER)) == 1
    assert not lines_for(run, "x.py")


def test_a_directory_named_x_py_with_python_files_inside_is_walked(cli, project):
    write(project / "x.py" / "inner.py", TBP001_SNIPPET)
    run = run_concise(cli, "x.py")
    assert run.code == 1
    assert_clean_failure(run)
    assert run.out.splitlines()[0].startswith(f"x.py/inner.py:{TBP001_LINE}:")
    assert run.err == ""
