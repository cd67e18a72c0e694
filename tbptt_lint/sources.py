"""Reading and decoding the files to lint: bytes as Python decodes them (PEP 263 cookie or BOM,
else UTF-8), a notebook's code cells as one program, and a path's module name. Failures are
`SourceUnavailable` with the code they are reported under (TBP901 for I/O, TBP900 for bad
encoding)."""

from __future__ import annotations

import os
import re
import stat
import tokenize
from pathlib import Path

from tbptt_lint.catalog import IO_ERROR_CODE, SYNTAX_ERROR_CODE
from tbptt_lint.notebooks import NotebookError, NotebookSource, read_notebook

NOTEBOOK_SUFFIX = ".ipynb"
CODING_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=]")


class SourceUnavailable(Exception):
    """The file could not be turned into text: an I/O error (TBP901) or bad encoding (TBP900)."""

    def __init__(self, code: str, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line
        self.column = column


def decode_source(data: bytes) -> str:
    """Decode as Python does (PEP 263 cookie or BOM, else UTF-8). Raises SourceUnavailable."""
    lines = iter(data.splitlines(keepends=True))
    try:
        encoding, _ = tokenize.detect_encoding(lambda: next(lines, b""))
    except SyntaxError as error:
        message = str(error)
        if "unknown encoding" in message or "encoding problem" in message:
            first_two = data.split(b"\n", 2)[:2]
            line = next((i for i, text in enumerate(first_two, 1) if CODING_COOKIE.match(text)), 1)
            raise SourceUnavailable(SYNTAX_ERROR_CODE, f"syntax error: {message}", line) from None
        # Undecodable bytes in the first two lines: let UTF-8 decoding locate them.
        encoding = "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        line = data.count(b"\n", 0, error.start) + 1
        prefix = data[line_start : error.start].decode(encoding, errors="replace")
        name = "utf-8" if encoding == "utf-8-sig" else encoding
        bad_byte = f"byte 0x{data[error.start]:02x}"
        raise SourceUnavailable(
            SYNTAX_ERROR_CODE,
            f"syntax error: file is not valid {name}: {error.reason} ({bad_byte})",
            line,
            len(prefix) + 1,
        ) from None
    except LookupError as error:
        raise SourceUnavailable(SYNTAX_ERROR_CODE, f"syntax error: {error}") from None


def read_bytes(path: Path) -> bytes:
    """The file's bytes. Raises SourceUnavailable."""
    try:
        # O_NONBLOCK so that a FIFO named on the command line cannot hang the run.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise SourceUnavailable(IO_ERROR_CODE, "Not a regular file")
            with os.fdopen(descriptor, "rb", closefd=False) as handle:
                return handle.read()
        finally:
            os.close(descriptor)
    except OSError as error:
        raise SourceUnavailable(IO_ERROR_CODE, error.strerror or str(error)) from None


def read_document(path: Path) -> tuple[str, NotebookSource | None]:
    """The file's text, and for a notebook the map back to its cells. Raises
    SourceUnavailable."""
    return decode_document(path, read_bytes(path))


def decode_document(path: Path, data: bytes) -> tuple[str, NotebookSource | None]:
    if path.suffix != NOTEBOOK_SUFFIX:
        return decode_source(data), None
    try:
        notebook = read_notebook(data)
    except NotebookError as error:
        raise SourceUnavailable(
            SYNTAX_ERROR_CODE, f"syntax error: {error.message}", error.line, error.column
        ) from None
    return notebook.text, notebook


def read_or_decode(path: Path, data: bytes | None) -> tuple[str, NotebookSource | None]:
    """`read_document`, or the same for bytes already read."""
    return read_document(path) if data is None else decode_document(path, data)


def read_source(path: Path) -> str:
    """The file's text (a notebook's code cells joined). Raises SourceUnavailable."""
    return read_document(path)[0]


def module_name_for(path: Path) -> str:
    """Dotted module name, climbing through packages (directories with __init__.py)."""
    path = path.absolute()
    parts = [] if path.stem == "__init__" else [path.stem]
    directory = path.parent
    while (directory / "__init__.py").is_file() and directory.parent != directory:
        parts.append(directory.name)
        directory = directory.parent
    return ".".join(reversed(parts)) or path.stem
