"""Start real redis-server and PostgreSQL processes on free 127.0.0.1 ports, and stop them.

The one server launcher of the project: the pytest fixtures in ``tests/servers.py`` and the
benchmarks (``benchmarks/run.py``) both use it. It needs only the standard library and the
server binaries. Each server keeps its files in a new temporary directory (``dir``), its
output in ``dir/server.log``, and is stopped by its process id, never by name.

PostgreSQL refuses to run as root: when we are root, ``initdb`` and ``postgres`` run as the
``postgres`` OS user. Its binaries are found with ``pg_config --bindir``, then in
``/usr/lib/postgresql/<version>/bin`` (newest version first), then on ``PATH``.

We do not use pytest-postgresql / pytest-redis: they drive PostgreSQL through ``pg_ctl`` as the
current user (which fails as root), are pytest-only (the benchmarks need the same servers), and
a redis-server restarted with extra flags on one port is awkward through their factories.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from typing import Any

__all__ = [
    "PostgresServer",
    "RedisServer",
    "find_postgres_bindir",
    "free_port",
    "stop_process",
    "unique_name",
]

#: Seconds a server may take to accept connections, and to exit once told to.
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_name(stem: str) -> str:
    """Return ``stem`` followed by a random suffix, for a prefix or namespace of one user."""
    return f"{stem}_{uuid.uuid4().hex[:12]}"


def stop_process(
    process: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT
) -> None:
    """Send ``sig`` to ``process`` by its id unless it has ended; SIGKILL it after ``timeout``."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def find_postgres_bindir() -> str | None:
    """Return the directory holding ``initdb``, ``postgres`` and ``pg_isready``, or ``None``."""
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            found = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10
            )
            candidates.append(found.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass

    def version(bindir: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", bindir.split("/")[-2]))

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(os.path.dirname(on_path))
    for bindir in candidates:
        if all(
            os.access(os.path.join(bindir, exe), os.X_OK)
            for exe in ("initdb", "postgres", "pg_isready")
        ):
            return bindir
    return None


class _Server:
    """A server process in its own temporary directory, on one port across restarts."""

    stop_signal = signal.SIGTERM
    name = "server"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix=f"dash_database-{self.name}-")
        self.process: subprocess.Popen[bytes] | None = None
        self._run_as: dict[str, Any] = {}

    def _command(self, *extra: str) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def start(self, *extra: str) -> None:
        """Start the server (``extra``: more command-line arguments); return once it answers.

        Raises:
            RuntimeError: it exited, or did not answer within ``READY_TIMEOUT`` seconds.
        """
        log_path = os.path.join(self.dir, "server.log")
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                self._command(*extra), stdout=log, stderr=subprocess.STDOUT, **self._run_as
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._ready():
            status = self.process.poll()
            if status is not None or time.monotonic() > deadline:
                self.stop()
                with open(log_path, errors="replace") as log:
                    tail = "".join(log.readlines()[-5:]).strip()
                why = f"exited with status {status}" if status is not None else "did not answer"
                raise RuntimeError(
                    f"{self.name} on 127.0.0.1:{self.port} {why} at startup; its log ends: "
                    f"{tail or '(empty)'}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server and wait for it to exit; its files stay for a new ``start``."""
        if self.process is not None:
            stop_process(self.process, self.stop_signal)
            self.process = None

    def remove(self) -> None:
        """Stop the server and delete its files."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisServer(_Server):
    """A ``redis-server`` without persistence; stop and start it again on one port."""

    name = "redis-server"

    def __init__(self, binary: str | None = None, port: int | None = None) -> None:
        binary = binary or shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: apt-get install redis-server.")
        self.binary = binary
        super().__init__(port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self, *extra: str) -> list[str]:
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", self.dir,
            *extra,
        ]  # fmt: skip

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                # A server started with --requirepass answers NOAUTH, which also means it is up.
                return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False


class PostgresServer(_Server):
    """A throwaway PostgreSQL cluster (``initdb``, trust authentication, no fsync).

    ``settings`` are extra ``-c name=value`` server settings (for example
    ``{"max_connections": "200"}``).
    """

    name = "postgres"
    # SIGINT is PostgreSQL's "fast" shutdown: it disconnects clients and exits cleanly.
    stop_signal = signal.SIGINT

    def __init__(self, bindir: str | None = None, settings: dict[str, str] | None = None) -> None:
        bindir = bindir or find_postgres_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server not found: apt-get install postgresql.")
        self.bindir = bindir
        self.settings = {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            **(settings or {}),
        }
        super().__init__()
        if os.geteuid() == 0:
            import pwd

            owner = pwd.getpwnam("postgres")  # KeyError: no such user
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            # cwd: the postgres user may not be allowed into our working directory.
            self._run_as = {
                "user": "postgres",
                "group": owner.pw_gid,
                "extra_groups": [],
                "cwd": self.dir,
            }
        initdb = subprocess.run(
            [
                os.path.join(bindir, "initdb"),
                "-D", os.path.join(self.dir, "data"),
                "-U", "postgres",
                "-A", "trust",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            **self._run_as,
        )  # fmt: skip
        if initdb.returncode != 0:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise RuntimeError(f"initdb failed ({initdb.returncode}): {initdb.stderr.strip()}")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _command(self, *extra: str) -> list[str]:
        settings = [
            arg for name, value in self.settings.items() for arg in ("-c", f"{name}={value}")
        ]
        return [
            os.path.join(self.bindir, "postgres"),
            "-D", os.path.join(self.dir, "data"),
            "-p", str(self.port),
            "-h", "127.0.0.1",
            "-k", self.dir,
            *settings,
            *extra,
        ]  # fmt: skip

    def _ready(self) -> bool:
        # pg_isready exits 0 once the server accepts connections (not merely the port).
        isready = os.path.join(self.bindir, "pg_isready")
        check = [isready, "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        return subprocess.run(check, timeout=10).returncode == 0
