"""The operator tool: ``dash-database`` (also ``python -m dash_database``).

Every command takes ``--url`` (default: the ``DASH_DATABASE_URL`` environment variable, else
the SQLite file ``dash_database.sqlite`` in the working directory, as ``DashDatabase()``
resolves it) and ``--json``. SESSION arguments are storage names, as ``sessions --full``
prints them: for a signed session id, the id without its signature. See ``docs/operating.md``.

click is imported here only, never by ``import dash_database``.
"""

from __future__ import annotations

import click

from .. import __version__
from ._common import EXIT_BAD_URL, EXIT_FAILED, EXIT_UNKNOWN_SESSION, EXIT_UNREACHABLE, EXIT_USAGE
from ._inspect import info, keys, sessions, show
from ._manage import delete, export_command, import_command, purge

__all__ = [
    "EXIT_BAD_URL",
    "EXIT_FAILED",
    "EXIT_UNKNOWN_SESSION",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "main",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dash-database")
def cli() -> None:
    """See and manage what a dash_database store holds.

    Exit statuses: 0 done, 1 failed, 2 bad command line, 3 bad --url or no such store,
    4 store unreachable or failing, 5 no such session or key.
    """


for command in (info, sessions, keys, show, delete, purge, export_command, import_command):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Run the command line ``argv`` (default: the process's arguments)."""
    cli.main(args=argv, prog_name="dash-database")
