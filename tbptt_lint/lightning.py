"""Moved to `tbptt_lint.integrations.lightning` (the Lightning callback);
this name stays importable, as the same module."""

import sys

from tbptt_lint.integrations import lightning as _moved

sys.modules[__name__] = _moved
