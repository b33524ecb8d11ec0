"""The example apps in headless Chromium (dash.testing's Browser), each started the way its
docstring says: ``python examples/<name>.py`` with HOST and PORT from the environment.

The servers run in their own processes (not alice's threaded runner, which stops a server
by raising SystemExit in every thread it started, including the database's own threads).
Every test opens fresh browsers: new cookies and storage, so a new user.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from dash.testing.browser import Browser
from selenium.webdriver.common.keys import Keys

from dash_database.dash import SESSION_STORE_ID
from tests.ui_support import (
    DATA_APP_COOKIE,
    EXAMPLES,
    SECRET,
    TIMEOUT,
    browser,
    callback_body,
    clean_env,
    free_port,
    generate,
    require_chromium,
    save_value,
    server_process,
    shown_value,
)

pytestmark = pytest.mark.slow

#: What the examples' enable_error_messages shows for a rejected session id.
SESSION_EXPIRED = "Your session has expired"


def run_example(name: str, workdir: Path) -> Iterator[str]:
    port = free_port()
    env = clean_env(HOST="127.0.0.1", PORT=str(port), DASH_DATABASE_SECRET=SECRET)
    url = f"http://127.0.0.1:{port}"
    with server_process([str(EXAMPLES / f"{name}.py")], workdir, env, url):
        yield url


@pytest.fixture(scope="module")
def basic_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    yield from run_example("basic_app", tmp_path_factory.mktemp("basic_app"))


@pytest.fixture(scope="module")
def data_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    yield from run_example("data_app", tmp_path_factory.mktemp("data_app"))


@pytest.fixture
def alice(tmp_path: Path) -> Iterator[Browser]:
    with browser(tmp_path / "alice") as opened:
        yield opened


@pytest.fixture
def bob(tmp_path: Path) -> Iterator[Browser]:
    with browser(tmp_path / "bob") as opened:
        yield opened


def open_new_tab(browser: Any, selector: str) -> None:
    """Open the app in a new tab of the same browser, switch to it, wait for ``selector``."""
    driver = browser.driver
    driver.switch_to.new_window("tab")
    driver.get(browser.server_url)
    browser.wait_for_element(selector, timeout=TIMEOUT)


def tab_id(browser: Any) -> str:
    value: str = browser.driver.execute_script(
        f"return JSON.parse(window.sessionStorage.getItem({SESSION_STORE_ID!r}))"
    )
    return value


# -- basic_app: per-tab ids -------------------------------------------------------------------


def test_basic_app_value_entered_in_one_tab_is_shown_in_the_other_and_kept_on_reload(
    basic_url: str, alice: Browser
) -> None:
    alice.server_url = basic_url

    save_value(alice, "monkey")
    shown_value(alice, "Your value is monkey")
    first_id = tab_id(alice)
    alice.driver.refresh()
    alice.wait_for_element("#ok_button", timeout=TIMEOUT)

    assert tab_id(alice) == first_id
    shown_value(alice, "Your value is monkey")
    assert alice.get_logs() == []


def test_basic_app_browser_tabs_have_separate_sessions(basic_url: str, alice: Browser) -> None:
    alice.server_url = basic_url
    save_value(alice, "first tab")

    open_new_tab(alice, "#ok_button")

    shown_value(alice, "No value saved in this tab yet.")
    save_value(alice, "second tab")
    alice.driver.switch_to.window(alice.driver.window_handles[0])
    shown_value(alice, "Your value is first tab")


def test_basic_app_two_browsers_never_see_each_other(
    basic_url: str, alice: Browser, bob: Browser
) -> None:
    alice.server_url = basic_url
    bob.server_url = basic_url
    bob.wait_for_element("#ok_button", timeout=TIMEOUT)

    save_value(alice, "alice")
    shown_value(bob, "No value saved in this tab yet.")
    save_value(bob, "bob")
    shown_value(alice, "Your value is alice")
    shown_value(bob, "Your value is bob")


def test_basic_app_asks_for_a_value_instead_of_saving_an_empty_one(
    basic_url: str, alice: Browser
) -> None:
    alice.server_url = basic_url
    save_value(alice, "kept")
    alice.find_element("#input_div").send_keys(Keys.CONTROL, "a", Keys.BACKSPACE)

    alice.find_element("#ok_button").click()

    alice.wait_for_contains_text("#success_value_saved", "Type a value first", timeout=TIMEOUT)
    shown_value(alice, "Your value is kept")


def test_basic_app_rejects_a_tampered_tab_id(basic_url: str, alice: Browser) -> None:
    alice.server_url = basic_url
    save_value(alice, "mine")
    good = tab_id(alice)
    url = alice.server_url + "/_dash-update-component"

    def show(session_id: Any) -> requests.Response:
        body = callback_body(
            "show_value_div.children",
            [("show_value_button", "n_clicks", 1)],
            [(SESSION_STORE_ID, "data", session_id)],
        )
        return requests.post(url, json=body, timeout=TIMEOUT)

    body, _, signature = good.rpartition(".")
    other_sig = ("B" if signature[0] == "A" else "A") + signature[1:]
    other_body = body[:-2] + ("BB" if body.endswith("AA") else "AA")
    assert "Your value is mine" in show(good).text
    for bad in (f"{body}.{other_sig}", f"{other_body}.{signature}", body, "plain", None):
        reply = show(bad)
        assert SESSION_EXPIRED in reply.text  # enable_error_messages: a message, no update
        assert "mine" not in reply.text


# -- data_app: per-browser cookie ---------------------------------------------------------------


UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def parse_size(text: str) -> float:
    """Return the bytes of a size the app shows, such as ``"1.2 MB"``."""
    number, unit = text.split()
    return float(number) * UNITS[unit]


def sizes(browser: Any) -> tuple[float, float]:
    """data_app: return (bytes kept on the server, bytes sent for the chart), as shown."""
    text = browser.find_element("#sizes").text
    stored = re.search(r"Kept on the server: ([0-9.]+ [kMG]?B)", text)
    sent = re.search(r"Sent to the browser for this chart: ([0-9.]+ [kMG]?B)", text)
    assert stored is not None and sent is not None, text
    return parse_size(stored[1]), parse_size(sent[1])


def test_data_app_generates_stores_charts_and_shares_with_other_tabs(
    data_url: str, alice: Browser
) -> None:
    alice.server_url = data_url
    alice.wait_for_contains_text("#status", "No data yet", timeout=TIMEOUT)

    generate(alice, 50_000)
    stored, sent = sizes(alice)
    alice.wait_for_element("#chart .bars", timeout=TIMEOUT)
    alice.wait_for_contains_text("#summary", "Summary computed once", timeout=TIMEOUT)
    summary = alice.find_element("#summary").text

    assert stored > 1_000_000
    assert sent < stored / 20
    cookie = alice.driver.get_cookie(DATA_APP_COOKIE)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert alice.driver.execute_script("return document.cookie") == ""
    assert alice.get_logs() == []

    open_new_tab(alice, "#status")  # tabs of one browser share its session

    alice.wait_for_contains_text("#status", "50000 rows", timeout=TIMEOUT)
    alice.wait_for_contains_text("#sizes", "Rows: 50000.", timeout=TIMEOUT)
    alice.wait_for_text_to_equal("#summary", summary, timeout=TIMEOUT)  # memoized: not again


def test_data_app_uploads_a_csv_and_filters_by_column(
    data_url: str, alice: Browser, tmp_path: Path
) -> None:
    csv = tmp_path / "upload.csv"
    rows = "".join(f"p{i},{150 + i},{50 + i}\n" for i in range(40))
    csv.write_text("name,height,weight\n" + rows)
    alice.server_url = data_url

    alice.find_element("#upload input[type=file]").send_keys(str(csv))
    alice.wait_for_contains_text("#status", "Uploaded upload.csv: 40 rows", timeout=TIMEOUT)
    alice.wait_for_contains_text("#sizes", "Rows: 40.", timeout=TIMEOUT)
    alice.select_dcc_dropdown("#column", "weight")

    alice.wait_for_element("#chart .xtitle", timeout=TIMEOUT)
    alice.wait_for_text_to_equal("#chart .xtitle", "weight", timeout=TIMEOUT)


def test_data_app_two_browsers_never_see_each_other(
    data_url: str, alice: Browser, bob: Browser
) -> None:
    alice.server_url = data_url
    bob.server_url = data_url
    generate(alice, 111)
    bob.wait_for_contains_text("#status", "No data yet", timeout=TIMEOUT)

    generate(bob, 222)
    alice.driver.refresh()

    alice.wait_for_contains_text("#status", "111 rows", timeout=TIMEOUT)
    assert (
        alice.driver.get_cookie(DATA_APP_COOKIE)["value"]
        != (bob.driver.get_cookie(DATA_APP_COOKIE)["value"])
    )


def test_data_app_rejects_a_tampered_cookie(data_url: str, alice: Browser) -> None:
    alice.server_url = data_url
    generate(alice, 77)
    good = alice.driver.get_cookie(DATA_APP_COOKIE)["value"]
    body = callback_body(
        "..status.children...column.options...column.value..",
        [("generate", "n_clicks", None), ("upload", "contents", None)],
        [("row-count", "value", 5), ("upload", "filename", None)],
        changed=None,
    )
    url = alice.server_url + "/_dash-update-component"

    ok = requests.post(url, json=body, cookies={DATA_APP_COOKIE: good}, timeout=TIMEOUT)
    signature = good.rpartition(".")[2]
    forged = good.rpartition(".")[0] + "." + ("B" if signature[0] == "A" else "A") + signature[1:]
    rejected = requests.post(url, json=body, cookies={DATA_APP_COOKIE: forged}, timeout=TIMEOUT)

    assert "77 rows" in ok.text
    assert SESSION_EXPIRED in rejected.text  # enable_error_messages: a message, no update
    assert "77 rows" not in rejected.text


def test_data_app_sends_no_frame_for_a_csv_upload_of_any_size(data_url: str) -> None:
    rows = "".join(f"{i},{i * 2}\n" for i in range(20_000))
    contents = "data:text/csv;base64," + base64.b64encode(f"a,b\n{rows}".encode()).decode()
    jar = requests.Session()
    jar.get(data_url, timeout=TIMEOUT)
    url = data_url + "/_dash-update-component"
    load = callback_body(
        "..status.children...column.options...column.value..",
        [("generate", "n_clicks", None), ("upload", "contents", contents)],
        [("row-count", "value", 5), ("upload", "filename", "big.csv")],
        changed="upload.contents",
    )
    chart = callback_body(
        "..chart.figure...sizes.children..", [("column", "value", "b"), ("bins", "value", 10)]
    )

    loaded = jar.post(url, json=load, timeout=TIMEOUT)
    drawn = jar.post(url, json=chart, timeout=TIMEOUT)

    assert "20000 rows" in loaded.text
    assert "Rows: 20000." in drawn.text
    assert len(drawn.content) < len(contents) / 10


def test_data_app_shows_a_placeholder_instead_of_an_empty_chart(
    data_url: str, alice: Browser
) -> None:
    alice.server_url = data_url

    alice.wait_for_contains_text(
        "#chart .annotation-text", "Generate a table or upload a CSV file", timeout=TIMEOUT
    )
    assert alice.find_elements("#chart .bars") == []
    assert alice.find_element("#sizes").text == ""


@pytest.mark.parametrize("rows", ["0", "-5", "2000000"])
def test_data_app_refuses_a_row_count_out_of_range_and_keeps_the_data(
    data_url: str, alice: Browser, rows: str
) -> None:
    alice.server_url = data_url
    generate(alice, 111)
    field = alice.find_element("#row-count")
    field.clear()
    field.send_keys(rows)

    alice.find_element("#generate").click()

    alice.wait_for_contains_text(
        "#status", "Enter a whole number of rows from 1 to 1,000,000", timeout=TIMEOUT
    )
    assert "Rows: 111." in alice.find_element("#sizes").text
    alice.driver.refresh()
    alice.wait_for_contains_text("#status", "111 rows", timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("photo.png", bytes(range(256)) * 8, "photo.png could not be read as a CSV file"),
        ("empty.csv", b"", "empty.csv could not be read as a CSV file"),
        ("names.csv", b"first,last\nAda,Lovelace\n", "names.csv has no column of numbers"),
    ],
)
def test_data_app_explains_a_bad_upload_and_keeps_the_data(
    data_url: str, alice: Browser, tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    upload = tmp_path / name
    upload.write_bytes(content)
    alice.server_url = data_url
    generate(alice, 222)

    alice.find_element("#upload input[type=file]").send_keys(str(upload))

    alice.wait_for_contains_text("#status", expected, timeout=TIMEOUT)
    assert "Rows: 222." in alice.find_element("#sizes").text
    assert alice.get_logs() == []


def test_data_app_shows_sizes_in_readable_units(data_url: str, alice: Browser) -> None:
    alice.server_url = data_url

    generate(alice, 1_000)

    text = alice.find_element("#sizes").text
    assert re.search(r"Kept on the server: 24\.1 kB", text), text  # 3 columns of 8-byte numbers
    assert re.search(r"Sent to the browser for this chart: [0-9]+\.[0-9] kB", text), text
    assert "bytes" not in text


def test_data_app_puts_its_slow_outputs_under_a_loading_indicator(data_url: str) -> None:
    layout = requests.get(data_url + "/_dash-layout", timeout=TIMEOUT).json()

    def loading_ids(node: Any, inside: bool = False) -> set[str]:
        if isinstance(node, list):
            return set().union(*(loading_ids(n, inside) for n in node))
        if not isinstance(node, dict) or "props" not in node:
            return set()
        inside = inside or node["type"] == "Loading"
        found = {node["props"]["id"]} if inside and "id" in node["props"] else set()
        return found | loading_ids(node["props"].get("children"), inside)

    assert {"status", "chart"} <= loading_ids(layout)
