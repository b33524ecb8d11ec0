"""Every code block of README.md runs as written.

The ``>>>`` block runs as a doctest (``--doctest-glob=README.md`` in pyproject.toml). Each app
block starts with a comment naming its file (``# app.py: ...``): it is saved under that name
and started with ``python <file>`` exactly as the README says, then used in headless Chromium.
Each line of a shell block must be one of the commands checked here, so a new command cannot
land untested.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import tomllib
import yaml
from dash.testing.browser import Browser
from selenium.webdriver.common.keys import Keys

from dash_database import DashDatabase
from dash_database.dash import ERROR_MESSAGE_ID
from tests.support import require
from tests.ui_support import (
    ROOT,
    SECRET,
    TIMEOUT,
    app_cookie,
    browser,
    clean_env,
    free_port,
    require_chromium,
    server_process,
)

README = ROOT / "README.md"


def blocks(language: str) -> list[str]:
    """Return the fenced code blocks of README.md in ``language``."""
    pattern = rf"^```{language}\n(.*?)^```$"
    return re.findall(pattern, README.read_text(), flags=re.MULTILINE | re.DOTALL)


def app_blocks() -> dict[str, str]:
    """Return the README's app blocks by the file name their first line gives them."""
    apps = {}
    for block in blocks("python"):
        if block.startswith(">>>"):
            continue
        first = block.splitlines()[0]
        match = re.fullmatch(r"# (\w+\.py): .+", first)
        assert match, f"an app block must start with '# <file>.py: <what it shows>': {first!r}"
        apps[match[1]] = block
    return apps


def test_the_readme_has_doctest_blocks_and_named_app_blocks() -> None:
    doctests = [b for b in blocks("python") if b.startswith(">>>")]

    fences = re.findall(r"^```(\w*)$", README.read_text(), flags=re.MULTILINE)
    assert 4 == len(doctests)  # all run as one doctest (--doctest-glob=README.md)
    assert sorted(app_blocks()) == sorted(APP_CHECKS)
    # Every opening fence names a language whose blocks a test here checks.
    assert set(fences[::2]) <= {"python", "sh", "crontab", "yaml"}


# -- app blocks ---------------------------------------------------------------------------------


@pytest.fixture
def run_block(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Save a README app block as its file in an empty folder and start it with ``python``."""
    require_chromium()
    with ExitStack() as servers:

        def run(name: str) -> str:
            (tmp_path / name).write_text(app_blocks()[name])
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = clean_env(PORT=str(port), DASH_DATABASE_SECRET=SECRET)
            servers.enter_context(server_process([name], tmp_path, env, url))
            return url

        yield run


def click(chrome: Browser, button: str, target: str, expected: str) -> None:
    chrome.find_element(button).click()
    chrome.wait_for_text_to_equal(target, expected, timeout=TIMEOUT)


def check_app_py(url: str, tmp_path: Path) -> None:
    with browser(tmp_path / "alice") as alice, browser(tmp_path / "bob") as bob:
        alice.server_url = url
        bob.server_url = url
        alice.wait_for_element("#load", timeout=TIMEOUT)
        click(alice, "#total", "#result", "Load the data first.")
        click(alice, "#load", "#status", "Loaded 3 rows.")
        click(alice, "#total", "#result", "Total: 28.75")

        bob.wait_for_element("#total", timeout=TIMEOUT)
        click(bob, "#total", "#result", "Load the data first.")  # another browser's session

        alice.driver.refresh()
        alice.wait_for_element("#total", timeout=TIMEOUT)
        click(alice, "#total", "#result", "Total: 28.75")  # kept for this browser
        assert alice.get_logs() == []

        # An altered cookie: the page says what happened instead of silently not updating.
        cookie = alice.driver.get_cookie(app_cookie("app"))
        body, _, signature = cookie["value"].rpartition(".")
        forged = f"{body}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
        alice.driver.add_cookie({**cookie, "value": forged})
        alice.find_element("#total").click()
        alice.wait_for_contains_text(
            f"#{ERROR_MESSAGE_ID}", "Your session has expired", timeout=TIMEOUT
        )


def check_tabs_py(url: str, tmp_path: Path) -> None:
    def add(chrome: Browser, note: str, expected: str) -> None:
        # Select the old text and type over it: clear() alone does not reach React's state.
        field = chrome.find_element("#note")
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(note)
        click(chrome, "#add", "#notes", expected)

    with browser(tmp_path / "alice") as alice:
        alice.server_url = url
        alice.wait_for_element("#note", timeout=TIMEOUT)
        add(alice, "milk", "milk")
        add(alice, "eggs", "milk, eggs")

        alice.driver.switch_to.new_window("tab")  # another tab: a session of its own
        alice.driver.get(url)
        alice.wait_for_element("#note", timeout=TIMEOUT)
        add(alice, "bread", "bread")

        alice.driver.switch_to.window(alice.driver.window_handles[0])
        add(alice, "tea", "milk, eggs, tea")
        assert alice.get_logs() == []


def check_values_py(url: str, tmp_path: Path) -> None:
    with browser(tmp_path / "alice") as alice:
        alice.server_url = url
        alice.wait_for_element("#load", timeout=TIMEOUT)
        click(alice, "#load", "#total", "Total: 28.75")
        assert alice.get_logs() == []


def check_async_callbacks_py(url: str, tmp_path: Path) -> None:
    with browser(tmp_path / "alice") as alice, browser(tmp_path / "bob") as bob:
        for chrome in (alice, bob):
            chrome.server_url = url
            chrome.wait_for_element("#like", timeout=TIMEOUT)
        click(alice, "#like", "#likes", "1 likes from this browser")
        click(alice, "#like", "#likes", "2 likes from this browser")
        click(bob, "#like", "#likes", "1 likes from this browser")  # its own session
        assert alice.get_logs() == []


APP_CHECKS: dict[str, Callable[[str, Path], None]] = {
    "app.py": check_app_py,
    "async_callbacks.py": check_async_callbacks_py,
    "tabs.py": check_tabs_py,
    "values.py": check_values_py,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(APP_CHECKS))
def test_app_block_runs_as_written(
    name: str, run_block: Callable[[str], str], tmp_path: Path
) -> None:
    APP_CHECKS[name](run_block(name), tmp_path)


# -- shell blocks -------------------------------------------------------------------------------


def shell_lines() -> list[str]:
    """Return the commands of the README's shell blocks, without their comments."""
    lines = []
    for block in blocks("sh"):
        for line in block.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


def pyproject() -> dict[str, object]:
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)


def check_make(command: str) -> None:
    require(shutil.which("make") is not None, "the README's make commands need make")
    target = command.split()[1]
    # -B: print every step, even those an existing .venv makes unnecessary.
    dry_run = subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    if target == "example":
        assert "examples/data_app.py" in dry_run
        assert '-e ".[examples]"' in dry_run
        assert "[test]" not in dry_run  # not the test toolchain
    else:
        assert "pytest" in dry_run


def check_activate(command: str) -> None:
    # -B: print every step, even those an existing .venv makes unnecessary.
    dry_run = subprocess.run(
        ["make", "-n", "-B", "example"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert command == ". .venv/bin/activate"
    assert "-m venv .venv" in dry_run  # the venv that make example and make test create


def check_example(command: str) -> None:
    # The examples themselves are run this way by tests/test_examples_browser.py (python) and
    # tests/test_examples_gunicorn.py (gunicorn -w 4); here: the README names them rightly.
    module = re.search(r"examples[./](\w+)", command)
    assert module is not None
    source = (ROOT / "examples" / f"{module[1]}.py").read_text()
    assert "server = app.server" in source
    assert 'if __name__ == "__main__":' in source


def check_pip_install(command: str) -> None:
    extras = pyproject()["project"]["optional-dependencies"]  # type: ignore[index]
    pattern = r'pip install (?:"\./dash_database\[([\w-]+)\]"|\./dash_database)'
    match = re.fullmatch(pattern, command)
    assert match is not None, f"install from the clone, never the registry: {command}"
    assert match[1] is None or match[1] in extras


def check_export_secret(command: str) -> None:
    python_dir = os.path.dirname(sys.executable)
    env = {**clean_env(), "PATH": f"{python_dir}:{os.environ['PATH']}"}
    secret = subprocess.run(
        ["bash", "-c", f'{command}; printf %s "$DASH_DATABASE_SECRET"'],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert len(secret) >= 32
    with DashDatabase(":memory:", secret_key=secret) as db:
        assert db.new_session_id().startswith("dds1.")


SHELL_CHECKS: list[tuple[str, Callable[[str], None]]] = [
    (r"make (example|test)", check_make),
    (r"\. \.venv/bin/activate", check_activate),
    (r"python examples/\w+\.py", check_example),
    (r"gunicorn -w 4 'examples\.\w+:server'", check_example),
    (r"pip install .+", check_pip_install),
    (r"export DASH_DATABASE_SECRET=.+", check_export_secret),
]


@pytest.mark.parametrize("command", shell_lines())
def test_shell_command_works_as_written(command: str) -> None:
    checks = [check for pattern, check in SHELL_CHECKS if re.fullmatch(pattern, command)]

    assert len(checks) == 1, f"no check for the README command {command!r}: add one here"
    checks[0](command)


# -- operating blocks ---------------------------------------------------------------------------


def test_the_crontab_line_purges_the_app_s_store_silently(tmp_path: Path) -> None:
    (line,) = [line for block in blocks("crontab") for line in block.splitlines() if line]
    *schedule, command = line.split(maxsplit=5)
    assert all(re.fullmatch(r"(\*|\d+(-\d+)?)(/\d+)?", field) for field in schedule), schedule
    app = tmp_path / "app"
    app.mkdir()
    # Sessions written two hours ago with a one-hour ttl: expired, waiting for a purge.
    store = app / "dash_database.sqlite"
    with DashDatabase(store, ttl=3600, clock=lambda: time.time() - 7200) as db:
        for user in ("ada", "bob", "cy"):
            db.store_user_value(user, "k", 1)
    with DashDatabase(store) as db:
        assert (0, 3) == (db.stats().sessions, db.stats().expired)
    # cron runs the line with sh; dash-database is the tool of the tree under test.
    tool = f'dash-database() {{ "{sys.executable}" -m dash_database "$@"; }}'
    script = f"{tool}\n{command.replace('/srv/app', str(app))}"
    env = {**clean_env(PYTHONPATH=str(ROOT)), "PYTHONWARNINGS": ""}
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120
    )

    assert (0, "", "") == (done.returncode, done.stdout, done.stderr)
    with DashDatabase(store) as db:
        assert (0, 0) == (db.stats().sessions, db.stats().expired)


def test_the_scrape_configuration_scrapes_the_documented_metrics_route() -> None:
    (block,) = blocks("yaml")
    (job,) = yaml.safe_load(block)["scrape_configs"]
    (static,) = job["static_configs"]
    (target,) = static["targets"]

    # Prometheus's default path; tests/test_metrics.py serves it with docs/operating.md's app.
    assert "/metrics" == job.get("metrics_path", "/metrics")
    assert re.fullmatch(r"[\w.-]+:\d+", target)
    assert job["job_name"]


def test_the_readme_never_points_at_the_registrys_dash_database() -> None:
    text = README.read_text()
    hints = [p.read_text() for p in (ROOT / "dash_database").rglob("*.py")]

    assert 'pip install "dash-database[' not in text
    assert not any("dash-database[" in hint for hint in hints)


def test_the_readme_links_to_files_that_exist() -> None:
    links = re.findall(r"\]\(((?:docs|examples)/[^)#]+)(?:#[^)]*)?\)", README.read_text())

    assert links
    assert [link for link in links if not (ROOT / link).exists()] == []


def test_the_readme_s_performance_figures_are_those_of_its_report() -> None:
    # Measure, then claim: every timing, ratio and percentage in the Performance section is
    # printed, as written, in one of the benchmark reports the section links to.
    section = README.read_text().split("## Performance", 1)[1].split("\n## ", 1)[0]
    reports = set(re.findall(r"\((docs/benchmarks/[^)]+\.md)\)", section))
    printed = "\n".join((ROOT / report).read_text() for report in reports)
    figures = re.findall(r"[+]?\d[\d,.]*(?: µs| ms|x|%)(?![\w])", section)

    assert len(figures) > 20
    assert [f for f in figures if f not in printed] == []
