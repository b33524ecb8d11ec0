"""``examples/data_app.py`` with no server-side store: the baseline of the library's overhead.

The app's callbacks run unchanged, but ``current_session`` hands them a plain dict per browser
session, kept in this module: values stay Python objects, never serialized or written. Run it
with one gunicorn worker (``gunicorn -w 1 nostore_app:server``, with ``benchmarks/`` on
``PYTHONPATH``), since each worker would have its own dicts. The browser session id still
comes from the library's signed cookie, so both variants pay for that.

Every response says in the ``X-Sessions-In-Dict`` header how many sessions the dicts hold: the
benchmark checks it, so an app that stopped calling ``current_session`` shows up as errors
instead of silently measuring the store.
"""

from __future__ import annotations

from typing import Any

import examples.data_app as data_app

_VALUES: dict[str, dict[str, Any]] = {}
_library_session = data_app.current_session


def current_session(db: Any, **options: Any) -> dict[str, Any]:
    return _VALUES.setdefault(_library_session(db, **options).session_id, {})


data_app.current_session = current_session  # type: ignore[assignment]
server = data_app.server


@server.after_request
def count_sessions(response: Any) -> Any:
    response.headers["X-Sessions-In-Dict"] = str(len(_VALUES))
    return response
