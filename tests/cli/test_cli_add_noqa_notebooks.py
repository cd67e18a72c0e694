"""`--add-noqa` in a notebook: each directive goes into the cell of its finding, whose magics
and other lines stay, and the notebook is still linted clean afterwards (real analysis)."""

from __future__ import annotations

import json

from cli_helpers import write
from test_cli_notebooks import leaky_notebook


def cells(path) -> list[str]:
    return ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]]


def test_the_directive_goes_into_the_findings_cell(cli, project):
    path = write(project / "train.ipynb", leaky_notebook())
    before = cells(path)
    assert cli(".").code == 1
    run = cli("--add-noqa", ".")
    assert (run.code, run.err) == (0, "Added 1 noqa directive.\n")
    after = cells(path)
    # Cell 5 (`%%time` and the loop): its 4th line, `out, hidden = rnn(x, hidden)`.
    loop = before[4].splitlines(keepends=True)
    loop[3] = loop[3].rstrip("\n") + "  # noqa: TBP001\n"
    assert after == [*before[:4], "".join(loop)]
    assert after[4].startswith("%%time\nfiles = !ls\n")
    assert cli(".").code == 0
    # Indentation of the JSON is the notebook's, as `--fix` writes it.
    assert json.loads(path.read_text())["nbformat"] == 4


def test_a_reason_in_a_notebook(cli, project):
    path = write(project / "train.ipynb", leaky_notebook())
    assert cli("--add-noqa=carried between cells", ".").code == 0
    assert (
        "    out, hidden = rnn(x, hidden)  # noqa: TBP001 carried between cells\n" in cells(path)[4]
    )
    second = cli("--add-noqa", ".")
    assert (second.code, second.err) == (0, "")


def test_a_clean_notebook_is_left_byte_for_byte(cli, project):
    text = leaky_notebook().replace(
        "opt.step()", 'opt.step()\\n", "    hidden = tuple(h.detach() for h in hidden)'
    )
    path = write(project / "train.ipynb", text)
    assert cli(".").code == 0
    assert (cli("--add-noqa", ".").err, path.read_text()) == ("", text)
