"""The fuzzing harness: feed generated and mutated programs to the linter, collect failures.

Imported by basename (tests/ is not a package). Everything a worker process runs lives here, at
module level, so that a `spawn`/`forkserver` pool can pickle it.

What counts as a failure of one input (a program text):
- `check_source` raises anything but `SourceSyntaxError`;
- `lint_source` raises anything, or returns a code that is not a known rule code;
- a parse failure is not reported: the text that is parsed after the documented block reduction
  (top-level blocks that cannot hold a finding are blanked out) is rejected by Python's parser,
  yet no TBP900 comes back;
- valid Python is reported as a TBP900 (except for nesting deeper than libcst can parse);
- one call takes longer than `TIME_LIMIT_S` (a hang): SIGALRM interrupts it.
"""

from __future__ import annotations

import ast
import os
import random
import signal
import textwrap
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from tbptt_lint.analysis.api import SourceSyntaxError, check_source, may_hold_code_findings
from tbptt_lint.analysis.chunks import keep_blocks
from tbptt_lint.analysis.prefilter import may_hold_findings
from tbptt_lint.engine import lint_source
from tbptt_lint.rules import RULES_BY_CODE, SYNTAX_ERROR_CODE
from tbptt_lint.settings import Settings

EXAMPLES_ENV = "TBPTT_FUZZ_EXAMPLES"
TIME_LIMIT_S = 5.0
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
KNOWN_CODES = frozenset(RULES_BY_CODE)
# How many failing inputs one shard keeps (the first ones; the count is kept in full).
MAX_KEPT_FAILURES = 5
# Filled by the fuzz tests, printed at the end of the run: kind -> (programs, texts linted,
# seconds spent in the workers, inputs that hit KNOWN_BUGS); "wall" -> seconds from starting
# the pool to its last result.
STATS: dict[str, tuple[int, int, float, int]] = {}
WALL: dict[str, float] = {}
# The message of the one TBP900 that valid Python may get: deeper than libcst's parser recurses.
TOO_DEEP = "too deeply nested"
# Known bugs, each with a strict xfail regression test in test_fuzz_regressions.py: failures
# whose message holds one of these are counted apart and do not fail the fuzz run. Remove an
# entry when its regression test starts to pass.
KNOWN_BUGS: dict[str, str] = {}

# Generated code gets three chances to reach the analysis: as it is (the prefilter almost
# always drops it), with a backward call after it, and spliced into a training loop whose
# state is carried between windows.
TRAINING_LOOP = """\
import torch
import torch.nn as nn

rnn = nn.LSTM(8, 16)
hidden = None
for x, y in batches:
    out, hidden = rnn(x, hidden)
{body}
    loss = ((out - y) ** 2).mean()
    loss.backward()
"""


def examples_budget() -> int:
    """The number of generated programs asked for through the environment (0: fuzzing off)."""
    text = os.environ.get(EXAMPLES_ENV, "").strip()
    if not text:
        return 0
    try:
        return max(0, int(text))
    except ValueError:
        raise ValueError(f"{EXAMPLES_ENV} must be an integer, got {text!r}") from None


class Hang(BaseException):
    """One call ran past the time limit. A BaseException so that no `except Exception` in the
    code under test can swallow it."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block with `Hang` after `seconds` (SIGALRM, main thread only), and raise
    `Hang` afterwards too if it took longer (a call stuck in C code is only noticed then)."""
    use_alarm = (
        hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    )
    previous = None
    if use_alarm:

        def on_alarm(signum: int, frame: object) -> None:
            raise Hang(f"interrupted after {seconds} s")

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.perf_counter()
    try:
        yield
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - start
    if elapsed > seconds:
        raise Hang(f"took {elapsed:.1f} s")


def python_rejects(source: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ast.parse(source)
        except (SyntaxError, ValueError):  # ValueError: a NUL byte (Python 3.11)
            return True
        except (RecursionError, MemoryError):
            return False  # too deep for Python to say; no expectation either way
    return False


def check_one(source: str, settings: Settings | None = None, known_bugs: bool = True) -> str | None:
    """None when the linter behaves on `source`, else what went wrong (one paragraph).
    With `known_bugs`, a failure that is one of KNOWN_BUGS is None too."""
    problem = _check_one(source, settings or Settings())
    if known_bugs and problem is not None and any(key in problem for key in KNOWN_BUGS):
        return None
    return problem


def _check_one(source: str, settings: Settings) -> str | None:
    try:
        with time_limit(TIME_LIMIT_S), suppress(SourceSyntaxError):
            check_source(source, "fuzz.py", settings)
    except Hang as hang:
        return f"check_source hangs: {hang}"
    except Exception:  # noqa: BLE001 - any crash is the finding: reported with its traceback
        return "check_source raised:\n" + traceback.format_exc(limit=-8)
    try:
        with time_limit(TIME_LIMIT_S):
            diagnostics = lint_source(source, "fuzz.py", settings)
    except Hang as hang:
        return f"lint_source hangs: {hang}"
    except Exception:  # noqa: BLE001 - any crash is the finding: reported with its traceback
        return "lint_source raised:\n" + traceback.format_exc(limit=-8)
    codes = {diagnostic.code for diagnostic in diagnostics}
    if not codes <= KNOWN_CODES:
        return f"lint_source returned unknown codes {sorted(codes - KNOWN_CODES)}"
    syntax_errors = [d for d in diagnostics if d.code == SYNTAX_ERROR_CODE]
    # A file is read only when its code (not a docstring or a comment) may hold a finding:
    # only then are its syntax errors reported (README, "How the analysis works").
    if may_hold_code_findings(source):
        parsed_text = keep_blocks(source, may_hold_findings)
        if not syntax_errors and python_rejects(parsed_text) and python_rejects(source):
            return "a text Python rejects is linted without a TBP900"
    if syntax_errors and not python_rejects(source):
        wrong = [d for d in syntax_errors if TOO_DEEP not in d.message]
        if wrong:
            return f"valid Python reported as {wrong[0].code}: {wrong[0].message}"
    return None


def generated_variants(program: str) -> tuple[str, ...]:
    body = textwrap.indent(program, "    ", lambda line: True) if program.strip() else ""
    return (
        program,
        program + "\nloss.backward()\n",
        TRAINING_LOOP.format(body=body or "    pass"),
    )


@dataclass
class ShardResult:
    programs: int = 0  # inputs generated or mutated
    calls: int = 0  # texts checked (a generated program gives several)
    seconds: float = 0.0
    failures: int = 0
    known: int = 0  # failures that are KNOWN_BUGS
    kept: list[tuple[str, str]] = field(default_factory=list)  # (input, what went wrong)

    def record(self, source: str) -> None:
        self.calls += 1
        problem = check_one(source, known_bugs=False)
        if problem is not None and any(key in problem for key in KNOWN_BUGS):
            self.known += 1
        elif problem is not None:
            self.failures += 1
            if len(self.kept) < MAX_KEPT_FAILURES:
                self.kept.append((source, problem))


def run_hypothesmith(kind: str, seed: int, examples: int) -> ShardResult:
    """`examples` programs from hypothesmith (`kind`: "grammar" or "node"), with a fixed seed."""
    import hypothesmith
    from hypothesis import HealthCheck, Phase, given
    from hypothesis import seed as hypothesis_seed
    from hypothesis import settings as hypothesis_settings

    result = ShardResult()
    strategy = hypothesmith.from_grammar() if kind == "grammar" else hypothesmith.from_node()

    # Failures are collected rather than raised: hypothesmith's programs are already small,
    # and shrinking a hang would cost TIME_LIMIT_S per attempt.
    @hypothesis_seed(seed)
    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(strategy)
    def feed(program: str) -> None:
        result.programs += 1
        for variant in generated_variants(program):
            result.record(variant)

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarnings from compiling generated code
        feed()
    result.seconds = time.perf_counter() - start
    return result


# --- mutations of the fixtures ----------------------------------------------------------------


def _statement_bodies(source: str) -> list[list[ast.stmt]]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return []
    bodies = []
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if isinstance(body, list) and len(body) >= 2 and isinstance(body[0], ast.stmt):
                bodies.append(body)
    return bodies


def delete_line(source: str, rng: random.Random) -> str:
    lines = source.splitlines(keepends=True)
    if lines:
        del lines[rng.randrange(len(lines))]
    return "".join(lines)


def swap_statements(source: str, rng: random.Random) -> str:
    """Swap two adjacent statements of one block (whole lines); adjacent lines when the text
    no longer parses."""
    lines = source.splitlines(keepends=True)
    candidates = [
        (first, second)
        for body in _statement_bodies(source)
        for first, second in zip(body, body[1:], strict=False)
        if first.end_lineno is not None
        and first.end_lineno < second.lineno
        and second.end_lineno is not None
    ]
    if candidates:
        first, second = rng.choice(candidates)
        a = lines[first.lineno - 1 : first.end_lineno]
        gap = lines[first.end_lineno : second.lineno - 1]
        b = lines[second.lineno - 1 : second.end_lineno]
        lines[first.lineno - 1 : second.end_lineno] = b + gap + a
    elif len(lines) >= 2:
        i = rng.randrange(len(lines) - 1)
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
    return "".join(lines)


def reindent(source: str, rng: random.Random) -> str:
    """Change one line's indentation: deeper, shallower, by one space, or with a tab."""
    lines = source.splitlines(keepends=True)
    if not lines:
        return source
    i = rng.randrange(len(lines))
    stripped = lines[i].lstrip(" \t")
    indent = lines[i][: len(lines[i]) - len(stripped)]
    choice = rng.randrange(5)
    if choice == 0:
        indent += "    "
    elif choice == 1:
        indent = indent[:-4]
    elif choice == 2:
        indent += " "
    elif choice == 3:
        indent = indent.replace("    ", "\t", 1) or "\t"
    else:
        indent = " " * rng.randrange(13)
    lines[i] = indent + stripped
    return "".join(lines)


def truncate(source: str, rng: random.Random) -> str:
    return source[: rng.randrange(len(source) + 1)]


MUTATIONS: tuple[Callable[[str, random.Random], str], ...] = (
    delete_line,
    swap_statements,
    reindent,
    truncate,
)


def mutate(source: str, rng: random.Random) -> str:
    """One to three mutations in a row; truncation, which destroys the most, only last."""
    steps = rng.randint(1, 3)
    for step in range(steps):
        choices = MUTATIONS if step == steps - 1 else MUTATIONS[:-1]
        source = rng.choice(choices)(source, rng)
    return source


def fixture_sources() -> list[tuple[str, str]]:
    return [(path.name, path.read_text(encoding="utf-8")) for path in sorted(FIXTURES.glob("*.py"))]


def run_mutations(seed: int, count: int) -> ShardResult:
    """`count` mutants of the fixtures, round robin, from `random.Random(seed)`."""
    result = ShardResult()
    rng = random.Random(seed)
    fixtures = fixture_sources()
    start = time.perf_counter()
    for number in range(count):
        _, source = fixtures[number % len(fixtures)]
        result.programs += 1
        result.record(mutate(source, rng))
    result.seconds = time.perf_counter() - start
    return result


def run_shard(task: tuple[str, int, int]) -> ShardResult:
    kind, seed, count = task
    if kind == "mutations":
        return run_mutations(seed, count)
    return run_hypothesmith(kind, seed, count)
