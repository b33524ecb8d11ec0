"""The write of large values: sent beside the script in MULTI/EXEC, never through Lua.

Redis copies script arguments into Lua strings, at a cost that grows with their size; a plain
``HSET`` does not. So a ``set_many`` of at least ``large_write_bytes`` runs, on one pooled
connection: ``WATCH`` the session's hash; ``SET_LENGTHS`` in ``check`` mode (lengths stand for
the values: the quota check and every error the write could meet, before anything is written);
then ``MULTI``, ``SET_LENGTHS`` in ``write`` mode (all that ``SET_MANY`` writes but the values),
``HSET`` of the values, ``EXEC``. A write of the session in between makes Redis refuse the
``EXEC``; the steps run again after a short random pause, a bounded number of times. The script
is sent whole inside ``MULTI`` (``EVAL``): a missing one would fail alone while the ``HSET``
ran. From Redis 7 on, ``EXEC`` is refused as a whole when the server is out of memory.
"""

from __future__ import annotations

import random
import time
from typing import Any

from ...exceptions import BackendError

__all__ = ["write_large"]

# A write that meets a concurrent write of the same session this many times in a row gives up;
# the pause before each new attempt doubles from 1 ms up to this many seconds, jittered.
_ATTEMPTS = 40
_MAX_PAUSE = 0.05


def write_large(
    client: Any, hash_key: bytes, head: list[bytes], pairs: list[bytes], script: Any
) -> Any:
    """Write ``pairs`` (key, value, ...) with ``script`` (``SET_LENGTHS``; ``head``: its
    arguments before the mode); return its reply (1, or the sizes of a refused write)."""
    from redis.exceptions import NoScriptError, WatchError

    keys, values = pairs[0::2], pairs[1::2]
    lengths = [item for key, value in zip(keys, values) for item in (key, b"%d" % len(value))]
    fields = [item for key, value in zip(keys, values) for item in (b"v:" + key, value)]
    pause = 0.001
    with client.pipeline(transaction=True) as pipe:
        for _ in range(_ATTEMPTS):
            try:
                pipe.watch(hash_key)
                check = (1, hash_key, *head, b"check", *lengths)
                try:
                    verdict = pipe.evalsha(script.sha, *check)
                except NoScriptError:
                    client.script_load(script.text)
                    verdict = pipe.evalsha(script.sha, *check)
                if verdict != 1:
                    return verdict
                pipe.multi()
                pipe.execute_command("EVAL", script.text, 1, hash_key, *head, b"write", *lengths)
                pipe.execute_command("HSET", hash_key, *fields)
                return pipe.execute()[0]
            except WatchError:
                time.sleep(random.uniform(0, pause))
                pause = min(pause * 2, _MAX_PAUSE)
    raise BackendError(
        f"Could not write {len(keys)} large value(s): another writer changed the session at "
        f"each of {_ATTEMPTS} attempts. Nothing was written; try again."
    )
