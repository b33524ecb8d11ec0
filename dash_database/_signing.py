"""Signed session ids: the format, the secret key and the check.

A signed session id looks like ``dds1.<token>.<signature>``:

- ``dds1.<token>`` is the *name* of the session: the marker ``dds1.`` and 32 random bytes
  from :mod:`secrets` (256 bits), base64url-encoded in exactly 43 characters.
- ``<signature>`` is an HMAC-SHA256 of the name made by :class:`itsdangerous.Signer` under the
  app's secret key and the salt :data:`SALT`, checked in constant time.

Every ``str`` id with the *shape* of a signed id (the marker, 43 base64url characters, then
nothing or a ``.`` and anything) is verified, and rejected unless its signature is valid. The
store keeps a signed session under its name (the id without the signature), which has that
shape too, so a plain id can never name it: ids without the shape are plain ids, kept under
themselves, and ids with the shape are signed ones. The name does not change when the secret
key is rotated, so a session keeps its data.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import sys
import threading
import warnings
from collections.abc import Sequence
from typing import Union

from itsdangerous import BadSignature, Signer

from .exceptions import InvalidArgumentError, InvalidSessionIdError

__all__ = [
    "ENV_SECRET",
    "PREFIX",
    "SALT",
    "SecretKey",
    "SecretSource",
    "SessionIdSigner",
    "check_keys",
    "looks_signed",
    "read_or_create_secret_file",
]

#: The environment variable holding the secret key (several keys: comma-separated, newest first).
ENV_SECRET = "DASH_DATABASE_SECRET"
#: Every signed session id starts with this marker.
PREFIX = "dds1."
#: The itsdangerous salt: a key used for something else never yields a valid session id.
SALT = "dash_database.session-id"
_TOKEN_BYTES = 32
_MIN_KEY_BYTES = 16

#: What ``secret_key`` accepts: one key, or several keys newest first (key rotation).
SecretKey = Union[str, bytes, Sequence[Union[str, bytes]]]


_SHAPE = re.compile(re.escape(PREFIX) + r"[A-Za-z0-9_-]{43}(?:\..*)?", re.DOTALL)


def looks_signed(session_id: object) -> bool:
    """Return whether ``session_id`` has the shape of a signed id (it may still be forged)."""
    return (
        isinstance(session_id, str)
        and session_id.startswith(PREFIX)  # cheap test first: most plain ids stop here
        and _SHAPE.fullmatch(session_id) is not None
    )


def check_keys(secret_key: SecretKey, source: str) -> list[bytes]:
    """Return ``secret_key`` as a list of byte keys, newest first.

    Raises:
        InvalidArgumentError: no key was given, or a key is shorter than 16 bytes.
    """
    raw = [secret_key] if isinstance(secret_key, (str, bytes)) else list(secret_key)
    keys: list[bytes] = []
    for key in raw:
        if not isinstance(key, (str, bytes)):
            raise InvalidArgumentError(
                f"{source} must be a str, bytes or a list of them, got {type(key).__name__}."
            )
        data = key.encode("utf-8") if isinstance(key, str) else key
        if len(data) < _MIN_KEY_BYTES:
            raise InvalidArgumentError(
                f"{source} holds a key of {len(data)} bytes; a secret key needs at least "
                f"{_MIN_KEY_BYTES}. Generate one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        keys.append(data)
    if not keys:
        raise InvalidArgumentError(f"{source} is empty; give at least one secret key.")
    return keys


class SessionIdSigner:
    """Make and check signed session ids under a list of keys (newest first)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        # itsdangerous signs with the *last* key and accepts every key: reverse our order.
        self._signer = Signer(
            list(reversed(keys)),
            salt=SALT,
            key_derivation="hmac",
            digest_method=hashlib.sha256,
        )

    def new_id(self) -> str:
        """Return a fresh signed session id."""
        return self._signer.sign(PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)).decode("ascii")

    def storage_name(self, session_id: str) -> str:
        """Return the name the store keeps the signed ``session_id`` under.

        Raises:
            InvalidSessionIdError: the signature is missing, forged or altered.
        """
        try:
            value = self._signer.unsign(session_id.encode("utf-8"))
        except BadSignature:
            raise InvalidSessionIdError(
                "The signed session id was rejected: its signature is missing, forged or was "
                "made with a secret key this app no longer accepts. Issue a new session id "
                "(reload the page) instead of reusing or editing one."
            ) from None
        return value.decode("utf-8")


class SecretSource:
    """Find the secret key when it is first needed, once per process.

    Order: the ``secret_key`` argument, then ``DASH_DATABASE_SECRET``, then a generated key
    kept in ``secret_file`` (created with mode 0600, read by every process that shares it), or
    kept in memory when ``secret_file`` is ``None`` (a store private to one process).
    """

    def __init__(self, secret_key: SecretKey | None, secret_file: str | None) -> None:
        self.secret_key = secret_key
        self.secret_file = secret_file
        self._signer: SessionIdSigner | None = None
        self._lock = threading.Lock()
        if secret_key is not None:
            self._signer = SessionIdSigner(check_keys(secret_key, "secret_key"))

    def signer(self) -> SessionIdSigner:
        """Return the signer, finding the key on the first call."""
        signer = self._signer
        if signer is None:
            with self._lock:
                if self._signer is None:
                    self._signer = SessionIdSigner(self._find_keys())
                signer = self._signer
        return signer

    def _find_keys(self) -> list[bytes]:
        env = os.environ.get(ENV_SECRET)
        if env:
            return check_keys([k.strip() for k in env.split(",") if k.strip()], ENV_SECRET)
        where = f"in {self.secret_file}" if self.secret_file else "in memory (this process only)"
        warnings.warn(
            f"dash_database: no secret key is configured, so session ids are signed with a "
            f"generated key kept {where}. Set the environment variable {ENV_SECRET} (or pass "
            "DashDatabase(secret_key=...)) to a long random string, the same for every process "
            "and host of the app, for example the output of "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'.",
            UserWarning,
            stacklevel=_caller_level(),
        )
        if self.secret_file is None:
            return [secrets.token_bytes(_TOKEN_BYTES)]
        return [read_or_create_secret_file(self.secret_file)]


def _caller_level() -> int:
    """Return the ``stacklevel`` that points a warning at the first caller outside this
    package (the app's own line)."""
    level, frame = 1, sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        "dash_database."
    ):
        level, frame = level + 1, frame.f_back
    return level


def read_or_create_secret_file(path: str) -> bytes:
    """Return the key kept in ``path``, creating the file (mode 0600) when it is missing.

    Creation is atomic (``O_EXCL``): when several processes start at once, the first one
    writes the key and the others read it.
    """
    key = secrets.token_urlsafe(_TOKEN_BYTES).encode("ascii")
    tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(key)
            file.flush()
            os.fsync(file.fileno())
        # A hard link publishes the complete file under its name, or fails if it exists.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    with open(path, "rb") as file:
        data = file.read().strip()
    if len(data) < _MIN_KEY_BYTES:
        raise InvalidArgumentError(
            f"The secret file {path} holds {len(data)} bytes, fewer than {_MIN_KEY_BYTES}; "
            f"delete it (a new one is generated) or set {ENV_SECRET}."
        )
    return data
