"""Run one `fixtures/*.py` script under the tracer and compare with what its comments expect.

A fixture defines `K1`, `K2`, a zero-argument `train()`, optionally `EXPECT_RAISES`, and
`# expect: TBPnnn` comments. The tracer should find a wrong stride or horizon exactly when one
of the expected codes is a rule whose bug is visible at runtime (`Rule.runtime_visible`).
Shared by the test suite and `benchmarks/cuda_check.py`.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from tbptt_lint import testing


def expected_codes(path: Path) -> set[str]:
    return testing.expected_codes(path.read_text(encoding="utf-8"))


def runtime_visible(codes: set[str]) -> bool:
    return bool(codes & runtime_visible_codes())


def runtime_visible_codes() -> set[str]:
    """Codes of rules with `runtime_visible = True`."""
    try:
        from tbptt_lint.rules import RULES_BY_CODE
    except ImportError:
        # The rules need libcst, which a GPU machine may lack (benchmarks/cuda_check.py runs
        # there): read the two class attributes from the rule sources instead.
        return _visible_codes_from_sources()
    return {code for code, rule in RULES_BY_CODE.items() if rule.runtime_visible}


def _visible_codes_from_sources() -> set[str]:
    rules_dir = Path(__file__).resolve().parents[1] / "rules"
    codes: set[str] = set()
    for path in rules_dir.glob("tbp*.py"):
        text = path.read_text(encoding="utf-8")
        code = re.search(r'^\s+code = "(TBP\d+)"', text, re.MULTILINE)
        if code and re.search(r"^\s+runtime_visible = True", text, re.MULTILINE):
            codes.add(code.group(1))
    return codes


def load_module(path: Path) -> ModuleType:
    """Import a script by path under a private name (the tracer runs user code by design)."""
    stem = re.sub(r"\W", "_", path.stem)
    name = f"_tbptt_fixture_{stem}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


@dataclass
class FixtureResult:
    name: str
    k1: int
    k2: int
    strides: list[int]
    horizons: list[int]
    expect_pass: bool  # no runtime-visible code expected
    passed: bool  # assert_tbptt(K1, K2) passed
    raised: str | None  # the exception text, if train() raised
    raise_ok: bool  # raised exactly when EXPECT_RAISES says so, with that text
    node_names: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def agrees(self) -> bool:
        return self.passed == self.expect_pass and self.raise_ok and not self.internal_errors


def run_fixture(path: Path) -> FixtureResult:
    from tbptt_lint.tracer import trace

    start = time.perf_counter()
    module = load_module(path)
    expect_raises: str | None = getattr(module, "EXPECT_RAISES", None)
    raised: str | None = None
    with trace(None) as t:
        try:
            module.train()
        except Exception as exc:  # noqa: BLE001 - fixtures raise on purpose
            raised = f"{type(exc).__name__}: {exc}"
    if expect_raises is None:
        raise_ok = raised is None
    else:
        raise_ok = raised is not None and expect_raises in raised
    calls = t.calls
    problems = t.check(module.K1, module.K2)
    names: set[str] = set()
    for call in calls:
        if call.snapshot is not None:
            names.update(node.label for node in call.snapshot.nodes)
    codes = expected_codes(path)
    return FixtureResult(
        name=path.name,
        k1=module.K1,
        k2=module.K2,
        strides=[c.stride for c in calls],
        horizons=[c.horizon for c in calls],
        expect_pass=not runtime_visible(codes),
        passed=not problems,
        raised=raised,
        raise_ok=raise_ok,
        node_names=names,
        problems=problems,
        findings=t.findings,
        internal_errors=t.internal_errors,
        seconds=time.perf_counter() - start,
    )
