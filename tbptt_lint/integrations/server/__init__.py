"""`tbptt-lint server`: a Language Server Protocol server for editors (the `server` extra).

pygls is imported only when the server starts, so the linter itself stays libcst-only.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

SERVER_EXTRA_MESSAGE = (
    "tbptt-lint: error: the server command needs the server extra: pip install 'tbptt-lint[server]'"
)
USAGE = "usage: tbptt-lint server\n\nServe the Language Server Protocol over stdin and stdout.\n"


def run_server_command(argv: Sequence[str]) -> int:
    if any(arg in ("-h", "--help") for arg in argv):
        sys.stdout.write(USAGE)
        return 0
    if argv:
        sys.stderr.write(f"{USAGE}tbptt-lint server: error: unexpected argument {argv[0]!r}\n")
        return 2
    try:
        from tbptt_lint.integrations.server.lsp import run
    except ImportError as error:
        if (error.name or "").split(".")[0] in ("pygls", "lsprotocol"):
            print(SERVER_EXTRA_MESSAGE, file=sys.stderr)
            return 2
        raise
    return run()
