"""Results do not depend on the cache or on the number of processes, on a generated tree of
packages whose files import cut helpers from one another."""

from __future__ import annotations

import random
from pathlib import Path

from tbptt_lint.cache import LintCache
from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings

FIXTURES = sorted((Path(__file__).resolve().parents[2] / "fixtures").glob("*.py"))
HELPERS = {
    "cut": (
        "def {name}(h):\n    if isinstance(h, tuple):\n"
        "        return tuple({name}(v) for v in h)\n    return h.detach()\n"
    ),
    "pretend": "def {name}(h):\n    return h\n",
}
LOOP = (
    "from pkg{package}.helpers import {helper}\n\n"
    "hidden = None\n"
    "for x, y in batches:\n"
    "    hidden = {helper}(hidden)\n"
    "    out, hidden = model(x, hidden)\n"
    "    loss = criterion(out, y)\n"
    "    loss.backward()\n"
)


def generate(root: Path, seed: int) -> None:
    chooser = random.Random(seed)
    for package in range(4):
        directory = root / f"pkg{package}"
        directory.mkdir(parents=True)
        (directory / "__init__.py").write_text("", encoding="utf-8")
        helpers = "".join(
            template.format(name=f"{kind}_{package}") + "\n" for kind, template in HELPERS.items()
        )
        (directory / "helpers.py").write_text(helpers, encoding="utf-8")
        for number in range(12):
            if chooser.random() < 0.5:
                text = chooser.choice(FIXTURES).read_text(encoding="utf-8")
            else:
                kind = chooser.choice(sorted(HELPERS))
                other = chooser.randrange(4)
                text = LOOP.format(package=other, helper=f"{kind}_{other}")
            (directory / f"module_{number}.py").write_text(text, encoding="utf-8")


def outcome(root: Path, jobs: int, cache: LintCache | None) -> list[tuple[str, int, int, str]]:
    result = lint_paths([root], Settings(project_root=root), jobs=jobs, cache=cache)
    assert not result.internal_errors
    return [(d.path, d.line, d.column, d.code) for d in result.diagnostics]


def test_cache_and_processes_do_not_change_results(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    generate(root, seed=7)
    settings = Settings(project_root=root)
    baseline = outcome(root, 1, None)
    codes = {code for _, _, _, code in baseline}
    assert "TBP001" in codes and len(baseline) >= 10
    assert outcome(root, 2, None) == baseline
    cache = LintCache(tmp_path / "cache", settings)
    assert outcome(root, 2, cache) == baseline  # cold
    assert outcome(root, 1, LintCache(tmp_path / "cache", settings)) == baseline  # warm
    assert outcome(root, 2, LintCache(tmp_path / "cache", settings)) == baseline  # warm, pool
