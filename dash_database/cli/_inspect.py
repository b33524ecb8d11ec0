"""The commands that look: info, sessions, keys, show."""

from __future__ import annotations

import heapq
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from itertools import islice
from typing import Any

import click

from .._database import DashDatabase, Session
from .._signing import ENV_SECRET
from ..backends import KeyInfo, SessionInfo
from ._common import (
    EXIT_FAILED,
    EXIT_UNKNOWN_SESSION,
    REPR_CHARS,
    SORTS,
    emit_json,
    fail,
    human_size,
    known_session,
    location_of,
    open_store,
    short_repr,
    shown,
    url_option,
    when,
)


@click.command()
@url_option
def info(url: str | None, as_json: bool) -> None:
    """Show what the store holds.

    The store, its location, and its sessions, keys, bytes and expired sessions.
    """
    with open_store(url) as db:
        stats = db.stats()
        data = {"store": repr(db.backend), "location": location_of(url), **asdict(stats)}
    if as_json:
        emit_json(data)
        return
    click.echo(f"store      {data['store']}")
    click.echo(f"location   {data['location']}")
    click.echo(f"sessions   {stats.sessions:,}")
    click.echo(f"keys       {stats.keys:,}")
    click.echo(f"bytes      {human_size(stats.bytes)}")
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


@click.command()
@url_option
@click.option(
    "--sort",
    type=click.Choice(SORTS),
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
    with open_store(url) as db:
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
                f"{s.keys:>6,}  {human_size(s.bytes):>11}  {when(s.written):<19}  "
                f"{when(s.deadline):<19}  {shown(s.session, full)}"
            )


@click.command()
@url_option
@click.argument("session")
def keys(url: str | None, as_json: bool, session: str) -> None:
    """List the keys of SESSION and their sizes."""
    with open_store(url) as db:
        known_session(db, session)
        now = time.time()
        listed: dict[str, KeyInfo] = {}  # by name: Redis may list a key twice
        cursor: str | None = None
        while True:
            page, cursor = db.backend.session_keys(session, now, cursor, 1000)
            listed.update((info.key, info) for info in page)
            if cursor is None:
                break
    found = sorted(listed.values(), key=lambda k: k.key)
    if as_json:
        emit_json([{"key": k.key, "bytes": k.bytes} for k in found])
        return
    click.echo(f"{'BYTES':>11}  KEY")
    for k in found:
        click.echo(f"{human_size(k.bytes):>11}  {shown(k.key)}")


@click.command()
@url_option
@click.argument("session")
@click.argument("key")
@click.option(
    "--raw",
    is_flag=True,
    help="Write the stored bytes (the sealed envelope) to stdout, unchecked and undecoded.",
)
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
    with open_store(url) as db:
        known_session(db, session)
        data = db.backend.get(session, key, time.time())
        if data is None:
            fail(f"Session {session!r} has no key {key!r}.", EXIT_UNKNOWN_SESSION)
        if raw:
            sys.stdout.buffer.write(data)
            return
        _require_secret(db)
        # Decoded through the app's own read path (a Session view with the app's serializer),
        # which makes the checks a value must pass before it is deserialized.
        reader = DashDatabase(db.backend, serializer=serializer, compression=compression)
        value = Session(reader, session)[key]
    kind = type(value)
    text = short_repr(value)
    shown = text if len(text) <= REPR_CHARS else text[: REPR_CHARS - 1] + "…"
    result = {
        "session": session,
        "key": key,
        "type": f"{kind.__module__}.{kind.__qualname__}".removeprefix("builtins."),
        "bytes": len(data),
        "repr": shown,
    }
    if as_json:
        emit_json(result)
        return
    for name in ("session", "key", "type"):
        click.echo(f"{name:<8} {result[name]}")
    click.echo(f"{'bytes':<8} {human_size(len(data))} stored")
    click.echo(f"{'value':<8} {shown}")


def _require_secret(db: DashDatabase) -> None:
    """Stop unless the app's secret key can be found the way the app finds it: without it a
    value cannot be checked, and an unchecked value is never deserialized."""
    if os.environ.get(ENV_SECRET):
        return
    secret_file = db.backend.secret_file
    if secret_file is not None and os.path.exists(secret_file):
        return
    where = f" and there is no secret file {secret_file}" if secret_file else ""
    fail(
        f"Cannot check the value: values are sealed with the app's secret key, and none was "
        f"found ({ENV_SECRET} is not set{where}). Set {ENV_SECRET} to the app's key (keys: "
        "comma-separated, newest first), or run this where the app keeps its secret file; "
        "--raw writes the stored bytes without deserializing them.",
        EXIT_FAILED,
    )
