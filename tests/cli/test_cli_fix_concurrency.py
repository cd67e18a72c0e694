"""Two `--fix` runs on one tree, and runs killed midway: no file is ever corrupted or half
written, and the cache a killed run leaves does not change any later result."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
FIXABLE = [
    "bug_tbp001_state_not_detached.py",
    "bug_tbp002_partial_detach.py",
    "bug_tbp003_detach_result_discarded.py",
    "bug_tbp006_loss_accumulated_with_graph.py",
    "bug_tbp008_data_instead_of_detach.py",
    "bug_tbp014_detach_inplace_on_view.py",
]
COPIES = 8  # of each fixture: enough files that a run is still writing when it is killed
FIX = ["--fix", "--unsafe-fixes", "--jobs", "2"]


def tbptt_lint(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tbptt_lint", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Its own process group, so that a kill reaches the worker processes too, as a kill
        # of a terminal's job or of a CI step does.
        start_new_session=True,
    )


def finished(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def make_tree(root: Path) -> dict[str, str]:
    """The tree to fix: COPIES packages of the fixable fixtures. Returns path -> original."""
    originals = {}
    for copy in range(COPIES):
        package = root / f"pkg{copy}"
        package.mkdir(parents=True)
        for name in FIXABLE:
            target = package / name
            shutil.copy(FIXTURES / name, target)
            originals[str(target.relative_to(root))] = target.read_text()
    (root / ".git").mkdir()
    return originals


@pytest.fixture(scope="module")
def fixed_texts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each fixture as one uninterrupted `--fix` run leaves it."""
    root = tmp_path_factory.mktemp("reference")
    for name in FIXABLE:
        shutil.copy(FIXTURES / name, root / name)
    code, out, err = finished(tbptt_lint(*FIX, "--no-cache", ".", cwd=root))
    assert code in (0, 1) and "error:" not in err, out + err
    texts = {name: (root / name).read_text() for name in FIXABLE}
    for name in FIXABLE:
        assert texts[name] != (FIXTURES / name).read_text(), name
    return texts


def assert_every_file_whole(root: Path, originals: dict[str, str], fixed: dict[str, str]) -> int:
    """Every file is either untouched or completely fixed, and parses. Returns how many were
    fixed."""
    done = 0
    for relative, original in originals.items():
        text = (root / relative).read_text()
        ast.parse(text, filename=relative)
        expected = fixed[Path(relative).name]
        assert text in (original, expected), f"{relative} is neither the original nor fixed"
        done += text == expected
    return done


def test_two_fix_runs_at_once_leave_every_file_fixed(tmp_path, fixed_texts):
    originals = make_tree(tmp_path)
    first = tbptt_lint(*FIX, "--no-cache", ".", cwd=tmp_path)
    second = tbptt_lint(*FIX, "--no-cache", ".", cwd=tmp_path)
    results = [finished(first), finished(second)]

    for code, out, err in results:
        assert code in (0, 1), out + err
        assert "internal error" not in err and "Traceback" not in err, err
    assert assert_every_file_whole(tmp_path, originals, fixed_texts) == len(originals)
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".py"]
    assert leftovers == [], leftovers


def first_change(root: Path, originals: dict[str, str], timeout: float = 120) -> None:
    """Return as soon as one file of the tree differs from its original."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for relative, original in originals.items():
            try:
                if (root / relative).read_text() != original:
                    return
            except FileNotFoundError:  # between unlink and rename on some systems
                return
        time.sleep(0.002)
    pytest.fail("the --fix run wrote nothing")


@pytest.mark.parametrize("when", ["while analysing", "while writing"])
def test_a_killed_fix_run_leaves_whole_files_and_a_usable_cache(tmp_path, fixed_texts, when):
    originals = make_tree(tmp_path)
    run = tbptt_lint(*FIX, ".", cwd=tmp_path)
    if when == "while writing":
        first_change(tmp_path, originals)
    else:
        time.sleep(0.8)
    os.killpg(run.pid, signal.SIGKILL)
    run.communicate(timeout=60)

    fixed = assert_every_file_whole(tmp_path, originals, fixed_texts)
    if when == "while analysing":
        assert fixed == 0
    else:
        assert fixed >= 1

    # What the killed run cached changes nothing: a cached and an uncached lint agree.
    def report(*extra: str) -> list[dict]:
        code, out, err = finished(
            tbptt_lint("--output-format", "json", "--unsafe-fixes", *extra, ".", cwd=tmp_path)
        )
        assert code in (0, 1), err
        return sorted((d["filename"], d["location"]["row"], d["code"]) for d in json.loads(out))  # type: ignore[return-value]

    assert report() == report("--no-cache")
    # Fixing again finishes the job, and clears any temporary file the kill left behind.
    code, out, err = finished(tbptt_lint(*FIX, ".", cwd=tmp_path))
    assert code in (0, 1), out + err
    assert assert_every_file_whole(tmp_path, originals, fixed_texts) == len(originals)
    assert list(tmp_path.rglob("*.tbptt-lint-tmp")) == []
