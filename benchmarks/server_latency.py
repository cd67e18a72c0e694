"""Time from an edit to its diagnostics in `tbptt-lint server`, through a real LSP client.

    python benchmarks/server_latency.py [--loops 67] [--changes 10] [--burst-seconds 5]

Opens a generated training file of LOOPS loops (15 lines each: 67 loops make 1,007 lines, a
third of them leaking their state) in two servers side by side: "before", which checks the
whole file on every change (`"incremental": false`), and "after", the default, which checks
again only the blocks an edit can change (`tbptt_lint/integrations/server/incremental.py`).
Then, in each:
- single edits, CHANGES of each kind, the time from sending one to the diagnostics of that
  version (the server's debounce included; it is printed): a space typed at the end of a
  line in a loop in the middle of the file; a blank line added to (or removed from) that
  loop, which moves every loop below it; and edits outside every function: a space typed at
  the end of the first line (the imports), an import added at the top (and taken away again
  at the next edit), which moves every loop, a constant added below the imports (and taken
  away), a function added at the end of the file (and taken away). No loop names what these
  change, so "after" keeps every loop's findings, moved where the loop now sits;
- a burst: 10 edits a second (spaces typed in the loop) for BURST-SECONDS, then the time from
  the last edit to the diagnostics of the last version, and how many analyses were published
  meanwhile. With no backlog, that time stays near one analysis however long the burst.
Figures are printed, never asserted; the ratio is before / after. Issue 16's goal:
diagnostics within 300 ms of a change, 10 changes a second without a backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from huge_file import source


class Recorder:
    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.count = 0
        self.event = asyncio.Event()


async def measure(text: str, folder: Path, incremental: bool, args: argparse.Namespace) -> dict:
    """The figures of one server (seconds)."""
    path = folder / ("after.py" if incremental else "before.py")
    path.write_text(text)
    uri = path.as_uri()
    client = LanguageClient("server-latency", "1")
    recorder = Recorder()

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def published(params: types.PublishDiagnosticsParams) -> None:
        if params.uri == uri and params.version is not None:
            recorder.arrived[params.version] = time.perf_counter()
            recorder.count += 1
            recorder.event.set()

    async def wait_for(version: int) -> float:
        while version not in recorder.arrived:
            recorder.event.clear()
            await asyncio.wait_for(recorder.event.wait(), 120)
        return recorder.arrived[version]

    await client.start_io(sys.executable, "-m", "tbptt_lint", "server")
    options: dict[str, object] = {"incremental": incremental}
    if args.debounce_ms is not None:
        options["debounceMs"] = args.debounce_ms
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=folder.as_uri(),
            initialization_options=options,
        )
    )
    client.initialized(types.InitializedParams())

    version = 1
    figures: dict = {}
    started = time.perf_counter()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", version, text))
    )
    figures["open"] = await wait_for(version) - started
    lines = text.splitlines()
    # `opt.step()` of the loop in the middle of the file.
    middle = next(n for n in range(len(lines) // 2, len(lines)) if "opt.step()" in lines[n])
    ends = {0: len(lines[0]), middle: len(lines[middle])}
    blank = [False]

    def change(version: int, start: tuple[int, int], end: tuple[int, int], new: str) -> None:
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(version, uri),
                [
                    types.TextDocumentContentChangePartial(
                        range=types.Range(types.Position(*start), types.Position(*end)),
                        text=new,
                    )
                ],
            )
        )

    def space(version: int, line: int) -> None:
        change(version, (line, ends[line]), (line, ends[line]), " ")
        ends[line] += 1

    toggled: dict[str, bool] = {}

    def toggle(version: int, name: str, line: int, added: str) -> None:
        # Add `added` before `line`, or take it away again: every other edit restores the file.
        if toggled.get(name):
            change(version, (line, 0), (line + added.count("\n"), 0), "")
        else:
            change(version, (line, 0), (line, 0), added)
        toggled[name] = not toggled.get(name)

    def enter(version: int) -> None:
        # Add a blank line after the loop's line, or take it away again.
        if blank[0]:
            change(version, (middle + 1, 0), (middle + 2, 0), "")
        else:
            change(version, (middle + 1, 0), (middle + 1, 0), "\n")
        blank[0] = not blank[0]

    kinds = {
        "space typed in a loop": lambda v: space(v, middle),
        "blank line added in a loop": enter,
        "space typed in the imports": lambda v: space(v, 0),
        "import added at the top": lambda v: toggle(v, "import", 0, "import os\n"),
        "constant added below the imports": lambda v: toggle(v, "constant", 2, "LR = 0.1\n"),
        "function added at the end": lambda v: toggle(
            v, "function", len(lines), "\n\ndef helper(x):\n    return x + 1\n"
        ),
    }
    for kind, edit in kinds.items():
        latencies = []
        for _ in range(args.changes):
            version += 1
            sent = time.perf_counter()
            edit(version)
            latencies.append(await wait_for(version) - sent)
        figures[kind] = (statistics.median(latencies), max(latencies))

    before = recorder.count
    edits = int(args.burst_seconds * 10)
    for _ in range(edits):
        version += 1
        space(version, middle)
        await asyncio.sleep(0.1)
    last_sent = time.perf_counter()
    figures["burst"] = await wait_for(version) - last_sent
    figures["burst analyses"] = recorder.count - before
    figures["burst edits"] = edits

    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=67)
    parser.add_argument("--changes", type=int, default=10, help="even: edits come in pairs")
    parser.add_argument("--burst-seconds", type=float, default=5.0)
    parser.add_argument("--debounce-ms", type=float, default=None, help="default: the server's")
    args = parser.parse_args()

    text = source(args.loops)
    folder = Path(tempfile.mkdtemp(prefix="tbptt-lint-server-"))
    print(f"file: {text.count(chr(10))} lines, {args.loops} loops; debounce: ", end="")
    print("the server's" if args.debounce_ms is None else f"{args.debounce_ms:.0f} ms")
    before = await measure(text, folder, False, args)
    after = await measure(text, folder, True, args)

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:6.0f} ms"

    print(f"{'':62} {'before':>9} {'after':>9} {'ratio':>7}")
    print(
        f"{'open -> diagnostics (cold: imports, first parse)':62} "
        f"{ms(before['open'])} {ms(after['open'])} {before['open'] / after['open']:6.1f}x"
    )
    for kind in (
        "space typed in a loop",
        "blank line added in a loop",
        "space typed in the imports",
        "import added at the top",
        "constant added below the imports",
        "function added at the end",
    ):
        for label, position in (("median", 0), ("max", 1)):
            b, a = before[kind][position], after[kind][position]
            print(f"{f'change -> diagnostics, {kind}, {label}':62} {ms(b)} {ms(a)} {b / a:6.1f}x")
    b, a = before["burst"], after["burst"]
    print(f"{'burst at 10/s: last edit -> its diagnostics':62} {ms(b)} {ms(a)} {b / a:6.1f}x")
    print(
        f"burst: {after['burst edits']} edits over {args.burst_seconds:.0f} s; diagnostics "
        f"published meanwhile: before {before['burst analyses']}, after {after['burst analyses']}"
    )
    single = after["space typed in a loop"][1]
    print(
        "after: "
        + ("no backlog" if a < 2 * single + 0.1 else "a backlog built up")
        + f" (last edit of the burst {a * 1000:.0f} ms, one edit at most {single * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    asyncio.run(main())
