"""tbptt-lint: find truncated-backpropagation-through-time bugs in PyTorch training loops."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from tbptt_lint.tracer import trace


def __getattr__(name: str) -> Any:
    # The tracer needs torch; the linter core must import without it.
    if name == "trace":
        from tbptt_lint.tracer import trace

        return trace
    raise AttributeError(f"module 'tbptt_lint' has no attribute {name!r}")


__all__ = ["__version__", "trace"]
