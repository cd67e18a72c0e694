"""The catalog the command line loads instead of the rule classes says what the classes say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tbptt_lint import catalog
from tbptt_lint.rules import ALL_RULES

ROOT = Path(__file__).resolve().parents[2]


def test_the_catalog_matches_the_rule_classes():
    described = [
        (r.code, r.name, r.severity, r.default_enabled, r.fix_availability) for r in ALL_RULES
    ]
    listed = [
        (r.code, r.name, r.severity, r.default_enabled, r.fix_availability) for r in catalog.CATALOG
    ]
    assert listed == described


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
