"""Time from an edit to its diagnostics in `tbptt-lint server`, through a real LSP client.

    python benchmarks/server_latency.py [--loops 67] [--changes 10] [--burst-seconds 5]

Opens a generated training file of LOOPS loops (15 lines each: 67 loops make 1,007 lines, a
third of them leaking their state), then:
- single edits: for each of CHANGES edits, the time from sending it to the diagnostics of that
  version (the server's debounce included; it is printed);
- a burst: 10 edits a second for BURST-SECONDS, then the time from the last edit to the
  diagnostics of the last version, and how many analyses were published meanwhile. With no
  backlog, that time stays near one analysis however long the burst.
Figures are printed, never asserted. Issue 16's goal: diagnostics within 300 ms of a change,
10 changes a second without a backlog.
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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=67)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--burst-seconds", type=float, default=5.0)
    parser.add_argument("--debounce-ms", type=float, default=None, help="default: the server's")
    args = parser.parse_args()

    text = source(args.loops)
    folder = Path(tempfile.mkdtemp(prefix="tbptt-lint-server-"))
    path = folder / "train.py"
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
            await asyncio.wait_for(recorder.event.wait(), 60)
        return recorder.arrived[version]

    await client.start_io(sys.executable, "-m", "tbptt_lint", "server")
    options = {} if args.debounce_ms is None else {"debounceMs": args.debounce_ms}
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=folder.as_uri(),
            initialization_options=options,
        )
    )
    client.initialized(types.InitializedParams())

    version = 1
    started = time.perf_counter()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", version, text))
    )
    opened = await wait_for(version) - started
    lines = text.count("\n")
    print(f"file: {lines} lines, {args.loops} loops")
    print(f"open -> diagnostics (cold: imports, first parse): {opened * 1000:.0f} ms")

    def edit(number: int) -> None:
        # Append a comment at the end of the first line: a real change, same findings.
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(number, uri),
                [
                    types.TextDocumentContentChangePartial(
                        range=types.Range(types.Position(0, 12), types.Position(0, 12)),
                        text=" ",
                    )
                ],
            )
        )

    latencies = []
    for _ in range(args.changes):
        version += 1
        sent = time.perf_counter()
        edit(version)
        latencies.append(await wait_for(version) - sent)
    print(
        f"change -> diagnostics over {args.changes} single edits (debounce included): "
        f"median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms"
    )

    before = recorder.count
    edits = int(args.burst_seconds * 10)
    for _ in range(edits):
        version += 1
        edit(version)
        await asyncio.sleep(0.1)
    last_sent = time.perf_counter()
    lag = await wait_for(version) - last_sent
    analyses = recorder.count - before
    print(
        f"burst: {edits} edits at 10/s over {args.burst_seconds:.0f} s; {analyses} "
        f"diagnostics published; last edit -> its diagnostics {lag * 1000:.0f} ms "
        f"({'no backlog' if lag < 2 * max(latencies) + 0.1 else 'a backlog built up'})"
    )

    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()


if __name__ == "__main__":
    asyncio.run(main())
