"""`tbptt-lint server` end to end, through a real LSP client (pytest-lsp) over stdio.

One server serves the module; each test works on files of its own directory.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, make_test_lsp_client  # noqa: E402

# Long enough that a syntax error while typing is never reported by the delay in these tests.
OPTIONS = {"debounceMs": 5, "syntaxErrorDelayMs": 600_000}
WAIT_S = 20.0
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

DISCARDED_DETACH = """\
def train(model, data, opt):
    hidden = None
    for x, y in data:
        out, hidden = model(x, hidden)
        loss = (out - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        hidden.detach()
"""
ASSIGNED_DETACH = DISCARDED_DETACH.replace(
    "        hidden.detach()", "        hidden = hidden.detach()"
)
LEAKING_LOOP = """\
def leak(model, batches):
    hidden = None
    for x in batches:
        out, hidden = model(x, hidden)
        out.sum().backward()
"""
NOTEBOOK_LOOP_CELL = """\
%matplotlib inline
for x, y in data:
    out, hidden = model(x, hidden)
    loss = (out - y).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    hidden.detach()
"""
CUTTING_HELPER = "def repackage_hidden(h):\n    return h.detach()\n"
PASS_THROUGH_HELPER = "def repackage_hidden(h):\n    return h\n"
LOOP_WITH_HELPER = """\
from utils import repackage_hidden


def train(model, batches, opt):
    hidden = None
    for x, y in batches:
        hidden = repackage_hidden(hidden)
        out, hidden = model(x, hidden)
        loss = (out - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
"""
# Replaces check_source with one that crashes on files named crash.py, and on slow.py marked
# "# SLOW" (in a string: a group's source keeps no comment outside functions) says it started
# (a file beside it) and then works for a minute; then serves.
CRASHING_SERVER = """\
import time
from pathlib import Path
import tbptt_lint.integrations.server.workspace as workspace
real = workspace.check_source
def check_source(source, path, *args):
    if path.endswith("crash.py"):
        raise RuntimeError("boom")
    if path.endswith("slow.py") and "# SLOW" in source:
        Path(path + ".started").write_text("")
        for _ in range(6000):
            time.sleep(0.01)
    return real(source, path, *args)
workspace.check_source = check_source
from tbptt_lint.integrations.server.lsp import run
run()
"""


def recording_client() -> LanguageClient:
    """pytest-lsp's client, also keeping every publishDiagnostics with its version."""
    client = make_test_lsp_client()
    history: list[types.PublishDiagnosticsParams] = []
    features = client.protocol.fm.features
    original = features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS]

    def record(params: types.PublishDiagnosticsParams) -> object:
        history.append(params)
        return original(params)

    features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = record
    client.published = history  # type: ignore[attr-defined]
    registrations: list[types.Registration] = []

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams) -> None:
        registrations.extend(params.registrations)

    client.registrations = registrations  # type: ignore[attr-defined]
    return client


async def start(client: LanguageClient, root: Path) -> None:
    await client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                workspace=types.WorkspaceClientCapabilities(
                    did_change_watched_files=types.DidChangeWatchedFilesClientCapabilities(
                        dynamic_registration=True
                    )
                )
            ),
            initialization_options=OPTIONS,
            root_uri=root.as_uri(),
        )
    )


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(
        server_command=[sys.executable, "-m", "tbptt_lint", "server"],
        client_factory=recording_client,
    ),
)
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):
    await start(lsp_client, tmp_path_factory.mktemp("workspace"))
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(
        server_command=[sys.executable, "-c", CRASHING_SERVER],
        client_factory=recording_client,
    ),
)
async def crashing_client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):
    await start(lsp_client, tmp_path_factory.mktemp("crashing"))
    yield
    await lsp_client.shutdown_session()


pytestmark = pytest.mark.asyncio(loop_scope="module")


async def published(
    client: LanguageClient,
    uri: str,
    version: int,
    accept: Callable[[Sequence[types.Diagnostic]], bool] = lambda _: True,
    after: int = 0,
) -> Sequence[types.Diagnostic]:
    """The newest diagnostics published for `uri` at `version` that `accept` takes, among
    the publications from the `after`-th on."""

    async def wait() -> Sequence[types.Diagnostic]:
        while True:
            history = client.published[after:]  # type: ignore[attr-defined]
            for params in reversed(history):
                if params.uri == uri and params.version == version and accept(params.diagnostics):
                    return params.diagnostics
            await asyncio.sleep(0.005)

    return await asyncio.wait_for(wait(), WAIT_S)


def open_file(client: LanguageClient, path: Path, text: str, version: int = 1) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", version, text))
    )
    return uri


def replace_text(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version, uri),
            [types.TextDocumentContentChangeWholeDocument(text)],
        )
    )


def apply_edits(text: str, edits: Sequence[types.TextEdit]) -> str:
    """The text after the edits (ASCII text: characters are code units)."""
    lines = text.splitlines(keepends=True) + [""]

    def offset(position: types.Position) -> int:
        return sum(len(line) for line in lines[: position.line]) + position.character

    for edit in sorted(edits, key=lambda e: offset(e.range.start), reverse=True):
        text = text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]
    return text


async def code_actions(
    client: LanguageClient, uri: str, diagnostic: types.Diagnostic, only: list[str] | None = None
) -> list[types.CodeAction]:
    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri),
            range=diagnostic.range,
            context=types.CodeActionContext(diagnostics=[diagnostic], only=only),
        )
    )
    return [action for action in result or [] if isinstance(action, types.CodeAction)]


def edited(action: types.CodeAction, uri: str, text: str) -> str:
    assert action.edit is not None and action.edit.changes is not None
    return apply_edits(text, action.edit.changes[uri])


async def test_open_reports_the_unsaved_buffer(client: LanguageClient, tmp_path: Path):
    path = tmp_path / "train.py"
    path.write_text("")  # the disk holds nothing: the findings come from the editor's text
    uri = open_file(client, path, LEAKING_LOOP)
    (diagnostic,) = await published(client, uri, 1)
    assert diagnostic.code == "TBP001"
    assert diagnostic.source == "tbptt-lint"
    assert diagnostic.severity == types.DiagnosticSeverity.Error
    assert diagnostic.code_description is not None
    assert diagnostic.code_description.href.endswith("/TBP001.md")
    assert diagnostic.range.start.line == 3
    related = {
        info.location.range.start.line: info.message
        for info in diagnostic.related_information or []
    }
    # The message names the backward the state reaches (line 5): it is related information.
    assert 4 in related and "backward" in related[4]


async def test_change_updates_diagnostics(client: LanguageClient, tmp_path: Path):
    uri = open_file(client, tmp_path / "train.py", DISCARDED_DETACH)
    assert [d.code for d in await published(client, uri, 1)] == ["TBP003"]
    replace_text(client, uri, 2, ASSIGNED_DETACH)
    assert list(await published(client, uri, 2)) == []
    # An incremental edit: delete "hidden = " again.
    line = ASSIGNED_DETACH.splitlines().index("        hidden = hidden.detach()")
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(3, uri),
            [
                types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(line, 8), types.Position(line, 17)),
                    text="",
                )
            ],
        )
    )
    assert [d.code for d in await published(client, uri, 3)] == ["TBP003"]


async def test_quick_fix_and_fix_all(client: LanguageClient, tmp_path: Path):
    uri = open_file(client, tmp_path / "train.py", DISCARDED_DETACH)
    (diagnostic,) = await published(client, uri, 1)
    actions = await code_actions(client, uri, diagnostic)
    fixes = [
        a for a in actions if a.kind == types.CodeActionKind.QuickFix and "noqa" not in a.title
    ]
    (fix,) = fixes
    assert "unsafe" not in fix.title and fix.is_preferred
    assert edited(fix, uri, DISCARDED_DETACH) == ASSIGNED_DETACH
    (fix_all,) = await code_actions(client, uri, diagnostic, only=["source.fixAll"])
    assert fix_all.kind == "source.fixAll.tbptt-lint"
    assert edited(fix_all, uri, DISCARDED_DETACH) == ASSIGNED_DETACH


async def test_unsafe_fix_is_labelled_and_left_out_of_fix_all(
    client: LanguageClient, tmp_path: Path
):
    text = (FIXTURES / "bug_tbp001_state_not_detached.py").read_text()
    uri = open_file(client, tmp_path / "train.py", text)
    (diagnostic,) = await published(client, uri, 1)
    assert diagnostic.code == "TBP001"
    fixes = [a for a in await code_actions(client, uri, diagnostic) if "noqa" not in a.title]
    assert fixes and all("unsafe" in a.title and not a.is_preferred for a in fixes)
    assert await code_actions(client, uri, diagnostic, only=["source.fixAll"]) == []


async def test_noqa_action_silences_the_finding(client: LanguageClient, tmp_path: Path):
    uri = open_file(client, tmp_path / "train.py", DISCARDED_DETACH)
    (diagnostic,) = await published(client, uri, 1)
    (noqa,) = [a for a in await code_actions(client, uri, diagnostic) if "noqa" in a.title]
    text = edited(noqa, uri, DISCARDED_DETACH)
    assert text == DISCARDED_DETACH.replace(
        "        hidden.detach()", "        hidden.detach()  # noqa: TBP003"
    )
    replace_text(client, uri, 2, text)
    assert list(await published(client, uri, 2)) == []


async def test_hover_explains_the_rule(client: LanguageClient, tmp_path: Path):
    uri = open_file(client, tmp_path / "train.py", DISCARDED_DETACH)
    (diagnostic,) = await published(client, uri, 1)
    hover = await client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(uri), diagnostic.range.start)
    )
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    assert "TBP003" in hover.contents.value and "thrown away" in hover.contents.value
    elsewhere = await client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(uri), types.Position(0, 0))
    )
    assert elsewhere is None


async def test_config_files_and_modules_are_watched(client: LanguageClient):
    async def registered() -> list[types.Registration]:
        while not client.registrations:  # type: ignore[attr-defined]
            await asyncio.sleep(0.01)
        return client.registrations  # type: ignore[attr-defined]

    (registration,) = await asyncio.wait_for(registered(), WAIT_S)
    assert registration.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES
    options = registration.register_options
    watchers = options["watchers"] if isinstance(options, dict) else options.watchers
    patterns = {
        watcher["globPattern"] if isinstance(watcher, dict) else watcher.glob_pattern
        for watcher in watchers
    }
    assert patterns == {"**/pyproject.toml", "**/tbptt-lint.toml", "**/*.py"}


async def test_config_change_is_read_again(client: LanguageClient, tmp_path: Path):
    uri = open_file(client, tmp_path / "train.py", DISCARDED_DETACH)
    assert [d.code for d in await published(client, uri, 1)] == ["TBP003"]
    config = tmp_path / "tbptt-lint.toml"
    config.write_text('ignore = ["TBP003"]\n')
    before = len(client.published)  # type: ignore[attr-defined]
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            [types.FileEvent(config.as_uri(), types.FileChangeType.Created)]
        )
    )
    diagnostics = await published(client, uri, 1, after=before)
    assert list(diagnostics) == []


async def test_helper_saved_in_the_workspace(client: LanguageClient, tmp_path: Path):
    (tmp_path / ".git").mkdir()  # the project whose modules lend their helpers
    helper = tmp_path / "utils.py"
    helper.write_text(CUTTING_HELPER)
    uri = open_file(client, tmp_path / "train.py", LOOP_WITH_HELPER)
    assert list(await published(client, uri, 1)) == []
    helper.write_text(PASS_THROUGH_HELPER)
    before = len(client.published)  # type: ignore[attr-defined]
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(helper.as_uri()))
    )
    diagnostics = await published(client, uri, 1, after=before)
    assert [d.code for d in diagnostics] == ["TBP001"]


async def test_syntax_error_while_typing_waits_for_save(client: LanguageClient, tmp_path: Path):
    uri = open_file(client, tmp_path / "train.py", DISCARDED_DETACH)
    assert [d.code for d in await published(client, uri, 1)] == ["TBP003"]
    broken = DISCARDED_DETACH.replace("hidden.detach()", "hidden.detach(")
    replace_text(client, uri, 2, broken)
    # What was shown stays up; no TBP900 while typing.
    assert [d.code for d in await published(client, uri, 2)] == ["TBP003"]
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(uri))
    )
    diagnostics = await published(
        client, uri, 2, lambda found: any(d.code == "TBP900" for d in found)
    )
    assert [d.code for d in diagnostics] == ["TBP900"]


async def test_syntax_error_that_stays_is_reported(client: LanguageClient, tmp_path: Path):
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams({"tbptt-lint": {"syntaxErrorDelayMs": 0}})
    )
    try:
        uri = open_file(client, tmp_path / "train.py", ASSIGNED_DETACH)
        await published(client, uri, 1)
        replace_text(client, uri, 2, ASSIGNED_DETACH.replace("detach()", "detach("))
        diagnostics = await published(
            client, uri, 2, lambda found: any(d.code == "TBP900" for d in found)
        )
        assert [d.code for d in diagnostics] == ["TBP900"]
    finally:
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams({"tbptt-lint": OPTIONS})
        )


async def test_crash_on_one_document_is_logged(crashing_client: LanguageClient, tmp_path: Path):
    crash = open_file(crashing_client, tmp_path / "crash.py", DISCARDED_DETACH)
    assert list(await published(crashing_client, crash, 1)) == []
    assert any("RuntimeError: boom" in m.message for m in crashing_client.log_messages)
    # The server lives on and checks other documents.
    other = open_file(crashing_client, tmp_path / "train.py", DISCARDED_DETACH)
    assert [d.code for d in await published(crashing_client, other, 1)] == ["TBP003"]


async def test_notebook_cells_are_analysed_in_order(client: LanguageClient, tmp_path: Path):
    notebook_uri = (tmp_path / "train.ipynb").as_uri()
    first, note, loop = (f"vscode-notebook-cell:{tmp_path}/train.ipynb#cell{i}" for i in range(3))
    # The state is made in one cell and carried by the loop of another; a markdown cell between.
    setup = "hidden = None\n"
    body = NOTEBOOK_LOOP_CELL
    code, markup = types.NotebookCellKind.Code, types.NotebookCellKind.Markup
    client.notebook_document_did_open(
        types.DidOpenNotebookDocumentParams(
            notebook_document=types.NotebookDocument(
                uri=notebook_uri,
                notebook_type="jupyter-notebook",
                version=1,
                cells=[
                    types.NotebookCell(kind=code, document=first),
                    types.NotebookCell(kind=markup, document=note),
                    types.NotebookCell(kind=code, document=loop),
                ],
            ),
            cell_text_documents=[
                types.TextDocumentItem(first, "python", 1, setup),
                types.TextDocumentItem(note, "markdown", 1, "# Training"),
                types.TextDocumentItem(loop, "python", 1, body),
            ],
        )
    )
    assert list(await published(client, first, 1)) == []
    (diagnostic,) = await published(client, loop, 1)
    assert diagnostic.code == "TBP003"
    detach_line = body.splitlines().index("    hidden.detach()")
    assert diagnostic.range.start.line == detach_line
    # The quick fix edits the cell, in the cell's own lines (its magic line kept).
    (fix,) = [a for a in await code_actions(client, loop, diagnostic) if "noqa" not in a.title]
    fixed = edited(fix, loop, body)
    assert fixed == body.replace("    hidden.detach()", "    hidden = hidden.detach()")
    client.notebook_document_did_change(
        types.DidChangeNotebookDocumentParams(
            notebook_document=types.VersionedNotebookDocumentIdentifier(2, notebook_uri),
            change=types.NotebookDocumentChangeEvent(
                cells=types.NotebookDocumentCellChanges(
                    text_content=[
                        types.NotebookDocumentCellContentChanges(
                            document=types.VersionedTextDocumentIdentifier(2, loop),
                            changes=[types.TextDocumentContentChangeWholeDocument(fixed)],
                        )
                    ]
                )
            ),
        )
    )
    assert list(await published(client, loop, 2)) == []


async def test_a_newer_change_cancels_the_run_under_way(
    crashing_client: LanguageClient, tmp_path: Path
):
    path = tmp_path / "slow.py"
    uri = open_file(crashing_client, path, 'print("# SLOW")\n' + DISCARDED_DETACH)
    started = Path(f"{path}.started")
    await asyncio.wait_for(_exists(started), WAIT_S)
    # The run on version 1 would work for a minute; version 2's diagnostics come long before.
    replace_text(crashing_client, uri, 2, DISCARDED_DETACH)
    assert [d.code for d in await published(crashing_client, uri, 2)] == ["TBP003"]
    assert not [p for p in crashing_client.published if p.uri == uri and p.version == 1]  # type: ignore[attr-defined]


async def _exists(path: Path) -> None:
    while not path.exists():
        await asyncio.sleep(0.01)


async def test_a_broken_config_is_shown_and_the_defaults_used(
    client: LanguageClient, tmp_path: Path
):
    (tmp_path / "tbptt-lint.toml").write_text("select = [\n")
    uri = open_file(client, tmp_path / "train.py", DISCARDED_DETACH)
    assert [d.code for d in await published(client, uri, 1)] == ["TBP003"]
    shown = [m.message for m in client.messages if m.type == types.MessageType.Error]
    assert any(str(tmp_path / "tbptt-lint.toml") in message for message in shown)


async def test_other_languages_are_left_alone(client: LanguageClient, tmp_path: Path):
    toml = tmp_path / "pyproject.toml"
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            types.TextDocumentItem(toml.as_uri(), "toml", 1, "[tool.tbptt-lint]\n")
        )
    )
    # Published after the TOML file was opened: the server is past it, and said nothing of it.
    uri = open_file(client, tmp_path / "train.py", DISCARDED_DETACH)
    await published(client, uri, 1)
    assert not [p for p in client.published if p.uri == toml.as_uri()]  # type: ignore[attr-defined]


LONG_FILE_LOOP = """\


def train_{n}(rnn, batches, opt):
    hidden = None
    for x, y in batches:
        out, hidden = rnn(x, hidden)
        loss = ((out - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        {cut}
    return hidden
"""


async def test_typing_in_a_long_file_gives_the_whole_file_diagnostics(
    client: LanguageClient, tmp_path: Path
):
    # 30 loops, every third leaking its state; 20 keystrokes at 10 a second in the middle one.
    from tbptt_lint.engine import lint_source
    from tbptt_lint.settings import Settings

    text = "import torch\n" + "".join(
        LONG_FILE_LOOP.format(n=n, cut="pass" if n % 3 == 0 else "hidden = hidden.detach()")
        for n in range(30)
    )
    path = tmp_path / "train.py"
    uri = open_file(client, path, text)
    assert len(await published(client, uri, 1)) == 10
    start = len(client.published)  # type: ignore[attr-defined]
    lines = text.splitlines()
    line = [n for n, body in enumerate(lines) if "opt.step()" in body][15]
    column = len(lines[line])
    for version in range(2, 22):
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(version, uri),
                [
                    types.TextDocumentContentChangePartial(
                        range=types.Range(
                            types.Position(line, column), types.Position(line, column)
                        ),
                        text="#" if version == 21 else " ",
                    )
                ],
            )
        )
        column += 1
        await asyncio.sleep(0.1)
    final = await published(client, uri, 21)
    lines[line] += " " * 19 + "#"
    expected = lint_source("\n".join(lines) + "\n", path, Settings(project_root=tmp_path))
    assert [(d.code, d.range.start.line + 1) for d in final] == [(d.code, d.line) for d in expected]
    versions = [
        p.version
        for p in client.published[start:]  # type: ignore[attr-defined]
        if p.uri == uri
    ]
    # Each result is published in order, none for a version once a newer one was published.
    assert versions == sorted(versions) and versions[-1] == 21
