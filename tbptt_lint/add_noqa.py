"""`--add-noqa`: add `# noqa: TBPxxx` to every line with a finding, as `ruff --add-noqa` does.

A line that already has a noqa comment gets the new codes merged into it (its other codes,
other tools' included, are kept; the list is sorted), so a code is never added twice. A line
whose comment could not be read back as a directive (one ending in a backslash continuation or
inside a multi-line string) is left alone: the file is written only if it still parses and
every added directive is seen where the finding is.

`--add-noqa=REASON` writes REASON after the codes (`# noqa: TBP001 carried on purpose`), as
ruff does; merged into a directive, it takes the place of the text that followed its codes.
In a notebook (.ipynb) each directive goes into the finding's cell, which keeps its magics;
the JSON is written back with the notebook's indentation, as `--fix` writes it.
"""

from __future__ import annotations

import ast
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tbptt_lint.atomic import ChangedOnDisk, replace_content
from tbptt_lint.diagnostics import Diagnostic
from tbptt_lint.fixer import _encoding
from tbptt_lint.noqa import LINE_NOQA, UNSUPPRESSIBLE_CODES, parse_directives
from tbptt_lint.notebooks import _dump, python_lines
from tbptt_lint.sources import SourceUnavailable, decode_source, read_bytes

LINE_ENDING = re.compile(r"\r\n|\r|\n")
# Lines as Python counts them (str.splitlines also splits at form feeds and the like).
SOURCE_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


@dataclass
class AddNoqaResult:
    # Lines that got a new or extended directive.
    added: int = 0
    warnings: list[str] = field(default_factory=list)


def add_noqa(diagnostics: Iterable[Diagnostic], reason: str | None = None) -> AddNoqaResult:
    """Add the directives for `diagnostics` (those left after selection and existing noqa),
    with `reason` after the codes when one is given."""
    codes_by_line: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    # Notebooks: by cell, then by line in the cell.
    codes_by_cell: dict[str, dict[int, dict[int, set[str]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(set))
    )
    for diagnostic in diagnostics:
        # The parser's verdict cannot be silenced.
        if diagnostic.code in UNSUPPRESSIBLE_CODES:
            continue
        if diagnostic.cell is None:
            codes_by_line[diagnostic.path][diagnostic.line].add(diagnostic.code)
        else:
            codes_by_cell[diagnostic.path][diagnostic.cell][diagnostic.line].add(diagnostic.code)
    result = AddNoqaResult()
    for path in sorted({*codes_by_line, *codes_by_cell}):
        if path in codes_by_cell:
            _add_to_notebook(Path(path), codes_by_cell[path], reason, result)
        else:
            _add_to_file(Path(path), codes_by_line[path], reason, result)
    return result


def _add_to_notebook(
    path: Path,
    codes_by_cell: dict[int, dict[int, set[str]]],
    reason: str | None,
    result: AddNoqaResult,
) -> None:
    try:
        data = read_bytes(path)
        document = json.loads(data.decode("utf-8-sig"))
        cells = document["cells"]
    except (SourceUnavailable, ValueError, KeyError, TypeError):
        return  # reported as TBP900/TBP901 already
    changed = 0
    for number, codes_by_line in sorted(codes_by_cell.items()):
        cell = cells[number - 1] if 1 <= number <= len(cells) else None
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        # The cell as Python (magics blanked), where directives are read.
        as_python = "".join(f"{line}\n" for line in python_lines(text.splitlines()))
        new_text, count = _with_directives(text, as_python, codes_by_line, reason)
        if not count:
            continue
        new_python = "".join(f"{line}\n" for line in python_lines(new_text.splitlines()))
        if not _reads_back(as_python, new_python, codes_by_line):
            result.warnings.append(
                f"tbptt-lint: warning: {path}: noqa directives not added, a line with a finding "
                f"in cell {number} cannot take a comment (a backslash continuation or a "
                "multi-line string)"
            )
            return
        cell["source"] = (
            new_text.splitlines(keepends=True) if isinstance(source, list) else new_text
        )
        changed += count
    if changed:
        _write(path, data, _dump(document, data), changed, result)


def _add_to_file(
    path: Path, codes_by_line: dict[int, set[str]], reason: str | None, result: AddNoqaResult
) -> None:
    try:
        data = read_bytes(path)
        source = decode_source(data)
    except SourceUnavailable:
        return  # reported as TBP900/TBP901 already
    new_source, changed = _with_directives(source, source, codes_by_line, reason)
    if not changed:
        return
    if not _reads_back(source, new_source, codes_by_line):
        result.warnings.append(
            f"tbptt-lint: warning: {path}: noqa directives not added, a line with a finding "
            "cannot take a comment (a backslash continuation or a multi-line string)"
        )
        return
    _write(path, data, new_source.encode(_encoding(data)), changed, result)


def _with_directives(
    source: str, as_python: str, codes_by_line: dict[int, set[str]], reason: str | None
) -> tuple[str, int]:
    """`source` with the codes added on their lines, and how many lines changed. Directives
    are read in `as_python` (the same lines, a notebook cell's magics blanked)."""
    lines = SOURCE_LINE.findall(source)
    directives = parse_directives(as_python).by_line
    changed = 0
    for number, codes in sorted(codes_by_line.items()):
        if not 1 <= number <= len(lines):
            continue
        line = lines[number - 1]
        ending = LINE_ENDING.search(line)
        body = line[: ending.start()] if ending else line
        edited = _with_directive(body, codes, directives.get(number) is not None, reason)
        if edited != body:
            lines[number - 1] = edited + (ending.group() if ending else "")
            changed += 1
    return "".join(lines), changed


def _write(path: Path, data: bytes, new_data: bytes, changed: int, result: AddNoqaResult) -> None:
    try:
        replace_content(path, data, new_data)
    except ChangedOnDisk:
        result.warnings.append(
            f"tbptt-lint: warning: {path}: noqa directives not added, the file changed meanwhile"
        )
        return
    except OSError as error:
        result.warnings.append(
            f"tbptt-lint: warning: {path}: cannot add noqa directives: {error.strerror or error}"
        )
        return
    result.added += changed


def _with_directive(
    body: str, codes: set[str], has_directive: bool, reason: str | None = None
) -> str:
    """The line with `codes` in its noqa comment (merged into the existing one, if any), and
    `reason` after the codes when given."""
    after = f" {reason}" if reason else ""
    if has_directive:
        match = _last_noqa(body)
        if match is not None:
            named = match.group("codes")
            if named is None:
                return body  # a blanket noqa already covers everything
            existing = [code for code in re.split(r"[\s,]+", named.strip()) if code]
            merged = sorted({*existing, *codes}, key=str.upper)
            if {code.upper() for code in existing} >= codes:
                return body
            rest = body[match.end() :]
            if reason:
                # The reason replaces the directive's old one, as in ruff; a comment of its
                # own after it (`# type: ignore`) stays.
                other = rest.find("#")
                rest = f"{after}  {rest[other:]}" if other >= 0 else after
            return f"{body[: match.start()]}# noqa: {', '.join(merged)}{rest}"
    return f"{body.rstrip()}  # noqa: {', '.join(sorted(codes))}{after}"


def _last_noqa(body: str) -> re.Match[str] | None:
    matches = list(LINE_NOQA.finditer(body))
    return matches[-1] if matches else None


def _reads_back(old: str, new: str, codes_by_line: dict[int, set[str]]) -> bool:
    """The edit kept the file parsing (when it did) and put each code where noqa reads it."""
    try:
        ast.parse(old)
    except (SyntaxError, ValueError):
        parsed_before = False
    else:
        parsed_before = True
    if parsed_before:
        try:
            ast.parse(new)
        except (SyntaxError, ValueError):
            return False
    directives = parse_directives(new).by_line
    for number, codes in codes_by_line.items():
        directive = directives.get(number)
        if directive is None or not all(directive.covers(code) for code in codes):
            return False
    return True
