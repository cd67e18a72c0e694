"""The language server's pieces that need no client: the noqa edit, positions in the client's
units, related information, and the message when the server extra is missing."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from tbptt_lint.cli import main
from tbptt_lint.integrations.server.workspace import WorkspaceLinter, add_noqa

LOOP = """\
def train(model, data, opt):
    hidden = None
    for x, y in data:
        out, hidden = model(x, hidden)
        loss = (out - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        {cut}
"""


def test_noqa_is_appended_to_a_line_without_comment():
    text = "x = 1\ny = 2\n"
    assert add_noqa(text, 2, "TBP003") == "x = 1\ny = 2  # noqa: TBP003\n"


def test_noqa_extends_a_noqa_that_names_codes():
    text = "y = 2  # noqa: E501 -- long\n"
    assert add_noqa(text, 1, "TBP003") == "y = 2  # noqa: E501, TBP003 -- long\n"


def test_noqa_goes_before_another_comment():
    text = "y = 2  # type: ignore\n"
    assert add_noqa(text, 1, "TBP003") == "y = 2  # noqa: TBP003  # type: ignore\n"


def test_no_noqa_where_it_cannot_go():
    # A blanket noqa already covers the code; a line ending inside a string takes no comment;
    # the parser's verdict is not suppressible.
    assert add_noqa("y = 2  # noqa\n", 1, "TBP003") is None
    assert add_noqa('s = """a\nb"""\n', 1, "TBP003") is None
    assert add_noqa("y = 2\n", 1, "TBP900") is None


def test_noqa_added_silences_the_finding(tmp_path: Path):
    linter = WorkspaceLinter()
    path = tmp_path / "train.py"
    text = LOOP.format(cut="hidden.detach()")
    (diagnostic,) = linter.analyse(path, text).diagnostics
    silenced = add_noqa(text, diagnostic.line, diagnostic.code)
    assert silenced is not None
    assert linter.analyse(path, silenced).diagnostics == []


def test_settings_are_read_again_after_a_config_change(tmp_path: Path):
    linter = WorkspaceLinter()
    path = tmp_path / "train.py"
    text = LOOP.format(cut="hidden.detach()")
    assert [d.code for d in linter.analyse(path, text).diagnostics] == ["TBP003"]
    config = tmp_path / "tbptt-lint.toml"
    config.write_text('ignore = ["TBP003"]\n')
    linter.file_changed(config, created_or_deleted=True)
    assert linter.analyse(path, text).diagnostics == []


def test_a_broken_config_is_a_warning_not_a_crash(tmp_path: Path):
    (tmp_path / "tbptt-lint.toml").write_text("select = [\n")
    analysis = WorkspaceLinter().analyse(tmp_path / "train.py", LOOP.format(cut="hidden.detach()"))
    assert [d.code for d in analysis.diagnostics] == ["TBP003"]
    assert any("tbptt-lint.toml" in warning for warning in analysis.warnings)


def test_fix_all_applies_safe_fixes_only(tmp_path: Path):
    linter = WorkspaceLinter()
    text = LOOP.format(cut="hidden.detach()")
    fixed = linter.fix_all(tmp_path / "train.py", text)
    assert fixed == LOOP.format(cut="hidden = hidden.detach()")
    assert linter.fix_all(tmp_path / "train.py", fixed) is None


def test_positions_count_utf16_units():
    pytest.importorskip("lsprotocol")
    from tbptt_lint.integrations.server.convert import Lines

    # "𝐡" is one code point, two UTF-16 code units.
    lines = Lines("𝐡 = h.detach()\n")
    assert lines.position(1, 3).character == 3
    assert Lines("𝐡 = 1\n", "utf-32").position(1, 3).character == 2
    assert lines.code_points(lines.position(1, 3)) == (1, 3)
    assert (lines.end.line, lines.end.character) == (1, 0)
    no_newline = Lines("a\nbc")
    assert (no_newline.end.line, no_newline.end.character) == (1, 2)


def test_related_information_names_the_lines_of_the_message(tmp_path: Path):
    pytest.importorskip("lsprotocol")
    from tbptt_lint.integrations.server.convert import Lines, related_information

    text = LOOP.format(cut="pass")
    (diagnostic,) = WorkspaceLinter().analyse(tmp_path / "train.py", text).diagnostics
    assert diagnostic.code == "TBP001"
    related = related_information(diagnostic, Lines(text), "file:///train.py")
    lines = {info.location.range.start.line + 1: info.message for info in related}
    backward = text.splitlines().index("        loss.backward()") + 1
    assert "backward" in lines[backward]
    assert diagnostic.line not in lines


def test_server_without_its_extra_says_how_to_install(monkeypatch, capsys):
    real_import = builtins.__import__

    def without_pygls(name, *args, **kwargs):
        # The server module is where pygls is first imported.
        if name.startswith("pygls") or name == "tbptt_lint.integrations.server.lsp":
            raise ModuleNotFoundError("No module named 'pygls'", name="pygls")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_pygls)
    assert main(["server"]) == 2
    assert "pip install 'tbptt-lint[server]'" in capsys.readouterr().err


def test_a_helper_module_saved_under_a_new_name_is_found(tmp_path: Path):
    (tmp_path / ".git").mkdir()
    linter = WorkspaceLinter()
    path = tmp_path / "train.py"
    # The state handed on through the helper: reported while the helper is unknown.
    text = "from utils import repackage_hidden\n\n\n" + LOOP.format(cut="pass").replace(
        "model(x, hidden)", "model(x, repackage_hidden(hidden))"
    )
    assert [d.code for d in linter.analyse(path, text).diagnostics] == ["TBP001"]
    helper = tmp_path / "utils.py"
    helper.write_text("def repackage_hidden(h):\n    return h.detach()\n")
    linter.file_changed(helper)  # a save, with no file-created event
    assert linter.analyse(path, text).diagnostics == []


def test_the_readme_editor_setups_are_well_formed():
    # VS Code's settings are JSON, Helix's TOML; the Lisp and Lua ones at least balance, and
    # eglot's names both Python modes of Emacs 29+ (python-ts-mode is the tree-sitter one).
    import json
    import re
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    editors = readme[readme.index("## Editors") : readme.index("## pre-commit")]
    blocks = dict(re.findall(r"```(\w+)\n(.*?)```", editors, re.DOTALL))
    settings = json.loads(blocks["json"])
    assert settings["glspc.server.commandArguments"] == ["server"]
    helix = tomllib.loads(blocks["toml"])
    assert helix["language-server"]["tbptt-lint"] == {"command": "tbptt-lint", "args": ["server"]}
    assert "tbptt-lint" in helix["language"][0]["language-servers"]
    for code, pairs in ((blocks["elisp"], "()"), (blocks["lua"], "(){}")):
        for opening, closing in zip(pairs[::2], pairs[1::2], strict=True):
            assert code.count(opening) == code.count(closing)
    assert "(python-mode python-ts-mode)" in blocks["elisp"]
    assert 'vim.lsp.config("tbptt_lint"' in blocks["lua"]
    assert 'vim.lsp.enable("tbptt_lint")' in blocks["lua"]


def test_the_readme_names_the_initialization_options_the_server_reads():
    # Every option the README lists (and its VS Code snippet sets) is one the server reads
    # when it starts, and none it reads is left out; the same names, under "tbptt-lint", are
    # read again from `workspace/didChangeConfiguration`.
    import json
    import re

    from lsprotocol import types

    from tbptt_lint.integrations.server import lsp

    class Recording(dict[str, object]):
        def __init__(self) -> None:
            super().__init__()
            self.read: set[str] = set()

        def get(self, key: str, default: object = None) -> object:
            self.read.add(key)
            return super().get(key, default)

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    editors = readme[readme.index("## Editors") : readme.index("## pre-commit")]
    sentence = re.search(r"Initialization options: (.*?)\.\n", editors, re.DOTALL)
    assert sentence is not None
    named = set(re.findall(r"`(\w+)`\s+\(default", sentence.group(1)))
    server = lsp.TbpttLanguageServer()
    options = Recording()
    lsp.initialize(
        server,
        types.InitializeParams(
            capabilities=types.ClientCapabilities(), initialization_options=options
        ),
    )
    assert named == options.read
    snippet = json.loads(re.findall(r"```json\n(.*?)```", editors, re.DOTALL)[0])
    assert set(snippet["glspc.server.initializationOptions"]) <= named
    lsp.did_change_configuration(
        server,
        types.DidChangeConfigurationParams(
            settings={"tbptt-lint": {"debounceMs": 40, "syntaxErrorDelayMs": 500}}
        ),
    )
    assert (server.debounce_s, server.syntax_error_delay_s) == (0.04, 0.5)
