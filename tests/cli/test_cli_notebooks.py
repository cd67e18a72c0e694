"""Notebooks are linted like ruff lints them: code cells in order as one program, IPython
syntax skipped, findings placed in their cell."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import write


def notebook(*cells: tuple[str, str]) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": kind, "metadata": {}, "source": text.splitlines(keepends=True)}
                for kind, text in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


SETUP = "%matplotlib inline\n!pip install tqdm\nimport torch\nimport torch.nn as nn\n"
MODEL = "rnn = nn.LSTM(8, 16)\nopt = torch.optim.SGD(rnn.parameters(), lr=0.1)\nhidden = None\n"
LOOP = (
    "files = !ls\n"
    "for x, y in batches:\n"
    "    out, hidden = rnn(x, hidden)\n"
    "    loss = (out - y).pow(2).mean()\n"
    "    opt.zero_grad()\n"
    "    loss.backward()\n"
    "    opt.step()\n"
)


def leaky_notebook() -> str:
    return notebook(
        ("markdown", "# Training\n"),
        ("code", SETUP),
        ("code", "%%bash\necho this is not python (\n"),
        ("code", MODEL),
        ("code", "%%time\n" + LOOP),
    )


def test_state_flows_across_cells_and_the_finding_names_its_cell(cli, project):
    write(project / "train.ipynb", leaky_notebook())
    run = cli("--output-format", "json", ".")
    assert run.code == 1
    [item] = json.loads(run.out)
    assert (item["code"], item["cell"], item["location"]["row"]) == ("TBP001", 5, 4)
    assert item["location"]["column"] == 26
    # Other lines named in the message are placed in their cells too.
    assert "from line 4 of cell 5 into the backward at line 7 of cell 5" in item["message"]
    text = cli("--output-format", "concise", ".")
    assert text.out.splitlines()[0].startswith("train.ipynb:cell 5:4:26: TBP001 ")


def test_a_correct_notebook_is_silent(cli, project):
    fixed = LOOP.replace(
        "    out, hidden = rnn(x, hidden)",
        "    if hidden is not None:\n"
        "        hidden = tuple(h.detach() for h in hidden)\n"
        "    out, hidden = rnn(x, hidden)",
    )
    write(project / "train.ipynb", notebook(("code", SETUP), ("code", MODEL), ("code", fixed)))
    run = cli(".")
    assert run.code == 0, run.out


def test_noqa_in_a_cell_applies(cli, project):
    suppressed = LOOP.replace("rnn(x, hidden)\n", "rnn(x, hidden)  # noqa: TBP001\n")
    write(project / "train.ipynb", notebook(("code", SETUP + MODEL + suppressed)))
    assert cli(".").code == 0


def test_sarif_carries_the_cell(cli, project):
    write(project / "train.ipynb", leaky_notebook())
    sarif = json.loads(cli("--output-format", "sarif", ".").out)
    [result] = sarif["runs"][0]["results"]
    assert result["properties"] == {"cell": 5}
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 4


def test_a_notebook_that_is_not_json_is_a_finding_and_others_are_still_linted(cli, project):
    write(project / "broken.ipynb", '{"cells": [\n  {"cell_type": "code",,}\n')
    write(project / "train.ipynb", leaky_notebook())
    run = cli("--output-format", "concise", ".")
    assert run.code == 1
    lines = run.out.splitlines()
    assert lines[0].startswith("broken.ipynb:2:")
    assert "TBP900 syntax error: notebook is not valid JSON" in lines[0]
    assert any(line.startswith("train.ipynb:cell 5:4:26: TBP001") for line in lines)
    assert "Traceback" not in run.err


def test_a_json_file_that_is_not_a_notebook(cli, project):
    write(project / "odd.ipynb", json.dumps({"hello": "world"}))
    run = cli("--output-format", "concise", ".")
    assert run.code == 1
    assert (
        run.out.splitlines()[0]
        == "odd.ipynb:1:1: TBP900 syntax error: not a notebook: no list of cells"
    )


def test_notebooks_are_found_by_directory_walks(cli, project):
    write(project / "sub" / "deep" / "train.ipynb", leaky_notebook())
    run = cli("--output-format", "json", ".")
    [item] = json.loads(run.out)
    assert Path(item["filename"]).name == "train.ipynb"
