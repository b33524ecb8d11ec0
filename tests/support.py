"""Helpers shared by the tests."""

from __future__ import annotations

import faulthandler
import os
import signal
import time
from typing import Any

import pytest

ON_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip the test when ``condition`` is false, or fail it on CI, where nothing may skip."""
    if condition:
        return
    if ON_CI:
        pytest.fail(f"{reason} (CI=true: a missing dependency is a failure, not a skip)")
    pytest.skip(reason)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


#: How long a test waits for a child process before killing it and failing: long enough for a
#: loaded CI machine, short enough that a hung child fails its test instead of the whole run.
CHILD_TIMEOUT = 120.0


def join_processes(processes: list[Any], timeout: float = CHILD_TIMEOUT) -> list[int | None]:
    """Wait for ``multiprocessing`` processes (all within ``timeout``); kill any still running
    and return the exit codes (``None``: it hung and was killed)."""
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    codes = [process.exitcode for process in processes]
    for process in processes:
        if process.exitcode is None:
            process.kill()
            process.join(10)
    return codes


def wait_child(pid: int, timeout: float = CHILD_TIMEOUT) -> int | None:
    """Wait for the child ``os.fork()`` made; return its exit code, or kill it and return
    ``None`` if it did not end within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def dump_stacks_if_hung(seconds: float = CHILD_TIMEOUT - 10) -> None:
    """In a child process: if it still runs after ``seconds``, print every thread's stack to
    stderr (the test's captured output), so a hang shows where it is before it is killed."""
    faulthandler.dump_traceback_later(seconds, exit=False)
