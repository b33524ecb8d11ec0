"""Checking, renewing and replacing signed session ids, and the startup checks of a store."""

from __future__ import annotations

import logging
import os
import shlex
import sys
import warnings
from typing import Literal

from .._database import DashDatabase
from .._signing import SessionIdSigner, looks_signed
from ..exceptions import InvalidSessionIdError

__all__ = ["IdStatus", "fresh_or_renewed", "id_status", "logger", "preview", "warn_if_unshared"]

logger = logging.getLogger("dash_database.dash")

IdStatus = Literal["valid", "renew", "invalid"]


def _signer(db: DashDatabase) -> SessionIdSigner:
    return db._secret.signer()


def id_status(db: DashDatabase, session_id: object) -> IdStatus:
    """Return whether ``session_id`` is valid, valid but due for renewal (older than half the
    maximum age, so an id in use never expires), or not valid at all."""
    if not looks_signed(session_id):
        return "invalid"
    signer = _signer(db)
    try:
        issued = signer.issued_at(session_id, db._clock())  # type: ignore[arg-type]
    except InvalidSessionIdError:
        return "invalid"
    if signer.max_age is not None and db._clock() - issued > signer.max_age / 2:
        return "renew"
    return "valid"


def fresh_or_renewed(db: DashDatabase, session_id: object) -> str | None:
    """Return the id to hand out instead of ``session_id``: a renewed one, a fresh one (when
    ``session_id`` is not valid), or ``None`` when ``session_id`` is fine as it is."""
    status = id_status(db, session_id)
    if status == "valid":
        return None
    if status == "renew":
        return _signer(db).renew(session_id, db._clock())  # type: ignore[arg-type]
    if session_id is not None:
        # A changed secret key, an expired id or a forged one: the old data is unreachable.
        logger.info("dash_database: replaced a session id that failed verification")
    return db.new_session_id()


def preview(value: object) -> str:
    """Describe ``value`` for an error message without revealing a session id."""
    if isinstance(value, str):
        return f"str of {len(value)} characters starting {value[:8]!r}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# -- startup checks -------------------------------------------------------------------------


def _gunicorn_workers() -> int:
    """Return how many worker processes the gunicorn running this process starts (0: this
    process is not run by gunicorn)."""
    if "gunicorn" not in os.path.basename(sys.argv[0]) and "gunicorn" not in sys.modules:
        return 0
    args = shlex.split(os.environ.get("GUNICORN_CMD_ARGS", "")) + sys.argv[1:]
    workers = int(os.environ.get("WEB_CONCURRENCY", "1") or 1)
    for i, arg in enumerate(args):
        value = None
        if arg in ("-w", "--workers") and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--workers="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-w") and len(arg) > 2:
            value = arg[2:]
        if value is not None and value.isdigit():
            workers = int(value)
    return workers


def warn_if_unshared(db: DashDatabase) -> None:
    """Warn when several gunicorn workers would each keep their own private store."""
    workers = _gunicorn_workers()
    if workers > 1 and db.backend.secret_file is None:
        warnings.warn(
            f"dash_database: the session store {db.backend!r} lives inside one process, but "
            f"gunicorn runs {workers} workers: each would keep its own sessions and a request "
            "served by another worker finds nothing. Use a store every worker shares: a SQLite "
            "file (DashDatabase('app.sqlite')), redis:// or postgresql://.",
            UserWarning,
            stacklevel=3,
        )
