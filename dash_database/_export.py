"""The export format: every live session of a store, as one stream of bytes.

An export is read and written a bounded page at a time (many sessions per round trip to the
store, through the backends' bulk operations), so moving a store of any size takes the memory
of a few pages and of its largest value, never the whole store. Values travel as the
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
import re
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _quote
from typing import IO, Any, Literal

from ._database import _new_version
from .backends import Backend, SessionData
from .exceptions import InvalidArgumentError

__all__ = ["FORMAT", "VERSION", "ExportSummary", "ImportSummary", "export_store", "import_store"]

FORMAT = "dash-database-export"
VERSION = 1

#: Sessions, and bytes of values, asked of the store per page while exporting.
_SESSION_PAGE = 500
_PAGE_BYTES = 4 * 1024 * 1024
#: Sessions, and bytes of values, an import writes per batch (one ``write_sessions`` call).
_BATCH_SESSIONS = 500
_BATCH_BYTES = 4 * 1024 * 1024
#: Threads writing batches while the next are read (import).
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


#: A key line whose key needs no JSON escape (printable ASCII without '"' or '\\').
_PLAIN_KEY_LINE = re.compile(
    rb'\{"key":"([\x20\x21\x23-\x5b\x5d-\x7e]*)","bytes":(0|[1-9][0-9]{0,17})\}\n\Z'
)

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
) -> ExportSummary:
    """Write every live session of ``backend`` to ``out``, in the format above.

    The store is read page by page (:meth:`~dash_database.backends.Backend.read_sessions`:
    many sessions with their values per round trip) as it was at the start (one ``now`` for
    the whole run); sessions written meanwhile may or may not be included. A thread reads the
    next page while this one is written, so at most two pages of ``_PAGE_BYTES`` (plus one
    value each) are held at once, whatever the size of the store. ``progress`` is called with
    the number of sessions written since its last call.
    """
    now = clock()
    out.write(_line({"format": FORMAT, "version": VERSION, "created": now}))
    sessions = keys = size = unreported = 0
    going_on: str | None = None  # the session the last page left incomplete

    def read(cursor: str | None) -> tuple[list[SessionData], str | None]:
        return backend.read_sessions(now, cursor, limit=_SESSION_PAGE, max_bytes=_PAGE_BYTES)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export") as pool:
        ahead: Future[tuple[list[SessionData], str | None]] | None = pool.submit(read, None)
        while ahead is not None:
            page, cursor = ahead.result()
            ahead = None if cursor is None else pool.submit(read, cursor)
            chunks: list[bytes] = []
            for data in page:
                if data.session != going_on:
                    chunks.append(_line({"session": data.session, "deadline": data.deadline}))
                    sessions += 1
                    unreported += 1
                for key, value in data.items.items():
                    chunks += (_key_line(key, len(value)), value, b"\n")
                    keys += 1
                    size += len(value)
                going_on = None if data.complete else data.session
            out.writelines(chunks)
            del chunks, page
            if progress is not None and unreported >= _SESSION_PAGE:
                progress(unreported)
                unreported = 0
    if progress is not None and unreported:
        progress(unreported)
    out.write(_line({"end": True, "sessions": sessions, "keys": keys, "bytes": size}))
    out.flush()
    return ExportSummary(sessions, keys, size)


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
        plain = _PLAIN_KEY_LINE.match(line)
        if plain is not None:  # one per value: read without the JSON parser, as _key_line wrote it
            return {"key": plain[1].decode("ascii"), "bytes": int(plain[2])}
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
        workers: threads writing batches of sessions while the next are read.

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
        writer = _SessionWriter(backend, clock, existing == "replace", pool, workers)
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


#: What became of a batch of an import: sessions written, their keys and bytes, and
#: sessions skipped.
_Outcome = tuple[int, int, int, int]


class _SessionWriter:
    """Writes the sessions of an import into the target.

    Sessions are gathered into batches of at most ``_BATCH_SESSIONS`` sessions and
    ``_BATCH_BYTES`` bytes, each written by one ``write_sessions`` call on a pool of threads
    while the next are read (at most ``workers`` batches wait at once, which bounds the
    memory). A session larger than ``_WRITE_BYTES`` is written here, in parts of about that
    size: the first part claims it as a batch of one, the others add to it with ``set_many``.
    """

    def __init__(
        self,
        backend: Backend,
        clock: Callable[[], float],
        replace: bool,
        pool: ThreadPoolExecutor,
        workers: int,
    ) -> None:
        self._backend = backend
        self._clock = clock
        self._replace = replace
        self._pool = pool
        self._workers = workers
        self._window: deque[Future[_Outcome]] = deque()
        self.session: str | None = None
        self._deadline: float | None = None
        self._items: dict[str, bytes] = {}
        self._pending = 0
        #: The session being written in parts: None (not in parts), or whether it is written.
        self._parts: bool | None = None
        self._batch: list[SessionData] = []
        self._batch_bytes = 0
        self._sessions = self._keys = self._bytes = self._skipped = self._expired = 0

    def start(self, session: str, deadline: float | None) -> None:
        self.finish()
        self.session, self._deadline = session, deadline

    def add(self, key: str, value: bytes) -> None:
        self._items[key] = value
        self._pending += len(value)
        if self._pending >= _WRITE_BYTES:
            self._write_part()

    def _expired_now(self) -> bool:
        return self._deadline is not None and self._deadline <= self._clock()

    def _write_part(self) -> None:
        assert self.session is not None
        if self._parts is None:
            if self._expired_now():
                self._expired += 1
                self._parts = False
            else:
                outcome = self._write([SessionData(self.session, self._deadline, self._items)])
                self._tally(outcome)
                self._parts = outcome[0] == 1
        elif self._parts and self._items:
            now = self._clock()
            version = _new_version()
            self._backend.set_many(self.session, self._items, self._deadline, now, version=version)
            self._keys += len(self._items)
            self._bytes += self._pending
        self._items = {}
        self._pending = 0

    def finish(self) -> None:
        if self.session is None:
            return
        if self._parts is not None:
            self._write_part()
        elif self._items and self._expired_now():
            self._expired += 1
        elif self._items:
            self._batch.append(SessionData(self.session, self._deadline, self._items))
            self._batch_bytes += self._pending
            if len(self._batch) >= _BATCH_SESSIONS or self._batch_bytes >= _BATCH_BYTES:
                self._submit()
        self.session, self._items, self._pending, self._parts = None, {}, 0, None

    def _submit(self) -> None:
        if self._batch:
            self._window.append(self._pool.submit(self._write, self._batch))
            self._batch, self._batch_bytes = [], 0
        while len(self._window) > self._workers:
            self._tally(self._window.popleft().result())

    def drain(self) -> None:
        """Write what is gathered and wait for every batch; raise the first error among them."""
        self._submit()
        while self._window:
            self._tally(self._window.popleft().result())

    def _write(self, batch: list[SessionData]) -> _Outcome:
        now, version = self._clock(), _new_version()
        written = self._backend.write_sessions(batch, now, version=version, replace=self._replace)
        done = [data for data, ok in zip(batch, written) if ok]
        size = sum(len(value) for data in done for value in data.items.values())
        return len(done), sum(len(data.items) for data in done), size, len(batch) - len(done)

    def _tally(self, outcome: _Outcome) -> None:
        sessions, keys, size, skipped = outcome
        self._sessions += sessions
        self._keys += keys
        self._bytes += size
        self._skipped += skipped

    def summary(self) -> ImportSummary:
        return ImportSummary(self._sessions, self._keys, self._bytes, self._skipped, self._expired)
