"""Sessions in Redis (or Valkey): one hash per session, indexed, written by Lua scripts.

Layout. Every key of a backend starts with ``<prefix>:{<prefix>}:`` (``B`` below); the part in
braces is a Redis Cluster hash tag, so that all of them live on one cluster slot:

- ``B s:<digest>``, a hash per session: ``v:<key>`` holds a value, ``n:<key>`` its length and
  version (``<length>:<version>``), and ``id``, ``keys``, ``bytes``, ``written`` and ``deadline``
  (absent: never expires) describe the session. ``<digest>`` is the hex BLAKE2b-128 of the
  session id, so an id of any length makes a short key; the full id is kept in ``id`` and
  compared on every call, so two ids can never share data. Field names start ``v:`` or ``n:``
  followed by the key's UTF-8 bytes, or are one of the five names without a colon: distinct
  keys never collide.
- ``B k:<digest>``, a sorted set of the session's key names (all of score 0, so Redis orders
  them by their bytes), for paging through them.
- ``B index``, the digests of all sessions, paged the same way; ``B expiry``, the digests of
  the sessions that have a deadline, scored by it; ``B totals``, a hash of the sessions with
  keys, keys and bytes of the whole store, expired sessions included.

Design. Each operation is one Lua script (``_scripts.py``) that Redis runs without
interleaving, so a write updates the session, its key set, the index and the totals in one
atomic step, and a read-modify-write (``compare_and_set``, a quota check) needs no lock.
Plain reads (``get``, ``get_versioned``, ``session_bytes``) are one ``HMGET``, which returns
a value without copying it into Lua. Deadlines are compared with the caller's ``now``, never
with Redis's clock; an expired session stays invisible until ``purge_expired``, which removes
expired sessions a batch at a time (each batch one script, so a live request waits for one
batch at most), or until it is written again. The hashes carry no native Redis expiry: Redis
would drop them without updating the index and the totals, and with an injected clock the two
clocks disagree anyway. So an app that stops writing keeps its expired sessions until something
calls ``purge_expired`` (``DashDatabase`` does now and then during writes; a cron job can too).
``stats`` reads the totals and subtracts what the expired sessions still hold, at a cost that
grows with the number of expired sessions only.

On a Redis Cluster, the one hash tag puts the whole store of one prefix on one slot, hence on
one primary: that is what lets one script update a session and the totals atomically. The
cluster then gives failover, not more room; apps that need more split their sessions over
several prefixes (each its own slot).

Connections go through redis-py's own pool and public API (``register_script``, ``hmget``). A
backend built from a URL makes its client in each process that uses it (``_process.py``), with
timeouts (connect 3 s, read 5 s) and one immediate retry of a command whose connection was lost,
so the first call after a server restart succeeds; a server that is down or frozen gives
``BackendError`` well within gunicorn's 30 s worker timeout. The scripts are written so that
running one twice after such a retry is harmless (``compare_and_set`` recognises its own
version); ``delete`` and ``clear`` may then report 0, and a ``rename`` run again finds its
session moved and empties the target.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..._locations import DEFAULT_SECRET_FILE, redact_url
from ...exceptions import BackendError, InvalidArgumentError, QuotaExceededError
from .._base import KeyInfo, Page, SessionInfo, StoreStats
from .._errors import store_errors
from .._process import PerProcess
from . import _scripts
from ._multi import write_large

__all__ = ["DEFAULT_PREFIX", "RedisBackend"]

#: The key prefix used when none is given.
DEFAULT_PREFIX = "dash_database"

# Sessions removed by one purge script, and expired sessions read by one stats script: small
# enough that a live request queued behind one waits only briefly.
_BATCH = 500


def _import_redis() -> Any:
    try:
        import redis
        import redis.cluster
    except ImportError as exc:
        raise ImportError(
            'The Redis backend needs the redis package: pip install "dash-database[redis]"'
        ) from exc
    return redis


def _client_defaults(redis: Any) -> dict[str, Any]:
    """Options a client built from a URL gets unless the URL or the caller sets them."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {
        "socket_connect_timeout": 3.0,
        "socket_timeout": 5.0,
        # One immediate retry on a lost connection only: it replaces a pooled connection the
        # server closed (a restart) without the caller seeing an error. Timeouts are not
        # retried: a frozen server would make the caller wait several timeouts.
        "retry": Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
    }


class RedisBackend:
    """Store each session as one hash in Redis or Valkey, with an index of the sessions.

    Args:
        url_or_client: a URL (``redis://[[user]:password@]host:port/db``, ``rediss://...`` for
            TLS; query parameters such as ``socket_timeout=2`` go to redis-py), or a ready
            ``redis.Redis`` or ``redis.cluster.RedisCluster`` client. A client passed in stays
            yours, configured as you made it: :meth:`close` does not close it, and the
            backend cannot be pickled. It must not use ``decode_responses=True``.
        prefix: the start of every key this backend writes; apps sharing one Redis database
            keep their sessions apart by using different prefixes. It may not contain ``{`` or
            ``}`` (the cluster hash tag). A URL may give it as ``?prefix=...`` instead.
        large_write_bytes: a write whose values add up to at least this many bytes sends them
            in a MULTI/EXEC transaction beside its script instead of through the script
            (``_multi.py``): Redis copies script arguments into Lua at a cost that grows with
            their size. ``None`` sends every write through its script.
        **options: keyword arguments for ``redis.Redis.from_url`` when given a URL (for
            example ``socket_timeout``, ``ssl_ca_certs``); they replace the defaults of a
            3 s connect and 5 s read timeout.

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
        redis = _import_redis()
        self._url: str | None = None
        self._options = dict(options)
        if isinstance(url_or_client, str):
            self._url, url_prefix = _split_prefix(url_or_client)
            prefix = url_prefix if prefix is None else prefix
            settings = {**_client_defaults(redis), **options}
            url = self._url
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
            if options:
                raise InvalidArgumentError(
                    f"Options {sorted(options)!r} apply only to a URL; configure the client "
                    "you pass in yourself."
                )
            client = url_or_client
            if client.get_connection_kwargs().get("decode_responses"):
                raise InvalidArgumentError(
                    "The Redis client uses decode_responses=True, but stored values are "
                    "bytes; pass a client created without decode_responses."
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
        if large_write_bytes is not None and (
            isinstance(large_write_bytes, bool)
            or not isinstance(large_write_bytes, int)
            or large_write_bytes < 0
        ):
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
        self._driver_errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError,)
        self._no_script: type[Exception] = redis.exceptions.NoScriptError
        self._closed = False
        self._scripts = {name: _Script(getattr(_scripts, name)) for name in _scripts.__all__}

    @property
    def client(self) -> Any:
        """The redis-py client this backend uses in this process."""
        return self._clients.get()

    def key(self, session: str) -> bytes:
        """Return the Redis key of the hash that holds ``session``."""
        return self._base + b"s:" + _digest(session.encode())

    # -- plumbing ------------------------------------------------------------------------

    def _client(self) -> Any:
        if self._closed:
            raise BackendError(
                f"The Redis backend on {self._where} is closed; open a new one to go on."
            )
        return self._clients.get()

    def _run(self, name: str, action: str, keys: list[bytes], *args: Any) -> Any:
        """Run the script ``name`` (EVALSHA; loaded first when the server lacks it)."""
        script = self._scripts[name]
        with store_errors(self._store, action, self._driver_errors):
            client = self._client()
            try:
                return client.evalsha(script.sha, len(keys), *keys, *args)
            except self._no_script:
                # A restarted server, or SCRIPT FLUSH: load it and run it again.
                client.script_load(script.text)
                return client.evalsha(script.sha, len(keys), *keys, *args)

    def _on_session(self, name: str, action: str, session: str, now: float, *args: Any) -> Any:
        raw = session.encode()
        return self._run(name, action, [self._hash(raw)], raw, _number(now), *args)

    def _on_store(self, name: str, action: str, now: float, *args: Any) -> Any:
        return self._run(name, action, [self._index], _number(now), *args)

    def _hash(self, raw: bytes) -> bytes:
        return self._base + b"s:" + _digest(raw)

    def _fields(self, session: str, now: float, *fields: bytes) -> list[Any] | None:
        """Return ``fields`` of a live session's hash (after its id and deadline), or ``None``
        when it has none or expired: one HMGET, which sends values without copying them."""
        raw = session.encode()
        with store_errors(self._store, "read from", self._driver_errors):
            found: list[Any] = self._client().hmget(self._hash(raw), b"id", b"deadline", *fields)
        if found[0] != raw or (found[1] is not None and float(found[1]) <= now):
            return None
        return found

    # -- the backend protocol --------------------------------------------------------------

    def get(self, session: str, key: str, now: float) -> bytes | None:
        found = self._fields(session, now, b"v:" + key.encode())
        if found is None:
            return None
        value: bytes | None = found[2]
        return value

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
    ) -> None:
        pairs: list[bytes] = []
        size = 0
        for key, value in items.items():
            pairs += (key.encode(), value)
            size += len(value)
        head = _write_args(deadline, version, max_bytes)
        if self.large_write_bytes is None or size < self.large_write_bytes:
            result = self._on_session("SET_MANY", "write to", session, now, *head, *pairs)
        else:
            raw = session.encode()
            script = self._scripts["SET_LENGTHS"]
            with store_errors(self._store, "write to", self._driver_errors):
                result = write_large(
                    self._client(), self._hash(raw), [raw, _number(now), *head], pairs, script
                )
        _check_quota(result, max_bytes)

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
    ) -> bool:
        result = self._on_session(
            "COMPARE_AND_SET",
            "write to",
            session,
            now,
            *_write_args(deadline, version, max_bytes),
            b"" if expected is None else b"%d" % expected,
            key.encode(),
            value,
        )
        _check_quota(result, max_bytes)
        return bool(result)

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
        keys = [self._hash(raw), self._hash(new_raw)]
        return int(self._run("RENAME", "rename a session in", keys, raw, _number(now), new_raw))

    def session_bytes(self, session: str, now: float) -> int:
        found = self._fields(session, now, b"bytes")
        if found is None:
            return 0
        return int(found[2])

    def sessions(self, now: float, cursor: str | None = None, limit: int = 100) -> Page:
        start = b"-" if cursor is None else b"(" + cursor.encode()
        reply = self._on_store("SESSIONS", "list the sessions in", now, start, limit)
        rows = reply[1:]
        page = [
            SessionInfo(
                session=rows[i].decode(),
                keys=int(rows[i + 1]),
                bytes=int(rows[i + 2]),
                deadline=None if rows[i + 3] is None else float(rows[i + 3]),
                written=float(rows[i + 4]),
            )
            for i in range(0, len(rows), 5)
        ]
        return page, (reply[0].decode() or None)

    def session_keys(
        self, session: str, now: float, cursor: str | None = None, limit: int = 100
    ) -> tuple[list[KeyInfo], str | None]:
        start = b"-" if cursor is None else b"(" + cursor.encode()
        reply = self._on_session("SESSION_KEYS", "list the keys in", session, now, start, limit)
        page = []
        for name, entry in zip(reply[1::2], reply[2::2]):
            length, version = entry.split(b":")
            page.append(KeyInfo(name.decode(), int(length), int(version)))
        return page, (page[-1].key if reply[0] and page else None)

    def stats(self, now: float) -> StoreStats:
        # The expired sessions are read a batch per script, so a live request waits for one
        # batch at most; the figures are exact when no write runs meanwhile.
        totals: Sequence[Any] = ()
        expired = [0, 0, 0, 0]  # sessions, sessions with keys, keys, bytes
        rank = 0
        while True:
            reply = self._on_store("STATS", "read the statistics of", now, rank, _BATCH)
            totals = totals or reply[:3]
            expired = [a + int(b) for a, b in zip(expired, reply[3:])]
            if reply[3] < _BATCH:
                break
            rank += _BATCH
        return StoreStats(
            sessions=max(0, int(totals[0]) - expired[1]),
            keys=max(0, int(totals[1]) - expired[2]),
            bytes=max(0, int(totals[2]) - expired[3]),
            expired=expired[0],
        )

    def purge_expired(self, now: float) -> int:
        removed = 0
        while True:
            batch = int(self._on_store("PURGE", "purge expired sessions from", now, _BATCH))
            removed += batch
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
                "live connections. Build it from a URL (RedisBackend('redis://...')) to pickle "
                "it."
            )
        return (_reopen, (self._url, self.prefix, self.large_write_bytes, self._options))

    def __repr__(self) -> str:
        where = redact_url(self._url) if self._url is not None else self._where
        return f"RedisBackend({where!r}, prefix={self.prefix!r})"


def _reopen(
    url: str, prefix: str, large_write_bytes: int | None, options: dict[str, Any]
) -> RedisBackend:
    return RedisBackend(url, prefix=prefix, large_write_bytes=large_write_bytes, **options)


class _Script:
    """A Lua script and its SHA1, as Redis names it."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=16).hexdigest().encode()


def _number(seconds: float) -> bytes:
    """Return ``seconds`` as text that Lua's ``tonumber`` and ``float`` read back exactly."""
    return repr(float(seconds)).encode()


def _write_args(deadline: float | None, version: int, max_bytes: int | None) -> list[Any]:
    return [
        b"" if deadline is None else _number(deadline),
        b"%d" % version,
        b"" if max_bytes is None else b"%d" % max_bytes,
    ]


def _check_quota(result: Any, max_bytes: int | None) -> None:
    if isinstance(result, list):
        assert max_bytes is not None  # the scripts refuse only under a limit
        raise QuotaExceededError.for_write(int(result[0]), int(result[1]), max_bytes)


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
