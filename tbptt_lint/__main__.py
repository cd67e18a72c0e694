"""`python -m tbptt_lint` runs the same command line as the `tbptt-lint` script."""

from __future__ import annotations

import sys

from tbptt_lint.cli import main

if __name__ == "__main__":
    sys.exit(main())
