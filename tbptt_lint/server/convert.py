"""Moved to `tbptt_lint.integrations.server.convert`;
this name stays importable, as the same module."""

import sys

from tbptt_lint.integrations.server import convert as _moved

sys.modules[__name__] = _moved
