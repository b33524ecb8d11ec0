"""examples/serverside_app.py under ``gunicorn -w 4`` on SQLite, Redis and PostgreSQL, and in
headless Chromium: a 1 MB frame loaded once, read by two callbacks in any worker."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from dash_database.dash._values import TOKEN_PREFIX
from tests.test_examples_gunicorn import SESSION_EXPIRED
from tests.ui_support import (
    SECRET,
    TIMEOUT,
    Gunicorn,
    app_cookie,
    browser,
    callback_body,
    clean_env,
    gunicorn,
    remove_store,
    server_store_url,
)

pytestmark = pytest.mark.slow

COOKIE = app_cookie("serverside_app")
LOAD = callback_body("sales.data", [("load", "n_clicks", 1)])


def summarize(token: str) -> dict[str, object]:
    return callback_body("..status.children...summary.children..", [("sales", "data", token)])


def run_gunicorn(workdir: Path, env: dict[str, str]) -> Iterator[Gunicorn]:
    """Serve the example with ``gunicorn -w 4 --preload``: the app is imported once, before
    the workers fork, which keeps these tests' startup cheap."""
    with gunicorn("examples.serverside_app:server", workdir, env, preload=True) as server:
        yield server


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    workdir = tmp_path_factory.mktemp("serverside-sqlite")
    yield from run_gunicorn(workdir, clean_env(DASH_DATABASE_SECRET=SECRET))


@pytest.fixture(scope="module", params=["sqlite", "redis", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gunicorn]:
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_server")
        return
    url, name = server_store_url(request.param, request.getfixturevalue(f"{request.param}_url"))
    env = clean_env(DASH_DATABASE_SECRET=SECRET, DASH_DATABASE_URL=url)
    try:
        yield from run_gunicorn(tmp_path_factory.mktemp(f"serverside-{request.param}"), env)
    finally:
        remove_store(request.param, url, name)


def test_frame_loaded_through_one_worker_is_read_by_every_worker_and_no_other_browser(
    server: Gunicorn,
) -> None:
    owner, mallory = requests.Session(), requests.Session()
    owner.get(server.url, timeout=TIMEOUT)
    mallory.get(server.url, timeout=TIMEOUT)
    loaded = server.post(owner, LOAD)
    token = loaded.json()["response"]["sales"]["data"]

    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: server.post(owner, summarize(token)), range(16)))
    stolen = server.post(mallory, summarize(token))

    assert token.startswith(TOKEN_PREFIX)
    assert len(loaded.content) < 400  # the response that carried a 1 MB frame's token
    assert all("Load #1: 25,000 orders" in reply.text for reply in replies)
    assert len(server.worker_pids("/_dash-update-component")) > 1
    assert SESSION_EXPIRED in stolen.text
    assert "orders" not in stolen.text


def test_in_a_browser_both_readers_show_the_frame_and_a_reload_keeps_it(
    sqlite_server: Gunicorn, tmp_path: Path
) -> None:
    with browser(tmp_path) as chrome:
        chrome.server_url = sqlite_server.url
        chrome.wait_for_element("#load", timeout=TIMEOUT).click()
        chrome.wait_for_contains_text("#status", "Load #1: 25,000 orders", timeout=TIMEOUT)
        chrome.wait_for_contains_text("#summary-table", "North", timeout=TIMEOUT)
        chrome.wait_for_element("#chart .bars", timeout=TIMEOUT)
        chrome.driver.refresh()
        chrome.wait_for_contains_text("#status", "Load #1: 25,000 orders", timeout=TIMEOUT)
        token = chrome.driver.execute_script("return window.sessionStorage.getItem('sales')")
        assert TOKEN_PREFIX in token
        assert chrome.driver.get_cookie(COOKIE)["httpOnly"]
