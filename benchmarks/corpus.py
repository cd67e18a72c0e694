"""The corpus the linter benchmarks run on: the installed torch package, found without
importing torch."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def default_corpus() -> Path:
    spec = importlib.util.find_spec("torch")  # finds the package; does not import it
    if spec is None or spec.origin is None:
        sys.exit("torch is not installed; pass a PATH to lint")
    return Path(spec.origin).parent


def count(corpus: Path) -> tuple[int, int]:
    """Python files and lines under `corpus`."""
    files = lines = 0
    for path in corpus.rglob("*.py"):
        files += 1
        with path.open("rb") as handle:
            lines += sum(1 for _ in handle)
    return files, lines
