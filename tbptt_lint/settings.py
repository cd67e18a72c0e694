"""Resolved settings: what to check and how. Loading them from files lives in config.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".env",
    "env",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".tbptt_lint_cache",
    "__pycache__",
    "__pypackages__",
    "build",
    "dist",
    "node_modules",
    "site-packages",
)


@dataclass(frozen=True)
class Settings:
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    # glob pattern -> codes or prefixes ignored in files matching it
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    # Codes or prefixes whose fixes may be applied (and are shown as available), less unfixable.
    fixable: tuple[str, ...] = ("TBP",)
    unfixable: tuple[str, ...] = ()
    # Apply the excludes to paths named on the command line too (pre-commit names files).
    force_exclude: bool = False
    # Extra functions that cut recurrent state, by qualified or bare name ("mylib.utils.cut").
    detach_functions: tuple[str, ...] = ()
    # Extra class names whose instances carry recurrent state ("mylib.nn.SRU").
    recurrent_modules: tuple[str, ...] = ()
    config_path: Path | None = None
    project_root: Path = field(default_factory=Path.cwd)
