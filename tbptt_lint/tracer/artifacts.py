"""Write a trace's report (text and HTML), timeline and graph beside each other: what the
pytest plugin and the Lightning callback leave behind for a failed check."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tbptt_lint.tracer.session import Trace


def write_artifacts(trace: Trace, out: Path, stem: str) -> list[Path]:
    """`out/{stem}_report.txt`, `_report.html`, `_timeline.svg` and `_graph.svg` (or `.dot`
    where no renderer is installed): the paths written. Best effort: a file that cannot be
    written is left out, never raised for."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    text = out / f"{stem}_report.txt"
    try:
        text.write_text(trace.report(), encoding="utf-8")
        written.append(text)
    except Exception:  # noqa: BLE001 - artifacts are best effort
        pass
    for suffix, write in (
        ("_report.html", trace.save_report),
        ("_timeline.svg", trace.save_timeline),
        ("_graph.svg", trace.save_graph),
    ):
        path = out / f"{stem}{suffix}"
        try:
            write(path)
            written.append(path)
        except Exception:  # noqa: BLE001 - no renderer: fall back to DOT text
            if suffix == "_graph.svg":
                with contextlib.suppress(Exception):
                    written.append(trace.save_graph(out / f"{stem}_graph.dot"))
    return written
