"""The write of large values: sent beside the script in MULTI/EXEC, never through Lua.

Redis copies script arguments into Lua strings, at a cost far above a plain ``HSET``. So a
write of at least ``large_write_bytes`` runs, on one pooled connection: ``WATCH`` the session's
hash (and the index, under a session limit); ``WRITE`` in ``check`` mode (lengths stand for the
values: every check and error the write could meet); then ``MULTI``, ``WRITE`` in ``write``
mode (``EVAL``: a missing script would fail alone), ``HSET`` of the values, ``EXEC``. A change
of a watched key refuses the ``EXEC``: the steps run again after a short random pause.
"""

from __future__ import annotations

import random
import time
from typing import Any

from ...exceptions import BackendError

__all__ = ["write_large"]

# A write that meets a concurrent write this many times in a row gives up; the pause before
# each new attempt doubles from 1 ms up to this many seconds, jittered.
_ATTEMPTS = 40
_MAX_PAUSE = 0.05


def write_large(
    client: Any, script: tuple[str, str], watch: list[Any], args: list[Any], pairs: list[Any]
) -> Any:
    """Write ``pairs`` (key, value, ...) with ``script`` (``WRITE``'s SHA and text; ``args``:
    its key count, keys and arguments before the mode); return its reply."""
    from redis.exceptions import NoScriptError, WatchError

    keys, values = pairs[0::2], pairs[1::2]
    lengths = [item for key, value in zip(keys, values) for item in (key, b"%d" % len(value))]
    fields = [item for key, value in zip(keys, values) for item in (b"v:" + key, value)]
    sha, text = script
    pause = 0.001
    with client.pipeline(transaction=True) as pipe:
        for _ in range(_ATTEMPTS):
            try:
                pipe.watch(*watch)
                try:
                    verdict = pipe.execute_command("EVALSHA", sha, *args, b"check", *lengths)
                except NoScriptError:
                    client.script_load(text)
                    verdict = pipe.execute_command("EVALSHA", sha, *args, b"check", *lengths)
                if verdict != 1:
                    return verdict
                pipe.multi()
                pipe.execute_command("EVAL", text, *args, b"write", *lengths)
                pipe.execute_command("HSET", watch[0], *fields)
                return pipe.execute()[0]
            except WatchError:
                time.sleep(random.uniform(0, pause))
                pause = min(pause * 2, _MAX_PAUSE)
    raise BackendError(
        f"Could not write {len(keys)} large value(s): another writer changed the session at "
        f"each of {_ATTEMPTS} attempts. Nothing was written; try again."
    )
