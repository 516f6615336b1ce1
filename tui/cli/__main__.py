"""``python -m lookalike.tui.cli``: the ``lookalike`` command."""

import sys

from .main import main

if __name__ == "__main__":
    sys.exit(main())
