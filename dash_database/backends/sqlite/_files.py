"""Large values kept as files in a folder beside the database (the backend's size-based path).

SQLite copies a bound value on its way into a page, and a WAL database writes every page twice;
a file costs one write and one read and no extra copy in memory. The row then holds the file's
name (TEXT, never mistaken for a value, which is a BLOB) and the value's length. Because a file
outside the database can be swapped or edited: every name is 32 hex digits, checked before any
open or unlink, and every call goes through the folder's descriptor with ``O_NOFOLLOW`` (a name
edited to ``../x`` or a planted link never reaches a file outside the folder); a file starts
with a header naming itself and the version of the write that made it (a file copied over
another, or a row edited to name another key's file, is refused); a file is synced before the
row that names it commits, and is 0600 in a 0700 folder whatever the umask. Names are random
and never reused, so a reader that finds a file missing checks whether a writer replaced the
row meanwhile.
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

__all__ = ["READ_ATTEMPTS", "ValueFiles"]

#: Snapshots a read takes before it gives up while writers keep replacing the value files it
#: was about to read (each attempt needs another write in that short window).
READ_ATTEMPTS = 100

_NAME = re.compile(r"[0-9a-f]{32}\Z")
# magic, the file's own name (16 bytes), the write's version, the value's length
_HEADER = struct.Struct("!8s16sqQ")
_NOFOLLOW = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_sync = getattr(os, "fdatasync", os.fsync)


class ValueFiles:
    """The folder of value files of one database file."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _folder(self, create: bool = False) -> int:
        if create:
            with suppress(FileExistsError):
                os.mkdir(self.directory, 0o700)
                os.chmod(self.directory, 0o700)  # the umask may have taken bits away
        return os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW)

    def write(self, values: list[tuple[bytes, int]]) -> list[str]:
        """Write each ``(data, version)`` to a new synced file; return their names."""
        names: list[str] = []
        folder = self._folder(create=True)
        try:
            for data, version in values:
                names.append(secrets.token_hex(16))
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
                fd = os.open(names[-1], flags, 0o600, dir_fd=folder)
                try:
                    os.fchmod(fd, 0o600)
                    head = _HEADER.pack(b"dashdb1\n", bytes.fromhex(names[-1]), version, len(data))
                    done = os.writev(fd, [head, data])
                    while done < len(head) + len(data):  # a short write: write the rest
                        rest = memoryview(data)[max(0, done - len(head)) :]
                        done += os.writev(fd, [head[done:], rest])
                    _sync(fd)
                finally:
                    os.close(fd)
        except BaseException:
            self._unlink(folder, names)
            raise
        finally:
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
                # O_NONBLOCK: a FIFO planted in the folder cannot make the open wait.
                fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW, dir_fd=folder)
            finally:
                os.close(folder)
        except FileNotFoundError:
            return None
        except OSError as exc:  # ELOOP: a symbolic link was planted under that name
            raise _foreign(path, f"it cannot be opened safely ({exc})") from exc
        try:
            head = _HEADER.pack(b"dashdb1\n", bytes.fromhex(name), version, length)
            if not stat.S_ISREG(os.fstat(fd).st_mode) or os.read(fd, len(head)) != head:
                raise _foreign(path, "it is not the file this key's last write made")
            data = os.read(fd, length + 1)  # one byte more, to notice a longer file
            while len(data) < length + 1 and (more := os.read(fd, length + 1 - len(data))):
                data += more
        finally:
            os.close(fd)
        if len(data) != length:
            raise _foreign(path, f"it holds {len(data)} bytes instead of {length}")
        return data

    def remove(self, names: Iterable[str]) -> None:
        """Remove the files ``names``; names that are not value file names are left alone."""
        names = [name for name in names if _NAME.match(name)]
        if names:
            with suppress(FileNotFoundError):
                folder = self._folder()
                self._unlink(folder, names)
                os.close(folder)

    def old_names(self, older_than: float) -> list[str]:
        """Return the names of files older than ``older_than`` seconds: a file no row names
        was left by a process that died between writing it and committing (or between
        committing and removing a replaced file); a younger one may be committing now."""
        try:
            folder = self._folder()
        except FileNotFoundError:
            return []
        try:
            cutoff, old = time.time() - older_than, []
            for name in filter(_NAME.match, os.listdir(folder)):
                with suppress(FileNotFoundError):
                    if os.stat(name, dir_fd=folder, follow_symlinks=False).st_mtime < cutoff:
                        old.append(name)
            return old
        finally:
            os.close(folder)

    def remove_all(self) -> None:
        """Remove every value file and the folder (for a temporary database)."""
        with suppress(FileNotFoundError):
            folder = self._folder()
            self._unlink(folder, filter(_NAME.match, os.listdir(folder)))
            os.close(folder)
        with suppress(OSError):  # something else was put there: leave it
            os.rmdir(self.directory)

    def missing(self, name: str, key: str) -> BackendError:
        """The error of a value file that is missing while its row still names it."""
        return BackendError(
            f"The value file {os.path.join(self.directory, name)!r} of key {key!r} is missing: "
            "it was removed outside dash_database. Delete the key or store it again."
        )

    @staticmethod
    def replaced(database: str) -> BackendError:
        """The error of a read whose value files writers replaced before each attempt."""
        return BackendError(
            f"Could not read from the SQLite database {database!r}: other writers replaced the "
            f"value files of what was read at each of {READ_ATTEMPTS} attempts. Try again."
        )

    @staticmethod
    def _unlink(folder: int, names: Iterable[str]) -> None:
        for name in names:
            with suppress(FileNotFoundError):
                os.unlink(name, dir_fd=folder)


def _foreign(path: str, why: str) -> BackendError:
    return BackendError(
        f"The value file {path!r} does not belong to the key that refers to it: {why}. It was "
        "replaced, copied or damaged outside dash_database; delete the key or store it again."
    )
