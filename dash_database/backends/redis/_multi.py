"""The write of large values: sent beside the script in MULTI/EXEC, never through Lua.

Redis copies every argument of a script into a Lua string before the script runs, and again
when the script passes it to a command, which costs time in proportion to the value's size; a
plain ``HSET`` does neither. So a ``set_many`` whose values add up to at least the backend's
``large_write_bytes`` runs, through one redis-py pipeline (one pooled connection):

1. ``WATCH`` the session's hash;
2. the ``SET_LENGTHS`` script in ``check`` mode: each value's length stands for the value; it
   checks the quota and meets every error the write itself could meet (a digest clash, a key
   of the wrong type) while nothing is written yet;
3. ``MULTI``, ``SET_LENGTHS`` in ``write`` mode (the entries, the session's figures, the
   index and the totals, exactly as ``SET_MANY`` writes them), ``HSET`` of the values, ``EXEC``.

Every write of a session changes its hash, so a write that slipped in between 1 and 3 makes
Redis refuse the ``EXEC`` as a whole; the three steps then run again after a short random
pause (so that writers competing for one session get through one at a time), a bounded number
of times. The script inside ``MULTI`` is sent whole (``EVAL``): a missing script would fail there
alone while the ``HSET`` after it ran. From Redis 7 on, an ``EXEC`` is refused as a whole when
the server is out of memory, so a refused write leaves nothing behind.
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
    """Write ``pairs`` (key, value, key, value, ...) to the session at ``hash_key``.

    ``head`` holds the arguments of ``SET_LENGTHS`` before its mode; ``script`` its ``text``
    and ``sha``. Returns what the script returns (1, or the sizes of a refused write).
    """
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
