"""``python -m dash_database``: the operator tool (see :mod:`dash_database.cli`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
