"""The runtime tracer: run unchanged training code and measure each backward's horizon and stride.

Importing this package imports torch; the linter core never does.
"""

from __future__ import annotations

from tbptt_lint.tracer.records import (
    BackwardCall,
    BackwardKind,
    GraphNode,
    GraphSnapshot,
    NodeKind,
    StepRecord,
    TraceSummary,
)
from tbptt_lint.tracer.session import Trace, trace

__all__ = [
    "BackwardCall",
    "BackwardKind",
    "GraphNode",
    "GraphSnapshot",
    "NodeKind",
    "StepRecord",
    "Trace",
    "TraceSummary",
    "trace",
]
