"""The linter and the tracer agree on runnable mirrors of the real-code corpus.

Each mirror in `mirrors/` re-creates, in a few lines of our own, a pattern labelled in
`benchmarks/realworld/manifest/` (see LABELLING.md): a bug found in a public repository, or a
correct idiom that is easy to get wrong. A mirror is a fixture-format script (`fixtures/README.md`)
or a directory of modules whose `train.py` holds `train()`. The linter must report exactly the
`# expect:` lines, and the tracer must fail exactly the mirrors whose expected codes are visible
at runtime.

A `# tolerate: CODE` line may be reported or not (LABELLING.md: labels that are neither bug nor
false alarm). `KNOWN_MISSES` names the mirrors the linter still gets wrong; they run as strict
expected failures, so a fix that makes one pass fails the suite until its entry is removed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tbptt_lint.engine import lint_paths
from tbptt_lint.rules import RULES_BY_CODE
from tbptt_lint.settings import Settings

MIRRORS = Path(__file__).resolve().parent / "mirrors"
CASES = (
    sorted(p for p in MIRRORS.iterdir() if (p.suffix == ".py" or (p / "train.py").is_file()))
    if MIRRORS.is_dir()
    else []
)
ALL_RULES = Settings(select=("TBP",), extend_select=("TBP007",))


def files_of(mirror: Path) -> list[Path]:
    return [mirror] if mirror.is_file() else sorted(mirror.glob("*.py"))


def marked(mirror: Path, marker: str) -> set[tuple[str, str, int]]:
    found = set()
    for path in files_of(mirror):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if marker in line:
                codes = line.split(marker, 1)[1]
                found |= {(path.name, code.strip(), number) for code in codes.split(",")}
    return found


def expected(mirror: Path) -> set[tuple[str, str, int]]:
    return marked(mirror, "# expect:")


def tolerated(mirror: Path) -> set[tuple[str, str, int]]:
    return marked(mirror, "# tolerate:")


def linted(mirror: Path) -> set[tuple[str, str, int]]:
    root = mirror.parent if mirror.is_file() else mirror
    settings = Settings(
        select=ALL_RULES.select, extend_select=ALL_RULES.extend_select, project_root=root
    )
    result = lint_paths([mirror], settings, jobs=1)
    assert not result.internal_errors, result.internal_errors
    return {(Path(d.path).name, d.code, d.line) for d in result.diagnostics}


@contextmanager
def importable(directory: Path) -> Iterator[None]:
    """Let a multi-file mirror's train.py import its sibling modules, then forget them."""
    before = set(sys.modules)
    sys.path.insert(0, str(directory))
    try:
        yield
    finally:
        sys.path.remove(str(directory))
        for name in set(sys.modules) - before:
            module = sys.modules[name]
            if str(directory) in str(getattr(module, "__file__", "") or ""):
                del sys.modules[name]


# Mirror -> what the linter still gets wrong on it (see the issue "Right on real code").
KNOWN_MISSES: dict[str, str] = {
    "lm_compressive_microbatch_memory": "TBP011 missed",
    "r8_gblin_next_word_carried": "TBP001 missed: a decoder's own output fed back as its next "
    "input and carried from one batch into the next (`if 'next_word' in locals()`); the real "
    "file is found only through `word = check_cuda(word)`, a helper the run cannot see",
    "rt_atta2c_retain_graph_episode": "TBP005 missed",
    "rt_rlhive_drqn_burn_in": "TBP013 missed",
    "sf_lightning_tbptt_hiddens": "TBP001 missed",
}


def _linter_cases() -> list[object]:
    return [
        pytest.param(
            mirror,
            id=mirror.stem,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[mirror.stem])]
            if mirror.stem in KNOWN_MISSES
            else [],
        )
        for mirror in CASES
    ]


@pytest.mark.parametrize("mirror", _linter_cases())
def test_linter_reports_exactly_the_expected_lines(mirror: Path) -> None:
    assert linted(mirror) - tolerated(mirror) == expected(mirror)


def test_known_misses_name_mirrors() -> None:
    assert set(KNOWN_MISSES) <= {p.stem for p in CASES}


@pytest.mark.parametrize("mirror", CASES, ids=[p.stem for p in CASES])
def test_linter_and_tracer_agree(mirror: Path) -> None:
    pytest.importorskip("torch")
    from tbptt_lint.tracer.fixture_check import run_fixture

    script = mirror if mirror.is_file() else mirror / "train.py"
    with importable(script.parent) if mirror.is_dir() else _nothing():
        result = run_fixture(script)
    assert not result.internal_errors, result.internal_errors
    assert result.raise_ok, f"{mirror.name}: raised {result.raised!r}"
    runtime_codes = {code for _, code, _ in expected(mirror) if RULES_BY_CODE[code].runtime_visible}
    tracer_says_schedule_is_wrong = not result.passed
    assert bool(runtime_codes) == tracer_says_schedule_is_wrong, (
        f"{mirror.name}: expected {sorted(expected(mirror))}, tracer horizons "
        f"{result.horizons} strides {result.strides}: {result.problems}"
    )


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def test_every_mirror_runs_both_ways() -> None:
    kinds = {bool(expected(m)) for m in CASES}
    assert kinds == {True, False}, "mirrors of both buggy and clean code"
