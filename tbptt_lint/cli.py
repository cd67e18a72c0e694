"""The `tbptt-lint` command line: `[check] [PATH ...]`, `rule`, and `trace` (dispatched lazily,
since it needs torch)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from tbptt_lint import __version__
from tbptt_lint.cache import CACHE_DIRECTORY, LintCache
from tbptt_lint.config import CliOverrides, ConfigError, describe_settings, load_settings
from tbptt_lint.diagnostics import rule_url
from tbptt_lint.discovery import discover
from tbptt_lint.engine import FileChecker, LintResult, available_cpus, lint_paths, lint_stdin
from tbptt_lint.fixer import FixOutcome, fixed_total, unified_diff, write_fixes
from tbptt_lint.output import DEFAULT_FORMAT, FORMATS, ReportContext, render
from tbptt_lint.output import statistics as statistics_output
from tbptt_lint.output.rule_docs import rule_documentation
from tbptt_lint.settings import Settings
from tbptt_lint.strict import strict
from tbptt_lint.watch import Snapshot, watch, watched_files

if TYPE_CHECKING:
    from tbptt_lint.rules.base import Rule

PROG = "tbptt-lint"
DEBUG_ENV = "TBPTT_LINT_DEBUG"
EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
# The path that stands for stdin, and the name findings in it get without --stdin-filename.
STDIN_NAME = "-"
# Modules of the `trace` extra; their absence means the extra is not installed.
TRACE_EXTRA_MODULES = ("torch", "torchviz", "graphviz")
TRACE_EXTRA_MESSAGE = (
    f"{PROG}: error: the trace command needs the trace extra: pip install 'tbptt-lint[trace]'"
)

EXIT_STATUS_EPILOG = """\
exit status:
  0  no findings (with --fix: none left; with --fix-only: always)
  1  findings were reported (files that cannot be parsed, TBP900, or read, TBP901, count);
     with --diff: some file would change; with --exit-non-zero-on-fix: a fix was applied
  2  usage or configuration error, or an internal error

other commands:
  tbptt-lint rule CODE | --all [--output-format text|json]   show rule documentation
  tbptt-lint trace ...                                        measure a training run (needs torch)
  tbptt-lint server                                           language server for editors (stdio)
"""


class UsageError(Exception):
    """A mistake on the command line; printed as one line, exit status 2."""


class _ParserExit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse that reports instead of calling sys.exit, so main() can return a status."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _ParserExit(status)


def _codes(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{value}'") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{value}'")
    return number


def build_check_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        usage=f"{PROG} [check] [options] [PATH ...]",
        description="Find truncated-backpropagation-through-time bugs in PyTorch training loops.",
        epilog=EXIT_STATUS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or directories (default: .; -: stdin)"
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    selection = parser.add_argument_group("rule selection")
    for flag, what in (
        ("--select", "rule codes or prefixes to enable, replacing the configured selection"),
        ("--ignore", "rule codes or prefixes to disable"),
        ("--extend-select", "rule codes or prefixes to enable on top of the selection"),
    ):
        selection.add_argument(
            flag, action="append", type=_codes, metavar="CODES", help=f"{what} (comma-separated)"
        )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--output-format", choices=tuple(FORMATS), default=DEFAULT_FORMAT, help="default: text"
    )
    output.add_argument("--output-file", type=Path, metavar="PATH", help="write the report here")
    output.add_argument(
        "--statistics", action="store_true", help="print the number of findings per rule instead"
    )
    output.add_argument(
        "--show-source",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show the source line under each finding (text format; default: show)",
    )
    output.add_argument(
        "-q", "--quiet", action="store_true", help="print findings and nothing else"
    )
    output.add_argument("--exit-zero", action="store_true", help="exit 0 even with findings")
    fixing = parser.add_argument_group("fixes")
    fixing.add_argument(
        "--fix",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="apply safe fixes and report what is left",
    )
    fixing.add_argument(
        "--unsafe-fixes",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also apply (or show) fixes that may change what the code does",
    )
    fixing.add_argument(
        "--fix-only",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="apply fixes, but do not report or exit non-zero for what is left (implies --fix)",
    )
    fixing.add_argument(
        "--diff",
        action="store_true",
        help="print a unified diff of the fixes instead of writing them; exit 1 if any "
        "(implies --fix-only)",
    )
    for flag, what in (
        ("--fixable", "rule codes or prefixes whose fixes may be applied (default: all)"),
        ("--unfixable", "rule codes or prefixes whose fixes are never applied"),
    ):
        fixing.add_argument(
            flag, action="append", type=_codes, metavar="CODES", help=f"{what} (comma-separated)"
        )
    fixing.add_argument(
        "--add-noqa",
        action="store_true",
        help="add `# noqa: CODE` to every line with a finding (merged into an existing noqa "
        "comment; in a notebook, in the finding's cell) and report nothing else; "
        "--add-noqa=REASON writes REASON after the codes",
    )
    # `--add-noqa=REASON` (the `=` required, as in ruff) becomes `--add-noqa` and this.
    fixing.add_argument("--add-noqa-reason", default=None, help=argparse.SUPPRESS)
    fixing.add_argument(
        "--exit-non-zero-on-fix",
        action="store_true",
        help="exit 1 when a fix was applied, even if nothing is left",
    )
    parser.add_argument(
        "--stdin-filename",
        metavar="PATH",
        help="the name of the file read from stdin (with `-`): how findings name it, and the "
        "path configuration and per-file-ignores are resolved for",
    )
    files = parser.add_argument_group("file selection")
    files.add_argument(
        "--exclude",
        action="append",
        type=_codes,
        metavar="PATTERNS",
        help="glob patterns of files and directories to skip, replacing the configured and "
        "default ones (comma-separated)",
    )
    files.add_argument(
        "--extend-exclude",
        action="append",
        type=_codes,
        metavar="PATTERNS",
        help="glob patterns to skip on top of the excluded ones (comma-separated)",
    )
    files.add_argument(
        "--force-exclude",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply the excludes to paths named on the command line too (as pre-commit does)",
    )
    config = parser.add_argument_group("configuration")
    config.add_argument("--config", type=Path, metavar="PATH", help="use this configuration file")
    config.add_argument("--isolated", action="store_true", help="ignore all configuration files")
    config.add_argument(
        "--show-settings", action="store_true", help="print the resolved settings and exit"
    )
    config.add_argument(
        "--show-files", action="store_true", help="print the files that would be linted and exit"
    )
    run = parser.add_argument_group("execution")
    run.add_argument(
        "--jobs",
        type=_positive_int,
        metavar="N",
        help=f"worker processes (default: one per CPU, here {available_cpus()}; 1: no pool)",
    )
    run.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="lint again whenever a linted file or the configuration changes (Ctrl-C stops)",
    )
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor write the results cache",
    )
    run.add_argument(
        "--cache-dir",
        type=Path,
        metavar="PATH",
        help=f"where the results cache lives (default: {CACHE_DIRECTORY}/ in the project root)",
    )
    return parser


def build_rule_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=f"{PROG} rule", description="Show the documentation of a rule.")
    parser.add_argument("code", nargs="?", metavar="CODE", help="a rule code such as TBP001")
    parser.add_argument("--all", action="store_true", help="list every rule")
    parser.add_argument("--output-format", choices=("text", "json"), default="text")
    return parser


def _flatten(values: list[list[str]] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    return tuple(code for group in values for code in group)


def _use_color(stream: TextIO) -> bool:
    if "NO_COLOR" in os.environ:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def run_check(argv: Sequence[str]) -> int:
    args = build_check_parser().parse_args(_add_noqa_reason(argv))
    if args.config is not None and args.isolated:
        raise UsageError("--config and --isolated cannot be used together")
    overrides = CliOverrides(
        select=_flatten(args.select),
        ignore=_flatten(args.ignore),
        extend_select=_flatten(args.extend_select),
        exclude=_flatten(args.exclude),
        extend_exclude=_flatten(args.extend_exclude),
        force_exclude=args.force_exclude,
        fixable=_flatten(args.fixable),
        unfixable=_flatten(args.unfixable),
    )
    stdin = _reads_stdin(args)

    def settings_now() -> Settings:
        return load_settings(
            config_path=args.config,
            isolated=args.isolated,
            overrides=overrides,
            search_from=_config_start(args.stdin_filename) if stdin else None,
        )

    if args.watch:
        if stdin:
            raise UsageError("--watch cannot be used with stdin")

        # Settings are read again for every run, so an edited configuration takes effect; a
        # broken one is reported and the watch goes on until it is mended.
        def run_once() -> int:
            try:
                return _check_once(args, settings_now(), stdin=False)
            except ConfigError as error:
                print(f"{PROG}: error: {error}", file=sys.stderr, flush=True)
                return EXIT_ERROR

        def snapshot() -> Snapshot:
            try:
                return watched_files(args.paths or ["."], settings_now())
            except ConfigError as error:
                # Mending the configuration (the error goes or changes) starts a run.
                return {f"{PROG}: error: {error}": None}

        return watch(run_once, snapshot)
    return _check_once(args, settings_now(), stdin)


def _check_once(  # noqa: C901 - one branch per output mode of the command line
    args: argparse.Namespace, settings: Settings, stdin: bool
) -> int:
    if args.show_settings:
        sys.stdout.write(describe_settings(settings, FileChecker(settings).enabled))
        return EXIT_OK
    if args.show_files:
        for path in discover(args.paths or ["."], settings).files:
            print(os.path.abspath(path))
        return EXIT_OK

    cache = None
    if not args.no_cache:
        cache = LintCache(args.cache_dir or settings.project_root / CACHE_DIRECTORY, settings)
    fix_only = args.fix_only or args.diff
    fixing = args.fix or fix_only
    if args.add_noqa:
        if "\n" in (args.add_noqa_reason or "") or "\r" in (args.add_noqa_reason or ""):
            raise UsageError("--add-noqa <reason> cannot contain newline characters")
        if fixing or stdin:
            what = "stdin" if stdin else "--fix, --fix-only and --diff"
            raise UsageError(f"--add-noqa cannot be used with {what}")
        return _run_add_noqa(args, settings, cache)
    # With stdin, the fixed source goes to stdout (as ruff does), so the report goes to stderr.
    report_stream = sys.stdout
    if stdin:
        data = sys.stdin.buffer.read()
        path = Path(args.stdin_filename or STDIN_NAME)
        result = lint_stdin(data, path, settings, fix=fixing, unsafe_fixes=args.unsafe_fixes)
        if fixing and not args.diff:
            for outcome in result.fixes:
                sys.stdout.buffer.write(outcome.fixed)
            sys.stdout.flush()
            report_stream = sys.stderr
    else:
        result = lint_paths(
            args.paths or ["."],
            settings,
            jobs=args.jobs,
            cache=cache,
            fix=fixing,
            unsafe_fixes=args.unsafe_fixes,
        )
    if args.diff:
        _print_diffs(result.fixes)
    elif fixing and not stdin:
        result.warnings.extend(write_fixes(result.fixes))
        result.use_fix_outcomes()
    fixed = fixed_total(result.fixes)
    if not args.quiet:
        for warning in result.warnings:
            print(warning, file=sys.stderr)
    if args.diff:
        if not args.quiet:
            print(f"Would fix {fixed} error{'s' if fixed != 1 else ''}.", file=sys.stderr)
    elif fix_only:
        if not args.quiet:
            print(f"Fixed {fixed} error{'s' if fixed != 1 else ''}.", file=report_stream)
    else:
        _write_report(result, args, fixed if fixing else None, report_stream)

    if result.internal_errors:
        _report_internal_errors(result)
        return EXIT_ERROR
    if args.diff:
        return EXIT_FINDINGS if any(outcome.changed for outcome in result.fixes) else EXIT_OK
    if args.exit_non_zero_on_fix and fixed:
        return EXIT_FINDINGS
    if result.diagnostics and not args.exit_zero and not fix_only:
        return EXIT_FINDINGS
    return EXIT_OK


def _add_noqa_reason(argv: Sequence[str]) -> list[str]:
    """`--add-noqa=REASON` as `--add-noqa --add-noqa-reason REASON`: the reason is given only
    with `=`, so that `--add-noqa src/` still names a path."""
    arguments: list[str] = []
    for position, argument in enumerate(argv):
        if argument == "--":
            return arguments + list(argv[position:])
        if argument.startswith("--add-noqa="):
            arguments += ["--add-noqa", f"--add-noqa-reason={argument.split('=', 1)[1]}"]
        else:
            arguments.append(argument)
    return arguments


def _run_add_noqa(args: argparse.Namespace, settings: Settings, cache: LintCache | None) -> int:
    """`--add-noqa`: like ruff, say how many directives were added and exit 0."""
    from tbptt_lint.add_noqa import add_noqa  # only this mode needs it

    result = lint_paths(args.paths or ["."], settings, jobs=args.jobs, cache=cache)
    added = add_noqa(result.diagnostics, args.add_noqa_reason or None)
    if not args.quiet:
        for warning in (*result.warnings, *added.warnings):
            print(warning, file=sys.stderr)
        if added.added:
            plural = "s" if added.added != 1 else ""
            print(f"Added {added.added} noqa directive{plural}.", file=sys.stderr)
    if result.internal_errors:
        _report_internal_errors(result)
        return EXIT_ERROR
    return EXIT_OK


def _reads_stdin(args: argparse.Namespace) -> bool:
    """`-` as the only path reads stdin; so does `--stdin-filename` without paths, as in ruff."""
    if STDIN_NAME in args.paths and len(args.paths) > 1:
        raise UsageError("'-' (stdin) cannot be combined with other paths")
    return args.paths == [STDIN_NAME] or (not args.paths and args.stdin_filename is not None)


def _config_start(stdin_filename: str | None) -> Path | None:
    """Where the configuration of a file read from stdin is searched from: the directory of
    its name (the nearest one that exists), so an editor gets the file's project settings."""
    if stdin_filename is None:
        return None
    directory = (Path.cwd() / stdin_filename).parent
    while not directory.is_dir() and directory.parent != directory:
        directory = directory.parent
    return directory


def _print_diffs(outcomes: list[FixOutcome]) -> None:
    context = ReportContext()
    for outcome in sorted(outcomes, key=lambda o: o.path):
        if outcome.changed:
            sys.stdout.write(unified_diff(outcome, context.display_path(outcome.path)))
    sys.stdout.flush()


def _write_report(
    result: LintResult, args: argparse.Namespace, fixed: int | None, stream: TextIO
) -> None:
    to_stdout = args.output_file is None
    color = to_stdout and args.output_format in ("text", "concise") and _use_color(stream)
    if args.statistics:
        if args.output_format == "json":
            report = statistics_output.render_json(result.diagnostics, args.unsafe_fixes)
        else:
            report = statistics_output.render_text(result.diagnostics, args.unsafe_fixes)
    else:
        context = ReportContext(
            files_checked=result.files_checked,
            show_source=args.show_source,
            color=color,
            quiet=args.quiet,
            fixed=fixed,
            unsafe_fixes=args.unsafe_fixes,
        )
        report = render(args.output_format, result.diagnostics, context)
    if to_stdout:
        stream.write(report)
        stream.flush()
        return
    try:
        args.output_file.parent.mkdir(parents=True, exist_ok=True)
        args.output_file.write_text(report, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot write {args.output_file}: {error.strerror or error}") from None


def _report_internal_errors(result: LintResult) -> None:
    debug = bool(os.environ.get(DEBUG_ENV))
    for error in result.internal_errors:
        print(
            f"{PROG}: error: internal error while checking {error.path}: {error.message}",
            file=sys.stderr,
        )
        if debug and error.traceback:
            sys.stderr.write(error.traceback)
    if not debug:
        print(f"({'run with ' + DEBUG_ENV}=1 for the traceback)", file=sys.stderr)


def rule_metadata(rule: type[Rule]) -> dict[str, object]:
    return {
        "code": rule.code,
        "name": rule.name,
        "severity": rule.severity.value,
        "summary": rule.summary(),
        "fix_availability": rule.fix_availability,
        "default_enabled": rule.default_enabled,
        "url": rule_url(rule.code),
    }


def run_rule(argv: Sequence[str]) -> int:
    from tbptt_lint.rules import ALL_RULES, RULES_BY_CODE

    args = build_rule_parser().parse_args(list(argv))
    if args.all == (args.code is not None):
        raise UsageError("rule needs either a rule code or --all")
    if args.all:
        if args.output_format == "json":
            print(json.dumps([rule_metadata(rule) for rule in ALL_RULES], indent=2))
        else:
            width = max(len(rule.name) for rule in ALL_RULES)
            for rule in ALL_RULES:
                print(
                    f"{rule.code}  {rule.name:<{width}}  {rule.severity.value:<7}  {rule.summary()}"
                )
        return EXIT_OK
    chosen = RULES_BY_CODE.get(args.code.upper())
    if chosen is None:
        raise UsageError(f"unknown rule code '{args.code}'")
    if args.output_format == "json":
        print(
            json.dumps(
                {**rule_metadata(chosen), "explanation": rule_documentation(chosen)}, indent=2
            )
        )
    else:
        sys.stdout.write(rule_documentation(chosen))
    return EXIT_OK


def run_trace(argv: Sequence[str]) -> int:
    try:
        from tbptt_lint.tracer.cli import run_trace_command
    except ImportError as error:
        missing = (error.name or "").split(".")[0]
        if missing in TRACE_EXTRA_MODULES:
            print(TRACE_EXTRA_MESSAGE, file=sys.stderr)
            return EXIT_ERROR
        raise
    return run_trace_command(list(argv))


def run_server(argv: Sequence[str]) -> int:
    from tbptt_lint.integrations.server import run_server_command

    return run_server_command(argv)


COMMANDS = {"check": run_check, "rule": run_rule, "trace": run_trace, "server": run_server}


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] in ("--version", "-V"):
        print(f"{PROG} {__version__}")
        return EXIT_OK
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    # `check` is optional: `tbptt-lint src/` means `tbptt-lint check src/`.
    return run_check(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status (the console script exits with it)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(arguments)
    except _ParserExit as done:
        return done.status
    except (UsageError, ConfigError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if strict():
            raise
        print(f"{PROG}: error: internal error: {type(error).__name__}: {error}", file=sys.stderr)
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        else:
            print(f"(run with {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
