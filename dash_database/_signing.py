"""Signed session ids: the format, the secret key and the check.

A signed session id looks like ``dds1.<token>.<issued>.<signature>``:

- ``dds1.<token>`` is the *name* of the session: the marker ``dds1.`` and 32 random bytes
  from :mod:`secrets` (256 bits), base64url-encoded in exactly 43 characters.
- ``<issued>`` is when the id was issued or last renewed (whole seconds since the epoch,
  base64url-encoded, as :class:`itsdangerous.TimestampSigner` writes it). An id older than the
  database's ``session_id_max_age`` is refused; renewing an id re-signs the same name with a
  new time, so the session keeps its data.
- ``<signature>`` is an HMAC-SHA256 of the rest made by :class:`itsdangerous.Signer` under the
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
import stat
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Union

from itsdangerous import BadData, BadSignature, Signer
from itsdangerous.encoding import base64_decode, base64_encode, bytes_to_int, int_to_bytes

from .backends._process import fork_lock
from .exceptions import InvalidArgumentError, InvalidSessionIdError

__all__ = [
    "DEFAULT_SESSION_ID_MAX_AGE",
    "ENV_SECRET",
    "PREFIX",
    "SALT",
    "SecretKey",
    "SecretSource",
    "SessionIdSigner",
    "check_keys",
    "looks_signed",
    "read_or_create_secret_file",
    "shown",
]

#: The environment variable holding the secret key (several keys: comma-separated, newest first).
ENV_SECRET = "DASH_DATABASE_SECRET"
#: Every signed session id starts with this marker.
PREFIX = "dds1."
#: The itsdangerous salt: a key used for something else never yields a valid session id.
SALT = "dash_database.session-id"
#: Seconds a signed session id stays valid after it was issued or last renewed: one week.
DEFAULT_SESSION_ID_MAX_AGE = 7 * 24 * 3600.0
_TOKEN_BYTES = 32
_NAME_LENGTH = len(PREFIX) + 43
_MIN_KEY_BYTES = 16
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

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


def shown(name: str) -> str:
    """Return how messages and logs show the session kept under ``name``: a signed session
    by the marker and 4 characters of its token, which tell sessions apart but cannot name
    one (the rest of the token never leaves the store)."""
    return f"{name[: len(PREFIX) + 4]}..." if looks_signed(name) else name


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
    """Make, check and renew signed session ids under a list of keys (newest first).

    Args:
        keys: the secret keys, newest first.
        max_age: seconds an id stays valid after it was issued or renewed; ``None``: forever.
    """

    def __init__(self, keys: Sequence[bytes], max_age: float | None = None) -> None:
        # itsdangerous signs with the *last* key and accepts every key: reverse our order.
        self._signer = Signer(
            list(reversed(keys)),
            salt=SALT,
            key_derivation="hmac",
            digest_method=hashlib.sha256,
        )
        self.max_age = max_age
        #: The secret keys, newest first (other signers of the app derive theirs from them).
        self.keys = tuple(keys)

    def new_id(self, now: float | None = None) -> str:
        """Return a fresh signed session id issued at ``now`` (default: the current time)."""
        return self._sign(PREFIX + secrets.token_urlsafe(_TOKEN_BYTES), now)

    def renew(self, session_id: str, now: float | None = None) -> str:
        """Return ``session_id`` re-issued at ``now``: the same session, a new issue time.

        Raises:
            InvalidSessionIdError: ``session_id`` is not valid (see :meth:`storage_name`).
        """
        return self._sign(self.storage_name(session_id, now), now)

    def issued_at(self, session_id: str, now: float | None = None) -> float:
        """Return when ``session_id`` was issued or last renewed.

        Raises:
            InvalidSessionIdError: ``session_id`` is not valid (see :meth:`storage_name`).
        """
        return self._verify(session_id, _now(now))[1]

    def storage_name(self, session_id: str, now: float | None = None) -> str:
        """Return the name the store keeps the signed ``session_id`` under.

        Raises:
            InvalidSessionIdError: the signature is missing, forged or altered, or the id is
                older than ``max_age`` seconds at ``now`` (default: the current time).
        """
        return self._verify(session_id, _now(now))[0]

    def _sign(self, name: str, now: float | None) -> str:
        issued = base64_encode(int_to_bytes(int(_now(now)))).decode("ascii")
        return self._signer.sign(f"{name}.{issued}").decode("ascii")

    def _verify(self, session_id: str, now: float) -> tuple[str, float]:
        try:
            value = self._signer.unsign(session_id.encode("utf-8")).decode("utf-8")
            # Ids of 2.0 development versions had no issue time: they are refused like forged
            # ones, and a page load replaces them.
            name = value[:_NAME_LENGTH]
            dot, issued_text = value[_NAME_LENGTH : _NAME_LENGTH + 1], value[_NAME_LENGTH + 1 :]
            if dot != "." or not issued_text:
                raise BadSignature("no issue time")
            issued = float(bytes_to_int(base64_decode(issued_text)))
        except (BadData, ValueError):
            raise InvalidSessionIdError(
                "The signed session id was rejected: its signature is missing, forged or was "
                "made with a secret key this app no longer accepts. Nothing was read or "
                "written; issue a new id (db.new_session_id()) instead of reusing or editing "
                "one."
            ) from None
        if self.max_age is not None and now - issued > self.max_age:
            raise InvalidSessionIdError(
                f"The signed session id expired: it was issued {now - issued:.0f} seconds ago, "
                f"more than session_id_max_age={self.max_age:g}. Nothing was read or written; "
                "issue a new id (db.new_session_id()), or renew ids while they are in use."
            )
        return name, issued


def _now(now: float | None) -> float:
    return time.time() if now is None else now


class SecretSource:
    """Find the secret key when it is first needed, once per process.

    Order: the ``secret_key`` argument, then ``DASH_DATABASE_SECRET``, then a generated key
    kept in ``secret_file`` (created with mode 0600, read by every process that shares it), or
    kept in memory when ``secret_file`` is ``None`` (a store private to one process).
    """

    def __init__(
        self,
        secret_key: SecretKey | None,
        secret_file: str | None,
        max_age: float | None = DEFAULT_SESSION_ID_MAX_AGE,
        *,
        memory_key: bytes | None = None,
    ) -> None:
        if max_age is not None and (
            isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or not max_age > 0
        ):
            raise InvalidArgumentError(
                f"session_id_max_age must be a positive number of seconds or None, got {max_age!r}."
            )
        self.secret_key = secret_key
        self.secret_file = secret_file
        self.max_age = max_age
        self._signer: SessionIdSigner | None = None
        self._value_keys: list[bytes] | None = None
        self._lock = fork_lock()  # held while the keys are first read; see _process.py
        if secret_key is not None:
            self._value_keys = check_keys(secret_key, "secret_key")
            self._signer = SessionIdSigner(self._value_keys, max_age)
        #: The generated key that seals values of a store without a secret file (made before
        #: any fork, so workers forked from this process share it), or ``None``.
        self.memory_key = memory_key
        if memory_key is None and secret_file is None:
            self.memory_key = secrets.token_bytes(_TOKEN_BYTES)

    def signer(self) -> SessionIdSigner:
        """Return the signer, finding the key on the first call."""
        signer = self._signer
        if signer is None:
            with self._lock:
                if self._signer is None:
                    self._signer = SessionIdSigner(self._find_keys(), self.max_age)
                signer = self._signer
        return signer

    def value_keys(self) -> list[bytes]:
        """Return the keys that seal stored values (``_sealing.py``), newest first: the
        session-id keys, found the same way, without the warning about session ids.

        A generated key kept in ``secret_file`` seals values for every process sharing that
        file; a store in one process gets a key made when this source was.
        """
        keys = self._value_keys
        if keys is None:
            with self._lock:
                if self._value_keys is None:
                    self._value_keys = self._configured_keys() or [
                        self.memory_key
                        if self.memory_key is not None
                        else read_or_create_secret_file(str(self.secret_file))
                    ]
                keys = self._value_keys
        return keys

    def _configured_keys(self) -> list[bytes] | None:
        env = os.environ.get(ENV_SECRET)
        if env:
            return check_keys([k.strip() for k in env.split(",") if k.strip()], ENV_SECRET)
        return None

    def _find_keys(self) -> list[bytes]:
        configured = self._configured_keys()
        if configured:
            return configured
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
    writes the key and the others read it. The file is 0600 whatever the umask.

    Raises:
        InvalidArgumentError: the file cannot be created or read, another user owns it, group
            or others may read or write it, or it holds too short a key.
    """
    try:
        _create_secret_file(path)
        with open(path, "rb") as file:
            _check_secret_file(path, os.fstat(file.fileno()))
            data = file.read().strip()
    except OSError as exc:
        raise InvalidArgumentError(
            f"No secret key is configured and the generated one cannot be kept in {path} "
            f"({type(exc).__name__}: {exc.strerror or exc}). Set the environment variable "
            f"{ENV_SECRET} (or pass DashDatabase(secret_key=...)) to a long random string, "
            "the same for every process and host of the app."
        ) from exc
    if len(data) < _MIN_KEY_BYTES:
        raise InvalidArgumentError(
            f"The secret file {path} holds {len(data)} bytes, fewer than {_MIN_KEY_BYTES}; "
            f"delete it (a new one is generated) or set {ENV_SECRET}."
        )
    return data


def _create_secret_file(path: str) -> None:
    if os.path.lexists(path):
        return
    key = secrets.token_urlsafe(_TOKEN_BYTES).encode("ascii")
    tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            # The umask may have taken bits away (or, with an odd umask, left the owner
            # unable to read): set exactly 0600 before the key is written.
            os.fchmod(file.fileno(), 0o600)
            file.write(key)
            file.flush()
            os.fsync(file.fileno())
        # A hard link publishes the complete file under its name, or fails if it exists.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def _check_secret_file(path: str, info: os.stat_result) -> None:
    """Refuse a secret file that another user owns, or that group or others may use."""
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise InvalidArgumentError(
            f"The secret file {path} belongs to another user (uid {info.st_uid}), who could "
            f"read or replace the app's key; it was not used. Delete it (a new one is "
            f"generated), or make it yours with: chown {os.getuid()} {path}; chmod 600 {path}"
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise InvalidArgumentError(
            f"The secret file {path} has mode {stat.S_IMODE(info.st_mode):04o}: other users "
            f"may read or change the app's key, so it was not used. Fix it with: chmod 600 "
            f"{path} (and replace the key if others may have read it)."
        )
