"""Faults of the disk under a SQLite store: full, read-only, corrupted.

The full disk hits the app under load: the workers' ``RLIMIT_FSIZE`` drops to one byte, so
every write past it fails as on a full disk, then is restored. The read-only directory and
the corrupted files are checked on a store of their own, in a child process, since they
follow from the files and not from the load.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dash_database import DashDatabase, DashDatabaseError

__all__ = ["Check", "FullDisk", "corrupted_files", "read_only_directory"]

_SECRET = "proof-disk-secret-0123456789abcdef"
_BIG = "b" * 100_000  # over the default file_threshold: kept in a value file


@dataclass
class Check:
    """A fault on the files of a store: what the app saw, and whether the data survived."""

    name: str
    error: str
    intact: bool
    ok: bool


class FullDisk:
    """Limit every worker to files of one byte (a full disk), then lift the limit."""

    recovery = 0.0

    def __init__(self, worker_pids: Callable[[], list[int]], hold: float) -> None:
        self.worker_pids, self.hold = worker_pids, hold
        self._saved: dict[int, tuple[int, int]] = {}

    def inject(self) -> None:
        for pid in self.worker_pids():
            soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
            self._saved[pid] = (soft, hard)
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, hard))

    def clear(self) -> None:
        for pid, limits in self._saved.items():
            resource.prlimit(pid, resource.RLIMIT_FSIZE, limits)


def _seed(path: Path) -> None:
    with DashDatabase(path, secret_key=_SECRET) as db:
        db.store_user_value("u", "kept", "before")
        db.store_user_value("u", "big", _BIG)


def _intact(path: Path) -> bool:
    with DashDatabase(path, secret_key=_SECRET) as db:
        return (db.get_user_value("u", "kept"), db.get_user_value("u", "big")) == (
            "before",
            _BIG,
        ) and db.list_stored_user_keys("u") == ["big", "kept"]


_CHILD = """
import json, sys
from dash_database import DashDatabase, DashDatabaseError
try:
    with DashDatabase(sys.argv[1], secret_key=sys.argv[2]) as db:
        db.store_user_value("u", "new", "n" * 100_000)
        print(json.dumps("accepted"))
except DashDatabaseError as exc:
    print(json.dumps(f"{type(exc).__name__}: {exc}"))
except Exception as exc:
    print(json.dumps(f"not a DashDatabaseError: {type(exc).__name__}: {exc}"))
"""


def read_only_directory() -> Check:
    """Write to a store whose directory turned read-only (as root, without the capability
    that lets root ignore permissions)."""
    workdir = Path(tempfile.mkdtemp(prefix="dash_database-proof-ro-"))
    path = workdir / "proof.sqlite"
    command = [sys.executable, "-c", _CHILD, str(path), _SECRET]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            return Check("read-only directory", "not run: root needs setpriv", True, True)
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--", *command]
    try:
        _seed(path)
        directories = [workdir, *(p for p in workdir.iterdir() if p.is_dir())]
        for directory in directories:
            directory.chmod(0o555)
        root = str(Path(__file__).resolve().parent.parent.parent)
        child = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": root},
        )
        for directory in directories:
            directory.chmod(0o700)
        error = json.loads(child.stdout) if child.stdout.strip() else child.stderr.strip()
        intact = _intact(path)
        ok = intact and error != "accepted" and not error.startswith("not a DashDatabaseError")
        return Check("read-only directory", error, intact, ok)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _error_of(path: Path, key: str) -> str:
    try:
        with DashDatabase(path, secret_key=_SECRET) as db:
            db.get_user_value("u", key)
        return "accepted"
    except DashDatabaseError as exc:
        return f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        return f"not a DashDatabaseError: {type(exc).__name__}: {exc}"


def corrupted_files() -> list[Check]:
    """Read a store whose value file, then whose database header, was overwritten."""
    workdir = Path(tempfile.mkdtemp(prefix="dash_database-proof-corrupt-"))
    path = workdir / "proof.sqlite"
    try:
        _seed(path)
        (value_file,) = [p for p in Path(f"{path}-blobs").rglob("*") if p.is_file()]
        data = value_file.read_bytes()
        value_file.write_bytes(data[: len(data) // 2])  # a write cut short
        error = _error_of(path, "big")
        with DashDatabase(path, secret_key=_SECRET) as db:
            others = db.get_user_value("u", "kept") == "before"
        checks = [Check("corrupted value file", error, others, others and _clear(error))]
        damaged = bytearray(path.read_bytes())
        damaged[:100] = b"\xff" * 100
        path.write_bytes(bytes(damaged))
        error = _error_of(path, "kept")
        untouched = path.read_bytes() == bytes(damaged)
        checks.append(
            Check("corrupted database file", error, untouched, untouched and _clear(error))
        )
        return checks
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _clear(error: str) -> bool:
    return error != "accepted" and not error.startswith("not a DashDatabaseError")
