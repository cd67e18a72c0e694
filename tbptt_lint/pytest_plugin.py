"""Moved to `tbptt_lint.integrations.pytest_plugin` (the pytest plugin);
this name stays importable, as the same module."""

import sys

from tbptt_lint.integrations import pytest_plugin as _moved

sys.modules[__name__] = _moved
