"""What every command of the operator tool shares: opening the store, exit statuses, output."""

from __future__ import annotations

import json
import os
import reprlib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

from .._database import DashDatabase
from .._locations import DEFAULT_LOCATION, DEFAULT_PATH, ENV_URL, local_file, redact_url
from ..exceptions import (
    BackendError,
    DashDatabaseError,
    DeserializationError,
    IntegrityError,
    InvalidArgumentError,
    MissingKeyError,
)

#: Exit statuses, documented in docs/operating.md. 2 is click's own for a usage error.
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_URL = 3
EXIT_UNREACHABLE = 4
EXIT_UNKNOWN_SESSION = 5

SHORT_ID = 16
REPR_CHARS = 200
SORTS = ("store", "id", "keys", "bytes", "written", "expires")


def fail(message: str, status: int) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(status)


@contextmanager
def open_store(url: str | None, *, create: bool = False) -> Iterator[DashDatabase]:
    """Open the store ``url`` names; turn the library's errors into messages and statuses."""
    location = DEFAULT_LOCATION if url is None else url
    try:
        path = local_file(location)
    except InvalidArgumentError as exc:
        fail(str(exc), EXIT_BAD_URL)
    # Opening a SQLite store creates its file: a mistyped path must not look like an empty store.
    if path is not None and not create and not os.path.exists(path):
        fail(
            f"There is no store at {path!r}. Pass the store with --url (a SQLite path, or a "
            f"sqlite://, redis:// or postgresql:// URL) or set {ENV_URL}.",
            EXIT_BAD_URL,
        )
    try:
        db = DashDatabase(location)
    except ImportError as exc:
        fail(f"{exc}", EXIT_BAD_URL)
    except InvalidArgumentError as exc:
        fail(str(exc), EXIT_BAD_URL)
    except BackendError as exc:
        fail(f"{exc} Check --url, and that the server runs.", EXIT_UNREACHABLE)
    try:
        yield db
    except BackendError as exc:
        fail(f"{exc} Check --url, and that the server runs.", EXIT_UNREACHABLE)
    except MissingKeyError as exc:
        fail(str(exc), EXIT_UNKNOWN_SESSION)
    except (DeserializationError, IntegrityError) as exc:
        fail(f"{exc} Use --raw to see the stored bytes.", EXIT_FAILED)
    except DashDatabaseError as exc:
        fail(str(exc), EXIT_FAILED)
    except OSError as exc:  # the export or import file: a missing folder, a full disk, ...
        where = f" {exc.filename}" if exc.filename else ""
        fail(
            f"Cannot use the file{where}: {exc.strerror or exc}. Check the path, its "
            "permissions and the free space, then run the command again.",
            EXIT_FAILED,
        )
    finally:
        db.close()


def location_of(url: str | None) -> str:
    if url is None:
        url = os.environ.get(ENV_URL) or os.path.abspath(DEFAULT_PATH)
    return redact_url(url)


def url_option(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--url",
        metavar="URL",
        help=f"The store: a SQLite path or a URL. Default: ${ENV_URL}, else ./{DEFAULT_PATH}.",
    )(func)
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n:,} B" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def when(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def shown(name: str, full: bool = True) -> str:
    """Return an id as a table shows it: control characters escaped, abbreviated unless full."""
    text = name if name.isprintable() else ascii(name)
    return text if full or len(text) <= SHORT_ID else text[: SHORT_ID - 1] + "…"


def short_repr(value: object) -> str:
    """Return a repr of ``value`` without building the whole repr of a large container."""
    if isinstance(value, (str, bytes, bytearray)):
        return repr(value[: REPR_CHARS + 1])
    brief = reprlib.Repr()
    brief.maxlevel, brief.maxstring, brief.maxother = 3, REPR_CHARS, REPR_CHARS
    return brief.repr(value)


def known_session(db: DashDatabase, session: str) -> None:
    if not db.backend.session_keys(session, time.time(), None, 1)[0]:
        fail(
            f"There is no live session named {session!r}. List them with 'dash-database "
            "sessions --full' (names are storage names: a signed id without its signature).",
            EXIT_UNKNOWN_SESSION,
        )


@contextmanager
def progress_bar(label: str, length: int | None) -> Iterator[Callable[[int], None] | None]:
    """Yield a progress callback drawing a bar on stderr when it is a terminal, else None."""
    if length is None or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update
