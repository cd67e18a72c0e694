"""Moved to `tbptt_lint.integrations.server` (the language server); `tbptt_lint.server` and its
modules stay importable: each module here is the very same module as its new one."""

from tbptt_lint.integrations.server import (
    SERVER_EXTRA_MESSAGE,
    USAGE,
    run_server_command,
)

__all__ = ["SERVER_EXTRA_MESSAGE", "USAGE", "run_server_command"]
