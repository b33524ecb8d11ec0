"""The export format: every live session of a store, as one stream of bytes.

An export is read and written one value at a time, so moving a store of any size takes the
memory of its largest value plus a small buffer, never the whole store. Values travel as the
stored bytes (serialized, and signed once values carry MACs): nothing is deserialized, so an
export moves data between stores whatever serializer the app uses.

Format, version 1. Lines of JSON (UTF-8, each ending in ``\\n``), each value's bytes following
its key's line:

``{"format": "dash-database-export", "version": 1, "created": 1700000000.0}``
    the first line. A reader refuses a ``version`` it does not know.
``{"session": "<name>", "deadline": 1700003600.0}``
    starts a session: its storage name (as ``dash-database sessions`` prints it) and when it
    expires, in seconds since the epoch (``null``: never). The ``key`` lines that follow, up to
    the next ``session`` or ``end`` line, belong to it.
``{"key": "<name>", "bytes": 12}``
    one key of that session; exactly ``bytes`` bytes of its value follow, then ``\\n``.
``{"end": true, "sessions": 1, "keys": 1, "bytes": 12}``
    the last line, with the totals written: a file without it was cut short.

Deadlines are kept as they are (JSON floats round-trip exactly). Key versions (the tokens of
compare-and-set) and the time of each session's last write are not exported: an import writes
each session afresh, at the time of the import.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _quote
from typing import IO, Any, Literal

from ._database import _new_version
from .backends import Backend, SessionInfo
from .exceptions import InvalidArgumentError

__all__ = ["FORMAT", "VERSION", "ExportSummary", "ImportSummary", "export_store", "import_store"]

FORMAT = "dash-database-export"
VERSION = 1

#: Sessions and keys asked of the store per page while exporting.
_SESSION_PAGE = 500
_KEY_PAGE = 1000
#: Threads reading sessions ahead of the one being written (export), or writing sessions
#: while the next are read (import).
_WORKERS = 4
#: An import writes a session's keys in writes of at most this many bytes, so one huge session
#: never has to sit in memory whole.
_WRITE_BYTES = 8 * 1024 * 1024
#: A header line longer than this is not a header line: the file is damaged.
_MAX_LINE = 1 << 26

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    sessions: int
    keys: int
    bytes: int


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote, and what it left alone."""

    sessions: int
    keys: int
    bytes: int
    #: Sessions that already held data in the target and were kept as they were.
    skipped: int
    #: Sessions whose deadline had passed by the time they were read.
    expired: int


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _line(record: dict[str, Any]) -> bytes:
    return _ENCODER.encode(record).encode("utf-8") + b"\n"


def _key_line(key: str, size: int) -> bytes:
    # Written once per value: built by hand with json's own C string quoting, several times
    # faster than encoding a dict (the same text as _line would give).
    return f'{{"key":{_quote(key)},"bytes":{size}}}\n'.encode("ascii")


def export_store(
    backend: Backend,
    out: IO[bytes],
    clock: Callable[[], float],
    progress: Progress | None = None,
    *,
    workers: int = _WORKERS,
) -> ExportSummary:
    """Write every live session of ``backend`` to ``out``, in the format above.

    The store is read page by page as it was at the start (one ``now`` for the whole run);
    sessions written meanwhile may or may not be included. ``workers`` threads read sessions
    ahead, so that the round trips to a server overlap; at most ``2 * workers`` sessions are
    held at once, so memory stays bounded by the largest sessions, not by the store.
    ``progress`` is called with the number of sessions written since its last call.
    """
    now = clock()
    out.write(_line({"format": FORMAT, "version": VERSION, "created": now}))
    sessions = keys = size = unreported = 0
    window: deque[Future[_Block]] = deque()

    def write_oldest() -> None:
        nonlocal sessions, keys, size, unreported
        block = window.popleft().result()
        if not block.keys:  # emptied or expired since it was listed
            return
        out.writelines(block.chunks)
        sessions += 1
        keys += block.keys
        size += block.bytes
        unreported += 1
        if progress is not None and unreported >= _SESSION_PAGE:
            progress(unreported)
            unreported = 0

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="export") as pool:
        cursor: str | None = None
        while True:
            page, cursor = backend.sessions(now, cursor, _SESSION_PAGE)
            for info in page:
                window.append(pool.submit(_read_session, backend, info, now))
                if len(window) >= 2 * workers:
                    write_oldest()
            if cursor is None:
                break
        while window:
            write_oldest()
    if progress is not None and unreported:
        progress(unreported)
    out.write(_line({"end": True, "sessions": sessions, "keys": keys, "bytes": size}))
    out.flush()
    return ExportSummary(sessions, keys, size)


@dataclass
class _Block:
    """One session's part of an export, ready to write."""

    chunks: list[bytes]
    keys: int
    bytes: int


def _read_session(backend: Backend, info: SessionInfo, now: float) -> _Block:
    block = _Block([_line({"session": info.session, "deadline": info.deadline})], 0, 0)
    cursor: str | None = None
    while True:
        page, cursor = backend.session_keys(info.session, now, cursor, _KEY_PAGE)
        values = backend.get_many(info.session, [key.key for key in page], now)
        for key, value in zip(page, values):
            if value is not None:  # deleted since the listing
                block.chunks += (_key_line(key.key, len(value)), value, b"\n")
                block.keys += 1
                block.bytes += len(value)
        if cursor is None:
            return block


class _Reader:
    """Reads the records of an export, checking each one's shape."""

    def __init__(self, source: IO[bytes], name: str) -> None:
        self._source = source
        self.name = name
        self.position = 0

    def fail(self, problem: str) -> InvalidArgumentError:
        return InvalidArgumentError(
            f"{self.name} is not a complete dash-database export: {problem} (at byte "
            f"{self.position:,}). Nothing after that point was imported; export the store "
            "again with 'dash-database export'."
        )

    def record(self) -> dict[str, Any]:
        line = self._source.readline(_MAX_LINE)
        self.position += len(line)
        if not line:
            raise self.fail("the file ends before its 'end' line, so it was cut short")
        try:
            record = json.loads(line)
        except ValueError:
            raise self.fail(f"a line that is not JSON: {line[:80]!r}") from None
        if not isinstance(record, dict):
            raise self.fail(f"a line that is not a JSON object: {line[:80]!r}")
        return record

    def value(self, length: int) -> bytes:
        data = self._source.read(length + 1)
        self.position += len(data)
        if len(data) != length + 1 or data[-1:] != b"\n":
            raise self.fail(f"a value shorter than the {length:,} bytes its line announces")
        return data[:-1]


def _check_header(reader: _Reader) -> None:
    header = reader.record()
    if header.get("format") != FORMAT:
        raise reader.fail("its first line does not name the format")
    if header.get("version") != VERSION:
        raise InvalidArgumentError(
            f"{reader.name} is an export of format version {header.get('version')!r}; this "
            f"dash_database reads version {VERSION}. Import it with the dash_database version "
            "that wrote it, or a newer one."
        )


def import_store(
    backend: Backend,
    source: IO[bytes],
    clock: Callable[[], float],
    *,
    existing: Literal["skip", "replace"] = "skip",
    name: str = "the input",
    progress: Progress | None = None,
    workers: int = _WORKERS,
) -> ImportSummary:
    """Write every session of the export ``source`` into ``backend``.

    Args:
        existing: what to do with a session that already holds data in ``backend``: keep it
            as it is and skip the exported one (``"skip"``), or remove it first
            (``"replace"``).
        name: how messages name ``source``.
        progress: called with the number of bytes of ``source`` read since its last call.
        workers: threads writing sessions, so that the round trips of several overlap.

    Raises:
        InvalidArgumentError: ``source`` is not an export this version reads, or it was cut
            short; what came before the damage was imported.
    """
    if existing not in ("skip", "replace"):
        raise InvalidArgumentError(f"existing must be 'skip' or 'replace', got {existing!r}.")
    reader = _Reader(source, name)
    _check_header(reader)
    reported = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import") as pool:
        writer = _SessionWriter(backend, clock, existing, pool, workers)
        try:
            while True:
                record = reader.record()
                if "key" in record:
                    key, length = record.get("key"), record.get("bytes")
                    if not isinstance(key, str) or not isinstance(length, int) or length < 0:
                        raise reader.fail(f"a malformed key line {record!r}")
                    if writer.session is None:
                        raise reader.fail("a key line before any session line")
                    writer.add(key, reader.value(length))
                elif "session" in record:
                    session, deadline = record.get("session"), record.get("deadline")
                    if not isinstance(session, str) or not (
                        deadline is None or isinstance(deadline, (int, float))
                    ):
                        raise reader.fail(f"a malformed session line {record!r}")
                    writer.start(session, None if deadline is None else float(deadline))
                elif record.get("end") is True:
                    writer.finish()
                    break
                else:
                    raise reader.fail(f"a line of unknown kind {record!r}")
                if progress is not None and reader.position - reported >= 1 << 20:
                    progress(reader.position - reported)
                    reported = reader.position
        finally:
            # What was read before a damaged part is written all the same.
            writer.drain()
    if progress is not None:
        progress(reader.position - reported)
    return writer.summary()


#: What became of one session of an import: "written", "skipped" or "expired", its keys and
#: its bytes.
_Outcome = tuple[str, int, int]


class _SessionWriter:
    """Writes the sessions of an import into the target.

    A session that fits in one bounded write goes to a pool of threads, so that the round
    trips of several sessions overlap (at most ``2 * workers`` wait at once, which bounds the
    memory); a larger one is written here, in parts of at most ``_WRITE_BYTES``.
    """

    def __init__(
        self,
        backend: Backend,
        clock: Callable[[], float],
        existing: str,
        pool: ThreadPoolExecutor,
        workers: int,
    ) -> None:
        self._backend = backend
        self._clock = clock
        self._existing = existing
        self._pool = pool
        self._workers = workers
        self._window: deque[Future[_Outcome]] = deque()
        # Into a store that held nothing when the import began, sessions are written without
        # asking first whether each exists (one round trip less per session): the export
        # lists each session once. Imports are meant to run while the app is stopped.
        stats = backend.stats(clock())
        self._target_was_empty = stats.sessions == 0 and stats.expired == 0
        self.session: str | None = None
        self._deadline: float | None = None
        self._items: dict[str, bytes] = {}
        self._pending = 0
        #: The outcome of the session being written in parts, once it is known.
        self._parts: _Outcome | None = None
        self._sessions = self._keys = self._bytes = self._skipped = self._expired = 0

    def start(self, session: str, deadline: float | None) -> None:
        self.finish()
        self.session, self._deadline = session, deadline

    def add(self, key: str, value: bytes) -> None:
        self._items[key] = value
        self._pending += len(value)
        if self._pending >= _WRITE_BYTES:
            assert self.session is not None
            if self._parts is None:
                self._parts = (self._claim(self.session, self._deadline), 0, 0)
            self._write_part()

    def _write_part(self) -> None:
        assert self._parts is not None and self.session is not None
        outcome, keys, size = self._parts
        if outcome == "written" and self._items:
            self._backend.set_many(
                self.session, self._items, self._deadline, self._clock(), version=_new_version()
            )
            keys += len(self._items)
            size += self._pending
        self._parts = (outcome, keys, size)
        self._items = {}
        self._pending = 0

    def finish(self) -> None:
        if self.session is None:
            return
        if self._parts is not None:
            self._write_part()
            self._tally(self._parts)
        elif self._items:
            task = self._pool.submit(self._write_whole, self.session, self._deadline, self._items)
            self._window.append(task)
            if len(self._window) >= 2 * self._workers:
                self._tally(self._window.popleft().result())
        self.session, self._items, self._pending, self._parts = None, {}, 0, None

    def drain(self) -> None:
        """Wait for every session handed to the pool; raise the first error among them."""
        while self._window:
            self._tally(self._window.popleft().result())

    def _claim(self, session: str, deadline: float | None) -> str:
        """Return whether to write ``session`` ("written"), or why not; clear it when it is
        to be replaced."""
        now = self._clock()
        if deadline is not None and deadline <= now:
            return "expired"
        if self._target_was_empty:
            return "written"
        present, _ = self._backend.session_keys(session, now, None, 1)
        if present:
            if self._existing == "skip":
                return "skipped"
            self._backend.clear(session, now)
        return "written"

    def _write_whole(
        self, session: str, deadline: float | None, items: dict[str, bytes]
    ) -> _Outcome:
        outcome = self._claim(session, deadline)
        if outcome == "written":
            self._backend.set_many(session, items, deadline, self._clock(), version=_new_version())
        return outcome, len(items), sum(map(len, items.values()))

    def _tally(self, outcome: _Outcome) -> None:
        kind, keys, size = outcome
        if kind == "written":
            self._sessions += 1
            self._keys += keys
            self._bytes += size
        elif kind == "skipped":
            self._skipped += 1
        else:
            self._expired += 1

    def summary(self) -> ImportSummary:
        return ImportSummary(self._sessions, self._keys, self._bytes, self._skipped, self._expired)
