"""What a renderer needs to know about the run besides the diagnostics."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tbptt_lint.diagnostics import Diagnostic, applicable


@dataclass(frozen=True)
class ReportContext:
    files_checked: int = 0
    show_source: bool = True
    color: bool = False
    # Print diagnostics and nothing else (no summary line), as ruff's --quiet.
    quiet: bool = False
    # Findings fixed by this run; None when the run did not fix.
    fixed: int | None = None
    # Whether unsafe fixes count as applicable (--unsafe-fixes).
    unsafe_fixes: bool = False

    def applicable(self, diagnostic: Diagnostic) -> bool:
        return applicable(diagnostic.fix, self.unsafe_fixes)

    cwd: Path = field(default_factory=Path.cwd)

    def display_path(self, path: str) -> str:
        """The path relative to the working directory when it lies below it, as ruff prints."""
        absolute = os.path.abspath(path)
        try:
            relative = os.path.relpath(absolute, self.cwd)
        except ValueError:  # another drive on Windows
            return path
        return path if relative.startswith("..") else relative
