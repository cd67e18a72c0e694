"""Moved to `tbptt_lint.integrations.flake8_plugin` (the flake8 plugin);
this name stays importable, as the same module."""

import sys

from tbptt_lint.integrations import flake8_plugin as _moved

sys.modules[__name__] = _moved
