"""The example apps under ``gunicorn -w 4``: every worker reads what any other one wrote."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from dash_database import DashDatabase
from dash_database.dash import SESSION_STORE_ID
from tests.ui_support import (
    DATA_APP_COOKIE,
    SECRET,
    TIMEOUT,
    WORKERS,
    Gunicorn,
    browser,
    callback_body,
    clean_env,
    generate,
    gunicorn,
    remove_store,
    save_value,
    server_store_url,
    shown_value,
)

pytestmark = pytest.mark.slow

#: What the examples' enable_error_messages shows for a rejected session id.
SESSION_EXPIRED = "Your session has expired"

REQUESTS = 48


def run_gunicorn(name: str, workdir: Path, env: dict[str, str]) -> Iterator[Gunicorn]:
    """Serve ``examples.<name>:server`` with ``gunicorn -w 4`` from ``workdir``."""
    with gunicorn(f"examples.{name}:server", workdir, env) as server:
        yield server


@pytest.fixture(scope="module")
def basic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """basic_app without any secret configured: the workers share a generated one."""
    yield from run_gunicorn("basic_app", tmp_path_factory.mktemp("basic"), clean_env())


@pytest.fixture(scope="module")
def data_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    env = clean_env(DASH_DATABASE_SECRET=SECRET)
    yield from run_gunicorn("data_app", tmp_path_factory.mktemp("data"), env)


@pytest.fixture(scope="module", params=["redis", "postgres"])
def data_server_on_a_server_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gunicorn]:
    """data_app with DASH_DATABASE_URL naming the tests' Redis or PostgreSQL server, under a
    prefix or table of its own, removed afterwards."""
    url, name = server_store_url(request.param, request.getfixturevalue(f"{request.param}_url"))
    env = clean_env(DASH_DATABASE_SECRET=SECRET, DASH_DATABASE_URL=url)
    try:
        for server in run_gunicorn("data_app", tmp_path_factory.mktemp(request.param), env):
            server.store_url = url
            yield server
    finally:
        remove_store(request.param, url, name)


def worker_processes(master: int) -> set[int]:
    """Return the pids of the live child processes of ``master`` (Linux /proc)."""
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                children.add(int(entry.name))
    return children


def tab_id_from_layout(server: Gunicorn, client: requests.Session) -> str:
    layout = client.get(f"{server.url}/_dash-layout", timeout=TIMEOUT).json()
    text = json.dumps(layout)
    start = text.index('"dds1.')
    return str(json.loads(text[start : text.index('"', start + 1) + 1]))


def save(server: Gunicorn, client: requests.Session, session_id: Any, value: str) -> Any:
    body = callback_body(
        "success_value_saved.children",
        [("ok_button", "n_clicks", 1)],
        [("input_div", "value", value), (SESSION_STORE_ID, "data", session_id)],
    )
    return server.post(client, body)


def show(server: Gunicorn, client: requests.Session, session_id: Any) -> Any:
    body = callback_body(
        "show_value_div.children",
        [("show_value_button", "n_clicks", 1)],
        [(SESSION_STORE_ID, "data", session_id)],
    )
    return server.post(client, body)


# -- basic_app --------------------------------------------------------------------------------


def test_gunicorn_runs_four_workers(basic_server: Gunicorn) -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("counting worker processes reads /proc (Linux)")
    assert len(worker_processes(basic_server.pid)) == WORKERS


def test_basic_app_value_written_through_one_worker_is_read_through_all(
    basic_server: Gunicorn,
) -> None:
    client = requests.Session()
    tab = tab_id_from_layout(basic_server, client)
    assert save(basic_server, client, tab, "across workers").status_code == 200

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: show(basic_server, requests.Session(), tab), range(48)))

    assert {r.status_code for r in replies} == {200}
    assert all("Your value is across workers" in r.text for r in replies)
    assert len(basic_server.worker_pids("/_dash-update-component")) > 1


def test_basic_app_generated_secret_is_shared_by_the_workers(basic_server: Gunicorn) -> None:
    secret = basic_server.workdir / "dash_database.sqlite.secret"
    client = requests.Session()
    tabs = [tab_id_from_layout(basic_server, client) for _ in range(REQUESTS // 4)]

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda tab: show(basic_server, requests.Session(), tab), tabs))

    assert {r.status_code for r in replies} == {200}
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert "DASH_DATABASE_SECRET" in (basic_server.workdir / "server.log").read_text()


def test_basic_app_tabs_are_isolated_and_tampered_ids_rejected(basic_server: Gunicorn) -> None:
    client = requests.Session()
    alice, bob = tab_id_from_layout(basic_server, client), tab_id_from_layout(basic_server, client)
    save(basic_server, client, alice, "alice")
    body, _, signature = alice.rpartition(".")
    forged = [body + "." + ("B" if signature[0] == "A" else "A") + signature[1:], body, "plain"]

    assert "No value saved" in show(basic_server, client, bob).text
    for bad in forged:
        assert SESSION_EXPIRED in save(basic_server, client, bad, "overwritten").text
    assert "Your value is alice" in show(basic_server, client, alice).text


def test_basic_app_in_a_browser(basic_server: Gunicorn, tmp_path: Path) -> None:
    with browser(tmp_path) as chrome:
        chrome.server_url = basic_server.url
        save_value(chrome, "via gunicorn")
        shown_value(chrome, "Your value is via gunicorn")
        chrome.driver.refresh()
        chrome.wait_for_element("#ok_button", timeout=TIMEOUT)
        shown_value(chrome, "Your value is via gunicorn")


# -- data_app ---------------------------------------------------------------------------------


GENERATE = callback_body(
    "..status.children...column.options...column.value..",
    [("generate", "n_clicks", 1), ("upload", "contents", None)],
    [("row-count", "value", 321), ("upload", "filename", None)],
)
CHART = callback_body(
    "..chart.figure...sizes.children..", [("column", "value", "price"), ("bins", "value", 10)]
)
SUMMARY = callback_body("summary.children", [("column", "value", "price")])


def test_data_app_frame_stored_through_one_worker_is_charted_by_all(data_server: Gunicorn) -> None:
    check_frame_stored_through_one_worker_is_charted_by_all(data_server)


def test_data_app_on_redis_and_postgres_serves_every_worker(
    data_server_on_a_server_backend: Gunicorn,
) -> None:
    server = data_server_on_a_server_backend
    cookie = check_frame_stored_through_one_worker_is_charted_by_all(server)

    assert server.store_url is not None
    with DashDatabase.from_url(server.store_url, secret_key=SECRET) as db:
        assert db.list_stored_user_keys(cookie) != []  # the session is in that server


def check_frame_stored_through_one_worker_is_charted_by_all(data_server: Gunicorn) -> str:
    """Store a frame through one request, chart and summarize it in 48 from other browsers
    holding the same cookie; return the cookie."""
    owner = requests.Session()
    owner.get(data_server.url, timeout=TIMEOUT)
    assert "321 rows" in data_server.post(owner, GENERATE).text
    cookie = owner.cookies[DATA_APP_COOKIE]

    summary = data_server.post(owner, SUMMARY).json()["response"]["summary"]["children"]

    def chart(number: int) -> requests.Response:
        client = requests.Session()
        client.cookies.set(DATA_APP_COOKIE, cookie)
        return data_server.post(client, SUMMARY if number % 4 == 0 else CHART)

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(chart, range(REQUESTS)))

    assert all("Rows: 321." in r.text for i, r in enumerate(replies) if i % 4)
    # The memoized summary: computed once, then read from the session by every worker.
    assert "Summary computed once for this table" in summary
    assert {summary} == {r.json()["response"]["summary"]["children"] for r in replies[::4]}
    assert len(data_server.worker_pids("/_dash-update-component")) > 1
    return str(cookie)


def test_data_app_browsers_are_isolated_and_tampered_cookies_rejected(
    data_server: Gunicorn,
) -> None:
    alice, mallory = requests.Session(), requests.Session()
    alice.get(data_server.url, timeout=TIMEOUT)
    mallory.get(data_server.url, timeout=TIMEOUT)
    data_server.post(alice, GENERATE)
    good = alice.cookies[DATA_APP_COOKIE]
    forged = requests.Session()
    body, _, signature = good.rpartition(".")
    # Alter the first signature character: the last one of a base64url HMAC carries two unused
    # bits, so some edits there decode to the same signature and are rightly accepted.
    flipped = f"{body}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    forged.cookies.set(DATA_APP_COOKIE, flipped)

    assert data_server.post(mallory, CHART).json()["response"]["sizes"]["children"] == ""
    assert SESSION_EXPIRED in data_server.post(forged, CHART).text
    assert "Rows: 321." in data_server.post(alice, CHART).text


def test_data_app_in_a_browser(data_server: Gunicorn, tmp_path: Path) -> None:
    with browser(tmp_path) as chrome:
        chrome.server_url = data_server.url
        generate(chrome, 4321)
        for _ in range(3):
            chrome.driver.refresh()
            chrome.wait_for_contains_text("#sizes", "Rows: 4321.", timeout=TIMEOUT)


# -- login_app --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def login_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    env = clean_env(DASH_DATABASE_SECRET=SECRET, FLASK_SECRET_KEY="flask-" + SECRET)
    yield from run_gunicorn("login_app", tmp_path_factory.mktemp("login"), env)


def log_in(server: Gunicorn, client: requests.Session, user: str, password: str) -> Any:
    client.get(server.url, timeout=TIMEOUT)
    body = callback_body(
        "..login-message.children...url.href..",
        [("login", "n_clicks", 1), ("password", "n_submit", None)],
        [("username", "value", user), ("password", "value", password)],
    )
    return server.post(client, body)


def add_note(server: Gunicorn, client: requests.Session, note: str) -> Any:
    body = callback_body(
        "..notes.children...note.value..",
        [("add", "n_clicks", 1), ("note", "n_submit", None)],
        [("note", "value", note)],
    )
    return server.post(client, body)


def test_login_app_login_and_notes_are_shared_by_every_worker(login_server: Gunicorn) -> None:
    alice, bob = requests.Session(), requests.Session()
    assert log_in(login_server, alice, "alice", "wonderland").json()["response"]["url"] == {
        "href": "/"
    }
    log_in(login_server, bob, "bob", "builder")
    assert "across workers" in add_note(login_server, alice, "across workers").text

    def layout(client: requests.Session) -> str:
        return client.get(f"{login_server.url}/_dash-layout", timeout=TIMEOUT).text

    with ThreadPoolExecutor(8) as pool:
        alice_pages = list(pool.map(lambda _: layout(alice), range(REQUESTS // 2)))
        alice_notes = list(pool.map(lambda _: add_note(login_server, alice, ""), range(8)))
        bob_notes = list(pool.map(lambda _: add_note(login_server, bob, ""), range(8)))

    assert all('"user-name"' in page and "alice" in page for page in alice_pages)
    assert all("across workers" in reply.text for reply in alice_notes)
    assert not any("across workers" in reply.text for reply in bob_notes)
    assert len(login_server.worker_pids("/_dash-update-component")) > 1


def test_login_app_refuses_a_wrong_password(login_server: Gunicorn) -> None:
    client = requests.Session()

    reply = log_in(login_server, client, "alice", "guess")

    assert "Wrong user name or password." in reply.text
    assert '"user-name"' not in client.get(f"{login_server.url}/_dash-layout", timeout=10).text
