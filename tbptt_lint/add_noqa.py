"""`--add-noqa`: add `# noqa: TBPxxx` to every line with a finding, as `ruff --add-noqa` does.

A line that already has a noqa comment gets the new codes merged into it (its other codes,
other tools' included, are kept; the list is sorted), so a code is never added twice. A line
whose comment could not be read back as a directive (one ending in a backslash continuation or
inside a multi-line string) is left alone: the file is written only if it still parses and
every added directive is seen where the finding is.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tbptt_lint.atomic import ChangedOnDisk, replace_content
from tbptt_lint.diagnostics import Diagnostic
from tbptt_lint.fixer import _encoding
from tbptt_lint.noqa import LINE_NOQA, UNSUPPRESSIBLE_CODES, parse_directives
from tbptt_lint.sources import SourceUnavailable, decode_source, read_bytes

LINE_ENDING = re.compile(r"\r\n|\r|\n")
# Lines as Python counts them (str.splitlines also splits at form feeds and the like).
SOURCE_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


@dataclass
class AddNoqaResult:
    # Lines that got a new or extended directive.
    added: int = 0
    warnings: list[str] = field(default_factory=list)


def add_noqa(diagnostics: Iterable[Diagnostic]) -> AddNoqaResult:
    """Add the directives for `diagnostics` (those left after selection and existing noqa)."""
    codes_by_line: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for diagnostic in diagnostics:
        # Notebook lines are cell-relative, and the parser's verdict cannot be silenced.
        if diagnostic.cell is None and diagnostic.code not in UNSUPPRESSIBLE_CODES:
            codes_by_line[diagnostic.path][diagnostic.line].add(diagnostic.code)
    result = AddNoqaResult()
    for path in sorted(codes_by_line):
        _add_to_file(Path(path), codes_by_line[path], result)
    return result


def _add_to_file(path: Path, codes_by_line: dict[int, set[str]], result: AddNoqaResult) -> None:
    try:
        data = read_bytes(path)
        source = decode_source(data)
    except SourceUnavailable:
        return  # reported as TBP900/TBP901 already
    lines = SOURCE_LINE.findall(source)
    directives = parse_directives(source).by_line
    changed = 0
    for number, codes in sorted(codes_by_line.items()):
        if not 1 <= number <= len(lines):
            continue
        line = lines[number - 1]
        ending = LINE_ENDING.search(line)
        body = line[: ending.start()] if ending else line
        edited = _with_directive(body, codes, directives.get(number) is not None)
        if edited != body:
            lines[number - 1] = edited + (ending.group() if ending else "")
            changed += 1
    if not changed:
        return
    new_source = "".join(lines)
    if not _reads_back(source, new_source, codes_by_line):
        result.warnings.append(
            f"tbptt-lint: warning: {path}: noqa directives not added, a line with a finding "
            "cannot take a comment (a backslash continuation or a multi-line string)"
        )
        return
    try:
        replace_content(path, data, new_source.encode(_encoding(data)))
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


def _with_directive(body: str, codes: set[str], has_directive: bool) -> str:
    """The line with `codes` in its noqa comment (merged into the existing one, if any)."""
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
            return f"{body[: match.start()]}# noqa: {', '.join(merged)}{body[match.end() :]}"
    return f"{body.rstrip()}  # noqa: {', '.join(sorted(codes))}"


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
