"""Sessions in Redis (or Valkey): one hash per session, written by Lua scripts.

Layout, for the default prefix ``dash_database``:

- A session is one hash under the key ``dash_database:{s<hex>}``, where ``<hex>`` is the
  hexadecimal form of the UTF-8 bytes of the session id. Hex uses only ``0-9a-f``, so two
  sessions never share a key and the braces always form a well-formed cluster hash tag; the
  letter ``s`` keeps the tag non-empty for the empty id (Redis Cluster ignores an empty
  ``{}``). Every script touches this one key only, so it runs on one slot of a Redis Cluster.
- Each value is the field ``v:<key>`` of that hash (the key's UTF-8 bytes after ``v:``).
- A session with a deadline has the field ``deadline`` (seconds since the epoch, as written by
  Python's ``repr(float)``). It cannot collide with a value field, which always starts with
  ``v:``.

Expiry: the deadline in the hash is compared with the caller's ``now`` on every read, so the
injected clock decides what is expired. Redis also expires the hash by itself: each write that
sets a deadline sets a native time-to-live of ``deadline - now`` (``PEXPIRE``, a duration, never
an absolute time), so an abandoned session is reclaimed even if nobody calls
:meth:`RedisBackend.purge_expired`.

Atomicity: every operation that reads and then writes (``set_many``, ``delete``, ``clear``,
``touch``, the purge of one session) is one Lua script on one key, so Redis runs it without
interleaving. The one exception is a ``set_many`` whose values add up to 32 KiB or more, on
Redis 7 or later and not on a cluster: it is ``MULTI``, a script that discards an expired
session and sets the deadline, an ``HSET`` of the values, ``EXEC``, so that the values never
pass through Lua, which costs time in proportion to their size. ``get`` is one ``HMGET`` of the
deadline and the value, atomic on its own. ``keys`` is one ``HKEYS`` while the backend has
not met a session with a deadline (a session without one cannot expire), and the listing
script after that.

Connections: redis-py's client checks a connection out of its pool and back in around every
command, which costs more than a small command's round trip on loopback (about 20-50
microseconds with redis-py 8.1). A backend built from a URL on a single server therefore keeps
the connections it has used and lends each to one call at a time (so it holds at most as many
as calls ran at once), for single commands and for the ``MULTI``/``EXEC`` of large writes; one
that was lost is reconnected and the command sent once more (a ``delete`` or ``clear`` retried
that way may report 0 when the first attempt had already run). The client's pool serves only
``purge_expired`` and ``INFO``. A client passed in, and a cluster client, run every command
through their own pool, as configured.

Commands used: ``HMGET HSET HDEL HLEN HKEYS HGET DEL PEXPIRE PERSIST SCAN EVALSHA``, all in
Redis 4 and every Valkey release, and for large writes ``INFO`` (once, for the server version),
``MULTI EVAL EXEC``. ``SCAN`` only matches this prefix's keys; the backend never runs ``KEYS``,
``FLUSHDB`` or ``FLUSHALL``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..exceptions import BackendError, InvalidArgumentError
from . import _fork, redact_url

if TYPE_CHECKING:
    from redis import Redis
    from redis.cluster import RedisCluster

    Client = Union[Redis, RedisCluster]

__all__ = ["DEFAULT_PREFIX", "RedisBackend"]

#: The key prefix used when none is given.
DEFAULT_PREFIX = "dash_database"

_DEADLINE = b"deadline"
_VALUE = b"v:"
_VALUE_LEN = len(_VALUE)
# Keys returned by one SCAN call, and sessions checked per pipeline while purging.
_SCAN_COUNT = 1000
# A write whose values add up to at least this many bytes sends them as a plain HSET inside
# MULTI/EXEC instead of as script arguments: Redis copies every script argument into Lua, which
# then spends time in proportion to its size (about 1.4 microseconds per KiB measured on Redis
# 7.0, so a 1 MB value more than doubles the time of the write). Below this size the one script
# costs less than the transaction's extra commands; at this size the two cost about the same.
_MULTI_WRITE_BYTES = 32 * 1024
# Options given to redis-py unless the caller gives their own: a server that does not answer
# raises an error instead of hanging a Dash callback forever.
_CLIENT_DEFAULTS: dict[str, Any] = {"socket_connect_timeout": 5.0, "socket_timeout": 30.0}

# In every script KEYS[1] is the session's hash and ARGV[1] is ``now``. Each redis.call costs
# a few microseconds, so the scripts make as few as they can.

_KEYS_SCRIPT = """
local stored = redis.call('HGET', KEYS[1], 'deadline')
if stored and tonumber(stored) <= tonumber(ARGV[1]) then return {} end
return redis.call('HKEYS', KEYS[1])
"""

# Both write scripts start here: read the stored deadline of KEYS[1] and, when the session
# expired at ARGV[1] (now), drop it whole so that the write starts from an empty session.
_DROP_EXPIRED = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local stored = redis.call('HGET', key, 'deadline')
if stored and tonumber(stored) <= now then
    redis.call('DEL', key)
    stored = false
end
"""

# ARGV[2] onwards are field/value pairs. When the write sets a deadline, the first pair is
# 'deadline' and that deadline (a value field always starts with 'v:', so it cannot be taken
# for it), and one HSET writes it with the values; the pair is skipped when the stored deadline
# is later. HSET takes at most 500 pairs at a time because Lua's unpack() is limited by the C
# stack. A hash has a native time-to-live only while it has a deadline field (every script sets
# or removes them together), so PERSIST is needed only when a deadline was stored.
_SET_MANY_SCRIPT = (
    _DROP_EXPIRED
    + """
local first = 2
local deadline = false
if ARGV[2] == 'deadline' then
    deadline = tonumber(ARGV[3])
    if stored and tonumber(stored) >= deadline then
        deadline = tonumber(stored)
        first = 4
    end
end
for i = first, #ARGV, 1000 do
    redis.call('HSET', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if deadline then
    redis.call('PEXPIRE', key, string.format('%d', math.ceil((deadline - now) * 1000)))
elseif stored then
    redis.call('HDEL', key, 'deadline')
    redis.call('PERSIST', key)
end
return 1
"""
)

# The large-value write is MULTI, this script, HSET of the values, EXEC: the values never pass
# through Lua. ARGV[2] is the new deadline ('' for none). The script sets the deadline before the
# values are written, so a deadline <= now, whose PEXPIRE would delete the hash before the HSET,
# takes the one-script path instead. It runs with EVAL, not EVALSHA: inside MULTI a missing
# script (NOSCRIPT, after a restart or SCRIPT FLUSH) fails alone while the HSET still runs,
# whereas EVAL cannot miss its script.
_PREPARE_SCRIPT = (
    _DROP_EXPIRED
    + """
if ARGV[2] == '' then
    if stored then
        redis.call('HDEL', key, 'deadline')
        redis.call('PERSIST', key)
    end
    return 1
end
local deadline = tonumber(ARGV[2])
if stored and tonumber(stored) >= deadline then
    deadline = tonumber(stored)
else
    redis.call('HSET', key, 'deadline', ARGV[2])
end
redis.call('PEXPIRE', key, string.format('%d', math.ceil((deadline - now) * 1000)))
return 1
"""
)

# ARGV[2] is the field. A session left with no value is removed with its deadline.
_DELETE_SCRIPT = """
local key = KEYS[1]
local stored = redis.call('HGET', key, 'deadline')
if stored and tonumber(stored) <= tonumber(ARGV[1]) then return 0 end
local removed = redis.call('HDEL', key, ARGV[2])
if removed == 1 and redis.call('HLEN', key) == (stored and 1 or 0) then
    redis.call('DEL', key)
end
return removed
"""

_CLEAR_SCRIPT = """
local key = KEYS[1]
local count = redis.call('HLEN', key)
if count == 0 then return 0 end
local stored = redis.call('HGET', key, 'deadline')
redis.call('DEL', key)
if not stored then return count end
if tonumber(stored) <= tonumber(ARGV[1]) then return 0 end
return count - 1
"""

# ARGV[2] is the new deadline.
_TOUCH_SCRIPT = """
local key = KEYS[1]
local stored = redis.call('HGET', key, 'deadline')
if not stored then return 0 end
local now = tonumber(ARGV[1])
local deadline = tonumber(ARGV[2])
stored = tonumber(stored)
if stored > now and deadline > stored then
    redis.call('HSET', key, 'deadline', ARGV[2])
    redis.call('PEXPIRE', key, string.format('%d', math.ceil((deadline - now) * 1000)))
end
return 0
"""

# Re-checks the deadline: another process may have renewed the session since it was listed.
_PURGE_SCRIPT = """
local stored = redis.call('HGET', KEYS[1], 'deadline')
if stored and tonumber(stored) <= tonumber(ARGV[1]) then
    redis.call('DEL', KEYS[1])
    return 1
end
return 0
"""


def _import_redis() -> Any:
    try:
        import redis
        import redis.cluster
    except ImportError as exc:
        raise ImportError(
            'The Redis backend needs the redis package: pip install "redis>=5.0" '
            '(from a clone: pip install "./dash_database[redis]").'
        ) from exc
    return redis


class RedisBackend:
    """Store each session as one hash in Redis or Valkey.

    Args:
        client: a URL (``redis://[[user]:password@]host:port/db`` or ``rediss://...`` for TLS),
            or a ready ``redis.Redis`` or ``redis.cluster.RedisCluster`` client. A client
            passed in stays yours: :meth:`close` does not close it, and the backend cannot be
            pickled. It must not use ``decode_responses=True``.
        prefix: the start of every key this backend writes; apps sharing one Redis database
            keep their sessions apart by using different prefixes. It may not contain ``{`` or
            ``}``, which would break the cluster hash tag. A URL may give it as the query
            parameter ``?prefix=...`` instead.
        **options: keyword arguments for ``redis.Redis.from_url`` when ``client`` is a URL
            (for example ``socket_timeout``, ``ssl_ca_certs``).

    Raises:
        ImportError: the ``redis`` package is not installed.
        InvalidArgumentError: the prefix or the client cannot be used.
    """

    def __init__(self, client: str | Client, *, prefix: str | None = None, **options: Any) -> None:
        redis = _import_redis()
        self._url: str | None = None
        self._options = dict(options)
        if isinstance(client, str):
            url, url_prefix = _split_prefix(client)
            prefix = url_prefix if prefix is None else prefix
            _check_prefix(DEFAULT_PREFIX if prefix is None else prefix)
            self._url = url
            try:
                self._client: Client = redis.Redis.from_url(url, **{**_CLIENT_DEFAULTS, **options})
            except ValueError as exc:
                raise InvalidArgumentError(
                    f"Cannot use the Redis URL {redact_url(url)!r}: {exc}"
                ) from exc
        elif isinstance(client, (redis.Redis, redis.cluster.RedisCluster)):
            if options:
                raise InvalidArgumentError(
                    f"Options {sorted(options)!r} apply only to a URL; configure the client "
                    "you pass in yourself."
                )
            if client.get_connection_kwargs().get("decode_responses"):
                raise InvalidArgumentError(
                    "The Redis client uses decode_responses=True, but stored values are "
                    "bytes; pass a client created without decode_responses."
                )
            self._client = client
        else:
            raise InvalidArgumentError(
                "client must be a redis:// or rediss:// URL, a redis.Redis or a "
                f"redis.cluster.RedisCluster, got {type(client).__name__} {client!r}."
            )
        self.prefix = DEFAULT_PREFIX if prefix is None else prefix
        _check_prefix(self.prefix)
        self._key_start = self.prefix.encode("utf-8") + b":{"
        self._key_head = self._key_start + b"s"
        self._where = _describe(self._client, redis)
        self._closed = False
        self._close_lock = threading.Lock()
        self._redis_error: type[Exception] = redis.exceptions.RedisError
        self._response_error: type[Exception] = redis.exceptions.ResponseError
        self._lost: type[Exception] = redis.exceptions.ConnectionError
        self._no_script: type[Exception] = redis.exceptions.NoScriptError
        self._unreachable: tuple[type[Exception], ...] = (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
        )
        # Whether large writes may use MULTI/EXEC; decided on the first large write.
        self._multi_writes: bool | None = (
            False if isinstance(self._client, redis.cluster.RedisCluster) else None
        )
        # Whether this backend has met a session with a deadline. Until then it lists keys with
        # a plain HKEYS, which costs less than the script that checks the deadline.
        self._deadlines_seen = False

        # redis-py's execute_command, untyped; the scripts go through it as EVALSHA.
        self._execute: Any = self._client.execute_command
        # Runs one command and returns its reply: on the connections this backend keeps (see
        # the module notes) when it built a single-server client, else through the client.
        self._idle: list[Any] = []
        self._idle_forks = _fork.count
        self._pool: Any = None
        self._command: Any = self._execute
        self._transaction: Any = self._pipeline_transaction
        if self._url is not None and isinstance(self._client, redis.Redis):
            self._pool = self._client.connection_pool
            self._command = self._kept_command
            self._transaction = self._kept_transaction
        self._keys_script = _Script(_KEYS_SCRIPT)
        self._set_many_script = _Script(_SET_MANY_SCRIPT)
        self._delete_script = _Script(_DELETE_SCRIPT)
        self._clear_script = _Script(_CLEAR_SCRIPT)
        self._touch_script = _Script(_TOUCH_SCRIPT)
        self._purge_script = _Script(_PURGE_SCRIPT)

    @property
    def client(self) -> Client:
        """The redis-py client this backend uses."""
        return self._client

    def key(self, session: str) -> bytes:
        """Return the Redis key of the hash that holds ``session``."""
        return self._key_head + session.encode("utf-8").hex().encode("ascii") + b"}"

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError(f"The Redis backend on {self._where} is closed.")

    def _failure(self, exc: Exception) -> BackendError:
        detail = str(exc).rstrip(".")
        if isinstance(exc, self._unreachable):
            return BackendError(
                f"Could not reach Redis at {self._where}: {detail}. Check that the server is "
                "running and reachable; the next call tries again."
            )
        return BackendError(f"Redis at {self._where} failed: {detail}")

    def _run(self, script: _Script, session: str, args: tuple[bytes, ...]) -> Any:
        self._check_open()
        try:
            return self._eval(script, self.key(session), args)
        except self._redis_error as exc:
            raise self._failure(exc) from exc

    def _eval(self, script: _Script, key: bytes, args: tuple[bytes, ...]) -> Any:
        # EVALSHA with every argument as bytes (the SHA and the key count too), which redis-py
        # sends as it is; converting each one costs time on every call. A server that does not
        # know the script (restarted, or SCRIPT FLUSH) gets it loaded, then runs it.
        try:
            return self._command("EVALSHA", script.sha, b"1", key, *args)
        except self._no_script:
            if self._pool is not None:
                sha = self._command("SCRIPT", "LOAD", script.source)
            else:
                sha = self._client.script_load(script.source)
            script.sha = sha if isinstance(sha, bytes) else str(sha).encode("ascii")
            return self._command("EVALSHA", script.sha, b"1", key, *args)

    def _kept_command(self, *args: str | bytes) -> Any:
        """Send one command on a connection this backend keeps and return its reply."""
        return self._on_kept_connection(lambda conn: _exchange(conn, args))

    def _kept_transaction(self, *commands: tuple[str | bytes, ...]) -> None:
        """Send ``MULTI``, ``commands`` and ``EXEC`` in one go on a connection this backend
        keeps; raise the first error any of them got."""
        self._on_kept_connection(lambda conn: _transaction(conn, commands))

    def _pipeline_transaction(self, *commands: tuple[str | bytes, ...]) -> None:
        """Run ``commands`` in ``MULTI``/``EXEC`` through the client's own pipeline."""
        pipe = self._client.pipeline(transaction=True)
        for command in commands:
            pipe.execute_command(*command)
        pipe.execute()

    def _on_kept_connection(self, exchange: Callable[[Any], Any]) -> Any:
        """Return ``exchange(connection)``, run on a connection this backend keeps.

        Each connection serves one call at a time: taken from the idle list, given back after
        its replies were read whole. A lost connection (the server restarted, say) is
        reconnected and the exchange run once more; any other failure leaves the connection
        disconnected, so a half-read reply never reaches the next call.
        """
        if self._idle_forks != _fork.count:
            # A child process: the parent's sockets stay the parent's (redis-py never shuts
            # down a connection another process opened).
            self._idle = []
            self._idle_forks = _fork.count
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = self._pool.make_connection()
        try:
            try:
                reply = exchange(conn)
            except self._lost:
                conn.disconnect()
                reply = exchange(conn)
        except self._response_error:
            # Error replies, read whole: the connection is in step with the server.
            self._give_back(conn)
            raise
        except BaseException:
            conn.disconnect()
            self._give_back(conn)
            raise
        self._give_back(conn)
        return reply

    def _give_back(self, conn: Any) -> None:
        self._idle.append(conn)
        if self._closed:
            # close() ran while this call had the connection.
            self._disconnect_idle()

    def _disconnect_idle(self) -> None:
        while True:
            try:
                self._idle.pop().disconnect()
            except IndexError:
                return

    # -- the backend protocol -------------------------------------------------------------

    def get(self, session: str, key: str, now: float) -> bytes | None:
        self._check_open()
        try:
            deadline, value = self._command(
                "HMGET", self.key(session), _DEADLINE, _VALUE + key.encode("utf-8")
            )
        except self._redis_error as exc:
            raise self._failure(exc) from exc
        if value is None or (deadline is not None and float(deadline) <= now):
            return None
        return value if isinstance(value, bytes) else bytes(value, "utf-8")

    def set_many(
        self, session: str, items: Mapping[str, bytes], deadline: float | None, now: float
    ) -> None:
        now_text = _number(now)
        deadline_text = b"" if deadline is None else _number(deadline)
        if deadline is not None:
            self._deadlines_seen = True
        pairs: list[bytes] = []
        size = 0
        for key, value in items.items():
            pairs.append(_VALUE + key.encode("utf-8"))
            pairs.append(value)
            size += len(value)
        if (
            size >= _MULTI_WRITE_BYTES
            and pairs
            and (deadline is None or deadline > now)
            and self._can_write_in_multi()
        ):
            self._set_many_in_multi(session, pairs, now_text, deadline_text)
        elif deadline is None:
            self._run(self._set_many_script, session, (now_text, *pairs))
        else:
            self._run(self._set_many_script, session, (now_text, _DEADLINE, deadline_text, *pairs))

    def _can_write_in_multi(self) -> bool:
        if self._multi_writes is None:
            # From Redis 7 on, an EXEC holding a write is refused as a whole when the server is
            # out of memory, and a script inside an accepted EXEC cannot fail for lack of
            # memory. Before 7, such a script checks the memory again at its first write, so it
            # could fail while the HSET after it succeeds: those servers keep to the one script.
            self._check_open()
            try:
                info = self._client.info("server")
            except self._unreachable as exc:
                raise self._failure(exc) from exc
            except self._redis_error:
                # INFO may be denied by an ACL or renamed: keep to the one script.
                info = {}
            major = str(info.get("redis_version", "0")).split(".")[0]
            self._multi_writes = major.isdigit() and int(major) >= 7
        return self._multi_writes

    def _set_many_in_multi(
        self, session: str, pairs: list[bytes], now_text: bytes, deadline_text: bytes
    ) -> None:
        self._check_open()
        key = self.key(session)
        try:
            self._transaction(
                ("EVAL", _PREPARE_SCRIPT, b"1", key, now_text, deadline_text),
                ("HSET", key, *pairs),
            )
        except self._redis_error as exc:
            raise self._failure(exc) from exc

    def delete(self, session: str, key: str, now: float) -> bool:
        return bool(
            self._run(self._delete_script, session, (_number(now), _VALUE + key.encode("utf-8")))
        )

    def keys(self, session: str, now: float) -> list[str]:
        fields: list[bytes] = []
        if not self._deadlines_seen:
            # A session without a deadline field cannot have expired: these are its keys.
            self._check_open()
            try:
                fields = self._command("HKEYS", self.key(session))
            except self._redis_error as exc:
                raise self._failure(exc) from exc
            self._deadlines_seen = _DEADLINE in fields
        if self._deadlines_seen:
            fields = self._run(self._keys_script, session, (_number(now),))
        return [field[_VALUE_LEN:].decode("utf-8") for field in fields if field.startswith(_VALUE)]

    def clear(self, session: str, now: float) -> int:
        return int(self._run(self._clear_script, session, (_number(now),)))

    def touch(self, session: str, deadline: float, now: float) -> None:
        self._run(self._touch_script, session, (_number(now), _number(deadline)))

    def purge_expired(self, now: float) -> int:
        pattern = _glob_escape(self._key_start) + b"*}"
        now_text = _number(now)
        removed = 0
        self._check_open()
        try:
            keys = self._client.scan_iter(match=pattern, count=_SCAN_COUNT)
            while batch := list(islice(keys, _SCAN_COUNT)):
                # Read the deadlines of a whole batch in one round trip, then remove the
                # expired sessions one script each (the script checks the deadline again).
                # A key that is not a hash is not ours: its error is skipped, not raised.
                pipe = self._client.pipeline(transaction=False)
                for key in batch:
                    pipe.hget(key, _DEADLINE)
                for key, deadline in zip(batch, pipe.execute(raise_on_error=False)):
                    if isinstance(deadline, bytes) and float(deadline) <= now:
                        removed += int(self._eval(self._purge_script, key, (now_text,)))
        except self._redis_error as exc:
            raise self._failure(exc) from exc
        return removed

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        if self._url is not None:
            self._disconnect_idle()
            self._client.close()

    # -- pickling: the URL and options, never the connections ------------------------------

    def __getstate__(self) -> dict[str, Any]:
        if self._url is None:
            raise TypeError(
                "A RedisBackend built from a client object cannot be pickled: the client holds "
                "live connections. Build it from a URL (RedisBackend('redis://...')) to pickle "
                "it."
            )
        return {"url": self._url, "prefix": self.prefix, "options": self._options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["url"], prefix=state["prefix"], **state["options"]
        )

    def __repr__(self) -> str:
        where = redact_url(self._url) if self._url is not None else self._where
        return f"RedisBackend({where!r}, prefix={self.prefix!r})"


def _exchange(conn: Any, command: tuple[str | bytes, ...]) -> Any:
    """Send ``command`` on the redis-py connection ``conn`` and return its reply."""
    conn.send_command(*command)
    return conn.read_response()


def _transaction(conn: Any, commands: tuple[tuple[str | bytes, ...], ...]) -> None:
    """Send ``MULTI``, ``commands``, ``EXEC`` on ``conn`` at once and read every reply; raise
    the first error among them. A command refused while queued makes Redis refuse the whole
    ``EXEC`` (``EXECABORT``), and that command's own error is the one raised."""
    from redis.exceptions import ResponseError

    conn.send_packed_command(conn.pack_commands([("MULTI",), *commands, ("EXEC",)]))
    refused: list[ResponseError] = []
    for _ in range(len(commands) + 1):  # OK for MULTI, then QUEUED or an error for each
        try:
            conn.read_response()
        except ResponseError as exc:
            refused.append(exc)
    try:
        replies = conn.read_response()
    except ResponseError as exc:
        if refused:
            raise refused[0] from exc
        raise
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply


class _Script:
    """A Lua script and its SHA1 (as Redis computes it), as bytes ready to send."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        digest = hashlib.sha1(source.encode("utf-8"), usedforsecurity=False)
        self.sha = digest.hexdigest().encode("ascii")


def _number(seconds: float) -> bytes:
    """Return ``seconds`` as text that Lua's ``tonumber`` reads back exactly.

    Bytes, as every other script argument: redis-py passes bytes through unchanged, and each
    argument it has to convert costs time on every call.
    """
    return repr(float(seconds)).encode("ascii")


def _check_prefix(prefix: object) -> None:
    if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
        raise InvalidArgumentError(
            "prefix must be a non-empty str without '{' or '}' (they would break the cluster "
            f"hash tag), got {prefix!r}."
        )


def _split_prefix(url: str) -> tuple[str, str | None]:
    """Return ``url`` without its ``prefix`` query parameter, and that parameter."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in query if name == "prefix"]
    rest = [(name, value) for name, value in query if name != "prefix"]
    return parts._replace(query=urlencode(rest)).geturl(), (prefixes[-1] if prefixes else None)


def _glob_escape(text: bytes) -> bytes:
    """Return ``text`` as a SCAN ``MATCH`` pattern that matches exactly ``text``."""
    out = bytearray()
    for byte in text:
        if byte in b"*?[]\\":
            out += b"\\"
        out.append(byte)
    return bytes(out)


def _describe(client: Any, redis: Any) -> str:
    """Return ``host:port`` of the server(s) ``client`` talks to, without any password."""
    if isinstance(client, redis.cluster.RedisCluster):
        return ", ".join(sorted(node.name for node in client.get_nodes())) or "a Redis Cluster"
    kwargs = client.get_connection_kwargs()
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
