"""Large values kept as files in a folder beside the database (the backend's size-based path).

SQLite copies a bound value on its way into a page and a WAL database writes every page twice
(to the log, then at the checkpoint); a file costs one write and one read and no extra copy in
memory. The row then holds the file's name (TEXT, so it is never mistaken for a value, which
is a BLOB) and the value's length.

Safety rules, each because a file outside the database could be swapped or edited:

- Every name is 32 hex digits, checked before any open or unlink, and every call goes through
  the folder's descriptor with ``O_NOFOLLOW``: a reference edited to ``../x`` or a planted link
  never reaches a file outside the folder.
- A file starts with a header naming itself and the version of the write that made it, so a
  file copied over another, or a row edited to name another key's file, is refused.
- A file is written and ``fsync``-ed before the row that names it commits, and is created
  ``0600`` in a ``0700`` folder whatever the umask.
- Names are random and never reused, so a file is immutable once named: a reader that finds it
  missing checks whether a writer replaced the row meanwhile.
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
_MAGIC = b"dashdb1\n"
# magic, the file's own name (16 bytes), the write's version, the value's length
_HEADER = struct.Struct(f"!{len(_MAGIC)}s16sqQ")
_OPEN = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class ValueFiles:
    """The folder of value files of one database file."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _folder(self, create: bool) -> int:
        try:
            return os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | _OPEN)
        except FileNotFoundError:
            if not create:
                raise
        try:
            os.mkdir(self.directory, 0o700)
            os.chmod(self.directory, 0o700)  # the umask may have taken bits away
        except FileExistsError:
            pass
        return os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | _OPEN)

    def write(self, values: Iterable[tuple[bytes, int]]) -> list[str]:
        """Write each ``(data, version)`` to a new file, synced; return their names."""
        names: list[str] = []
        folder = self._folder(create=True)
        try:
            for data, version in values:
                name = secrets.token_hex(16)
                fd = os.open(
                    name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN, 0o600, dir_fd=folder
                )
                names.append(name)
                try:
                    os.fchmod(fd, 0o600)
                    header = _HEADER.pack(_MAGIC, bytes.fromhex(name), version, len(data))
                    view, total = memoryview(data), 0
                    total = os.writev(fd, [header, view])
                    while total < len(header) + len(data):
                        total += os.write(fd, view[total - len(header) :])
                    os.fsync(fd)
                finally:
                    os.close(fd)
            if names:
                os.fsync(folder)  # the names themselves, before a row refers to them
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
        path = os.path.join(self.directory, name)
        if not _NAME.match(name):
            raise BackendError(
                f"A value in the database refers to {name!r}, which is not a value file name. "
                "The database was edited by hand; delete the key or store it again."
            )
        try:
            folder = self._folder(create=False)
        except FileNotFoundError:
            return None
        try:
            fd = os.open(name, os.O_RDONLY | _OPEN, dir_fd=folder)
        except FileNotFoundError:
            return None
        except OSError as exc:  # ELOOP: a symbolic link was planted under that name
            raise _foreign(path, f"it cannot be opened safely ({exc})") from exc
        finally:
            os.close(folder)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _foreign(path, "it is not a regular file")
            header = os.read(fd, _HEADER.size)
            expected = _HEADER.pack(_MAGIC, bytes.fromhex(name), version, length)
            if header != expected:
                raise _foreign(path, "its header names another key, write or length")
            data = os.read(fd, length + 1)
            while len(data) < length + 1:
                more = os.read(fd, length + 1 - len(data))
                if not more:
                    break
                data += more
        finally:
            os.close(fd)
        if len(data) != length:
            raise _foreign(path, f"it holds {len(data)} bytes instead of {length}")
        return data

    def remove(self, names: Iterable[str]) -> None:
        """Remove the files ``names``; names that are not value file names are left alone."""
        names = [name for name in names if _NAME.match(name)]
        if not names:
            return
        try:
            folder = self._folder(create=False)
        except FileNotFoundError:
            return
        try:
            self._unlink(folder, names)
        finally:
            os.close(folder)

    def old_names(self, older_than: float) -> list[str]:
        """Return the names of files older than ``older_than`` seconds.

        A file that no row names is left by a process that died between writing it and
        committing, or between committing and removing a replaced file; younger files may
        belong to a write being committed right now.
        """
        try:
            folder = self._folder(create=False)
        except FileNotFoundError:
            return []
        try:
            cutoff = time.time() - older_than
            old = []
            for name in os.listdir(folder):
                try:
                    info = os.stat(name, dir_fd=folder, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if _NAME.match(name) and info.st_mtime < cutoff:
                    old.append(name)
            return old
        finally:
            os.close(folder)

    @staticmethod
    def _unlink(folder: int, names: Iterable[str]) -> None:
        for name in names:
            with suppress(FileNotFoundError):
                os.unlink(name, dir_fd=folder)

    def remove_all(self) -> None:
        """Remove every value file and the folder (for a temporary database)."""
        try:
            folder = self._folder(create=False)
        except FileNotFoundError:
            return
        try:
            self._unlink(folder, [n for n in os.listdir(folder) if _NAME.match(n)])
        finally:
            os.close(folder)
        with suppress(OSError):  # something else was put there: leave it
            os.rmdir(self.directory)


def _foreign(path: str, why: str) -> BackendError:
    return BackendError(
        f"The value file {path!r} does not belong to the key that refers to it: {why}. It was "
        "replaced, copied or damaged outside dash_database; delete the key or store it again."
    )
