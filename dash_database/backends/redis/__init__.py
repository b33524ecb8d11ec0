"""Sessions in Redis (or Valkey): one hash per session, indexed, written by Lua scripts.

Layout. Every key starts with ``<prefix>:{<prefix>}:`` (``B``); the braces are a Redis Cluster
hash tag, so all keys of one prefix share a slot and one script can update any of them:

- ``B s:<digest>``, one hash per session: ``v:<key>`` holds a value, ``n:<key>`` its length and
  version (``<length>:<version>``); ``id``, ``keys``, ``bytes``, ``written`` and ``deadline``
  (absent: never expires) describe the session. ``<digest>`` is the hex BLAKE2b-128 of the id,
  so any id makes a short key; the full id in ``id`` is compared on every call, so two ids never
  share data. Field names are ``v:``/``n:`` and the key's UTF-8 bytes, or a name without ``:``.
- ``B index``, the digests of the sessions that hold keys in a sorted set (score 0: paged by
  their bytes; its size counts them); ``B expiry``, the digests of the sessions with a
  deadline, scored by it. A session's keys are paged with ``HSCAN`` over its ``n:`` fields
  (a key may come twice only if the session changed meanwhile).

Design. A read is one ``HMGET``; every other operation is one Lua script (``_scripts.py``),
which Redis runs without interleaving, so checks and writes need no lock. A write of large
values sends them beside its script in ``MULTI``/``EXEC`` (``_multi.py``). Deadlines are
compared with the caller's ``now``; no key has a native expiry, which would bypass the index.
Expired sessions stay, invisible, until written again or purged, a batch per script. ``stats``
sums the index on the server a page at a time (O(sessions), as the SQL backends scan their
table, but nothing per session crosses the wire). ``max_sessions`` costs nothing to a session
with keys; a write that starts one reads the size of the index and, only when that reaches the
limit, looks at the expired sessions not yet purged. On a
cluster, one prefix lives on one primary: apps that need more room use several prefixes.

Connections are redis-py's pool, per process (``_process.py``). A client built from a URL
waits at most 3 s to connect and 5 s for a reply, and resends a command once, at once, when its
connection was lost (a server restart), never after a timeout. Run again that way,
``compare_and_set`` recognises its own version, ``delete``/``clear`` may report 0, and a
``rename`` finds its session gone and leaves the target as the first run made it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..._locations import DEFAULT_SECRET_FILE, redact_url
from ...exceptions import (
    BackendError,
    DashDatabaseError,
    InvalidArgumentError,
    QuotaExceededError,
    SessionLimitError,
)
from .._base import KeyInfo, Page, SessionInfo, StoreStats
from .._errors import backend_error, store_errors
from .._process import PerProcess
from . import _scripts
from ._multi import write_large

__all__ = ["DEFAULT_PREFIX", "RedisBackend"]

#: The key prefix used when none is given.
DEFAULT_PREFIX = "dash_database"

# Sessions removed by one purge script, read by one stats script: a live request queued behind
# one waits only briefly.
_BATCH = 500
# Sessions summed by one stats script: each costs one HMGET on the server, and no reply.
_STATS_PAGE = 5000


def _import_redis() -> Any:
    try:
        import redis
        import redis.cluster
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as exc:
        raise ImportError(
            'The Redis backend needs the redis package: pip install "redis>=5.0" '
            '(from a clone: pip install "./dash_database[redis]").'
        ) from exc
    # One retry, at once and of a lost connection only: it replaces a pooled connection the
    # server closed; a retry after a timeout would make the caller wait twice.
    retry = Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,))
    return redis, {"socket_connect_timeout": 3.0, "socket_timeout": 5.0, "retry": retry}


class RedisBackend:
    """Store each session as one hash in Redis or Valkey, with an index of the sessions.

    Args:
        url_or_client: a URL (``redis://[[user]:password@]host:port/db``, ``rediss://`` for
            TLS; query parameters such as ``socket_timeout=2`` go to redis-py), or a ready
            ``redis.Redis`` or ``redis.cluster.RedisCluster`` without ``decode_responses``,
            which stays yours: :meth:`close` leaves it open, and the backend cannot be pickled.
        prefix: the start of every key; apps sharing one database use different ones. No
            ``{`` or ``}`` (the hash tag). A URL may give it as ``?prefix=...``.
        large_write_bytes: a write whose values add up to this many bytes or more sends them
            beside its script in MULTI/EXEC (``_multi.py``); ``None``: never.
        **options: for ``redis.Redis.from_url`` with a URL (``socket_timeout``,
            ``ssl_ca_certs``, ...), over the defaults of a 3 s connect and 5 s read timeout.

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
        redis, defaults = _import_redis()
        self._url: str | None = None
        self._options = dict(options)
        if isinstance(url_or_client, str):
            self._url, url_prefix = _split_prefix(url_or_client)
            prefix = url_prefix if prefix is None else prefix
            url, settings = self._url, {**defaults, **options}
            self._clients: PerProcess[Any] = PerProcess(
                lambda: redis.Redis.from_url(url, **settings)
            )
            try:
                client = self._clients.get()  # connects on first use, not here
            except ValueError as exc:
                raise InvalidArgumentError(
                    f"Cannot use the Redis URL {redact_url(url)!r}: {exc}. Write it as "
                    "redis://[[user]:password@]host:port/db."
                ) from exc
        elif isinstance(url_or_client, (redis.Redis, redis.cluster.RedisCluster)):
            client = url_or_client
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
                f"redis.cluster.RedisCluster, got {type(url_or_client).__name__} "
                f"{url_or_client!r}."
            )
        self.prefix = DEFAULT_PREFIX if prefix is None else prefix
        if not isinstance(self.prefix, str) or not self.prefix or {"{", "}"} & set(self.prefix):
            raise InvalidArgumentError(
                "prefix must be a non-empty str without '{' or '}' (they would break the "
                f"cluster hash tag), got {self.prefix!r}."
            )
        size = large_write_bytes
        if size is not None and (type(size) is not int or size < 0):
            raise InvalidArgumentError(
                "large_write_bytes must be a number of bytes (0 or more) or None, got "
                f"{large_write_bytes!r}."
            )
        self.large_write_bytes = large_write_bytes
        self.secret_file: str | None = os.path.abspath(DEFAULT_SECRET_FILE)
        self._base = f"{self.prefix}:{{{self.prefix}}}:".encode()
        self._index = self._base + b"index"
        self._where = _describe(client, redis)
        self._store = f"Redis at {self._where}"
        self._errors = (redis.exceptions.RedisError, OSError, MemoryError)
        self._no_script: type[Exception] = redis.exceptions.NoScriptError
        self._closed = False
        texts = {name: text for name, text in vars(_scripts).items() if name.isupper()}
        self._scripts = {
            n: (hashlib.sha1(t.encode(), usedforsecurity=False).hexdigest(), t)
            for n, t in texts.items()
        }

    @property
    def client(self) -> Any:
        """The redis-py client this backend uses in this process."""
        return self._clients.get()

    def key(self, session: str) -> bytes:
        """Return the Redis key of the hash that holds ``session``."""
        return self._hash(session.encode())

    # -- plumbing ------------------------------------------------------------------------

    def _client(self) -> Any:
        if self._closed:
            raise BackendError(
                f"The Redis backend on {self._where} is closed; open a new one to go on."
            )
        return self._clients.get()

    def _call(self, action: str, script: str | None, *args: Any) -> Any:
        """Run the command ``args``, or the Lua script named ``script`` on ``args`` (by its
        SHA, loaded first when Redis lacks it); driver errors become ``BackendError``."""
        try:
            client = self._client()
            if script is None:
                return client.execute_command(*args)
            sha, text = self._scripts[script]
            try:
                return client.execute_command("EVALSHA", sha, *args)
            except self._no_script:  # a restarted server, or SCRIPT FLUSH
                client.script_load(text)
                return client.execute_command("EVALSHA", sha, *args)
        except DashDatabaseError:
            raise
        except self._errors as exc:
            raise backend_error(self._store, action, exc) from exc

    def _on_session(self, name: str, action: str, session: str, now: float, *args: Any) -> Any:
        raw = session.encode()
        return self._call(action, name, 1, self._hash(raw), raw, _number(now), *args)

    def _hash(self, raw: bytes) -> bytes:
        return self._base + b"s:" + hashlib.blake2b(raw, digest_size=16).hexdigest().encode()

    def _fields(self, session: str, now: float, *fields: bytes) -> list[Any] | None:
        """Return id, deadline and ``fields`` of a live session, or ``None``."""
        raw = session.encode()
        found: list[Any] = self._call(
            "read from", None, "HMGET", self._hash(raw), b"id", b"deadline", *fields
        )
        if found[0] != raw or (found[1] is not None and float(found[1]) <= now):
            return None
        return found

    def _write(self, session: str, now: float, *args: Any) -> int:
        """Run WRITE with ``args``: deadline, version, max_bytes, max_sessions, expected
        version, then key/value pairs (see ``_scripts.WRITE``)."""
        deadline, version, max_bytes, max_sessions, expected, *pairs = args
        raw = session.encode()
        limits = [b"" if n is None else b"%d" % n for n in (version, max_bytes, max_sessions)]
        when = b"" if deadline is None else _number(deadline)
        head = [1, self._hash(raw), raw, _number(now), b" ".join([when, *limits, expected])]
        large = self.large_write_bytes
        if large is None or sum(len(value) for value in pairs[1::2]) < large:
            result = self._call("write to", "WRITE", *head, b"", *pairs)
        else:
            watch = [head[1]] if max_sessions is None else [head[1], self._index]
            with store_errors(self._store, "write to", self._errors[:1]):
                result = write_large(self._client(), self._scripts["WRITE"], watch, head, pairs)
        if isinstance(result, list):  # the sizes of a write the byte limit refused
            raise QuotaExceededError.for_write(result[0], result[1], max_bytes)
        if result == -1:
            raise SessionLimitError.for_write(max_sessions)
        return int(result)

    # -- the backend protocol --------------------------------------------------------------

    def get(self, session: str, key: str, now: float) -> bytes | None:
        found = self._fields(session, now, b"v:" + key.encode())
        return None if found is None else found[2]

    def get_many(self, session: str, keys: Sequence[str], now: float) -> list[bytes | None]:
        if not keys:
            return []
        found = self._fields(session, now, *(b"v:" + key.encode() for key in keys))
        return [None] * len(keys) if found is None else found[2:]

    def get_versioned(self, session: str, key: str, now: float) -> tuple[bytes, int] | None:
        name = key.encode()
        found = self._fields(session, now, b"v:" + name, b"n:" + name)
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
        pairs = [part for key, value in items.items() for part in (key.encode(), value)]
        self._write(session, now, deadline, version, max_bytes, max_sessions, b"*", *pairs)

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
        args = (deadline, version, max_bytes, max_sessions, old, key.encode(), value)
        return bool(self._write(session, now, *args))

    def delete(self, session: str, key: str, now: float) -> bool:
        return bool(self._on_session("DELETE", "delete from", session, now, key.encode()))

    def keys(self, session: str, now: float) -> list[str]:
        names = self._on_session("KEYS", "list the keys in", session, now)
        return [name.decode() for name in names]

    def clear(self, session: str, now: float) -> int:
        return int(self._on_session("CLEAR", "delete from", session, now))

    def touch(self, session: str, deadline: float, now: float) -> None:
        self._on_session("TOUCH", "renew a session in", session, now, _number(deadline))

    def rename(self, session: str, new_session: str, now: float) -> int:
        raw, new_raw = session.encode(), new_session.encode()
        keys = (self._hash(raw), self._hash(new_raw))
        return int(
            self._call("rename a session in", "RENAME", 2, *keys, raw, _number(now), new_raw)
        )

    def session_bytes(self, session: str, now: float) -> int:
        found = self._fields(session, now, b"bytes")
        return 0 if found is None else int(found[2])

    def sessions(self, now: float, cursor: str | None = None, limit: int = 100) -> Page:
        start = b"-" if cursor is None else b"(" + cursor.encode()
        reply = self._call(
            "list the sessions in", "SESSIONS", 1, self._index, _number(now), start, limit
        )
        rows = [reply[i : i + 5] for i in range(1, len(reply), 5)]
        page = [
            SessionInfo(sid.decode(), int(n), int(size), deadline and float(deadline), float(at))
            for sid, n, size, deadline, at in rows
        ]
        return page, (reply[0].decode() or None)

    def session_keys(
        self, session: str, now: float, cursor: str | None = None, limit: int = 100
    ) -> tuple[list[KeyInfo], str | None]:
        start = b"0:0" if cursor is None else cursor.encode()
        reply = self._on_session("SESSION_KEYS", "list the keys in", session, now, start, limit)
        rows = zip(reply[1::2], (entry.split(b":") for entry in reply[2::2]))
        page = [KeyInfo(name.decode(), int(size), int(version)) for name, (size, version) in rows]
        return page, (reply[0].decode() or None)

    def stats(self, now: float) -> StoreStats:
        # The index summed on the server a page at a time (exact when no write runs meanwhile).
        sessions = keys = size = 0
        start = b"-"
        while True:
            args = (1, self._index, _number(now), start, _STATS_PAGE)
            last, *figures = self._call("read the statistics of", "STATS", *args)
            sessions, keys, size = (a + int(b) for a, b in zip((sessions, keys, size), figures))
            if not last:
                break
            start = b"(" + last
        expiry = (self._base + b"expiry", b"-inf", _number(now))
        expired = int(self._call("read the statistics of", None, "ZCOUNT", *expiry))
        return StoreStats(sessions, keys, size, expired)

    def purge_expired(self, now: float, progress: Callable[[int], object] | None = None) -> int:
        removed = 0
        while True:
            args = (1, self._index, _number(now), _BATCH)
            batch = int(self._call("purge expired sessions from", "PURGE", *args))
            removed += batch
            if progress is not None and batch:
                progress(batch)
            if batch < _BATCH:
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


def _reopen(url: str, prefix: str, large: int | None, options: dict[str, Any]) -> RedisBackend:
    return RedisBackend(url, prefix=prefix, large_write_bytes=large, **options)


def _number(seconds: float) -> bytes:  # text that tonumber() and float() read back exactly
    return repr(float(seconds)).encode()


def _split_prefix(url: str) -> tuple[str, str | None]:
    """Return ``url`` without its ``prefix`` query parameter, and that parameter."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in query if name == "prefix"]
    rest = [(name, value) for name, value in query if name != "prefix"]
    return parts._replace(query=urlencode(rest)).geturl(), (prefixes[-1] if prefixes else None)


def _describe(client: Any, redis: Any) -> str:
    """Return ``host:port`` of the server(s) ``client`` talks to, without any password."""
    if isinstance(client, redis.cluster.RedisCluster):
        return ", ".join(sorted(node.name for node in client.get_nodes())) or "a Redis Cluster"
    kwargs = client.get_connection_kwargs()
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
