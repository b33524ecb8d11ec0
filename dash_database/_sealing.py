"""Sealed values: the envelope every stored value travels in.

The core seals each serialized value before it goes to the backend, and opens (verifies) it
before anything deserializes it. A value is bound to the name of its session and to its key,
so bytes altered, truncated, or moved to another key or session in the store fail the check
and are never deserialized: reading them raises :class:`~dash_database.IntegrityError`.

Keys. Every secret key of the app (``secret_key`` or ``DASH_DATABASE_SECRET``, newest first,
else the generated one) yields sub-keys used for nothing else, so a value MAC can never be
taken for a session-id signature: a MAC key, HMAC-SHA256(secret, ``MAC_LABEL``); an AES-256
key, HKDF-SHA256(secret, info=``ENCRYPTION_LABEL``); and a 4-byte key id, the start of
HMAC-SHA256(secret, ``KEY_ID_LABEL``), which says which secret sealed a value without
revealing it. Values are sealed with the newest key and opened with whichever listed key has
the envelope's key id.

Envelope, format 1 (MAC, the default)::

    0x01 | key id (4) | HMAC-SHA256 tag (32) | serialized value

The tag covers ``0x01 | key id | bound | serialized value``, where ``bound`` is the session
name and the key, each as UTF-8 preceded by its length (8 bytes, big-endian), so no two
(session, key) pairs give the same input.

Envelope, format 2 (AES-GCM, ``encrypt=True``)::

    0x02 | key id (4) | nonce (12, random) | ciphertext | GCM tag (16)

with ``0x02 | key id | nonce | bound`` as the associated data. Either format is read whatever
``encrypt`` says: both are authenticated with keys only the secret gives, so accepting both
lets a store switch encryption on or off without a migration, and a writer without the secret
can forge neither.

A session rename (:meth:`~dash_database.DashDatabase.rotate_session`) moves the values, then
:func:`reseal_session` seals them again for the new name before the new id leaves the call.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import secrets
import struct
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable

from .backends._process import fork_lock
from .exceptions import IntegrityError, InvalidArgumentError

if TYPE_CHECKING:
    from .backends import Backend

__all__ = [
    "ENCRYPTION_LABEL",
    "FORMAT_ENCRYPTED",
    "FORMAT_MAC",
    "KEY_ID_LABEL",
    "MAC_LABEL",
    "MAC_OVERHEAD",
    "Sealer",
    "memory_key",
    "reseal_session",
]

FORMAT_MAC = 0x01
FORMAT_ENCRYPTED = 0x02
MAC_LABEL = b"dash_database.value-mac"
ENCRYPTION_LABEL = b"dash_database.value-encryption"
KEY_ID_LABEL = b"dash_database.value-key-id"

_KEY_ID_BYTES = 4
_HEADER = 1 + _KEY_ID_BYTES
_TAG_BYTES = 32
_NONCE_BYTES = 12
_GCM_TAG_BYTES = 16
#: How many bytes the MAC envelope adds to a serialized value.
MAC_OVERHEAD = _HEADER + _TAG_BYTES
_LENGTH = struct.Struct(">Q")
_SHA256_BLOCK = 64
# The key that seals values of each store living in this process, when no secret is
# configured: every DashDatabase on one backend object shares it.
_MEMORY_KEYS: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()
_MEMORY_KEYS_LOCK = fork_lock()  # a fork's child never inherits it held
_EXTRA = 'pip install cryptography (from a clone: pip install "./dash_database[encryption]")'


def memory_key(backend: object, key: bytes | None = None) -> bytes:
    """Return the generated key that seals the values of ``backend`` (a store without a
    secret file), made on the first call for that backend object, or ``key`` when given
    first (a copy unpickled from another process brings its key)."""
    with _MEMORY_KEYS_LOCK:
        try:
            return _MEMORY_KEYS.setdefault(backend, key or secrets.token_bytes(32))
        except TypeError:  # a backend that cannot be weakly referenced: this instance only
            return key or secrets.token_bytes(32)


def _bound(session: str, key: str) -> bytes:
    s, k = session.encode("utf-8"), key.encode("utf-8")
    return b"".join((_LENGTH.pack(len(s)), s, _LENGTH.pack(len(k)), k))


def _aesgcm_class() -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise InvalidArgumentError(
            "Encrypted values need the cryptography package, which is not installed. Install "
            f"it with: {_EXTRA}"
        ) from None
    return AESGCM


class _Key:
    """The sub-keys one secret yields."""

    def __init__(self, secret: bytes) -> None:
        self.key_id = hmac.digest(secret, KEY_ID_LABEL, "sha256")[:_KEY_ID_BYTES]
        self.mac_header = bytes((FORMAT_MAC,)) + self.key_id
        # SHA-256 rather than keyed BLAKE2b: large values dominate the cost, and OpenSSL's
        # SHA-256 uses the SHA instructions of current x86 and ARM servers, which BLAKE2b
        # in hashlib does not. HMAC (RFC 2104) is built here from two SHA-256 states keyed
        # once, because copying them per value costs a fraction of copying an OpenSSL HMAC
        # context, which dominated the MAC of a small value; the tags are the same (tested).
        mac_key = hmac.digest(secret, MAC_LABEL, "sha256").ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in mac_key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in mac_key))
        self._secret = secret
        self._aead: Any = None

    def tag(self, bound: bytes, data: bytes | memoryview) -> bytes:
        """Return the MAC of a format-1 envelope holding ``data`` for ``bound``: the
        HMAC-SHA256 of ``mac_header | bound | data``."""
        inner = self._inner.copy()
        inner.update(self.mac_header)
        inner.update(bound)
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def aead(self) -> Any:
        if self._aead is None:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF

            aesgcm = _aesgcm_class()
            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=ENCRYPTION_LABEL)
            self._aead = aesgcm(hkdf.derive(self._secret))
        return self._aead


class Sealer:
    """Seal and open values with the app's secret keys, found on first use.

    Args:
        find_keys: returns the secret keys, newest first (called once).
        encrypt: seal with AES-GCM (format 2) instead of a MAC (format 1).

    Raises:
        InvalidArgumentError: ``encrypt`` is true and ``cryptography`` is not installed.
    """

    def __init__(self, find_keys: Callable[[], Sequence[bytes]], encrypt: bool = False) -> None:
        if not isinstance(encrypt, bool):
            raise InvalidArgumentError(f"encrypt must be True or False, got {encrypt!r}.")
        if encrypt:
            _aesgcm_class()
        self.encrypt = encrypt
        self._find_keys = find_keys
        self._keys: tuple[_Key, dict[bytes, list[_Key]]] | None = None
        self._lock = fork_lock()  # held while the keys are first read; see _process.py

    def _all(self) -> tuple[_Key, dict[bytes, list[_Key]]]:
        """Return the newest key, and every key by key id (ids are not secret)."""
        keys = self._keys
        if keys is None:
            with self._lock:
                if self._keys is None:
                    found = [_Key(secret) for secret in self._find_keys()]
                    by_id: dict[bytes, list[_Key]] = {}
                    for key in found:
                        by_id.setdefault(key.key_id, []).append(key)
                    self._keys = (found[0], by_id)
                keys = self._keys
        return keys

    def seal(self, session: str, key: str, data: bytes | memoryview) -> bytes:
        """Return ``data`` sealed for ``(session, key)`` with the newest secret key.

        The result is a new object: while it is built, ``data`` is held twice (see
        :meth:`buffer` for a way to seal a large value without that copy).
        """
        newest = self._all()[0]
        bound = _bound(session, key)
        if self.encrypt:
            header = bytes((FORMAT_ENCRYPTED,)) + newest.key_id + os.urandom(_NONCE_BYTES)
            nonce = header[_HEADER:]
            return header + bytes(newest.aead().encrypt(nonce, data, header + bound))
        return b"".join((newest.mac_header, newest.tag(bound, data), data))

    def buffer(self) -> io.BytesIO:
        """Return a binary file to write one serialized value into, for :meth:`seal_buffer`.

        With MAC sealing it begins with room for the envelope, so that the value is never
        copied: :meth:`seal_buffer` writes the tag into that room and returns the file's own
        bytes. With ``encrypt=True`` the cipher returns new bytes, so the value is held twice
        while it is sealed, whichever way it is given.
        """
        buffer = io.BytesIO()
        if not self.encrypt:
            buffer.write(bytes(MAC_OVERHEAD))
        return buffer

    def seal_buffer(self, session: str, key: str, buffer: io.BytesIO) -> bytes:
        """Return the value written into ``buffer`` (from :meth:`buffer`) sealed for
        ``(session, key)``, as :meth:`seal` would; ``buffer`` must not be used again."""
        if self.encrypt:
            return self.seal(session, key, buffer.getvalue())
        newest = self._all()[0]
        with buffer.getbuffer() as view:
            view[:_HEADER] = newest.mac_header
            view[_HEADER:MAC_OVERHEAD] = newest.tag(_bound(session, key), view[MAC_OVERHEAD:])
        # No view of the buffer is left, so getvalue() hands over the BytesIO's own bytes
        # object (trimmed in place) instead of copying the value.
        return buffer.getvalue()

    def open(self, session: str, key: str, blob: bytes) -> bytes:
        """Return the serialized value sealed in ``blob`` for ``(session, key)``.

        Raises:
            IntegrityError: ``blob`` is not a value sealed for this session and key with one
                of the app's keys; nothing was deserialized.
        """
        return bytes(self.open_view(session, key, blob))

    def open_view(self, session: str, key: str, blob: bytes) -> bytes | memoryview:
        """Return the serialized value sealed in ``blob``, as :meth:`open` does, but as a view
        into ``blob`` where it can (a MAC-sealed value), so a large value is not copied.

        Raises:
            IntegrityError: as :meth:`open`.
        """
        if len(blob) < _HEADER or blob[0] not in (FORMAT_MAC, FORMAT_ENCRYPTED):
            raise _refused(
                session,
                key,
                "it is not a sealed value (it was written into the store directly, or by a "
                "development version of dash_database without value MACs)",
            )
        candidates = self._all()[1].get(blob[1:_HEADER])
        if not candidates:
            raise _refused(
                session,
                key,
                "it was sealed with a secret key this app does not have. If the app's key "
                "changed, list the old key after the new one (DASH_DATABASE_SECRET='new,old'); "
                "give every process and host the same keys",
            )
        bound = _bound(session, key)
        if blob[0] == FORMAT_MAC:
            view = memoryview(blob)
            data = view[_HEADER + _TAG_BYTES :]
            if len(blob) >= _HEADER + _TAG_BYTES:
                tag = view[_HEADER : _HEADER + _TAG_BYTES]
                for candidate in candidates:
                    if hmac.compare_digest(candidate.tag(bound, data), tag):
                        return data
        elif len(blob) >= _HEADER + _NONCE_BYTES + _GCM_TAG_BYTES:
            from cryptography.exceptions import InvalidTag

            header = blob[: _HEADER + _NONCE_BYTES]
            for candidate in candidates:
                try:
                    return bytes(
                        candidate.aead().decrypt(
                            header[_HEADER:], blob[len(header) :], header + bound
                        )
                    )
                except InvalidTag:
                    continue
        raise _refused(
            session,
            key,
            "its MAC does not match: it was altered or truncated in the store, or moved there "
            "from another key or session",
        )


def _short(text: str, keep: int = 12) -> str:
    """Return the start of an id for a message: enough to find it, never a whole session id."""
    return repr(text[:keep] + "…" if len(text) > keep else text)


def _refused(session: str, key: str, reason: str) -> IntegrityError:
    return IntegrityError(
        f"The stored value of key {_short(key, 40)} in session {_short(session)} failed its "
        f"integrity check: {reason}. It was not deserialized. Delete the key (or restore it "
        "from a backup) and look into who can write the store."
    )


def reseal_session(
    backend: Backend,
    sealer: Sealer,
    old: str,
    new: str,
    deadline: float | None,
    now: float,
    version: int,
) -> int:
    """Seal again, for session ``new``, the values a rename moved there from ``old``; return
    how many were resealed.

    Call it while only the caller knows ``new`` (nobody else can read or write it yet). A value
    that does not verify for ``old`` is left as it is: it would have failed its check there too.
    """
    items: dict[str, bytes] = {}
    for key in backend.keys(new, now):
        blob = backend.get(new, key, now)
        if blob is None:
            continue
        try:
            data = sealer.open(old, key, blob)
        except IntegrityError:
            continue
        items[key] = sealer.seal(new, key, data)
    if items:
        backend.set_many(new, items, deadline, now, version=version)
    return len(items)
