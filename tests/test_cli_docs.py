"""The command lines of docs/operating.md run as written (on a store made for the test)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dash_database import DashDatabase
from tests.cli_stores import SOURCE_ROOT, Store, contents, make_store

__all__ = ["make_store"]  # the fixture, imported so that pytest finds it here

DOC = Path(SOURCE_ROOT) / "docs" / "operating.md"


def first_block(section: str) -> str:
    """Return the first plain code block (no language) after the heading ``section``."""
    text = DOC.read_text().split(f"\n{section}\n", 1)[1]
    found = re.search(r"^```\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    assert found is not None, f"no code block under {section!r}"
    return found.group(1)


def run_script(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in bash, where ``dash-database`` is the tool of the tree under test."""
    tool = f'dash-database() {{ "{sys.executable}" -m dash_database "$@"; }}'
    prelude = f"set -euo pipefail\n{tool}\n"
    environment = {**os.environ, "PYTHONPATH": SOURCE_ROOT}
    environment.pop("DASH_DATABASE_URL", None)
    return subprocess.run(
        ["bash", "-c", prelude + script],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def filled(path: Path) -> None:
    db = DashDatabase(path, ttl=3600)
    db.store_user_value("alice", "frame", {"rows": [1, 2, 3]})
    db.store_user_value("bob", "step", 2)
    db.close()


def test_the_documented_commands_run(tmp_path: Path) -> None:
    filled(tmp_path / "dash_database.sqlite")
    script = (
        first_block("## Commands")
        .replace("SESSION KEY", "alice frame")
        .replace("delete SESSION", "delete bob --yes")
        .replace("SESSION", "alice")
    )

    result = run_script(script, tmp_path)

    assert 0 == result.returncode, result.stderr
    assert "{'rows': [1, 2, 3]}" in result.stdout
    assert "Deleted session bob" in result.stdout
    assert (tmp_path / "value.bin").stat().st_size > 0


@pytest.mark.slow
def test_the_documented_move_to_redis_runs(
    tmp_path: Path, make_store: Callable[[str], Store]
) -> None:
    filled(tmp_path / "sessions.sqlite")
    target = make_store("redis")
    script = first_block("## Moving to another store").replace(
        "redis://localhost:6379/0", f"'{target.url}'"
    )

    result = run_script(script, tmp_path)

    assert 0 == result.returncode, result.stderr
    assert {"alice", "bob"} == set(contents(target.backend, 0.0))
