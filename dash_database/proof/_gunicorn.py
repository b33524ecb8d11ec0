"""The proof app under ``gunicorn -w N``: start, find and kill workers, collect the log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO

import dash_database

__all__ = ["Gunicorn"]

#: Seconds gunicorn may take to answer after it starts.
START_TIMEOUT = 90.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gunicorn:
    """``gunicorn -w workers dash_database.proof._app:server`` on a free 127.0.0.1 port.

    Its output goes through a pipe into ``log_path``: a worker limited in file size (the
    full-disk fault) can still log.
    """

    def __init__(self, store_url: str, secret: str, workers: int, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log_path = workdir / "gunicorn.log"
        # The dash_database that runs this proof is the one the app imports.
        root = str(Path(dash_database.__file__).resolve().parent.parent)
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DASH_DATABASE_")}
        env.update(DASH_DATABASE_URL=store_url, DASH_DATABASE_SECRET=secret, PYTHONPATH=path)
        command = [
            sys.executable, "-m", "gunicorn",
            "--workers", str(workers),
            "--bind", f"127.0.0.1:{self.port}",
            "--timeout", "30",
            # Its workers do not exit by themselves once told to (whatever the store): the
            # master kills them after this many seconds, which the proof need not wait for.
            "--graceful-timeout", "1",
            "dash_database.proof._app:server",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert self.process.stdout is not None
        self._copier = threading.Thread(target=self._copy, args=(self.process.stdout,))
        self._copier.start()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _copy(self, pipe: IO[bytes]) -> None:
        with open(self.log_path, "ab") as log:
            for line in pipe:
                log.write(line)
                log.flush()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/_dash-dependencies", timeout=5):
                    pass
                if len(self.worker_pids()) == self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not start; its log: {self.log()[-2000:]}")

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's live worker processes (from ``/proc``)."""
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.process.pid and fields[0] != "Z":
                    children.append(int(entry.name))
        return sorted(children)

    def kill_worker(self) -> float:
        """SIGKILL one worker; return the seconds until the master has replaced it."""
        victim = self.worker_pids()[0]
        started = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        while time.monotonic() - started < START_TIMEOUT:
            pids = self.worker_pids()
            if victim not in pids and len(pids) == self.workers:
                return time.monotonic() - started
            time.sleep(0.05)
        raise RuntimeError("gunicorn did not replace the killed worker")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop gunicorn (by its pid) and wait for it."""
        if self.process.poll() is None:
            # SIGINT: gunicorn's quick shutdown; the load is over, nothing is left to finish.
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._copier.join(10)

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
