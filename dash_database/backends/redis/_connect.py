"""Reaching the server: importing redis-py with the defaults we give it, the URL's ``prefix``
parameter, and where a client connects (for messages, never with a password)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = ["describe", "import_redis", "split_prefix"]


def import_redis() -> Any:
    """Return the ``redis`` module and the client options we default to."""
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


def split_prefix(url: str) -> tuple[str, str | None]:
    """Return ``url`` without its ``prefix`` query parameter, and that parameter."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in query if name == "prefix"]
    rest = [(name, value) for name, value in query if name != "prefix"]
    return parts._replace(query=urlencode(rest)).geturl(), (prefixes[-1] if prefixes else None)


def describe(client: Any, redis: Any) -> str:
    """Return ``host:port`` of the server(s) ``client`` talks to, without any password."""
    if isinstance(client, redis.cluster.RedisCluster):
        return ", ".join(sorted(node.name for node in client.get_nodes())) or "a Redis Cluster"
    kwargs = client.get_connection_kwargs()
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
