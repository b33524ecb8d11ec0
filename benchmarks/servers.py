"""Start redis-server and PostgreSQL on free 127.0.0.1 ports, and stop them by PID.

Each server keeps its files in a new temporary directory. PostgreSQL refuses to run as root,
so ``initdb`` and ``postgres`` run as the ``postgres`` OS user when the benchmark runs as root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any

PG_BIN = "/usr/lib/postgresql/15/bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[Any], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not accept connections on port {port} within {seconds} s")


def stop_process(proc: subprocess.Popen[Any], sig: int, timeout: float) -> None:
    """Send ``sig`` to ``proc`` by its PID unless it has ended; SIGKILL it after ``timeout``."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


class Server:
    """A server process this benchmark started; ``stop`` ends it by its PID."""

    def __init__(
        self, name: str, proc: subprocess.Popen[Any], port: int, directory: str, log: Any
    ) -> None:
        self.name, self.proc, self.port, self.directory, self.log = name, proc, port, directory, log

    def stop(self, sig: int = signal.SIGTERM) -> None:
        stop_process(self.proc, sig, timeout=20)
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def _descendants(pid: int) -> list[int]:
    """Return ``pid`` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # The command name may hold spaces: the fields after it start after ")".
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def pin(pids: list[int], cpus: set[int]) -> None:
    """Let every thread of the processes ``pids`` (and of their descendants) run only on
    ``cpus``. Processes that ended meanwhile are skipped."""
    for root in pids:
        for pid in _descendants(root):
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
            except OSError:
                continue
            for tid in tids:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(tid, cpus)


def start_redis() -> Server:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    directory = tempfile.mkdtemp(prefix="bench-redis-")
    port = free_port()
    log = open(os.path.join(directory, "redis.log"), "w")  # noqa: SIM115 - closed by stop()
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            directory,
            "--databases",
            "16",
            "--daemonize",
            "no",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server("redis", proc, port, directory, log)
    try:
        _wait_for_port(port, proc, 15, "redis-server")
    except Exception:
        server.stop()
        raise
    return server


def start_postgres() -> Server:
    initdb, postgres = os.path.join(PG_BIN, "initdb"), os.path.join(PG_BIN, "postgres")
    if not os.path.exists(postgres):
        raise RuntimeError(f"PostgreSQL binaries not found in {PG_BIN}")
    directory = tempfile.mkdtemp(prefix="bench-postgres-")
    data = os.path.join(directory, "data")
    user: str | None = None
    if os.geteuid() == 0:
        user = "postgres"
        pw = pwd.getpwnam(user)
        os.chown(directory, pw.pw_uid, pw.pw_gid)
    log = open(os.path.join(directory, "postgres.log"), "w")  # noqa: SIM115 - closed by stop()
    if user:
        os.chown(log.name, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
    subprocess.run(
        [initdb, "-D", data, "-U", "postgres", "-A", "trust", "--no-sync"],
        stdout=log,
        stderr=subprocess.STDOUT,
        check=True,
        user=user,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            postgres,
            "-D",
            data,
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            directory,
            "-c",
            "fsync=off",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=256MB",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        user=user,
    )
    server = Server("postgres", proc, port, directory, log)
    try:
        _wait_for_port(port, proc, 30, "postgres")
        # The port accepts before the server takes queries: wait for a real connection.
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres").close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    except Exception:
        server.stop()
        raise
    return server


def create_database(port: int, name: str) -> None:
    import psycopg

    with psycopg.connect(
        f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(port: int, name: str) -> None:
    import psycopg

    with psycopg.connect(
        f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flush_redis_db(port: int, db: int) -> None:
    # Only databases of the redis-server this benchmark started itself.
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, db=db)
    try:
        client.flushdb()
    finally:
        client.close()
