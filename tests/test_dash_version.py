"""The Dash integration runs on every Dash the package declares, and refuses an older one
with a message that says how to upgrade. ``make test-dash-versions`` runs the Dash tests on
the oldest declared Dash and the newest 2.x, 3.x and 4.x, and this file on an older one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import dash
import pytest

ROOT = Path(__file__).resolve().parent.parent


def declared_minimum() -> tuple[int, ...]:
    """Return the lowest Dash version ``pyproject.toml`` accepts."""
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'"dash>=([0-9.]+)"', text)
    assert match is not None
    return tuple(int(part) for part in match.group(1).split("."))


def installed() -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", dash.__version__)[:3])


def import_integration() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import dash_database.dash"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_integration_checks_the_version_the_package_declares() -> None:
    source = (ROOT / "dash_database" / "dash" / "__init__.py").read_text()
    match = re.search(r"MINIMUM_DASH = \(([0-9, ]+)\)", source)
    assert match is not None

    assert declared_minimum() == tuple(int(p) for p in match.group(1).split(","))


@pytest.mark.skipif(installed() < declared_minimum(), reason="this Dash is older than declared")
def test_a_declared_dash_imports_the_integration() -> None:
    result = import_integration()

    assert (0, "") == (result.returncode, result.stderr)


@pytest.mark.skipif(installed() >= declared_minimum(), reason="this Dash is supported")
def test_an_older_dash_is_refused_with_how_to_upgrade() -> None:
    result = import_integration()

    assert 0 != result.returncode
    assert "UnsupportedDashError" in result.stderr
    assert f"this is Dash {dash.__version__}" in result.stderr
    assert 'pip install --upgrade "dash>=' in result.stderr
