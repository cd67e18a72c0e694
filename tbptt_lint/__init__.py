"""tbptt-lint: find truncated-backpropagation-through-time bugs in PyTorch training loops.

The Python API (see the README's "Python API"): `lint_paths` and `lint_source` lint files or
text with `Settings` and give `Diagnostic`s; `trace` (the `trace` extra, imports torch) watches
a training run. Each is imported on first use, so that `import tbptt_lint` stays cheap."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from tbptt_lint.diagnostics import Diagnostic
    from tbptt_lint.engine import LintResult, lint_paths, lint_source
    from tbptt_lint.settings import Settings
    from tbptt_lint.tracer import trace

_LAZY = {
    "Diagnostic": "tbptt_lint.diagnostics",
    "LintResult": "tbptt_lint.engine",
    "Settings": "tbptt_lint.settings",
    "lint_paths": "tbptt_lint.engine",
    "lint_source": "tbptt_lint.engine",
    # The tracer needs torch; the linter core must import without it.
    "trace": "tbptt_lint.tracer",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tbptt_lint' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "Diagnostic",
    "LintResult",
    "Settings",
    "__version__",
    "lint_paths",
    "lint_source",
    "trace",
]
