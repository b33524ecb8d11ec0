"""The operator tool: ``dash-database`` (also ``python -m dash_database``).

Every command takes ``--url`` (default: the ``DASH_DATABASE_URL`` environment variable, else
the SQLite file ``dash_database.sqlite`` in the working directory, as ``DashDatabase()``
resolves it) and ``--json``. SESSION arguments are storage names, as ``sessions --full``
prints them: for a signed session id, the id without its signature. See ``docs/operating.md``.

click is imported here only, never by ``import dash_database``.
"""

from __future__ import annotations

import heapq
import json
import os
import reprlib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from itertools import islice
from typing import IO, Any, Literal, NoReturn

import click

from . import __version__
from ._database import DashDatabase, Session
from ._export import export_store, import_store
from ._locations import DEFAULT_LOCATION, DEFAULT_PATH, ENV_URL, local_file, redact_url
from .backends import SessionInfo
from .exceptions import (
    BackendError,
    DashDatabaseError,
    DeserializationError,
    InvalidArgumentError,
    MissingKeyError,
)

__all__ = [
    "EXIT_BAD_URL",
    "EXIT_FAILED",
    "EXIT_UNKNOWN_SESSION",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "main",
]

#: Exit statuses, documented in docs/operating.md. 2 is click's own for a usage error.
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_URL = 3
EXIT_UNREACHABLE = 4
EXIT_UNKNOWN_SESSION = 5

_SHORT_ID = 16
_REPR_CHARS = 200
_SORTS = ("store", "id", "keys", "bytes", "written", "expires")


def _fail(message: str, status: int) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(status)


@contextmanager
def _store(url: str | None, *, create: bool = False) -> Iterator[DashDatabase]:
    """Open the store ``url`` names; turn the library's errors into messages and statuses."""
    location = DEFAULT_LOCATION if url is None else url
    try:
        path = local_file(location)
    except InvalidArgumentError as exc:
        _fail(str(exc), EXIT_BAD_URL)
    # Opening a SQLite store creates its file: a mistyped path must not look like an empty store.
    if path is not None and not create and not os.path.exists(path):
        _fail(
            f"There is no store at {path!r}. Pass the store with --url (a SQLite path, or a "
            f"sqlite://, redis:// or postgresql:// URL) or set {ENV_URL}.",
            EXIT_BAD_URL,
        )
    try:
        db = DashDatabase(location)
    except ImportError as exc:
        _fail(f"{exc}", EXIT_BAD_URL)
    except InvalidArgumentError as exc:
        _fail(str(exc), EXIT_BAD_URL)
    except BackendError as exc:
        _fail(f"{exc} Check --url, and that the server runs.", EXIT_UNREACHABLE)
    try:
        yield db
    except BackendError as exc:
        _fail(f"{exc} Check --url, and that the server runs.", EXIT_UNREACHABLE)
    except MissingKeyError as exc:
        _fail(str(exc), EXIT_UNKNOWN_SESSION)
    except DeserializationError as exc:
        _fail(f"{exc} Use --raw to see the stored bytes.", EXIT_FAILED)
    except DashDatabaseError as exc:
        _fail(str(exc), EXIT_FAILED)
    finally:
        db.close()


def _location(url: str | None) -> str:
    if url is None:
        url = os.environ.get(ENV_URL) or os.path.abspath(DEFAULT_PATH)
    return redact_url(url)


def _url_option(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--url",
        metavar="URL",
        help=f"The store: a SQLite path or a URL. Default: ${ENV_URL}, else ./{DEFAULT_PATH}.",
    )(func)
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n:,} B" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def _shown(name: str, full: bool = True) -> str:
    """Return an id as a table shows it: control characters escaped, abbreviated unless full."""
    text = name if name.isprintable() else ascii(name)
    return text if full or len(text) <= _SHORT_ID else text[: _SHORT_ID - 1] + "…"


def _short_repr(value: object) -> str:
    """Return a repr of ``value`` without building the whole repr of a large container."""
    if isinstance(value, (str, bytes, bytearray)):
        return repr(value[: _REPR_CHARS + 1])
    brief = reprlib.Repr()
    brief.maxlevel, brief.maxstring, brief.maxother = 3, _REPR_CHARS, _REPR_CHARS
    return brief.repr(value)


def _known_session(db: DashDatabase, session: str) -> None:
    if not db.backend.session_keys(session, time.time(), None, 1)[0]:
        _fail(
            f"There is no live session named {session!r}. List them with 'dash-database "
            "sessions --full' (names are storage names: a signed id without its signature).",
            EXIT_UNKNOWN_SESSION,
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dash-database")
def cli() -> None:
    """See and manage what a dash_database store holds.

    Exit statuses: 0 done, 1 failed, 2 bad command line, 3 bad --url or no such store,
    4 store unreachable or failing, 5 no such session or key.
    """


@cli.command()
@_url_option
def info(url: str | None, as_json: bool) -> None:
    """Show what the store holds.

    The store, its location, and its sessions, keys, bytes and expired sessions.
    """
    with _store(url) as db:
        stats = db.stats()
        data = {"store": repr(db.backend), "location": _location(url), **asdict(stats)}
    if as_json:
        _emit_json(data)
        return
    click.echo(f"store      {data['store']}")
    click.echo(f"location   {data['location']}")
    click.echo(f"sessions   {stats.sessions:,}")
    click.echo(f"keys       {stats.keys:,}")
    click.echo(f"bytes      {_size(stats.bytes)}")
    hint = " (run 'dash-database purge' to remove them)" if stats.expired else ""
    click.echo(f"expired    {stats.expired:,}{hint}")


def _all_sessions(db: DashDatabase, page_size: int) -> Iterator[SessionInfo]:
    now = time.time()
    cursor: str | None = None
    while True:
        page, cursor = db.backend.sessions(now, cursor, page_size)
        yield from page
        if cursor is None:
            return


def _chosen(db: DashDatabase, sort: str, limit: int) -> Iterator[SessionInfo]:
    """Return the sessions to list: the first ``limit`` in the store's order (one page), or the
    top ``limit`` by ``sort`` (one pass over every session, keeping ``limit`` of them)."""
    everything = _all_sessions(db, min(limit, 1000) if limit else 1000)
    if sort == "store":
        return everything if not limit else islice(everything, limit)
    key: Callable[[SessionInfo], Any] = {
        "id": lambda s: s.session,
        "keys": lambda s: -s.keys,
        "bytes": lambda s: -s.bytes,
        "written": lambda s: -s.written,
        "expires": lambda s: float("inf") if s.deadline is None else s.deadline,
    }[sort]
    if not limit:
        return iter(sorted(everything, key=key))
    return iter(heapq.nsmallest(limit, everything, key=key))


@cli.command()
@_url_option
@click.option(
    "--sort",
    type=click.Choice(_SORTS),
    default="store",
    show_default=True,
    help="store: the store's own order (reads one page); id; keys, bytes, written: largest or "
    "newest first; expires: soonest first (these read every session once).",
)
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, help="0: all.")
@click.option("--full", is_flag=True, help="Print whole session names.")
def sessions(url: str | None, as_json: bool, sort: str, limit: int, full: bool) -> None:
    """List live sessions.

    Keys, bytes, last write and expiry (times in UTC) of each session.
    """
    with _store(url) as db:
        rows = _chosen(db, sort, limit)
        if as_json:
            click.echo("[", nl=False)
            for i, s in enumerate(rows):
                item = json.dumps(
                    {
                        "session": s.session,
                        "keys": s.keys,
                        "bytes": s.bytes,
                        "written": s.written,
                        "deadline": s.deadline,
                    },
                    ensure_ascii=False,
                )
                click.echo(("\n  " if i == 0 else ",\n  ") + item, nl=False)
            click.echo("\n]")
            return
        click.echo(f"{'KEYS':>6}  {'BYTES':>11}  {'LAST WRITE':<19}  {'EXPIRES':<19}  SESSION")
        for s in rows:
            click.echo(
                f"{s.keys:>6,}  {_size(s.bytes):>11}  {_when(s.written):<19}  "
                f"{_when(s.deadline):<19}  {_shown(s.session, full)}"
            )


@cli.command()
@_url_option
@click.argument("session")
def keys(url: str | None, as_json: bool, session: str) -> None:
    """List the keys of SESSION and their sizes."""
    with _store(url) as db:
        _known_session(db, session)
        now = time.time()
        found = []
        cursor: str | None = None
        while True:
            page, cursor = db.backend.session_keys(session, now, cursor, 1000)
            found.extend(page)
            if cursor is None:
                break
    found.sort(key=lambda k: k.key)
    if as_json:
        _emit_json([{"key": k.key, "bytes": k.bytes} for k in found])
        return
    click.echo(f"{'BYTES':>11}  KEY")
    for k in found:
        click.echo(f"{_size(k.bytes):>11}  {_shown(k.key)}")


@cli.command()
@_url_option
@click.argument("session")
@click.argument("key")
@click.option("--raw", is_flag=True, help="Write the stored bytes to stdout, undecoded.")
@click.option(
    "--serializer", default="pickle", show_default=True, help="The app's serializer: pickle, json."
)
@click.option("--compression", default=None, help="The app's compression: zlib, zstd or lz4.")
def show(
    url: str | None,
    as_json: bool,
    session: str,
    key: str,
    raw: bool,
    serializer: str,
    compression: str | None,
) -> None:
    """Show one value: its type, size and a short repr."""
    with _store(url) as db:
        _known_session(db, session)
        data = db.backend.get(session, key, time.time())
        if data is None:
            _fail(f"Session {session!r} has no key {key!r}.", EXIT_UNKNOWN_SESSION)
        if raw:
            sys.stdout.buffer.write(data)
            return
        # Decoded through the app's own read path (a Session view with the app's serializer),
        # which makes the checks a value must pass before it is deserialized.
        reader = DashDatabase(db.backend, serializer=serializer, compression=compression)
        value = Session(reader, session)[key]
    kind = type(value)
    text = _short_repr(value)
    shown = text if len(text) <= _REPR_CHARS else text[: _REPR_CHARS - 1] + "…"
    result = {
        "session": session,
        "key": key,
        "type": f"{kind.__module__}.{kind.__qualname__}".removeprefix("builtins."),
        "bytes": len(data),
        "repr": shown,
    }
    if as_json:
        _emit_json(result)
        return
    for name in ("session", "key", "type"):
        click.echo(f"{name:<8} {result[name]}")
    click.echo(f"{'bytes':<8} {_size(len(data))} stored")
    click.echo(f"{'value':<8} {shown}")


@cli.command()
@_url_option
@click.argument("session")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking.")
def delete(url: str | None, as_json: bool, session: str, yes: bool) -> None:
    """Delete one session and all its values.

    Asks first, unless --yes. SESSION is a name as 'sessions --full' prints it.
    """
    with _store(url) as db:
        _known_session(db, session)
        if not yes:
            if not sys.stdin.isatty():
                _fail(
                    f"Not deleting session {session!r}: there is no terminal to confirm on. "
                    "Add --yes to delete without asking.",
                    EXIT_FAILED,
                )
            size = db.backend.session_bytes(session, time.time())
            if not click.confirm(f"Delete session {_shown(session)} ({_size(size)})?", err=True):
                _fail("Nothing was deleted.", EXIT_FAILED)
        removed = db.backend.clear(session, time.time())
    if as_json:
        _emit_json({"session": session, "deleted_keys": removed})
    else:
        click.echo(f"Deleted session {_shown(session)}: {_count(removed, 'key')}.")


@cli.command()
@_url_option
@click.option("--quiet", "-q", is_flag=True, help="Print nothing when it succeeds (for cron).")
def purge(url: str | None, as_json: bool, quiet: bool) -> None:
    """Remove expired sessions; print how many.

    Works in bounded batches; exits 0 when it succeeded, for cron.
    """
    with _store(url) as db:
        removed = db.purge_expired()
    if as_json:
        _emit_json({"purged": removed})
    elif not quiet:
        click.echo(f"Purged {_count(removed, 'expired session')}.")


@contextmanager
def _progress(label: str, length: int | None) -> Iterator[Callable[[int], None] | None]:
    """Yield a progress callback drawing a bar on stderr when it is a terminal, else None."""
    if length is None or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


@cli.command(name="export")
@_url_option
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def export_command(url: str | None, as_json: bool, file: str, force: bool) -> None:
    """Write every live session to FILE.

    FILE '-' is stdout. The format is documented in docs/operating.md.
    """
    if file != "-" and os.path.exists(file) and not force:
        _fail(f"{file!r} exists. Choose another name, or add --force to replace it.", EXIT_FAILED)
    with _store(url) as db:
        total = db.stats().sessions
        with _progress("Exporting", total) as progress:
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
        f"{verb} {_count(summary['sessions'], 'session')}, {_count(summary['keys'], 'key')}, "
        f"{_size(summary['bytes'])}."
    )
    if summary.get("skipped"):
        line += (
            f" Skipped {summary['skipped']:,} sessions the store already held "
            "(--existing replace overwrites them)."
        )
    if summary.get("expired"):
        line += f" Left out {summary['expired']:,} sessions that had expired."
    click.echo(line, err=to_stderr)


@cli.command(name="import")
@_url_option
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
        _fail(f"There is no file {file!r} to import.", EXIT_FAILED)
    policy: Literal["skip", "replace"] = "replace" if existing == "replace" else "skip"
    with _store(url, create=True) as db:
        if file == "-":
            source: IO[bytes] = sys.stdin.buffer
            summary = import_store(db.backend, source, time.time, existing=policy)
        else:
            with open(file, "rb") as source:  # noqa: SIM117 - Python 3.9 has no (a, b) form
                with _progress("Importing", os.path.getsize(file)) as progress:
                    summary = import_store(
                        db.backend,
                        source,
                        time.time,
                        existing=policy,
                        name=repr(file),
                        progress=progress,
                    )
    _report(as_json, "Imported", asdict(summary), to_stderr=False)


def main(argv: list[str] | None = None) -> None:
    """Run the command line ``argv`` (default: the process's arguments)."""
    cli.main(args=argv, prog_name="dash-database")
