"""The command line on a terminal (a pseudo-terminal) and in pipes, and its console script."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
from pathlib import Path

from dash_database import SqliteBackend
from tests.cli_stores import SOURCE_ROOT, run_cli
from tests.support import require


def filled_store(path: Path, sessions: int = 300) -> str:
    backend = SqliteBackend(path)
    for i in range(sessions):
        backend.set_many(f"s{i}", {"k": b"v" * 1000}, None, 1.0, version=1)
    backend.close()
    return str(path)


def run_on_terminal(*args: str, answer: bytes = b"") -> tuple[int, str]:
    """Run ``python -m dash_database ARGS`` with a pseudo-terminal as stdin and stderr (stdout
    stays a pipe, as when the data is redirected to a file); return its status and what the
    terminal showed."""
    main, child = pty.openpty()
    env = {**os.environ, "PYTHONPATH": SOURCE_ROOT, "COLUMNS": "100"}
    env.pop("DASH_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "dash_database", *args],
        stdin=child,
        stdout=subprocess.DEVNULL,
        stderr=child,
        env=env,
    )
    os.close(child)
    if answer:
        os.write(main, answer)
    shown = b""
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            process.kill()
            raise AssertionError(f"no output for 60 s; so far: {shown!r}")
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed the terminal (Linux raises EIO)
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    return process.wait(60), shown.decode(errors="replace")


def test_export_on_a_terminal_draws_a_progress_bar(tmp_path: Path) -> None:
    url = filled_store(tmp_path / "s.sqlite")

    status, shown = run_on_terminal("export", str(tmp_path / "x.dump"), "--url", url)

    assert 0 == status, shown
    assert "Exporting" in shown and "100%" in shown


def test_import_on_a_terminal_draws_a_progress_bar(tmp_path: Path) -> None:
    url = filled_store(tmp_path / "s.sqlite")
    assert 0 == run_cli("export", str(tmp_path / "x.dump"), "--url", url).returncode

    status, shown = run_on_terminal(
        "import", str(tmp_path / "x.dump"), "--url", str(tmp_path / "t.sqlite")
    )

    assert 0 == status, shown
    assert "Importing" in shown and "100%" in shown


def test_a_piped_run_draws_no_progress_bar(tmp_path: Path) -> None:
    url = filled_store(tmp_path / "s.sqlite")

    result = run_cli("export", str(tmp_path / "x.dump"), "--url", url)

    assert 0 == result.returncode
    assert b"" == result.stderr
    assert b"Exported 300 sessions, 300 keys, 293.0 KiB.\n" == result.stdout


def test_delete_on_a_terminal_asks_and_a_no_keeps_the_session(tmp_path: Path) -> None:
    url = filled_store(tmp_path / "s.sqlite", sessions=2)

    status, shown = run_on_terminal("delete", "s1", "--url", url, answer=b"n\n")

    assert 1 == status
    assert "Delete session s1" in shown and "Nothing was deleted" in shown
    backend = SqliteBackend(url)
    assert ["k"] == backend.keys("s1", 2.0)
    backend.close()


def test_delete_on_a_terminal_deletes_after_a_yes(tmp_path: Path) -> None:
    url = filled_store(tmp_path / "s.sqlite", sessions=2)

    status, shown = run_on_terminal("delete", "s1", "--url", url, answer=b"y\n")

    assert 0 == status, shown
    backend = SqliteBackend(url)
    assert [] == backend.keys("s1", 2.0)
    backend.close()


def test_the_console_script_runs_the_tool(tmp_path: Path) -> None:
    script = shutil.which("dash-database", path=os.path.dirname(sys.executable))
    require(script is not None, "the dash-database script is not installed: pip install -e .")
    assert script is not None
    url = filled_store(tmp_path / "s.sqlite", sessions=1)

    result = subprocess.run(
        [script, "info", "--json", "--url", url],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": SOURCE_ROOT},
        timeout=60,
    )

    assert 0 == result.returncode, result.stderr.decode()
    assert b'"sessions": 1' in result.stdout


def test_purge_on_a_terminal_shows_its_progress(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    backend = SqliteBackend(path)
    for i in range(450):
        backend.set_many(f"old{i}", {"k": b"v"}, 100.0, 1.0, version=1)
    backend.set_many("live", {"k": b"v"}, None, 1.0, version=1)
    backend.close()

    status, shown = run_on_terminal("purge", "--url", str(path))

    assert 0 == status, shown
    assert "Purging expired sessions" in shown
    assert "[####################################]  100%" in shown
