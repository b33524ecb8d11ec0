"""Sessions in Redis (or Valkey): one hash per session, indexed, written by Lua scripts.

Every key starts with ``<prefix>:{<prefix>}:`` (``B``), a Redis Cluster hash tag (one slot).
``B s:<digest of the id>`` is one hash per session: ``v:<key>`` holds a value, ``n:<key>`` its
``<length>:<version>``; ``id``, ``keys``, ``bytes``, ``written`` and ``deadline`` describe it.
``B index`` holds the digests of the sessions with keys, ``B expiry`` those with a deadline,
scored by it. ``B totals`` sums ``keys`` and ``bytes`` over every session hash, expired or
not: the scripts that change a session add what changed (nothing when no size changes), so
``stats`` costs O(expired sessions not yet purged), not O(sessions). No key has a Redis
expiry, so Redis itself expires nothing behind the totals' back; a server with an
``allkeys-*`` ``maxmemory-policy`` would evict sessions (and skew the totals): use
``noeviction``. A read is one ``HMGET``, a listing ``HMGET`` and ``HKEYS`` in one round trip;
every other operation is one Lua script (``_scripts.py``), which Redis runs without
interleaving. Lua copies each argument, so a write of ``large_write_bytes`` or more sends its
values beside the script, in ``MULTI``/``EXEC``.
Connections are redis-py's pool, per process (``_process.py``). docs/internals.md has more.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..._locations import DEFAULT_SECRET_FILE, redact_url
from ...exceptions import BackendError, DashDatabaseError, InvalidArgumentError
from ...exceptions import QuotaExceededError as Quota
from ...exceptions import SessionLimitError as Limit
from .._base import KeyInfo, Page, SessionData, SessionInfo, StoreStats
from .._errors import backend_error, bad_cursor, store_errors
from .._process import PerProcess
from . import _bulk, _scripts
from ._connect import describe, import_redis, split_prefix

__all__ = ["DEFAULT_PREFIX", "RedisBackend"]

#: The key prefix used when none is given.
DEFAULT_PREFIX = "dash_database"
# Sessions one purge script removes: a live request queued behind it waits for that one batch
# only (batches go one at a time: a pipeline of them would make it wait for all). And the
# attempts of a large write that keeps meeting concurrent writes.
_BATCH, _ATTEMPTS = 200, 40
# Expired sessions one stats script reads (each one HMGET, no reply).
_STATS_PAGE = 1000


class RedisBackend:
    """Store each session as one hash in Redis or Valkey, with an index of the sessions.

    Args:
        url_or_client: a URL (``redis://[[user]:password@]host:port/db``, ``rediss://`` for
            TLS; query parameters such as ``socket_timeout=2`` go to redis-py), or a ready
            ``redis.Redis`` or ``redis.cluster.RedisCluster`` without ``decode_responses``,
            which stays yours: :meth:`close` leaves it open, and the backend cannot be pickled.
        prefix: the start of every key; apps sharing one database use different ones. No
            ``{`` or ``}`` (the hash tag). A URL may give it as ``?prefix=...``.
        large_write_bytes: writes of this many bytes of values or more use MULTI/EXEC.
        **options: for ``redis.Redis.from_url`` with a URL (``socket_timeout``, ...).

    Raises:
        ImportError: the ``redis`` package is not installed.
        InvalidArgumentError: the URL, the prefix or the client cannot be used.
    """

    def __init__(
        self,
        url_or_client: str | Any,
        *,
        prefix: str | None = None,
        large_write_bytes: int | None = 64 * 1024,
        **options: Any,
    ) -> None:
        redis, defaults = import_redis()
        self._url: str | None = None
        self._options, client = dict(options), url_or_client
        if isinstance(url_or_client, str):
            url, url_prefix = split_prefix(url_or_client)
            self._url = url
            prefix, settings = url_prefix if prefix is None else prefix, {**defaults, **options}
            self._clients: PerProcess[Any] = PerProcess(
                lambda: redis.Redis.from_url(url, **settings)
            )
            try:
                client = self._clients.get()  # makes the client and its pool; connects later
            except ValueError as exc:
                raise InvalidArgumentError(
                    f"Cannot use the Redis URL {redact_url(url)!r}: {exc}. Write it as "
                    "redis://[[user]:password@]host:port/db."
                ) from exc
        elif isinstance(client, (redis.Redis, redis.cluster.RedisCluster)):
            if options or client.get_connection_kwargs().get("decode_responses"):
                raise InvalidArgumentError(
                    "Pass a Redis client made without decode_responses (values are bytes), and "
                    f"options ({sorted(options)}) only with a URL: configure your client."
                )
            # redis-py's pool replaces its connections in a forked child by itself.
            self._clients = PerProcess(lambda: url_or_client)
        else:
            raise InvalidArgumentError(
                "url_or_client must be a redis:// or rediss:// URL, a redis.Redis or a "
                f"redis.cluster.RedisCluster, got {type(client).__name__} {client!r}."
            )
        self.prefix = DEFAULT_PREFIX if prefix is None else prefix
        if not isinstance(self.prefix, str) or not self.prefix or {"{", "}"} & set(self.prefix):
            raise InvalidArgumentError(
                "prefix must be a non-empty str without '{' or '}' (they would break the "
                f"cluster hash tag), got {self.prefix!r}."
            )
        size = self.large_write_bytes = large_write_bytes
        if size is not None and (type(size) is not int or size < 0):
            raise InvalidArgumentError(
                f"large_write_bytes must be a number of bytes (0 or more) or None, got {size!r}."
            )
        self.secret_file: str | None = os.path.abspath(DEFAULT_SECRET_FILE)
        self._base = f"{self.prefix}:{{{self.prefix}}}:".encode()
        self._index, self._expiry = self._base + b"index", self._base + b"expiry"
        self._where, self._closed = describe(client, redis), False
        self._errors = (redis.exceptions.RedisError, OSError, MemoryError)
        self._no_script: type[Exception] = redis.exceptions.NoScriptError
        self._watch_error: type[Exception] = redis.exceptions.WatchError

    @property
    def client(self) -> Any:
        """The redis-py client this backend uses in this process."""
        return self._clients.get()

    def key(self, session: str) -> bytes:
        """Return the Redis key of the hash that holds ``session``."""
        digest = hashlib.blake2b(session.encode(), digest_size=16).hexdigest()
        return self._base + b"s:" + digest.encode()

    # -- plumbing ------------------------------------------------------------------------

    def _client(self) -> Any:
        if self._closed:
            raise BackendError(f"The Redis backend on {self._where} is closed; open a new one.")
        return self._clients.get()

    def _call(self, action: str, script: str | tuple[str, str] | None, *args: Any) -> Any:
        """Run the command ``args``, or a Lua script on ``args``: ``script`` names one of
        ``_scripts`` or is a ``(sha, text)`` pair. It is sent by its SHA, loaded first when
        Redis lacks it; driver errors become ``BackendError``."""
        try:
            client = self._client()
            if script is None:
                return client.execute_command(*args)
            sha, text = _scripts.SCRIPTS[script] if isinstance(script, str) else script
            try:
                return client.execute_command("EVALSHA", sha, *args)
            except self._no_script:  # a restarted server, or SCRIPT FLUSH
                client.script_load(text)
                return client.execute_command("EVALSHA", sha, *args)
        except DashDatabaseError:
            raise
        except self._errors as exc:
            raise backend_error(f"Redis at {self._where}", action, exc) from exc

    def _head(self, session: str, now: float) -> tuple[Any, ...]:
        """Return the first arguments of a script on one session (see ``_scripts``)."""
        keys = (self.key(session), self._index, self._expiry)
        return (3, *keys, session.encode(), _number(now))

    def _fields(self, session: str, now: float, *fields: bytes) -> list[Any] | None:
        """Return id, deadline and ``fields`` of a live session, or ``None``."""
        found: list[Any] = self._call(
            "read from", None, "HMGET", self.key(session), b"id", b"deadline", *fields
        )
        if found[0] != session.encode() or (found[1] is not None and float(found[1]) <= now):
            return None
        return found

    def _write(self, session: str, items: Mapping[str, bytes], now: float, *options: Any) -> int:
        """Run WRITE on ``items`` with ``options``: deadline, byte limit, session limit,
        expected version and version, in the order ``_scripts.WRITE`` takes them."""
        deadline, max_bytes, max_sessions, expected, version = options
        limit = self.large_write_bytes
        large = limit is not None and sum(len(value) for value in items.values()) >= limit
        fields: list[bytes] = []
        for key, value in items.items():
            name, size = key.encode(), len(value)
            fields += (b"v:" + name, b"%d" % size if large else value, b"n:" + name)
            fields.append(b"%d:%d" % (size, version))
        when = b"" if deadline is None else _number(deadline)
        limits = (b"" if n is None else b"%d" % n for n in (max_bytes, max_sessions))
        args = (*self._head(session, now), when, *limits, expected, version)
        if not large:
            result = self._call("write to", "WRITE", *args, b"", *fields)
        else:
            with store_errors(f"Redis at {self._where}", "write to", self._errors[:1]):
                result = self._write_large(args, fields, items, max_sessions is not None)
        if isinstance(result, list):  # the sizes of a write the byte limit refused
            raise Quota.for_write(result[0], result[1], max_bytes)
        if result == -1:
            raise Limit.for_write(max_sessions)
        return int(result)

    def _write_large(
        self, args: tuple[Any, ...], fields: list[bytes], items: Mapping[str, bytes], limit: bool
    ) -> Any:
        """WATCH the session's hash (and the index under a session limit), run WRITE's checks,
        then MULTI, WRITE and HSET of the values, EXEC; again while a watched key changed."""
        values = [part for key, value in items.items() for part in (b"v:" + key.encode(), value)]
        text = _scripts.SCRIPTS["WRITE"][1]  # EVAL: a missing script would fail alone in MULTI
        with self._client().pipeline(transaction=True) as pipe:
            for _ in range(_ATTEMPTS):
                try:
                    pipe.watch(*args[1:3] if limit else args[1:2])
                    verdict = pipe.execute_command("EVAL", text, *args, b"check", *fields)
                    if verdict != 1:
                        return verdict
                    pipe.multi()
                    pipe.execute_command("EVAL", text, *args, b"write", *fields)
                    pipe.execute_command("HSET", args[1], *values)
                    return pipe.execute()[0]
                except self._watch_error:
                    time.sleep(random.uniform(0, 0.01))
        raise BackendError(
            f"Could not write {len(items)} large value(s): another writer changed the session "
            f"at each of {_ATTEMPTS} attempts. Nothing was written; try again."
        )

    # -- the backend protocol --------------------------------------------------------------

    def get(self, session: str, key: str, now: float) -> bytes | None:
        found = self._fields(session, now, b"v:" + key.encode())
        return None if found is None else found[2]

    def get_many(self, session: str, keys: Sequence[str], now: float) -> list[bytes | None]:
        found = self._fields(session, now, *(b"v:" + key.encode() for key in keys))
        return [None] * len(keys) if found is None else found[2:]

    def get_versioned(self, session: str, key: str, now: float) -> tuple[bytes, int] | None:
        found = self._fields(session, now, b"v:" + key.encode(), b"n:" + key.encode())
        if found is None or found[2] is None:
            return None
        return found[2], int(found[3].split(b":")[1])

    def set_many(
        self,
        session: str,
        items: Mapping[str, bytes],
        deadline: float | None,
        now: float,
        *,
        version: int,
        max_bytes: int | None = None,
        max_sessions: int | None = None,
    ) -> None:
        self._write(session, items, now, deadline, max_bytes, max_sessions, b"*", version)

    def compare_and_set(
        self,
        session: str,
        key: str,
        value: bytes,
        expected: int | None,
        deadline: float | None,
        now: float,
        *,
        version: int,
        max_bytes: int | None = None,
        max_sessions: int | None = None,
    ) -> bool:
        old = b"" if expected is None else b"%d" % expected
        options = (deadline, max_bytes, max_sessions, old, version)
        return bool(self._write(session, {key: value}, now, *options))

    def delete(self, session: str, key: str, now: float) -> bool:
        fields = (b"v:" + key.encode(), b"n:" + key.encode())
        return bool(self._call("delete from", "DELETE", *self._head(session, now), *fields))

    def keys(self, session: str, now: float) -> list[str]:
        # HMGET and HKEYS in one round trip, without a script (which costs Redis far more
        # than both): a write between them can only leave the session live, so the names
        # HKEYS returns are the session's at that moment, or none after a clear or rename.
        key = self.key(session)
        errors = store_errors(f"Redis at {self._where}", "list the keys in", self._errors)
        with errors, self._client().pipeline(transaction=False) as pipe:
            pipe.execute_command("HMGET", key, b"id", b"deadline")
            pipe.execute_command("HKEYS", key)
            (found_id, deadline), names = pipe.execute()
        if found_id != session.encode() or (deadline is not None and float(deadline) <= now):
            return []
        return [name[2:].decode() for name in names if name[:2] == b"n:"]

    def clear(self, session: str, now: float) -> int:
        return int(self._call("delete from", "CLEAR", *self._head(session, now)))

    def touch(self, session: str, deadline: float, now: float) -> None:
        self._call("renew a session in", "TOUCH", *self._head(session, now), _number(deadline))

    def rename(self, session: str, new_session: str, now: float) -> int:
        _, *args = self._head(session, now)
        args[3:3] = [self.key(new_session)]  # KEYS 4
        return int(self._call("rename a session in", "RENAME", 4, *args, new_session.encode()))

    def session_bytes(self, session: str, now: float) -> int:
        found = self._fields(session, now, b"bytes")
        return 0 if found is None else int(found[2])

    def sessions(self, now: float, cursor: str | None = None, limit: int = 100) -> Page:
        start = b"-" if cursor is None else b"(" + cursor.encode()
        args = (1, self._index, _number(now), start, limit)
        reply = self._call("list the sessions in", "SESSIONS", *args)
        rows = [reply[i : i + 5] for i in range(1, len(reply), 5)]
        page = [
            SessionInfo(sid.decode(), int(n), int(size), deadline and float(deadline), float(at))
            for sid, n, size, deadline, at in rows
        ]
        return page, (reply[0].decode() or None)

    def session_keys(
        self, session: str, now: float, cursor: str | None = None, limit: int = 100
    ) -> tuple[list[KeyInfo], str | None]:
        scan = "0" if cursor is None else cursor.partition(":")[0]  # "<HSCAN cursor>:<field>"
        if not (scan.isascii() and scan.isdigit()):
            raise bad_cursor(cursor)
        args = (*self._head(session, now), b"0:" if cursor is None else cursor.encode(), limit)
        reply = self._call("list the keys in", "SESSION_KEYS", *args)
        rows = zip(reply[1::2], (entry.split(b":") for entry in reply[2::2]))
        page = [KeyInfo(name.decode(), int(size), int(version)) for name, (size, version) in rows]
        return page, (reply[0].decode() or None)

    def stats(self, now: float) -> StoreStats:
        # The totals less the expired sessions not yet purged, a page of them per script
        # (exact when they fit one page, or when nothing writes meanwhile).
        args = [2, self._index, self._expiry, _number(now), 0, _STATS_PAGE]
        sessions, keys, size, expired, *less = self._call("read the statistics of", "STATS", *args)
        for start in range(_STATS_PAGE, expired, _STATS_PAGE):
            args[4] = start
            reply = self._call("read the statistics of", "STATS", *args)
            less = [a + b for a, b in zip(less, reply[4:])]
        return StoreStats(sessions - less[0], keys - less[1], size - less[2], expired)

    def purge_expired(self, now: float, progress: Callable[[int], object] | None = None) -> int:
        removed, batch, args = 0, _BATCH, (2, self._index, self._expiry, _number(now), _BATCH)
        while batch == _BATCH:
            batch = self._call("purge expired sessions from", "PURGE", *args)
            removed += batch
            if progress is not None and batch:
                progress(batch)
        return removed

    def close(self) -> None:
        self._closed = True
        if self._url is not None:
            client = self._clients.take()
            if client is not None:
                client.close()

    def __reduce__(self) -> tuple[Any, ...]:
        if self._url is None:
            raise TypeError(
                "A RedisBackend built from a client object cannot be pickled: the client holds "
                "live connections. Build it from a URL (RedisBackend('redis://...'))."
            )
        return (_reopen, (self._url, self.prefix, self.large_write_bytes, self._options))

    def __repr__(self) -> str:
        where = redact_url(self._url) if self._url is not None else self._where
        return f"RedisBackend({where!r}, prefix={self.prefix!r})"

    # -- bulk transfer (``_bulk.py``) ------------------------------------------------------

    def read_sessions(
        self, now: float, cursor: str | None = None, *, limit: int = 100, max_bytes: int = 1 << 23
    ) -> tuple[list[SessionData], str | None]:
        return _bulk.read_sessions(self, now, cursor, limit, max_bytes)

    def write_sessions(
        self, batch: Sequence[SessionData], now: float, *, version: int, replace: bool = False
    ) -> list[bool]:
        return _bulk.write_sessions(self, batch, now, version, replace)


def _reopen(url: str, prefix: str, large: int | None, options: dict[str, Any]) -> RedisBackend:
    return RedisBackend(url, prefix=prefix, large_write_bytes=large, **options)


def _number(seconds: float) -> bytes:  # text that tonumber() and float() read back exactly
    return repr(float(seconds)).encode()
