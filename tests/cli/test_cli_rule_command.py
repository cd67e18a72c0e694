"""`tbptt-lint rule CODE` and `tbptt-lint rule --all`."""

from __future__ import annotations

import json

from tbptt_lint.output import rule_docs
from tbptt_lint.rules import ALL_RULES


def test_rule_prints_the_page_when_present(cli, tmp_path, monkeypatch):
    (tmp_path / "TBP001.md").write_text("# state-not-detached (TBP001)\n\nThe page body.\n")
    monkeypatch.setattr(rule_docs, "RULE_PAGES", tmp_path)
    run = cli("rule", "TBP001")
    assert run.code == 0
    assert run.out == "# state-not-detached (TBP001)\n\nThe page body.\n"


def test_rule_falls_back_to_the_docstring(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(rule_docs, "RULE_PAGES", tmp_path)
    run = cli("rule", "tbp004")
    assert run.code == 0
    assert run.out.startswith("# detach-every-step (TBP004)\n")
    assert "Severity: warning." in run.out
    assert ALL_RULES[3].summary() in run.out


def test_rule_pages_resolve_next_to_the_package():
    assert rule_docs.RULE_PAGES.name == "rule_pages"
    assert rule_docs.RULE_PAGES.parent.name == "tbptt_lint"


def test_unknown_rule_code_is_a_usage_error(cli):
    run = cli("rule", "TBP999")
    assert run.code == 2
    assert run.err == "tbptt-lint: error: unknown rule code 'TBP999'\n"
    assert cli("rule").code == 2
    assert cli("rule", "TBP001", "--all").code == 2


def test_rule_all_json_lists_every_rule(cli):
    run = cli("rule", "--all", "--output-format", "json")
    assert run.code == 0
    rules = json.loads(run.out)
    assert [r["code"] for r in rules] == [rule.code for rule in ALL_RULES]
    tbp007 = next(r for r in rules if r["code"] == "TBP007")
    assert set(tbp007) == {
        "code",
        "name",
        "severity",
        "summary",
        "fix_availability",
        "default_enabled",
        "url",
    }
    assert tbp007["default_enabled"] is False
    assert tbp007["severity"] == "info"
    assert tbp007["url"].endswith("/rules/TBP007.md")
    assert all(r["summary"] for r in rules)


def test_rule_all_text_has_one_line_per_rule(cli):
    lines = cli("rule", "--all").out.splitlines()
    assert len(lines) == len(ALL_RULES)
    assert lines[0].split()[:3] == ["TBP001", "state-not-detached", "error"]


def test_rule_json_for_one_code_includes_the_explanation(cli):
    item = json.loads(cli("rule", "TBP001", "--output-format", "json").out)
    assert item["code"] == "TBP001"
    assert "TBP001" in item["explanation"]
