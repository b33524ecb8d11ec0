"""Large values kept as files beside the SQLite database.

SQLite copies a bound value twice on its way into a page (the binding, then the record), and
a WAL database writes every page twice (to the log, then at the checkpoint). For values of
tens of kilobytes and more, a plain file costs one write and one read, and no extra copy in
memory. The database row then holds a short reference instead of the bytes:
``"<file name>:<length>"``, stored as TEXT so it can never be mistaken for a value (values
are BLOBs).

File names are random and never reused, so a file is immutable once referenced: a reader
that found a reference either reads the whole file or finds it already removed by a writer
that replaced the row (then it reads the row again).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from collections.abc import Iterable

__all__ = ["BlobFiles", "DamagedBlobError"]


class DamagedBlobError(Exception):
    """A referenced file is shorter or longer than recorded (for example after a power loss)."""


class BlobFiles:
    """The folder of value files that belongs to one database file."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def write(self, data: bytes) -> str:
        """Write ``data`` to a new file; return its reference."""
        name = secrets.token_hex(16)
        path = os.path.join(self.directory, name)
        try:
            file = open(path, "xb")  # noqa: SIM115 - closed below, created only if missing
        except FileNotFoundError:
            os.makedirs(self.directory, exist_ok=True)
            file = open(path, "xb")  # noqa: SIM115
        with file:
            file.write(data)
        return f"{name}:{len(data)}"

    def read(self, reference: str) -> bytes:
        """Return the bytes of ``reference``.

        Raises:
            FileNotFoundError: a writer removed the file after replacing its row.
            DamagedBlobError: the file's length differs from the recorded one.
        """
        name, _, length = reference.partition(":")
        # One read of the known length (plus one byte to notice a longer file) into one buffer.
        fd = os.open(os.path.join(self.directory, name), os.O_RDONLY)
        try:
            data = os.read(fd, int(length) + 1)
            while len(data) < int(length) + 1:
                more = os.read(fd, int(length) + 1 - len(data))
                if not more:
                    break
                data += more
        finally:
            os.close(fd)
        if len(data) != int(length):
            raise DamagedBlobError(
                f"The value file {os.path.join(self.directory, name)!r} holds {len(data)} bytes "
                f"instead of {length}; it was damaged (for example by a power loss)."
            )
        return data

    def remove(self, references: Iterable[str]) -> None:
        """Remove the files of ``references``; files already gone are skipped."""
        for reference in references:
            name = reference.partition(":")[0]
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(self.directory, name))

    def sweep(self, referenced: set[str], older_than: float) -> int:
        """Remove files no reference names that are older than ``older_than`` seconds.

        Such files are left by a process that died between writing a file and committing its
        row, or by two processes replacing one key at once. The age guard spares files whose
        rows are being committed right now. Returns how many files were removed.
        """
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return 0
        names_in_use = {reference.partition(":")[0] for reference in referenced}
        cutoff = time.time() - older_than
        removed = 0
        for name in names:
            if name in names_in_use:
                continue
            path = os.path.join(self.directory, name)
            try:
                if os.stat(path).st_mtime < cutoff:
                    os.remove(path)
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def remove_all(self) -> None:
        """Remove the folder and every file in it."""
        shutil.rmtree(self.directory, ignore_errors=True)
