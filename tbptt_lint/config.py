"""Find and read the configuration file, validate it, and merge it with command-line options.

Discovery follows ruff: the nearest `tbptt-lint.toml` (top-level keys) or `pyproject.toml` with a
`[tool.tbptt-lint]` table, searched upward from the current directory. In one directory the
dedicated file wins over pyproject.toml.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tbptt_lint.catalog import rules_matching
from tbptt_lint.settings import DEFAULT_EXCLUDE, Settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

DEDICATED_CONFIG_NAME = "tbptt-lint.toml"
PYPROJECT_NAME = "pyproject.toml"
PYPROJECT_TABLE = ("tool", "tbptt-lint")

# Keys whose value is a list of strings, mapped to the Settings field they fill.
LIST_KEYS: dict[str, str] = {
    "select": "select",
    "ignore": "ignore",
    "extend-select": "extend_select",
    "fixable": "fixable",
    "unfixable": "unfixable",
    "exclude": "exclude",
    "extend-exclude": "extend_exclude",
    "detach-functions": "detach_functions",
    "recurrent-modules": "recurrent_modules",
}
# Keys whose value is a boolean, mapped to their Settings field.
BOOL_KEYS: dict[str, str] = {"force-exclude": "force_exclude"}
TABLE_KEYS = ("per-file-ignores",)
KNOWN_KEYS = (*LIST_KEYS, *BOOL_KEYS, *TABLE_KEYS)
RULE_SELECTOR_KEYS = ("select", "ignore", "extend-select", "fixable", "unfixable")

# ruff accepts "ALL" as a selector; every rule code of ours starts with "TBP".
ALL_SELECTOR = "ALL"


class ConfigError(Exception):
    """A configuration problem the user must fix; the message is one line, ready to print."""


@dataclass(frozen=True)
class CliOverrides:
    """Rule selection given on the command line; None means the option was not given."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] | None = None
    # File selection: `exclude` replaces the configured list, `extend_exclude` adds to it.
    exclude: tuple[str, ...] | None = None
    extend_exclude: tuple[str, ...] | None = None
    force_exclude: bool | None = None
    # Codes or prefixes whose fixes apply; each replaces the configured list, as in ruff.
    fixable: tuple[str, ...] | None = None
    unfixable: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    # The table holding our keys, already unwrapped from [tool.tbptt-lint] for pyproject.toml.
    table: dict[str, Any]
    text: str
    is_pyproject: bool


def normalize_selector(selector: str) -> str:
    selector = selector.strip().upper()
    return "TBP" if selector == ALL_SELECTOR else selector


def _normalized(selectors: tuple[str, ...] | None) -> tuple[str, ...] | None:
    return None if selectors is None else tuple(normalize_selector(s) for s in selectors)


def unknown_selectors(selectors: Iterable[str]) -> list[str]:
    """Selectors that match no rule code (neither a full code nor a prefix)."""
    return [s for s in selectors if not rules_matching(normalize_selector(s))]


def find_config_file(start: Path) -> Path | None:
    """The nearest config file at or above `start`, or None."""
    for directory in (start, *start.parents):
        dedicated = directory / DEDICATED_CONFIG_NAME
        if dedicated.is_file():
            return dedicated
        pyproject = directory / PYPROJECT_NAME
        if pyproject.is_file() and _pyproject_has_table(pyproject):
            return pyproject
    return None


def _pyproject_has_table(path: Path) -> bool:
    # A broken pyproject.toml that mentions our table must still be reported, not skipped.
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if "tbptt-lint" not in text:
        return False
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return True
    return isinstance(data.get("tool"), dict) and "tbptt-lint" in data["tool"]


def read_config_file(path: Path) -> ConfigFile:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read configuration file: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: configuration file is not valid UTF-8: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(_describe_toml_error(path, error)) from None
    is_pyproject = path.name == PYPROJECT_NAME
    if is_pyproject:
        table: Any = data.get("tool", {})
        table = table.get("tbptt-lint", {}) if isinstance(table, dict) else {}
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [tool.tbptt-lint] must be a table")
    else:
        table = data
    return ConfigFile(path=path, table=table, text=text, is_pyproject=is_pyproject)


def _describe_toml_error(path: Path, error: tomllib.TOMLDecodeError) -> str:
    message = str(error)
    # tomllib puts the position in the message: "Invalid value (at line 2, column 1)".
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", message)
    if match:
        reason = message[: match.start()]
        return f"{path}:{match.group(1)}:{match.group(2)}: invalid TOML: {reason}"
    return f"{path}: invalid TOML: {message}"


def _key_line(config: ConfigFile, key: str) -> int | None:
    """Best-effort line of `key` in the config text; tomllib does not report positions."""
    lines = config.text.splitlines()
    escaped = re.escape(key)
    key_pattern = re.compile(rf"""^\s*(?:{escaped}|"{escaped}"|'{escaped}')\s*=""")
    subtable_suffix = rf"""\.\s*(?:{escaped}|"{escaped}")\s*\]"""
    if config.is_pyproject:
        header = re.compile(r"""^\s*\[\s*tool\s*\.\s*(?:tbptt-lint|"tbptt-lint")\s*\]""")
        subtable = re.compile(
            r"""^\s*\[\s*tool\s*\.\s*(?:tbptt-lint|"tbptt-lint")""" + subtable_suffix
        )
    else:
        header = None
        subtable = re.compile(rf"""^\s*\[\s*(?:{escaped}|"{escaped}")\s*\]""")
    in_table = header is None
    for number, line in enumerate(lines, start=1):
        if subtable.match(line):
            return number
        if line.lstrip().startswith("["):
            in_table = header is not None and bool(header.match(line))
            continue
        if in_table and key_pattern.match(line):
            return number
    return None


def _where(config: ConfigFile, key: str) -> str:
    line = _key_line(config, key)
    return f"{config.path}:{line}" if line else str(config.path)


def _table_name(config: ConfigFile) -> str:
    return "[tool.tbptt-lint]" if config.is_pyproject else "the top level"


def _string_list(
    config: ConfigFile, key: str, value: Any, what: str | None = None
) -> tuple[str, ...]:
    label = what or f"'{key}'"
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(
            f"{_where(config, key)}: {label} must be a list of strings, got {_describe_type(value)}"
        )
    return tuple(value)


def _describe_type(value: Any) -> str:
    if isinstance(value, list):
        kinds = sorted({type(item).__name__ for item in value if not isinstance(item, str)})
        return f"a list containing {', '.join(kinds)}" if kinds else "a list"
    return {dict: "a table", str: "a string", bool: "a boolean", int: "an integer"}.get(
        type(value), type(value).__name__
    )


def _check_selectors(config: ConfigFile, key: str, selectors: tuple[str, ...]) -> None:
    unknown = unknown_selectors(selectors)
    if unknown:
        raise ConfigError(
            f"{_where(config, key)}: unknown rule code or prefix '{unknown[0]}' in '{key}'"
        )


def parse_config_table(config: ConfigFile) -> dict[str, Any]:
    """Validate the table and return Settings keyword arguments for the keys it sets."""
    values: dict[str, Any] = {}
    for key, value in config.table.items():
        if key not in KNOWN_KEYS:
            raise ConfigError(
                f"{_where(config, key)}: unknown key '{key}' in {_table_name(config)} "
                f"(known keys: {', '.join(KNOWN_KEYS)})"
            )
        if key in LIST_KEYS:
            items = _string_list(config, key, value)
            if key in RULE_SELECTOR_KEYS:
                _check_selectors(config, key, items)
                items = tuple(normalize_selector(item) for item in items)
            values[LIST_KEYS[key]] = items
        elif key in BOOL_KEYS:
            if not isinstance(value, bool):
                raise ConfigError(
                    f"{_where(config, key)}: '{key}' must be true or false, "
                    f"got {_describe_type(value)}"
                )
            values[BOOL_KEYS[key]] = value
        else:
            values["per_file_ignores"] = _per_file_ignores(config, key, value)
    return values


def _per_file_ignores(
    config: ConfigFile, key: str, value: Any
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, dict):
        raise ConfigError(
            f"{_where(config, key)}: '{key}' must be a table of glob = [codes], "
            f"got {_describe_type(value)}"
        )
    entries = []
    for pattern, codes in value.items():
        items = _string_list(config, key, codes, f"'{key}' entry '{pattern}'")
        _check_selectors(config, key, items)
        entries.append((pattern, tuple(normalize_selector(code) for code in items)))
    return tuple(entries)


def _apply_overrides(values: dict[str, Any], overrides: CliOverrides) -> dict[str, Any]:
    """Command-line selection on top of the file's, in ruff's order."""
    merged = dict(values)
    config_ignore: tuple[str, ...] = merged.get("ignore", ())
    if overrides.select is not None:
        # A select on the command line starts the selection afresh, as in ruff.
        merged["select"] = overrides.select
        merged["extend_select"] = overrides.extend_select or ()
        merged["ignore"] = overrides.ignore or ()
        return merged
    if overrides.extend_select:
        # A later extend-select re-enables codes an earlier ignore removed. Settings apply ignore
        # last, so expand the file's ignore into exact codes and drop the re-selected ones.
        reselected = {
            rule.code for selector in overrides.extend_select for rule in rules_matching(selector)
        }
        config_ignore = tuple(
            sorted(
                {rule.code for selector in config_ignore for rule in rules_matching(selector)}
                - reselected
            )
        )
        merged["extend_select"] = (*merged.get("extend_select", ()), *overrides.extend_select)
    merged["ignore"] = (*config_ignore, *(overrides.ignore or ()))
    return merged


def load_settings(
    *,
    config_path: Path | None = None,
    isolated: bool = False,
    cwd: Path | None = None,
    overrides: CliOverrides | None = None,
    search_from: Path | None = None,
) -> Settings:
    """Resolve the settings for a run. Raises ConfigError with a one-line message.

    `config_path` names the file to use (no search); `isolated` ignores every file; otherwise the
    nearest config at or above `search_from` (default: `cwd`, itself by default the current
    directory) is used. Without a config file the project root is `cwd`.
    """
    start = (cwd or Path.cwd()).resolve()
    overrides = overrides or CliOverrides()
    for name, selectors in (
        ("--select", overrides.select),
        ("--ignore", overrides.ignore),
        ("--extend-select", overrides.extend_select),
        ("--fixable", overrides.fixable),
        ("--unfixable", overrides.unfixable),
    ):
        unknown = unknown_selectors(selectors or ())
        if unknown:
            raise ConfigError(f"unknown rule code or prefix '{unknown[0]}' in {name}")
    overrides = dataclasses.replace(
        overrides,
        select=_normalized(overrides.select),
        ignore=_normalized(overrides.ignore),
        extend_select=_normalized(overrides.extend_select),
        fixable=_normalized(overrides.fixable),
        unfixable=_normalized(overrides.unfixable),
    )

    found: Path | None = None
    if not isolated:
        found = (
            (start / config_path)
            if config_path is not None
            else find_config_file(search_from.resolve() if search_from else start)
        )
    values: dict[str, Any] = {}
    project_root = start
    if found is not None:
        found = found.resolve() if found.exists() else found
        config = read_config_file(found)
        values = parse_config_table(config)
        project_root = found.parent
    values = _apply_overrides(values, overrides)
    values.setdefault("exclude", DEFAULT_EXCLUDE)
    if overrides.exclude is not None:
        values["exclude"] = overrides.exclude
    if overrides.extend_exclude:
        values["extend_exclude"] = (*values.get("extend_exclude", ()), *overrides.extend_exclude)
    if overrides.fixable is not None:
        values["fixable"] = overrides.fixable
    if overrides.unfixable is not None:
        values["unfixable"] = overrides.unfixable
    if overrides.force_exclude is not None:
        values["force_exclude"] = overrides.force_exclude
    return Settings(**values, config_path=found, project_root=project_root)


def describe_settings(settings: Settings, enabled: Iterable[str]) -> str:
    """The resolved settings as text, one key per line, for --show-settings."""

    def show(items: Iterable[str]) -> str:
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"

    per_file = ", ".join(f'"{glob}" = {show(codes)}' for glob, codes in settings.per_file_ignores)
    lines = [
        f"config-path = {settings.config_path if settings.config_path else '(none)'}",
        f"project-root = {settings.project_root}",
        f"select = {show(settings.select)}",
        f"ignore = {show(settings.ignore)}",
        f"extend-select = {show(settings.extend_select)}",
        f"per-file-ignores = {{{per_file}}}",
        f"fixable = {show(settings.fixable)}",
        f"unfixable = {show(settings.unfixable)}",
        f"exclude = {show(settings.exclude)}",
        f"extend-exclude = {show(settings.extend_exclude)}",
        f"force-exclude = {'true' if settings.force_exclude else 'false'}",
        f"detach-functions = {show(settings.detach_functions)}",
        f"recurrent-modules = {show(settings.recurrent_modules)}",
        f"enabled-rules = {show(sorted(enabled))}",
    ]
    return "\n".join(lines) + "\n"
