"""``python -m dash_database.proof`` at a modest size: its figures are the guarantees.

One run serves the proof app under ``gunicorn -w 4`` on SQLite, Redis and PostgreSQL, with
200 browser sessions of 2 writes in the load phase of each, a worker SIGKILLed, the server
stopped and restarted, the disk filled; then every session is read back.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dash_database.proof._run import _final_errors, _is_backend_error
from tests.launcher import find_postgres_bindir
from tests.support import require

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def proof() -> dict[str, Any]:
    require(importlib.util.find_spec("gunicorn") is not None, "the proof needs gunicorn")
    require(shutil.which("redis-server") is not None, "the proof needs redis-server")
    require(find_postgres_bindir() is not None, "the proof needs PostgreSQL")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASH_DATABASE_")}
    done = subprocess.run(
        [sys.executable, "-m", "dash_database.proof", "--json", "--hold", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.stdout, done.stderr
    return {report["store"]: report for report in json.loads(done.stdout)}


pytestmark = pytest.mark.slow


@pytest.mark.parametrize("store", ["sqlite", "redis", "postgres"])
def test_the_load_loses_no_write_mixes_no_session_and_counts_exactly(
    proof: dict[str, Any], store: str
) -> None:
    report = proof[store]
    load = report["phases"][0]

    assert ("load", 200, 400, 0) == (
        load["name"],
        load["sessions"],
        load["counter_expected"],
        load["counter_unsure"],
    )
    assert 400 == load["counter_got"]
    assert (0, 0, 0) == (report["lost"], report["cross_session"], report["corrupt"])
    assert 0 == report["failed_outside"]
    assert report["passed"]


@pytest.mark.parametrize("store", ["sqlite", "redis", "postgres"])
def test_every_fault_is_survived_and_recovered_from(proof: dict[str, Any], store: str) -> None:
    faults = proof[store]["phases"][1:]
    expected = {"sqlite": "full disk", "redis": "redis stop and restart"}
    expected["postgres"] = "postgres stop and restart"

    assert ["SIGKILL a worker", expected[store]] == [p["name"] for p in faults]
    for phase in faults:
        assert phase["recovered"], phase
        assert phase["recovery_seconds"] < 15, phase
        assert phase["counter_expected"] > 0
        got, low = phase["counter_got"], phase["counter_expected"]
        assert low <= got <= low + phase["counter_unsure"], phase
    outage = faults[1]
    assert outage["errors_during"] > 0  # the fault really hit requests
    assert {"500"} == set(outage["error_statuses"])  # a clear 5xx, never a hang or reset


@pytest.mark.parametrize("store", ["sqlite", "redis", "postgres"])
def test_every_5xx_is_a_backend_error_in_the_log_and_no_secret_is(
    proof: dict[str, Any], store: str
) -> None:
    report = proof[store]
    server_errors = sum(p["error_statuses"].get("500", 0) for p in report["phases"])

    assert server_errors == report["backend_errors_logged"]
    assert [] == report["other_errors_logged"]
    assert 0 == report["secrets_in_log"]


def test_sqlite_file_stays_whole_and_file_faults_give_clear_errors(proof: dict[str, Any]) -> None:
    report = proof["sqlite"]

    assert "ok" == report["integrity_check"]
    names = ["read-only directory", "corrupted value file", "corrupted database file"]
    assert names == [c["name"] for c in report["checks"]]
    for check in report["checks"]:
        assert check["error"].startswith("BackendError: "), check
        assert check["intact"] and check["ok"], check


CHAINED_LOG = """\
[2026-12-07 01:00:00,000] ERROR in app: Exception on /_dash-update-component [POST]
Traceback (most recent call last):
  File "x.py", line 1, in f
redis.exceptions.ConnectionError: Error 111 connecting.
\tmore of the message

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "x.py", line 2, in g
dash_database.exceptions.BackendError: Could not write to Redis.
[2026-12-07 01:00:01,000] ERROR in app: Exception on /_dash-update-component [POST]
Traceback (most recent call last):
  File "x.py", line 3, in h
ValueError: raw
Exception in thread Thread-1:
Traceback (most recent call last):
  File "x.py", line 4, in run
sqlite3.OperationalError: disk I/O error
"""


def test_the_log_scan_finds_the_last_error_of_each_chain_and_who_raised_it() -> None:
    found = [(name, request) for name, _, request in _final_errors(CHAINED_LOG)]

    assert [
        ("dash_database.exceptions.BackendError", True),
        ("ValueError", True),
        ("sqlite3.OperationalError", False),
    ] == found
    assert _is_backend_error("dash_database.backends.sqlite._writer.WriterLost")
    assert not _is_backend_error("ValueError")


def test_importing_the_package_does_not_import_the_proof() -> None:
    code = "import sys, dash_database; print('dash_database.proof' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)

    assert "False" == done.stdout.strip(), done.stderr


def test_make_proof_runs_the_command() -> None:
    require(shutil.which("make") is not None, "make proof needs make")
    dry_run = subprocess.run(
        ["make", "-n", "-B", "proof"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout

    assert "-m dash_database.proof" in dry_run
