"""tbptt-lint in other tools, each imported only by the tool that uses it:

- `pytest_plugin`: the pytest plugin (entry point `pytest11`), in parts by job:
  `pytest_fixture` (the `tbptt` fixture and marker), `pytest_lint` (`--tbptt-lint` items) and
  `pytest_rule_pages` (rule-page example items, registered only when pages are configured);
- `flake8_plugin`: the flake8 extension (`flake8 --select TBP`);
- `server`: `tbptt-lint server`, the language server (the `server` extra);
- `lightning`: the Lightning callback `TBPTTCheck` (the `lightning` extra).

The old module names (`tbptt_lint.pytest_plugin`, `tbptt_lint.flake8_plugin`,
`tbptt_lint.server`, `tbptt_lint.lightning`, ...) stay importable.
"""
