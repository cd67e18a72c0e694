"""`tbptt-lint server`: the Language Server Protocol over stdio, on pygls.

Every analysis runs on one worker thread, so the event loop keeps answering while a large file
is checked, and the workspace caches are touched by one thread only. Each document has at most
one analysis running; changes arriving meanwhile are folded into one rerun on the newest text,
so a burst of edits never builds a queue, and a result for an outdated version is dropped.

While the user types, a syntax error is expected: the last diagnostics stay up and TBP900 is
shown only on save, or once the error has stayed for `syntaxErrorDelayMs`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from tbptt_lint import __version__
from tbptt_lint.catalog import BY_CODE as CATALOG_BY_CODE
from tbptt_lint.diagnostics import SAFE, Diagnostic, Edit, Fix
from tbptt_lint.integrations.server.convert import (
    Lines,
    diagnostic_range,
    text_edit,
    to_lsp_diagnostic,
    whole_document_edit,
    workspace_edit,
)
from tbptt_lint.integrations.server.worker import AnalysisCancelled, Worker
from tbptt_lint.integrations.server.workspace import (
    CONFIG_FILE_NAMES,
    Analysis,
    WorkspaceLinter,
    add_noqa,
)
from tbptt_lint.notebooks import NotebookSource, edit_in_cell, notebook_from_cells, python_lines

NAME = "tbptt-lint"
FIX_ALL_KIND = "source.fixAll.tbptt-lint"
DEFAULT_DEBOUNCE_S = 0.15
NOT_PYTHON_SUFFIXES = frozenset({".toml", ".md", ".ipynb", ".cfg", ".ini", ".txt", ".json"})
DEFAULT_SYNTAX_ERROR_DELAY_S = 2.0
logger = logging.getLogger(__name__)


@dataclass
class DocumentState:
    """Where one open document's analysis stands."""

    timer: asyncio.Task[None] | None = None
    syntax_timer: asyncio.TimerHandle | None = None
    running: bool = False
    # A change arrived while an analysis ran: run again on the newest text when it ends.
    rerun: bool = False
    rerun_final: bool = False
    # The newest finished analysis, and the document version it was computed for.
    analysis: Analysis | None = None
    version: int | None = None
    snapshot: Snapshot | None = None
    # What was last published while the document parsed (by document: a notebook's cells),
    # kept up while the user types.
    shown: dict[str, list[types.Diagnostic]] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    """What one analysis reads: a text document, or a notebook's code cells as one program."""

    uri: str
    version: int | None
    path: Path
    text: str
    notebook: NotebookSource | None = None
    # For a notebook: each code cell's number (counting every cell, from 1), document URI,
    # text and version.
    cells: tuple[tuple[int, str, str, int | None], ...] = ()

    def documents(self) -> list[tuple[str, str, int | None, int | None]]:
        """(uri, text, version, cell number) of each document diagnostics are published to."""
        if self.notebook is None:
            return [(self.uri, self.text, self.version, None)]
        return [(uri, text, version, number) for number, uri, text, version in self.cells]


@dataclass(frozen=True)
class DocumentView:
    """One document's part of an analysis: a text document's, or a notebook cell's."""

    uri: str
    text: str
    diagnostics: list[Diagnostic]
    snapshot: Snapshot
    cell: int | None = None

    @property
    def python_text(self) -> str:
        """The text as Python (a cell's IPython syntax blanked)."""
        if self.cell is None:
            return self.text
        return "".join(f"{line}\n" for line in python_lines(self.text.splitlines()))

    def edits(self, fix: Fix) -> list[Edit] | None:
        """The fix's edits in this document's lines; None when they leave it."""
        notebook = self.snapshot.notebook
        if notebook is None:
            return list(fix.edits)
        placed = [edit_in_cell(edit, notebook) for edit in fix.edits]
        if any(cell != self.cell for cell, _ in placed):
            return None
        return [edit for _, edit in placed]


class TbpttLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            NAME,
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            notebook_document_sync=types.NotebookDocumentSyncOptions(
                notebook_selector=[
                    types.NotebookDocumentFilterWithCells(
                        cells=[types.NotebookCellLanguage(language="python")],
                        notebook="jupyter-notebook",
                    )
                ],
                save=True,
            ),
        )
        self.linter = WorkspaceLinter()
        self.worker = Worker()
        self.documents: dict[str, DocumentState] = {}
        self.debounce_s = DEFAULT_DEBOUNCE_S
        self.shown_errors: set[str] = set()
        self.syntax_error_delay_s = DEFAULT_SYNTAX_ERROR_DELAY_S

    # --- settings from the client ---------------------------------------------------------

    def configure(self, options: Any) -> None:
        if not isinstance(options, dict):
            return
        debounce = options.get("debounceMs")
        if isinstance(debounce, (int, float)) and debounce >= 0:
            self.debounce_s = debounce / 1000
        delay = options.get("syntaxErrorDelayMs")
        if isinstance(delay, (int, float)) and delay >= 0:
            self.syntax_error_delay_s = delay / 1000

    @property
    def encoding(self) -> str:
        return str(self.workspace.position_encoding or "utf-16")

    def lines(self, text: str) -> Lines:
        return Lines(text, self.encoding)

    def log(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        self.window_log_message(types.LogMessageParams(kind, message))

    # --- scheduling -------------------------------------------------------------------------

    def state(self, uri: str) -> DocumentState:
        return self.documents.setdefault(uri, DocumentState())

    def target(self, uri: str) -> str:
        """The URI analysed for a document: its notebook's for a notebook cell."""
        notebook = self.workspace.get_notebook_document(cell_uri=uri)
        return notebook.uri if notebook is not None else uri

    def snapshot(self, uri: str) -> Snapshot | None:
        """The text of an open document or notebook now; None once closed."""
        path = Path(to_fs_path(uri) or uri)
        notebook = self.workspace.get_notebook_document(notebook_uri=uri)
        if notebook is not None:
            cells = []
            for number, cell in enumerate(notebook.cells, start=1):
                document = self.workspace.text_documents.get(cell.document)
                if cell.kind == types.NotebookCellKind.Code and document is not None:
                    cells.append((number, cell.document, document.source, document.version))
            program = notebook_from_cells((number, text) for number, _, text, _ in cells)
            return Snapshot(uri, notebook.version, path, program.text, program, tuple(cells))
        document = self.workspace.text_documents.get(uri)
        if document is None or self.target(uri) != uri:
            return None
        # A client that sends every file (configuration, Markdown) gets nothing for them.
        if document.language_id not in (None, "python") or path.suffix in NOT_PYTHON_SUFFIXES:
            return None
        return Snapshot(uri, document.version, path, document.source)

    def open_targets(self) -> list[str]:
        notebooks = list(self.workspace.notebook_documents)
        texts = [uri for uri in self.workspace.text_documents if self.target(uri) == uri]
        return texts + notebooks

    def schedule(self, uri: str, delay: float, final: bool) -> None:
        """Analyse `uri` after `delay` seconds, superseding what was scheduled before.
        `final`: a syntax error is reported now (open, save) rather than after a delay."""
        state = self.state(uri)
        if state.timer is not None:
            state.timer.cancel()
        if state.syntax_timer is not None:
            state.syntax_timer.cancel()
            state.syntax_timer = None
        # The run under way reads an older text: stop it rather than wait for it.
        self.worker.cancel(uri)
        state.timer = asyncio.get_running_loop().create_task(self._later(uri, delay, final))

    async def _later(self, uri: str, delay: float, final: bool) -> None:
        if delay:
            await asyncio.sleep(delay)
        await self.run_analysis(uri, final)

    async def run_analysis(self, uri: str, final: bool) -> None:
        state = self.state(uri)
        if state.running:
            state.rerun = True
            state.rerun_final = state.rerun_final or final
            return
        state.running = True
        try:
            while True:
                snapshot = self.snapshot(uri)
                if snapshot is None:  # closed meanwhile
                    return
                analysis = await self.analyse(snapshot, key=uri)
                if state.rerun:
                    final = final or state.rerun_final
                    state.rerun = state.rerun_final = False
                    continue
                current = self.snapshot(uri)
                if analysis is None or current is None or current.version != snapshot.version:
                    return  # a newer change has its own analysis scheduled
                state.analysis, state.snapshot = analysis, snapshot
                self.publish(snapshot, analysis, final)
                return
        finally:
            state.running = False

    async def analyse(self, snapshot: Snapshot, key: str | None = None) -> Analysis | None:
        """The analysis of `snapshot`, on the worker thread; None when a newer text for `key`
        cancelled it. A crash is logged and gives an empty analysis: one document's bug in
        tbptt-lint must not take the server down."""
        try:
            return await self.worker.run(
                key, self.linter.analyse, snapshot.path, snapshot.text, snapshot.notebook
            )
        except AnalysisCancelled:
            return None
        except Exception as error:  # noqa: BLE001 - logged, answered with no diagnostics
            self.log(
                f"tbptt-lint: internal error while checking {snapshot.path}: "
                f"{type(error).__name__}: {error}\n{traceback.format_exc()}",
                types.MessageType.Error,
            )
            return Analysis(snapshot.text, notebook=snapshot.notebook)

    def publish(self, snapshot: Snapshot, analysis: Analysis, final: bool) -> None:
        state = self.state(snapshot.uri)
        for warning in analysis.warnings:
            self.log(warning, types.MessageType.Warning)
        if analysis.config_error is not None and analysis.config_error not in self.shown_errors:
            # Shown once: a pop-up on every keystroke would be worse than the broken file.
            self.shown_errors.add(analysis.config_error)
            self.window_show_message(
                types.ShowMessageParams(types.MessageType.Error, analysis.config_error)
            )
        keep_shown = analysis.has_syntax_error and not final
        if keep_shown:
            # Mid-typing: keep what was shown; report the error only if it stays.
            state.syntax_timer = asyncio.get_running_loop().call_later(
                self.syntax_error_delay_s, self.schedule, snapshot.uri, 0, True
            )
        for uri, text, version, cell in snapshot.documents():
            if keep_shown:
                diagnostics = state.shown.get(uri, [])
            else:
                lines = self.lines(text)
                diagnostics = [
                    to_lsp_diagnostic(d, lines, uri, related=cell is None)
                    for d in analysis.diagnostics
                    if d.cell == cell
                ]
                if not analysis.has_syntax_error:
                    state.shown[uri] = diagnostics
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
            )

    async def view(self, uri: str) -> DocumentView | None:
        """What the analysis of the document as it is now says about `uri` (a text document
        or a notebook cell), computed if the last one is outdated."""
        target = self.target(uri)
        snapshot = self.snapshot(target)
        if snapshot is None:
            return None
        state = self.state(target)
        analysis = state.analysis
        if analysis is None or state.snapshot is None or state.snapshot != snapshot:
            analysis = await self.analyse(snapshot)
            if analysis is None:
                return None
        for document, text, _, cell in snapshot.documents():
            if document == uri:
                diagnostics = [d for d in analysis.diagnostics if d.cell == cell]
                return DocumentView(uri, text, diagnostics, snapshot, cell)
        return None

    def reanalyse_open_documents(self) -> None:
        for uri in self.open_targets():
            self.schedule(uri, 0, final=True)

    async def on_disk_change(self, path: Path, created_or_deleted: bool) -> None:
        await self.worker.run(None, self.linter.file_changed, path, created_or_deleted)


server = TbpttLanguageServer()


@server.feature(types.INITIALIZE)
def initialize(ls: TbpttLanguageServer, params: types.InitializeParams) -> None:
    ls.configure(params.initialization_options)
    options = params.initialization_options
    # `"incremental": false` checks every file whole on each change (the benchmark's "before").
    incremental = not (isinstance(options, dict) and options.get("incremental") is False)
    roots = [
        Path(to_fs_path(folder.uri) or folder.uri) for folder in params.workspace_folders or ()
    ]
    if not roots and params.root_uri:
        roots = [Path(to_fs_path(params.root_uri) or params.root_uri)]
    ls.linter = WorkspaceLinter(roots, incremental=incremental)


@server.feature(types.INITIALIZED)
async def initialized(ls: TbpttLanguageServer, params: types.InitializedParams) -> None:
    watched = ls.client_capabilities.workspace
    dynamic = (
        watched is not None
        and watched.did_change_watched_files is not None
        and watched.did_change_watched_files.dynamic_registration
    )
    if not dynamic:
        return
    # Configuration files and Python modules (helpers of the open files) changed on disk.
    watchers = [
        types.FileSystemWatcher(glob_pattern=f"**/{name}") for name in CONFIG_FILE_NAMES
    ] + [types.FileSystemWatcher(glob_pattern="**/*.py")]
    registration = types.Registration(
        id="tbptt-lint-watched-files",
        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
        register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers),
    )
    try:
        await ls.client_register_capability_async(
            types.RegistrationParams(registrations=[registration])
        )
    except Exception as error:  # noqa: BLE001 - the server works without file watching
        ls.log(f"tbptt-lint: cannot watch files: {error}", types.MessageType.Warning)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: TbpttLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.schedule(ls.target(params.text_document.uri), 0, final=True)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: TbpttLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.schedule(ls.target(params.text_document.uri), ls.debounce_s, final=False)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
async def did_save(ls: TbpttLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    uri = params.text_document.uri
    path = Path(to_fs_path(uri) or uri)
    await ls.on_disk_change(path, created_or_deleted=False)
    if path.name in CONFIG_FILE_NAMES or path.suffix == ".py":
        # New settings, or a helper module saved: every open file may read differently.
        ls.reanalyse_open_documents()
    else:
        ls.schedule(ls.target(uri), 0, final=True)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: TbpttLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    forget(ls, uri)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


def forget(ls: TbpttLanguageServer, uri: str) -> None:
    ls.linter.forget(Path(to_fs_path(uri) or uri))
    state = ls.documents.pop(uri, None)
    if state is not None:
        if state.timer is not None:
            state.timer.cancel()
        if state.syntax_timer is not None:
            state.syntax_timer.cancel()


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
async def did_change_watched_files(
    ls: TbpttLanguageServer, params: types.DidChangeWatchedFilesParams
) -> None:
    for change in params.changes:
        path = Path(to_fs_path(change.uri) or change.uri)
        await ls.on_disk_change(path, change.type != types.FileChangeType.Changed)
    ls.reanalyse_open_documents()


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def did_change_configuration(
    ls: TbpttLanguageServer, params: types.DidChangeConfigurationParams
) -> None:
    settings = params.settings
    if isinstance(settings, dict):
        ls.configure(settings.get("tbptt-lint", settings))


@server.feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)
def notebook_did_open(ls: TbpttLanguageServer, params: types.DidOpenNotebookDocumentParams) -> None:
    ls.schedule(params.notebook_document.uri, 0, final=True)


@server.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
def notebook_did_change(
    ls: TbpttLanguageServer, params: types.DidChangeNotebookDocumentParams
) -> None:
    ls.schedule(params.notebook_document.uri, ls.debounce_s, final=False)


@server.feature(types.NOTEBOOK_DOCUMENT_DID_SAVE)
def notebook_did_save(ls: TbpttLanguageServer, params: types.DidSaveNotebookDocumentParams) -> None:
    ls.schedule(params.notebook_document.uri, 0, final=True)


@server.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)
def notebook_did_close(
    ls: TbpttLanguageServer, params: types.DidCloseNotebookDocumentParams
) -> None:
    forget(ls, params.notebook_document.uri)
    for cell in params.cell_text_documents:
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=cell.uri, diagnostics=[])
        )


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL_KIND],
        resolve_provider=False,
    ),
)
async def code_action(
    ls: TbpttLanguageServer, params: types.CodeActionParams
) -> list[types.CodeAction] | None:
    uri = params.text_document.uri
    view = await ls.view(uri)
    if view is None:
        return None
    lines = ls.lines(view.text)
    only = params.context.only
    actions: list[types.CodeAction] = []
    if _wanted(only, types.CodeActionKind.QuickFix):
        for diagnostic in view.diagnostics:
            if _overlaps(diagnostic_range(diagnostic, lines), params.range):
                actions.extend(_quick_fixes(diagnostic, view, lines))
    # Fixing a whole notebook from one cell is left to `tbptt-lint --fix`.
    if (
        _wanted(only, FIX_ALL_KIND)
        and view.cell is None
        and any(d.fix is not None and d.fix.applicability == SAFE for d in view.diagnostics)
    ):
        path = view.snapshot.path
        try:
            fixed = await ls.worker.run(None, ls.linter.fix_all, path, view.text, False)
        except Exception as error:  # noqa: BLE001 - logged; the other actions still work
            ls.log(f"tbptt-lint: cannot fix {path}: {error}", types.MessageType.Error)
            fixed = None
        if fixed is not None:
            actions.append(
                types.CodeAction(
                    title="tbptt-lint: fix all safely fixable problems",
                    kind=FIX_ALL_KIND,
                    edit=workspace_edit(uri, [whole_document_edit(fixed, lines)]),
                )
            )
    return actions


def _wanted(only: Sequence[str] | None, kind: str) -> bool:
    """Whether the client asked for actions of `kind` (`only` lists kinds or their parents)."""
    if not only:
        return True
    return any(kind == asked or kind.startswith(f"{asked}.") for asked in only)


def _overlaps(a: types.Range, b: types.Range) -> bool:
    def key(position: types.Position) -> tuple[int, int]:
        return position.line, position.character

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)


def _quick_fixes(
    diagnostic: Diagnostic, view: DocumentView, lines: Lines
) -> list[types.CodeAction]:
    uri = view.uri
    lsp_diagnostic = to_lsp_diagnostic(diagnostic, lines, uri, related=False)
    actions = []
    fix = diagnostic.fix
    edits = view.edits(fix) if fix is not None else None
    if fix is not None and edits:
        safe = fix.applicability == SAFE
        label = "" if safe else " (unsafe: may change what the code does)"
        actions.append(
            types.CodeAction(
                title=f"{diagnostic.code}: {fix.message}{label}",
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[lsp_diagnostic],
                is_preferred=safe,
                edit=workspace_edit(uri, [text_edit(edit, lines) for edit in edits]),
            )
        )
    with_noqa = add_noqa(view.python_text, diagnostic.line, diagnostic.code)
    if with_noqa is not None:
        line = lines.lines[diagnostic.line - 1]
        new_line = with_noqa.splitlines()[diagnostic.line - 1]
        edit = types.TextEdit(
            types.Range(
                types.Position(diagnostic.line - 1, 0),
                lines.position(diagnostic.line, len(line) + 1),
            ),
            new_line,
        )
        actions.append(
            types.CodeAction(
                title=f"{diagnostic.code}: add `# noqa: {diagnostic.code}`",
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[lsp_diagnostic],
                edit=workspace_edit(uri, [edit]),
            )
        )
    return actions


@server.feature(types.TEXT_DOCUMENT_HOVER)
async def hover(ls: TbpttLanguageServer, params: types.HoverParams) -> types.Hover | None:
    view = await ls.view(params.text_document.uri)
    if view is None:
        return None
    lines = ls.lines(view.text)
    point = types.Range(params.position, params.position)
    under = [d for d in view.diagnostics if _overlaps(diagnostic_range(d, lines), point)]
    if not under:
        return None
    codes = list(dict.fromkeys(d.code for d in under))
    return types.Hover(
        contents=types.MarkupContent(
            kind=types.MarkupKind.Markdown,
            value="\n\n---\n\n".join(rule_explanation(code) for code in codes),
        ),
        range=diagnostic_range(under[0], lines),
    )


def rule_explanation(code: str) -> str:
    """The rule's docstring: its summary and short explanation, and a link to its page."""
    from tbptt_lint.diagnostics import rule_url
    from tbptt_lint.rules import RULES_BY_CODE

    rule = RULES_BY_CODE.get(code)
    if rule is None:  # TBP900 and TBP901: about the file, not a rule class
        info = CATALOG_BY_CODE.get(code)
        name = f" `{info.name}`" if info is not None else ""
        return f"**{code}**{name}\n\n[Rule page]({rule_url(code)})"
    body = inspect.cleandoc(rule.__doc__ or rule.summary())
    return f"**{code}** `{rule.name}`\n\n{body}\n\n[Rule page]({rule_url(code)})"


def run() -> int:
    """Serve over stdin and stdout until the client says exit."""
    server.start_io()
    return 0
