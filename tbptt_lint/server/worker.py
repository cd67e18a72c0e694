"""Moved to `tbptt_lint.integrations.server.worker`;
this name stays importable, as the same module."""

import sys

from tbptt_lint.integrations.server import worker as _moved

sys.modules[__name__] = _moved
