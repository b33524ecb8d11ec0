"""The lower bounds pyproject.toml declares are the versions scripts/test-oldest-versions
installs and tests: a bound raised or lowered in one place and not the other fails here."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
#: Extras whose packages the oldest-versions run installs (the rest are tools and examples).
TESTED_EXTRAS = ("redis", "postgres", "cli", "metrics", "encryption", "zstd", "lz4")


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _release(text: str) -> tuple[int, ...]:
    """``"5.0"`` and ``"5.0.0"`` are one release."""
    parts = [int(part) for part in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def declared_lower_bounds() -> dict[str, tuple[int, ...]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in TESTED_EXTRAS:
        requirements += project["optional-dependencies"][extra]
    bounds = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?>=([0-9.]+)", requirement)
        assert match, f"{requirement!r} in pyproject.toml has no plain '>=' lower bound"
        bounds[_name(match[1])] = _release(match[3])
    return bounds


def oldest_pins() -> dict[str, tuple[int, ...]]:
    pins = {}
    for line in (ROOT / "scripts" / "oldest-versions.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[_name(name)] = _release(version.strip())
    return pins


def test_every_declared_lower_bound_is_the_version_the_oldest_run_installs() -> None:
    pins = oldest_pins()
    bounds = declared_lower_bounds()
    assert bounds == {name: pins[name] for name in bounds if name in pins}
    assert set(bounds) <= set(pins), f"not in oldest-versions.txt: {set(bounds) - set(pins)}"
    # psycopg[binary] installs psycopg-binary of the same release.
    assert pins["psycopg-binary"] == pins["psycopg"]
    assert set(pins) == set(bounds) | {"psycopg-binary"}
