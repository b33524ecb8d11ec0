"""The commands that change or move data: delete, purge, export, import."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from typing import IO, Literal

import click

from .._export import export_store, import_store
from ._common import (
    EXIT_FAILED,
    emit_json,
    fail,
    human_size,
    known_session,
    open_store,
    plural,
    progress_bar,
    shown,
    url_option,
)


@click.command()
@url_option
@click.argument("session")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking.")
def delete(url: str | None, as_json: bool, session: str, yes: bool) -> None:
    """Delete one session and all its values.

    Asks first, unless --yes. SESSION is a name as 'sessions --full' prints it.
    """
    with open_store(url) as db:
        known_session(db, session)
        if not yes:
            if not sys.stdin.isatty():
                fail(
                    f"Not deleting session {session!r}: there is no terminal to confirm on. "
                    "Add --yes to delete without asking.",
                    EXIT_FAILED,
                )
            held = human_size(db.backend.session_bytes(session, time.time()))
            if not click.confirm(f"Delete session {shown(session)} ({held})?", err=True):
                fail("Nothing was deleted.", EXIT_FAILED)
        removed = db.backend.clear(session, time.time())
    if as_json:
        emit_json({"session": session, "deleted_keys": removed})
    else:
        click.echo(f"Deleted session {shown(session)}: {plural(removed, 'key')}.")


@click.command()
@url_option
@click.option("--quiet", "-q", is_flag=True, help="Print nothing when it succeeds (for cron).")
def purge(url: str | None, as_json: bool, quiet: bool) -> None:
    """Remove expired sessions; print how many.

    Works in bounded batches; exits 0 when it succeeded, for cron.
    """
    with open_store(url) as db:
        # The bar needs a total, which costs a stats() call: only when someone watches.
        waiting = db.stats().expired if sys.stderr.isatty() and not quiet else None
        with progress_bar("Purging expired sessions", waiting) as progress:
            removed = db.purge_expired(progress)
    if as_json:
        emit_json({"purged": removed})
    elif not quiet:
        click.echo(f"Purged {plural(removed, 'expired session')}.")


@click.command(name="export")
@url_option
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def export_command(url: str | None, as_json: bool, file: str, force: bool) -> None:
    """Write every live session to FILE.

    FILE '-' is stdout. The format is documented in docs/operating.md.
    """
    if file != "-" and os.path.exists(file) and not force:
        fail(f"{file!r} exists. Choose another name, or add --force to replace it.", EXIT_FAILED)
    with open_store(url) as db:
        total = db.stats().sessions
        with progress_bar("Exporting", total) as progress:
            if file == "-":
                summary = export_store(db.backend, _stdout(), time.time, progress)
            else:
                # Written beside FILE and renamed at the end: a failed export leaves FILE as
                # it was.
                partial = f"{file}.partial"
                try:
                    with open(partial, "wb") as out:
                        summary = export_store(db.backend, out, time.time, progress)
                    os.replace(partial, file)
                finally:
                    if os.path.exists(partial):
                        os.remove(partial)
    _report(as_json, "Exported", asdict(summary), to_stderr=file == "-")


def _stdout() -> IO[bytes]:
    return sys.stdout.buffer


def _report(as_json: bool, verb: str, summary: dict[str, int], *, to_stderr: bool) -> None:
    """Print what an export or import did (on stderr when the data itself went to stdout)."""
    if as_json:
        click.echo(json.dumps(summary), err=to_stderr)
        return
    line = (
        f"{verb} {plural(summary['sessions'], 'session')}, {plural(summary['keys'], 'key')}, "
        f"{human_size(summary['bytes'])}."
    )
    if summary.get("skipped"):
        line += (
            f" Skipped {summary['skipped']:,} sessions the store already held "
            "(--existing replace overwrites them)."
        )
    if summary.get("expired"):
        line += f" Left out {summary['expired']:,} sessions that had expired."
    click.echo(line, err=to_stderr)


@click.command(name="import")
@url_option
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--existing",
    type=click.Choice(["skip", "replace"]),
    default="skip",
    show_default=True,
    help="A session the store already holds: keep it, or replace it by the imported one.",
)
def import_command(url: str | None, as_json: bool, file: str, existing: str) -> None:
    """Write the sessions of an export FILE into the store.

    FILE '-' is stdin. A SQLite store is created if missing.
    """
    if file != "-" and not os.path.isfile(file):
        fail(f"There is no file {file!r} to import.", EXIT_FAILED)
    policy: Literal["skip", "replace"] = "replace" if existing == "replace" else "skip"
    with open_store(url, create=True) as db:
        if file == "-":
            source: IO[bytes] = sys.stdin.buffer
            summary = import_store(db.backend, source, time.time, existing=policy)
        else:
            with open(file, "rb") as source:  # noqa: SIM117 - Python 3.9 has no (a, b) form
                with progress_bar("Importing", os.path.getsize(file)) as progress:
                    summary = import_store(
                        db.backend,
                        source,
                        time.time,
                        existing=policy,
                        name=repr(file),
                        progress=progress,
                    )
    _report(as_json, "Imported", asdict(summary), to_stderr=False)
