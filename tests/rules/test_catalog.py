"""The catalog the command line loads instead of the rule classes says what the classes say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tbptt_lint import catalog
from tbptt_lint.rules import ALL_RULES
from tbptt_lint.rules.base import Rule

ROOT = Path(__file__).resolve().parents[2]


def test_each_catalog_entry_has_its_rule_class_in_code_order():
    assert [r.code for r in ALL_RULES] == [r.code for r in catalog.CATALOG]


def test_the_rule_classes_take_their_metadata_from_the_catalog():
    for rule in ALL_RULES:
        info = catalog.BY_CODE[rule.code]
        assert (rule.name, rule.severity, rule.default_enabled, rule.fix_availability) == (
            info.name,
            info.severity,
            info.default_enabled,
            info.fix_availability,
        )
    assert catalog.BY_CODE["TBP007"].default_enabled is False
    assert ALL_RULES[6].default_enabled is False


def test_a_rule_class_cannot_restate_what_the_catalog_declares():
    with pytest.raises(TypeError, match="restates"):

        class Restating(Rule):  # defining it is what fails
            code = "TBP004"
            severity = catalog.ERROR


def test_a_run_served_from_the_cache_never_loads_the_parser(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "train.py").write_text(
        (ROOT / "fixtures" / "bug_tbp003_detach_result_discarded.py").read_text()
    )
    program = (
        "import sys\n"
        "from tbptt_lint.cli import main\n"
        "code = main(['--output-format', 'concise', '.'])\n"
        "print('libcst loaded:', 'libcst' in sys.modules)\n"
        "sys.exit(code)\n"
    )

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True
        )

    cold, warm = run(), run()
    assert cold.returncode == warm.returncode == 1, cold.stderr + warm.stderr
    assert "libcst loaded: True" in cold.stdout
    assert "libcst loaded: False" in warm.stdout
    findings = [line for line in cold.stdout.splitlines() if ": TBP" in line]
    assert findings and findings == [line for line in warm.stdout.splitlines() if ": TBP" in line]
