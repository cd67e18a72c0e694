"""The files a run that names files (pre-commit, editors) also reads for their helpers.

A run on the whole project knows a `repackage_hidden` defined in `utils.py`; a pre-commit run
on the staged `train.py` alone did not, and reported its state as never cut. So when a run
names files only, phase 1 also reads the modules of their project that they import (and that
those import, a few levels deep), found by module name as Python would find them. Only
imported modules are read: they are where a named file's helpers come from, and a file that
nothing imports cannot lend its names to the named files by accident. Their findings are not
reported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from tbptt_lint.discovery import Discovery, walk_project
from tbptt_lint.settings import Settings

# Imports followed from the named files: a helper that calls a helper of a third file.
IMPORT_DEPTH = 3
# A project larger than this is not walked for context (a huge monorepo: list such helpers
# in `detach-functions`).
MAX_PROJECT_FILES = 20_000
FROM_IMPORT = re.compile(r"(?m)^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+\(?([^\n#)]*)")
PLAIN_IMPORT = re.compile(r"(?m)^[ \t]*import[ \t]+([^\n#]+)")


def context_root(settings: Settings) -> Path | None:
    """The project the files of a run belong to: the configuration file's directory, or the
    enclosing git repository of the working directory. None when neither is known."""
    if settings.config_path is not None:
        return settings.config_path.parent
    start = Path.cwd()
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return None


def project_context(
    paths: Sequence[Path | str],
    discovery: Discovery,
    settings: Settings,
    module_name_for: Callable[[Path], str],
) -> list[Path]:
    """The project modules that the named files import, directly or a few levels deep. Empty
    for a run that names a directory, or outside a known project."""
    if not discovery.files or not all(Path(path).is_file() for path in paths):
        return []
    root = context_root(settings)
    if root is None:
        return []
    root = root.resolve()
    named = {path.resolve() for path in discovery.files}
    if not any(path.is_relative_to(root) for path in named):
        return []
    project = walk_project(root, settings, MAX_PROJECT_FILES)
    if project is None:
        return []
    return imported_files(named, modules_by_name(project, module_name_for), module_name_for)


def modules_by_name(
    project: Iterable[Path], module_name_for: Callable[[Path], str]
) -> dict[str, list[Path]]:
    """The project's files by dotted module name (several scripts can share one)."""
    by_module: dict[str, list[Path]] = {}
    for path in project:
        by_module.setdefault(module_name_for(path), []).append(path)
    return by_module


def imported_files(
    named: Iterable[Path],
    by_module: dict[str, list[Path]],
    module_name_for: Callable[[Path], str],
    read: Callable[[Path], str | None] | None = None,
) -> list[Path]:
    """The files of `by_module` that the (resolved) `named` files import, a few levels deep.
    `read` gives a file's text (default: from disk; the language server passes the editor's
    unsaved text of the named file)."""
    read = read or _read
    named = set(named)
    chosen: dict[Path, None] = {}
    frontier = list(named)
    for _ in range(IMPORT_DEPTH):
        found: list[Path] = []
        for importer in frontier:
            text = read(importer)
            if text is None:
                continue
            for module in imported_modules(text, module_name_for(importer)):
                for path in _located(by_module.get(module, ()), importer):
                    resolved = path.resolve()
                    if resolved not in named and resolved not in chosen:
                        chosen[resolved] = None
                        found.append(path)
        frontier = found
    return list(chosen)


def imported_modules(text: str, importer: str) -> set[str]:
    """Module names an importing module's text may load: `import a.b` gives a and a.b,
    `from a import b` gives a and a.b (b may be a module), relative imports resolved against
    the importer's package."""
    modules: set[str] = set()
    package = importer.rpartition(".")[0]
    for dots, name, imported in FROM_IMPORT.findall(text):
        if dots:
            # One dot is the importer's package, each further dot one package up.
            base_parts = package.split(".") if package else []
            base_parts = base_parts[: len(base_parts) - (len(dots) - 1)]
            base = ".".join(part for part in [*base_parts, name] if part)
        else:
            base = name
        if base:
            modules |= _with_parents(base)
        for item in imported.split(","):
            item = item.strip().split(" ")[0]
            if item.isidentifier():
                modules.add(f"{base}.{item}" if base else item)
    for clause in PLAIN_IMPORT.findall(text):
        for item in clause.split(","):
            item = item.strip().split(" ")[0]
            if item and all(part.isidentifier() for part in item.split(".")):
                modules |= _with_parents(item)
    return modules


def _with_parents(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[: i + 1]) for i in range(len(parts))}


def _located(candidates: Iterable[Path], importer: Path) -> list[Path]:
    """The file an import finds: where several files share a module name (scripts in
    different directories), the one beside the importer, else none (it cannot be told)."""
    candidates = list(candidates)
    if len(candidates) <= 1:
        return candidates
    beside = [path for path in candidates if path.parent.resolve() == importer.parent.resolve()]
    return beside[:1]


def _read(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (OSError, ValueError):
        return None
