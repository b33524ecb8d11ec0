#!/usr/bin/env python3
"""Run every benchmark workload against every store and write the report.

    python benchmarks/run.py            # the full run (under 10 minutes on 2 cores)
    python benchmarks/run.py --quick    # a smoke run of about a minute

The first run builds two virtual environments next to this file and reuses them afterwards
(they are rebuilt when requirements*.txt or pyproject.toml change):

- benchmarks/.venv     this project (pip install -e "..[redis,postgres,zstd,lz4]") and the peers
- benchmarks/.venv-v1  dash-database==1.0 from PyPI, which also imports as dash_database

The report is printed as markdown and written to benchmarks/results/ (JSON, markdown, PNG).
This file uses only the standard library: any Python 3.9+ can start it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MAIN = os.path.join(HERE, ".venv")
V1 = os.path.join(HERE, ".venv-v1")


def _digest(*paths: str) -> str:
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def _ensure(env_dir: str, digest: str, install: list[str]) -> None:
    """Create ``env_dir`` unless it exists, and pip install ``install`` unless the stamp
    records the same ``digest``."""
    stamp = os.path.join(env_dir, ".benchmarks-installed")
    python = os.path.join(env_dir, "bin", "python")
    if os.path.exists(stamp):
        with open(stamp) as f:
            if f.read().strip() == digest and os.path.exists(python):
                return
    if not os.path.exists(python):
        print(f"Creating {env_dir} ...", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    print(f"Installing into {env_dir}: {' '.join(install)}", file=sys.stderr, flush=True)
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *install], check=True
    )
    with open(stamp, "w") as f:
        f.write(digest + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repetitions, N up to 10k, 10 MB memory test (~1 minute)",
    )
    parser.add_argument(
        "--no-e2e", action="store_true", help="skip the end-to-end gunicorn workload"
    )
    parser.add_argument(
        "--without",
        default="",
        metavar="STORE,...",
        help="leave these stores out (ids as in the JSON, e.g. dd-postgres,psycopg)",
    )
    parser.add_argument(
        "--out",
        default=os.path.join(HERE, "results"),
        help="where to write the JSON, markdown and PNG (default: %(default)s)",
    )
    parser.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if not args.in_venv:
        req, req_v1 = (
            os.path.join(HERE, "requirements.txt"),
            os.path.join(HERE, "requirements-v1.txt"),
        )
        _ensure(
            MAIN,
            _digest(req, os.path.join(REPO, "pyproject.toml")),
            ["-r", req, "-e", f"{REPO}[redis,postgres,zstd,lz4]"],
        )
        _ensure(V1, _digest(req_v1), ["-r", req_v1])
        python = os.path.join(MAIN, "bin", "python")
        os.execv(python, [python, os.path.abspath(__file__), "--in-venv", *sys.argv[1:]])

    sys.path.insert(0, HERE)
    import bench

    without = [s for s in args.without.split(",") if s]
    flags = [a for a in sys.argv[1:] if a != "--in-venv"]
    command = " ".join(["python benchmarks/run.py", *flags])
    return bench.main(
        quick=args.quick, e2e=not args.no_e2e, out_dir=args.out, without=without, command=command
    )


if __name__ == "__main__":
    sys.exit(main())
