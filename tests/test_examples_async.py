"""examples/async_app.py: async callbacks on Dash's FastAPI server, under ``uvicorn --workers 4``,
in headless Chromium and with many concurrent requests on SQLite, Redis and PostgreSQL.

uvicorn, not gunicorn: the app is an ASGI app (FastAPI), and uvicorn's own ``--workers`` runs
several processes of it, each with one event loop, which is what the async API is for.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dash
import pytest
import requests

from dash_database.dash import ERROR_MESSAGE_ID
from tests.support import require
from tests.ui_support import (
    SECRET,
    TIMEOUT,
    app_cookie,
    browser,
    callback_body,
    clean_env,
    free_port,
    remove_store,
    require_chromium,
    server_process,
    server_store_url,
)

#: Dash 4 added the FastAPI server (``Dash(backend="fastapi")``) the example runs on.
HAS_FASTAPI_BACKEND = hasattr(dash, "backends")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not HAS_FASTAPI_BACKEND,
        reason=f"the async example runs on Dash's FastAPI server, which Dash {dash.__version__} "
        "does not have (it came with Dash 4)",
    ),
]

WORKERS = 4
ADDS = 32
COOKIE = app_cookie("async_app")


def serve(workdir: Path, **env: str) -> Iterator[str]:
    """Serve ``examples.async_app:server`` with ``uvicorn --workers 4`` from ``workdir``."""
    require(
        all(importlib.util.find_spec(m) for m in ("fastapi", "uvicorn")),
        'the async example needs pip install "dash[fastapi]" uvicorn',
    )
    port = free_port()
    args = ["-m", "uvicorn", "--workers", str(WORKERS), "--port", str(port)]
    args.append("examples.async_app:server")
    url = f"http://127.0.0.1:{port}"
    with server_process(args, workdir, clean_env(DASH_DATABASE_SECRET=SECRET, **env), url):
        yield url


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(tmp_path_factory.mktemp("async_app"))


def add(url: str, client: requests.Session, symbol: str | None, clicks: int = 1) -> Any:
    body = callback_body(
        "..watchlist.children...lookups.children..",
        [("add", "n_clicks", clicks)],
        [("symbol", "value", symbol)],
    )
    reply = client.post(f"{url}/_dash-update-component", json=body, timeout=TIMEOUT)
    assert 200 == reply.status_code, reply.text
    response = reply.json()["response"]
    return response["watchlist"]["children"], response["lookups"]["children"]


def concurrent_adds_are_all_kept(url: str) -> None:
    """ADDS adds of one browser at once, spread over the workers: none is lost."""
    alice, bob = requests.Session(), requests.Session()
    alice.get(url, timeout=TIMEOUT).raise_for_status()
    bob.get(url, timeout=TIMEOUT).raise_for_status()
    symbols = [f"S{i:02d}" for i in range(ADDS)]

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda s: add(url, alice, s), symbols))
    watchlist, lookups = add(url, alice, None, clicks=0)

    assert symbols == sorted(re.findall(r"\*\*(S\d\d)\*\*", watchlist))
    assert f"Quotes looked up in this browser: {ADDS}" == lookups
    assert ("Your watchlist is empty.", "Quotes looked up in this browser: 0") == add(
        url, bob, None, clicks=0
    )


def test_async_app_in_two_browsers(sqlite_url: str, tmp_path: Path) -> None:
    require_chromium()
    with browser(tmp_path / "alice") as alice, browser(tmp_path / "bob") as bob:
        alice.server_url = sqlite_url
        bob.server_url = sqlite_url
        alice.wait_for_text_to_equal("#watchlist", "Your watchlist is empty.", timeout=TIMEOUT)
        alice.find_element("#symbol").send_keys("acme")
        alice.find_element("#add").click()
        alice.wait_for_contains_text("#watchlist", "ACME", timeout=TIMEOUT)
        alice.wait_for_text_to_equal("#lookups", "Quotes looked up in this browser: 1")

        bob.wait_for_text_to_equal("#watchlist", "Your watchlist is empty.", timeout=TIMEOUT)
        alice.driver.refresh()
        alice.wait_for_contains_text("#watchlist", "ACME", timeout=TIMEOUT)  # kept
        alice.find_element("#clear").click()
        alice.wait_for_text_to_equal("#watchlist", "Your watchlist is empty.", timeout=TIMEOUT)
        assert alice.get_logs() == []

        # An altered cookie: the page says what happened.
        cookie = alice.driver.get_cookie(COOKIE)
        body, _, signature = cookie["value"].rpartition(".")
        forged = f"{body}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
        alice.driver.add_cookie({**cookie, "value": forged})
        alice.find_element("#add").click()
        alice.wait_for_contains_text(
            f"#{ERROR_MESSAGE_ID}", "Your session has expired", timeout=TIMEOUT
        )


def test_async_app_concurrent_adds_on_sqlite(sqlite_url: str) -> None:
    concurrent_adds_are_all_kept(sqlite_url)


@pytest.mark.parametrize("store", ["redis", "postgres"])
def test_async_app_concurrent_adds_on_server_stores(
    store: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url, name = server_store_url(store, request.getfixturevalue(f"{store}_url"))
    try:
        for app_url in serve(tmp_path, DASH_DATABASE_URL=url):
            concurrent_adds_are_all_kept(app_url)
    finally:
        remove_store(store, url, name)
