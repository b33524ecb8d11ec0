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
interleaving. ``get`` is one ``HMGET`` of the deadline and the value, atomic on its own.

Commands used: ``HMGET HSET HDEL HLEN HKEYS HGET DEL PEXPIRE PERSIST SCAN EVALSHA``, all in
Redis 4 and every Valkey release. ``SCAN`` only matches this prefix's keys; the backend never
runs ``KEYS``, ``FLUSHDB`` or ``FLUSHALL``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from itertools import islice
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..exceptions import BackendError, InvalidArgumentError
from . import redact_url

if TYPE_CHECKING:
    from redis import Redis
    from redis.cluster import RedisCluster

    Client = Union[Redis, RedisCluster]

__all__ = ["DEFAULT_PREFIX", "RedisBackend"]

#: The key prefix used when none is given.
DEFAULT_PREFIX = "dash_database"

_DEADLINE = b"deadline"
_VALUE = b"v:"
# Keys returned by one SCAN call, and sessions checked per pipeline while purging.
_SCAN_COUNT = 1000
# Options given to redis-py unless the caller gives their own: a server that does not answer
# raises an error instead of hanging a Dash callback forever.
_CLIENT_DEFAULTS: dict[str, Any] = {"socket_connect_timeout": 5.0, "socket_timeout": 30.0}

# Every script starts with this: KEYS[1] is the session's hash, ARGV[1] is ``now``.
_PROLOGUE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local stored = redis.call('HGET', key, 'deadline')
local expired = stored and tonumber(stored) <= now
local function expire_at(deadline)
    local ms = math.ceil((deadline - now) * 1000)
    redis.call('PEXPIRE', key, string.format('%d', ms))
end
"""

_KEYS_SCRIPT = (
    _PROLOGUE
    + """
if expired then return {} end
return redis.call('HKEYS', key)
"""
)

# ARGV[2] is the new deadline ('' for none), then field/value pairs. HSET takes at most 500
# pairs at a time because Lua's unpack() is limited by the C stack.
_SET_MANY_SCRIPT = (
    _PROLOGUE
    + """
if expired then
    redis.call('DEL', key)
    stored = false
end
for i = 3, #ARGV, 1000 do
    redis.call('HSET', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ARGV[2] == '' then
    if stored then redis.call('HDEL', key, 'deadline') end
    redis.call('PERSIST', key)
else
    local deadline = tonumber(ARGV[2])
    if stored and tonumber(stored) >= deadline then
        deadline = tonumber(stored)
    else
        redis.call('HSET', key, 'deadline', ARGV[2])
    end
    expire_at(deadline)
end
return 1
"""
)

# ARGV[2] is the field. A session left with no value is removed with its deadline.
_DELETE_SCRIPT = (
    _PROLOGUE
    + """
if expired then return 0 end
local removed = redis.call('HDEL', key, ARGV[2])
if removed == 1 and redis.call('HLEN', key) == (stored and 1 or 0) then
    redis.call('DEL', key)
end
return removed
"""
)

_CLEAR_SCRIPT = (
    _PROLOGUE
    + """
local count = redis.call('HLEN', key)
redis.call('DEL', key)
if expired then return 0 end
if stored then count = count - 1 end
return count
"""
)

# ARGV[2] is the new deadline.
_TOUCH_SCRIPT = (
    _PROLOGUE
    + """
if stored and not expired and tonumber(ARGV[2]) > tonumber(stored) then
    redis.call('HSET', key, 'deadline', ARGV[2])
    expire_at(tonumber(ARGV[2]))
end
return 0
"""
)

# Re-checks the deadline: another process may have renewed the session since it was listed.
_PURGE_SCRIPT = (
    _PROLOGUE
    + """
if expired then
    redis.call('DEL', key)
    return 1
end
return 0
"""
)


def _import_redis() -> Any:
    try:
        import redis
        import redis.cluster
    except ImportError as exc:
        raise ImportError(
            'The Redis backend needs the redis package: pip install "dash-database[redis]"'
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
        self._where = _describe(self._client, redis)
        self._closed = False
        self._close_lock = threading.Lock()
        self._scripts = {
            name: self._client.register_script(source)
            for name, source in [
                ("keys", _KEYS_SCRIPT),
                ("set_many", _SET_MANY_SCRIPT),
                ("delete", _DELETE_SCRIPT),
                ("clear", _CLEAR_SCRIPT),
                ("touch", _TOUCH_SCRIPT),
                ("purge", _PURGE_SCRIPT),
            ]
        }

    @property
    def client(self) -> Client:
        """The redis-py client this backend uses."""
        return self._client

    def key(self, session: str) -> bytes:
        """Return the Redis key of the hash that holds ``session``."""
        return self._key_start + b"s" + session.encode("utf-8").hex().encode("ascii") + b"}"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        if self._closed:
            raise BackendError(f"The Redis backend on {self._where} is closed.")
        from redis.exceptions import ConnectionError, RedisError, TimeoutError

        try:
            yield
        except (ConnectionError, TimeoutError) as exc:
            raise BackendError(
                f"Could not reach Redis at {self._where}: {exc}. Check that the server is "
                "running and reachable; the next call tries again."
            ) from exc
        except RedisError as exc:
            raise BackendError(f"Redis at {self._where} failed: {exc}") from exc

    def _run(self, script: str, session: str, *args: bytes | str) -> Any:
        with self._errors():
            return self._scripts[script](keys=[self.key(session)], args=args)

    # -- the backend protocol -------------------------------------------------------------

    def get(self, session: str, key: str, now: float) -> bytes | None:
        with self._errors():
            deadline, value = self._client.hmget(self.key(session), [_DEADLINE, _field(key)])
        if value is None or (deadline is not None and float(deadline) <= now):
            return None
        return value if isinstance(value, bytes) else bytes(value, "utf-8")

    def set_many(
        self, session: str, items: Mapping[str, bytes], deadline: float | None, now: float
    ) -> None:
        pairs: list[bytes | str] = []
        for key, value in items.items():
            pairs += [_field(key), value]
        self._run(
            "set_many", session, _number(now), "" if deadline is None else _number(deadline), *pairs
        )

    def delete(self, session: str, key: str, now: float) -> bool:
        return bool(self._run("delete", session, _number(now), _field(key)))

    def keys(self, session: str, now: float) -> list[str]:
        fields = self._run("keys", session, _number(now))
        return [
            bytes(field)[len(_VALUE) :].decode("utf-8")
            for field in fields
            if bytes(field).startswith(_VALUE)
        ]

    def clear(self, session: str, now: float) -> int:
        return int(self._run("clear", session, _number(now)))

    def touch(self, session: str, deadline: float, now: float) -> None:
        self._run("touch", session, _number(now), _number(deadline))

    def purge_expired(self, now: float) -> int:
        pattern = _glob_escape(self._key_start) + b"*}"
        removed = 0
        with self._errors():
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
                        removed += int(self._scripts["purge"](keys=[key], args=[_number(now)]))
        return removed

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        if self._url is not None:
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


def _number(seconds: float) -> str:
    """Return ``seconds`` as text that Lua's ``tonumber`` reads back exactly."""
    return repr(float(seconds))


def _field(key: str) -> bytes:
    return _VALUE + key.encode("utf-8")


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
