"""`tbptt-lint trace path/to/file.py::function --k1 7 --k2 7 --report r.html --graph g.svg`.

Loads the file by path and runs the zero-argument function under the tracer: unlike the
linter, this executes the user's code, by design. Exit codes: 0 when the run matches (or
nothing was asked), 1 when `assert_tbptt` fails, 2 for usage errors, or when the function
raised and no expectation failed.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import traceback
from pathlib import Path
from typing import Any

PROG = "tbptt-lint trace"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run a zero-argument training function under the TBPTT tracer and report "
        "each backward's stride and horizon.",
    )
    parser.add_argument("target", help="path/to/file.py::function (default function: train)")
    parser.add_argument(
        "--k1", type=int, default=None, help="expected stride (steps between backward calls)"
    )
    parser.add_argument(
        "--k2", type=int, default=None, help="expected horizon (steps each backward reaches)"
    )
    parser.add_argument("--report", metavar="PATH", help="write the HTML report here")
    parser.add_argument(
        "--graph", metavar="PATH", help="write the last backward's graph (.svg/.png/.pdf/.dot)"
    )
    parser.add_argument("--timeline", metavar="PATH", help="write the timeline (.svg/.png)")
    parser.add_argument("--json", metavar="PATH", help="write the summary as JSON")
    parser.add_argument(
        "--call", type=int, default=-1, help="which backward --graph draws (default: last)"
    )
    return parser


def _split_target(target: str) -> tuple[Path, str]:
    path_text, sep, func = target.rpartition("::")
    if not sep:
        return Path(target), "train"
    return Path(path_text), func or "train"


def _required_parameters(func: Any) -> list[str]:
    """Parameters a call without arguments would leave unfilled (none when unknown)."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # builtins and odd callables: let the call say
        return []
    return [
        name
        for name, parameter in signature.parameters.items()
        if parameter.default is parameter.empty
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]


def run_trace_command(argv: list[str]) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on errors
        return int(exc.code or 0)
    path, func_name = _split_target(args.target)
    if not path.is_file():
        print(f"{PROG}: error: no such file: {path}", file=sys.stderr)
        return 2

    from tbptt_lint.tracer import trace
    from tbptt_lint.tracer.fixture_check import load_module

    # The script's own directory first on sys.path, as `python file.py` would have it.
    sys.path.insert(0, str(path.resolve().parent))
    try:
        try:
            module = load_module(path)
        except Exception:  # noqa: BLE001 - the user's import error, shown as theirs
            print(f"{PROG}: error: importing {path} failed:", file=sys.stderr)
            traceback.print_exc()
            return 2
        func = getattr(module, func_name, None)
        if not callable(func):
            print(f"{PROG}: error: {path} has no function {func_name!r}", file=sys.stderr)
            return 2
        needed = _required_parameters(func)
        if needed:
            print(
                f"{PROG}: error: {path}::{func_name} takes arguments ({', '.join(needed)}); "
                "trace runs a function called with none: wrap the call in one",
                file=sys.stderr,
            )
            return 2
        raised: BaseException | None = None
        with trace(None) as t:
            try:
                func()
            except Exception as exc:  # noqa: BLE001 - report it after the trace
                raised = exc
    finally:
        sys.path.remove(str(path.resolve().parent))

    failed = False
    if args.k1 is not None or args.k2 is not None:
        try:
            t.assert_tbptt(k1=args.k1, k2=args.k2)
        except AssertionError:
            failed = True
    print(t.report())
    _write_outputs(t, args)
    if raised is not None:
        print(f"\n{func_name}() raised {type(raised).__name__}:", file=sys.stderr)
        traceback.print_exception(type(raised), raised, raised.__traceback__)
    if failed:
        return 1
    return 2 if raised is not None else 0


def _write_outputs(t, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    import json

    writers = (
        (args.report, lambda p: t.save_report(p)),
        (args.graph, lambda p: t.save_graph(p, call=args.call)),
        (args.timeline, lambda p: t.save_timeline(p)),
        (
            args.json,
            lambda p: Path(p).write_text(json.dumps(t.to_dict(), indent=2), encoding="utf-8"),
        ),
    )
    for target, write in writers:
        if not target:
            continue
        try:
            write(target)
            print(f"wrote {target}")
        except Exception as exc:  # noqa: BLE001 - one output failing must not hide the others
            print(f"{PROG}: could not write {target}: {exc}", file=sys.stderr)
