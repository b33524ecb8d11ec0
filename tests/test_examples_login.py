"""examples/login_app.py in headless Chromium: per-user notes behind Flask-Login.

The app runs as its docstring says (``python examples/login_app.py``, HOST and PORT from the
environment). Every browser is a fresh profile; notes carry a unique word so that tests
sharing the module's server never read each other's notes by accident.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from dash.testing.browser import Browser
from selenium.webdriver.common.keys import Keys

from dash_database import DashDatabase
from dash_database.dash import COOKIE_NAME
from tests.ui_support import (
    EXAMPLES,
    SECRET,
    TIMEOUT,
    browser,
    clean_env,
    free_port,
    require_chromium,
    server_process,
)

pytestmark = pytest.mark.slow

PASSWORDS = {"alice": "wonderland", "bob": "builder"}


@pytest.fixture(scope="module")
def login_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the app runs in: its store is ``dash_database.sqlite`` there."""
    return tmp_path_factory.mktemp("login_app")


@pytest.fixture(scope="module")
def login_url(login_workdir: Path) -> Iterator[str]:
    require_chromium()
    port = free_port()
    env = clean_env(
        HOST="127.0.0.1",
        PORT=str(port),
        DASH_DATABASE_SECRET=SECRET,
        FLASK_SECRET_KEY="flask-" + SECRET,
    )
    url = f"http://127.0.0.1:{port}"
    with server_process([str(EXAMPLES / "login_app.py")], login_workdir, env, url):
        yield url


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def open_app(download_path: Path, url: str) -> Iterator[Browser]:
    with browser(download_path) as chrome:
        chrome.server_url = url
        chrome.wait_for_element("#note", timeout=TIMEOUT)
        yield chrome


@pytest.fixture
def first(tmp_path: Path, login_url: str) -> Iterator[Browser]:
    yield from open_app(tmp_path / "first", login_url)


@pytest.fixture
def second(tmp_path: Path, login_url: str) -> Iterator[Browser]:
    yield from open_app(tmp_path / "second", login_url)


def type_into(chrome: Browser, selector: str, text: str) -> None:
    field = chrome.find_element(selector)
    field.send_keys(Keys.CONTROL, "a")  # type over what is there: clear() misses React's state
    field.send_keys(text)


def log_in(chrome: Browser, user: str, password: str | None = None) -> None:
    type_into(chrome, "#username", user)
    type_into(chrome, "#password", password or PASSWORDS[user])
    chrome.find_element("#login").click()
    if password is None:
        chrome.wait_for_text_to_equal("#user-name", user, timeout=TIMEOUT)


def add_note(chrome: Browser, note: str) -> None:
    type_into(chrome, "#note", note)
    chrome.find_element("#add").click()
    chrome.wait_for_contains_text("#notes", note, timeout=TIMEOUT)


def notes(chrome: Browser) -> str:
    chrome.wait_for_element("#notes ul, #notes p", timeout=TIMEOUT)
    text: str = chrome.find_element("#notes").text
    return text


def test_two_browsers_logged_in_as_the_same_user_see_the_same_notes(
    first: Browser, second: Browser
) -> None:
    one, two = unique("from the first browser"), unique("from the second browser")
    log_in(first, "alice")
    add_note(first, one)

    log_in(second, "alice")

    second.wait_for_contains_text("#notes", one, timeout=TIMEOUT)
    add_note(second, two)
    first.driver.refresh()
    first.wait_for_contains_text("#notes", two, timeout=TIMEOUT)
    assert one in notes(first)
    assert first.get_logs() == []


def test_different_users_never_see_each_other_s_notes(first: Browser, second: Browser) -> None:
    alices, bobs = unique("alice's secret"), unique("bob's secret")
    log_in(first, "alice")
    log_in(second, "bob")

    add_note(first, alices)
    add_note(second, bobs)
    first.driver.refresh()
    second.driver.refresh()

    first.wait_for_contains_text("#notes", alices, timeout=TIMEOUT)
    second.wait_for_contains_text("#notes", bobs, timeout=TIMEOUT)
    assert bobs not in notes(first)
    assert alices not in notes(second)


def test_notes_survive_closing_the_browser(tmp_path: Path, login_url: str, second: Browser) -> None:
    note = unique("written before closing")
    for closed in open_app(tmp_path / "closed", login_url):
        log_in(closed, "bob")
        add_note(closed, note)
    # That browser is gone with its cookies; a new one logs in.

    log_in(second, "bob")

    second.wait_for_contains_text("#notes", note, timeout=TIMEOUT)


def test_guest_notes_move_into_the_account_at_login(first: Browser, second: Browser) -> None:
    note = unique("a guest's note")
    add_note(first, note)

    log_in(first, "alice")

    first.wait_for_contains_text("#notes", note, timeout=TIMEOUT)
    log_in(second, "alice")
    second.wait_for_contains_text("#notes", note, timeout=TIMEOUT)


def browser_session_id(chrome: Browser) -> str:
    """Return the value of the app's per-browser session cookie (dash_database's)."""
    cookies = [c for c in chrome.driver.get_cookies() if c["name"].startswith(COOKIE_NAME)]
    assert len(cookies) == 1, cookies
    value: str = cookies[0]["value"]
    return value


def test_a_browser_session_id_from_before_the_login_names_nothing_after_it(
    first: Browser, login_workdir: Path
) -> None:
    # Session fixation: an attacker who planted the browser's id before the login must not
    # reach what the user keeps after it.
    add_note(first, unique("a guest's note"))
    before = browser_session_id(first)

    log_in(first, "alice")
    after = unique("after the login")
    add_note(first, after)

    assert browser_session_id(first) != before  # the login renewed it
    with DashDatabase(login_workdir / "dash_database.sqlite", secret_key=SECRET) as db:
        assert db.list_stored_user_keys(before) == []
        assert after in db.user_state("alice").values()  # the account's notes


def test_a_wrong_password_is_refused_with_a_message(first: Browser) -> None:
    log_in(first, "alice", password="not her password")

    first.wait_for_text_to_equal("#login-message", "Wrong user name or password.", timeout=TIMEOUT)
    assert first.find_elements("#user-name") == []


def test_a_forged_login_cookie_is_not_a_login(first: Browser, login_url: str) -> None:
    log_in(first, "alice")
    cookie = first.driver.get_cookie("session")
    assert cookie is not None and cookie["httpOnly"] is True
    body, _, signature = cookie["value"].rpartition(".")
    forged = f"{body}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"

    layout = requests.get(
        login_url + "/_dash-layout", cookies={"session": forged}, timeout=TIMEOUT
    ).text
    genuine = requests.get(
        login_url + "/_dash-layout", cookies={"session": cookie["value"]}, timeout=TIMEOUT
    ).text

    assert '"id":"user-name"' in genuine.replace(" ", "")
    assert '"id":"login"' in layout.replace(" ", "")
    assert "user-name" not in layout
