"""Jupyter notebooks as one program: code cells joined in notebook order, as ruff lints them.

State flows across cells (a hidden state made in one cell is carried by a loop in another), so
the analysis sees all code cells at once. IPython syntax (`%magic`, `!shell`, `x = !ls`,
`obj?`) is blanked line by line, and cells run by a non-Python cell magic (`%%bash`) are
blanked whole, so line numbers stay put. Findings are mapped back to (cell, line in cell).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tbptt_lint.diagnostics import Edit, Fix
from tbptt_lint.edits import apply_fixes

# Cell magics whose body is still Python.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "python"})
IPYTHON_LINE = re.compile(r"^\s*(?:[%!?]|\w[\w.]*\s*=\s*[%!])|\?\s*$")


class NotebookError(Exception):
    """The notebook is not valid JSON or not a notebook. Positions are 1-based."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True)
class NotebookSource:
    text: str
    # For each line of `text` (0-based): the notebook cell (1-based, counting every cell) and
    # the line within that cell (1-based).
    positions: tuple[tuple[int, int], ...]

    def locate(self, line: int) -> tuple[int, int]:
        """(cell, line in cell) of a 1-based line of `text`."""
        if 1 <= line <= len(self.positions):
            return self.positions[line - 1]
        return self.positions[-1] if self.positions else (1, line)


def read_notebook(data: bytes) -> NotebookSource:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise NotebookError(f"notebook is not valid UTF-8: {error.reason}") from None
    except json.JSONDecodeError as error:
        raise NotebookError(
            f"notebook is not valid JSON: {error.msg}", error.lineno, error.colno
        ) from None
    cells = document.get("cells") if isinstance(document, dict) else None
    if not isinstance(cells, list):
        raise NotebookError("not a notebook: no list of cells")
    code_cells = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        code_cells.append((number, "".join(source) if isinstance(source, list) else str(source)))
    return notebook_from_cells(code_cells)


def notebook_from_cells(cells: Iterable[tuple[int, str]]) -> NotebookSource:
    """The program of a notebook's code cells, given as (cell number, text) in notebook order
    (cell numbers count every cell, from 1): from a file, or from an editor's cells."""
    lines: list[str] = []
    positions: list[tuple[int, int]] = []
    for number, text in cells:
        for line_number, line in enumerate(python_lines(text.splitlines()), start=1):
            lines.append(line)
            positions.append((number, line_number))
    return NotebookSource("".join(f"{line}\n" for line in lines), tuple(positions))


def python_lines(cell: list[str]) -> list[str]:
    """The cell's lines with IPython-only syntax replaced by empty lines."""
    if cell and cell[0].lstrip().startswith("%%"):
        magic = cell[0].lstrip()[2:].split(maxsplit=1)[0] if cell[0].strip() != "%%" else ""
        if magic not in PYTHON_CELL_MAGICS:
            return [""] * len(cell)
        cell = ["", *cell[1:]]
    return ["" if IPYTHON_LINE.search(line) else line for line in cell]


def fix_notebook(data: bytes, notebook: NotebookSource, fixes: Sequence[Fix]) -> tuple[bytes, int]:
    """The notebook with the fixes applied inside its code cells, and how many were applied.

    Edits are placed in the joined program; each is moved into its cell (a fix whose edits
    span two cells is skipped) and applied to the cell's own text, magics included, so every
    other byte of the cell stays. The JSON is written back with the notebook's indentation."""
    document = json.loads(data.decode("utf-8-sig"))
    by_cell: dict[int, list[Fix]] = {}
    for fix in fixes:
        placed = [edit_in_cell(edit, notebook) for edit in fix.edits]
        cells = {cell for cell, _ in placed}
        if len(cells) != 1:
            continue
        (cell,) = cells
        if cell is None:
            continue
        by_cell.setdefault(cell, []).append(
            Fix(fix.message, fix.applicability, tuple(e for _, e in placed))
        )
    applied = 0
    for number, cell_fixes in by_cell.items():
        cell = document["cells"][number - 1]
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        fixed, done = apply_fixes(text, cell_fixes)
        applied += len(done)
        cell["source"] = fixed.splitlines(keepends=True) if isinstance(source, list) else fixed
    return _dump(document, data), applied


def edit_in_cell(edit: Edit, notebook: NotebookSource) -> tuple[int | None, Edit]:
    """The cell an edit of the program falls in, and the edit in that cell's lines (None and
    the edit unchanged when it spans two cells)."""
    start_cell, start_line = notebook.locate(edit.location[0])
    end_cell, end_line = notebook.locate(edit.end_location[0])
    if start_cell != end_cell:
        return None, edit
    moved = Edit(edit.content, (start_line, edit.location[1]), (end_line, edit.end_location[1]))
    return start_cell, moved


def _dump(document: object, original: bytes) -> bytes:
    match = re.search(rb"^\{\r?\n( +)\"", original)
    indent = len(match.group(1)) if match else 1
    text = json.dumps(document, indent=indent, ensure_ascii=False) + "\n"
    if b"\r\n" in original:
        text = text.replace("\n", "\r\n")
    return text.encode("utf-8")
