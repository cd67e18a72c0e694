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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from tbptt_lint import __version__
from tbptt_lint.diagnostics import SAFE, Diagnostic
from tbptt_lint.server.convert import (
    Lines,
    diagnostic_range,
    text_edit,
    to_lsp_diagnostic,
    whole_document_edit,
    workspace_edit,
)
from tbptt_lint.server.workspace import CONFIG_FILE_NAMES, Analysis, WorkspaceLinter, add_noqa

NAME = "tbptt-lint"
FIX_ALL_KIND = "source.fixAll.tbptt-lint"
DEFAULT_DEBOUNCE_S = 0.15
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
    # What was last published while the document parsed, kept up while the user types.
    shown: list[types.Diagnostic] = field(default_factory=list)


class TbpttLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            NAME,
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
        )
        self.linter = WorkspaceLinter()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tbptt-lint")
        self.documents: dict[str, DocumentState] = {}
        self.debounce_s = DEFAULT_DEBOUNCE_S
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

    def schedule(self, uri: str, delay: float, final: bool) -> None:
        """Analyse `uri` after `delay` seconds, superseding what was scheduled before.
        `final`: a syntax error is reported now (open, save) rather than after a delay."""
        state = self.state(uri)
        if state.timer is not None:
            state.timer.cancel()
        if state.syntax_timer is not None:
            state.syntax_timer.cancel()
            state.syntax_timer = None
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
                document = self.workspace.text_documents.get(uri)
                if document is None:  # closed meanwhile
                    return
                version, text = document.version, document.source
                analysis = await self.analyse(uri, text)
                if state.rerun:
                    final = final or state.rerun_final
                    state.rerun = state.rerun_final = False
                    continue
                current = self.workspace.text_documents.get(uri)
                if current is None or current.version != version:
                    return  # a newer change has its own analysis scheduled
                state.analysis, state.version = analysis, version
                self.publish(uri, version, analysis, final)
                return
        finally:
            state.running = False

    async def analyse(self, uri: str, text: str) -> Analysis:
        """The analysis of `text`, on the worker thread; a crash is logged and gives an empty
        analysis: one document's bug in tbptt-lint must not take the server down."""
        path = Path(to_fs_path(uri) or uri)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, self.linter.analyse, path, text)
        except Exception as error:  # noqa: BLE001 - logged, answered with no diagnostics
            self.log(
                f"tbptt-lint: internal error while checking {path}: "
                f"{type(error).__name__}: {error}\n{traceback.format_exc()}",
                types.MessageType.Error,
            )
            return Analysis(text)

    def publish(self, uri: str, version: int | None, analysis: Analysis, final: bool) -> None:
        state = self.state(uri)
        for warning in analysis.warnings:
            self.log(warning, types.MessageType.Warning)
        if analysis.has_syntax_error and not final:
            # Mid-typing: keep what was shown; report the error only if it stays.
            diagnostics = state.shown
            state.syntax_timer = asyncio.get_running_loop().call_later(
                self.syntax_error_delay_s, self.schedule, uri, 0, True
            )
        else:
            lines = self.lines(analysis.text)
            diagnostics = [to_lsp_diagnostic(d, lines, uri) for d in analysis.diagnostics]
            if not analysis.has_syntax_error:
                state.shown = diagnostics
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
        )

    async def current_analysis(self, uri: str) -> tuple[Analysis, int | None] | None:
        """The analysis of the document as it is now, computed if the last one is outdated."""
        document = self.workspace.text_documents.get(uri)
        if document is None:
            return None
        state = self.state(uri)
        if state.analysis is not None and state.version == document.version:
            return state.analysis, document.version
        version, text = document.version, document.source
        analysis = await self.analyse(uri, text)
        return analysis, version

    def reanalyse_open_documents(self) -> None:
        for uri in list(self.workspace.text_documents):
            self.schedule(uri, 0, final=True)

    async def on_disk_change(self, path: Path, created_or_deleted: bool) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            self.executor, self.linter.file_changed, path, created_or_deleted
        )


server = TbpttLanguageServer()


@server.feature(types.INITIALIZE)
def initialize(ls: TbpttLanguageServer, params: types.InitializeParams) -> None:
    ls.configure(params.initialization_options)
    roots = [
        Path(to_fs_path(folder.uri) or folder.uri) for folder in params.workspace_folders or ()
    ]
    if not roots and params.root_uri:
        roots = [Path(to_fs_path(params.root_uri) or params.root_uri)]
    ls.linter = WorkspaceLinter(roots)


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
    ls.schedule(params.text_document.uri, 0, final=True)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: TbpttLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri, ls.debounce_s, final=False)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
async def did_save(ls: TbpttLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    uri = params.text_document.uri
    path = Path(to_fs_path(uri) or uri)
    await ls.on_disk_change(path, created_or_deleted=False)
    if path.name in CONFIG_FILE_NAMES or path.suffix == ".py":
        # New settings, or a helper module saved: every open file may read differently.
        ls.reanalyse_open_documents()
    else:
        ls.schedule(uri, 0, final=True)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: TbpttLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    state = ls.documents.pop(uri, None)
    if state is not None:
        if state.timer is not None:
            state.timer.cancel()
        if state.syntax_timer is not None:
            state.syntax_timer.cancel()
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


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
    found = await ls.current_analysis(uri)
    if found is None:
        return None
    analysis, _ = found
    lines = ls.lines(analysis.text)
    only = params.context.only
    actions: list[types.CodeAction] = []
    if _wanted(only, types.CodeActionKind.QuickFix):
        for diagnostic in analysis.diagnostics:
            if _overlaps(diagnostic_range(diagnostic, lines), params.range):
                actions.extend(_quick_fixes(diagnostic, analysis.text, lines, uri))
    if _wanted(only, FIX_ALL_KIND) and any(
        d.fix is not None and d.fix.applicability == SAFE for d in analysis.diagnostics
    ):
        path = Path(to_fs_path(uri) or uri)
        loop = asyncio.get_running_loop()
        try:
            fixed = await loop.run_in_executor(
                ls.executor, ls.linter.fix_all, path, analysis.text, False
            )
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


def _wanted(only: list[str] | None, kind: str) -> bool:
    """Whether the client asked for actions of `kind` (`only` lists kinds or their parents)."""
    if not only:
        return True
    return any(kind == asked or kind.startswith(f"{asked}.") for asked in only)


def _overlaps(a: types.Range, b: types.Range) -> bool:
    def key(position: types.Position) -> tuple[int, int]:
        return position.line, position.character

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)


def _quick_fixes(
    diagnostic: Diagnostic, text: str, lines: Lines, uri: str
) -> list[types.CodeAction]:
    lsp_diagnostic = to_lsp_diagnostic(diagnostic, lines, uri, related=False)
    actions = []
    fix = diagnostic.fix
    if fix is not None and fix.edits:
        safe = fix.applicability == SAFE
        label = "" if safe else " (unsafe: may change what the code does)"
        actions.append(
            types.CodeAction(
                title=f"{diagnostic.code}: {fix.message}{label}",
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[lsp_diagnostic],
                is_preferred=safe,
                edit=workspace_edit(uri, [text_edit(edit, lines) for edit in fix.edits]),
            )
        )
    with_noqa = add_noqa(text, diagnostic.line, diagnostic.code)
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
    found = await ls.current_analysis(params.text_document.uri)
    if found is None:
        return None
    analysis, _ = found
    lines = ls.lines(analysis.text)
    point = types.Range(params.position, params.position)
    under = [d for d in analysis.diagnostics if _overlaps(diagnostic_range(d, lines), point)]
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
    if rule is None:
        return f"**{code}**"
    body = inspect.cleandoc(rule.__doc__ or rule.summary())
    return f"**{code}** `{rule.name}`\n\n{body}\n\n[Rule page]({rule_url(code)})"


def run() -> int:
    """Serve over stdin and stdout until the client says exit."""
    server.start_io()
    return 0
