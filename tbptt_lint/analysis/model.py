"""The loop model of one file (stub)."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.diagnostics import Finding


class FileModel:
    def findings_for(self, code: str) -> Iterator[Finding]:
        return iter(())
