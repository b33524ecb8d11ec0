"""How many ``fork()`` calls separate this process from the one that imported the package.

A backend notes :data:`count` with the connections it keeps and compares on use: a change
means it runs in a child process, whose copies of the parent's connections it must not use.
Reading a module attribute costs less than ``os.getpid()``, a system call.
"""

from __future__ import annotations

import os

count = 0


def _count_fork() -> None:
    global count
    count += 1


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork()
    os.register_at_fork(after_in_child=_count_fork)
