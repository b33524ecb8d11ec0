"""Large values kept as files in a folder beside the database (the backend's size-based path).

SQLite copies a bound value on its way into a page; a file costs one write, one read and no
copy. The row holds the file's name (TEXT; a value is a BLOB). A file outside the database can
be swapped or edited, so: names are 32 hex digits, checked before any open or unlink; every
call goes through the folder's descriptor with ``O_NOFOLLOW`` (``../x`` or a planted link never
reaches outside); a file starts with a header naming itself and its write's version (a file
copied over another, or a row edited to name another key's file, is refused); it is synced
before the row naming it commits, and is 0600 in a 0700 folder whatever the umask. Names are
never reused, so a reader that finds a file missing checks whether the row changed meanwhile.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import struct
import time
from collections.abc import Iterable
from contextlib import suppress

from ...exceptions import BackendError

__all__ = ["ValueFiles"]

_NAME = re.compile(r"[0-9a-f]{32}\Z")
# magic, the file's own name (16 bytes), the write's version, the value's length
_HEADER = struct.Struct("!8s16sqQ")
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
_sync = getattr(os, "fdatasync", os.fsync)


class ValueFiles:
    """The folder of value files of one database file."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _folder(self) -> int:
        return os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW)

    def write(self, values: list[tuple[bytes, int]]) -> list[str]:
        """Write each ``(data, version)`` to a new synced file; return their names."""
        with suppress(FileExistsError):
            os.mkdir(self.directory, 0o700)
            os.chmod(self.directory, 0o700)  # the umask may have taken bits away
        names: list[str] = []
        folder = self._folder()
        try:
            for data, version in values:
                names.append(secrets.token_hex(16))
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
                with open(os.open(names[-1], flags, 0o600, dir_fd=folder), "wb") as file:
                    os.fchmod(file.fileno(), 0o600)
                    file.write(_header(names[-1], version, len(data)))
                    file.write(data)  # written from `data` itself, however large: no copy
                    file.flush()
                    _sync(file.fileno())
        except BaseException:
            os.close(folder)
            self.remove(names)
            raise
        os.close(folder)
        return names

    def read(self, name: str, version: int, length: int) -> bytes | None:
        """Return the value in file ``name``, or ``None`` if it is missing.

        Raises:
            BackendError: the name is not one this backend makes, or the file is not the one
                the row names (another key's file, damaged, a link or not a regular file).
        """
        if not _NAME.match(name):
            raise BackendError(
                f"A value in the database refers to {name!r}, which is not a value file name. "
                "The database was edited by hand; delete the key or store it again."
            )
        path = os.path.join(self.directory, name)
        try:
            folder = self._folder()
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW, dir_fd=folder)
            finally:
                os.close(folder)
        except FileNotFoundError:
            return None
        except OSError as exc:  # ELOOP: a symbolic link was planted under that name
            raise _foreign(path, f"it cannot be opened safely ({exc})") from exc
        with open(fd, "rb") as file:
            head = _header(name, version, length)
            if not stat.S_ISREG(os.fstat(fd).st_mode) or file.read(len(head)) != head:
                raise _foreign(path, "it is not the file this key's last write made")
            data = file.read(length + 1)  # one byte more, to notice a longer file
        if len(data) != length:
            raise _foreign(path, f"it holds {len(data)} bytes instead of {length}")
        return data

    def remove(self, names: Iterable[str] | None) -> None:
        """Remove the files ``names`` (``None``: all, and the folder); names that are not value
        file names are left alone."""
        with suppress(FileNotFoundError):
            folder = self._folder()
            try:
                for name in filter(_NAME.match, os.listdir(folder) if names is None else names):
                    with suppress(FileNotFoundError):
                        os.unlink(name, dir_fd=folder)
            finally:
                os.close(folder)
            if names is None:
                with suppress(OSError):  # something else was put there: leave it
                    os.rmdir(self.directory)

    def old_names(self, older_than: float) -> list[str]:
        """Return the names of files older than ``older_than`` seconds (a file no row names
        was left by a process that died before committing or before removing a replaced
        file; a younger one may be committing now)."""
        with suppress(FileNotFoundError):
            cutoff, names = time.time() - older_than, os.listdir(self.directory)
            return [n for n in filter(_NAME.match, names) if _mtime(self.directory, n) < cutoff]
        return []


def _header(name: str, version: int, length: int) -> bytes:
    return _HEADER.pack(b"dashdb1\n", bytes.fromhex(name), version, length)


def _mtime(directory: str, name: str) -> float:
    try:
        return os.stat(os.path.join(directory, name), follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return float("inf")  # removed meanwhile: nothing to sweep


def _foreign(path: str, why: str) -> BackendError:
    return BackendError(
        f"The value file {path!r} does not belong to the key that refers to it: {why}. It was "
        "replaced, copied or damaged outside dash_database; delete the key or store it again."
    )
