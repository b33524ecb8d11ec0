#!/usr/bin/env python3
"""Run every benchmark workload against every store and print the report with its targets.

    python benchmarks/run.py            # the full run (under 10 minutes on 2 cores)
    python benchmarks/run.py --quick    # a smoke run of a few minutes

The first run builds two virtual environments next to this file and reuses them afterwards
(rebuilt when requirements*.txt or pyproject.toml change): ``benchmarks/.venv`` holds this
project and the peers, ``benchmarks/.venv-v1`` dash-database 1.0 (which also imports as
``dash_database``). This file needs only the standard library until it re-executes itself in
``.venv`` and hands over to ``schedule.py``.
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
MAIN, V1 = os.path.join(HERE, ".venv"), os.path.join(HERE, ".venv-v1")


class Settings:
    """How much of each workload a run does (``--quick``: less)."""

    def __init__(self, quick: bool, e2e: bool) -> None:
        self.quick, self.e2e = quick, e2e
        self.reps = 3 if quick else 20  # of workloads 1-3, each a short turn per store
        self.small_sessions, self.dict10k_sessions = 20, 4
        self.thread_reps, self.proc_reps = (1, 1) if quick else (5, 3)
        self.increments, self.cas_reps = 500, 1 if quick else 2
        self.bulk_keys, self.bulk_reps = 20_000, 1 if quick else 3
        self.mem_sizes_mb = [1, 10] if quick else [1, 100]
        self.sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
        self.mid = 10_000  # the N at which stores are compared with each other
        self.n_reps, self.n_ops = (2, 10) if quick else (5, 20)  # list/delete: reps x calls
        self.e2e_seconds, self.e2e_warmup, self.e2e_rounds = (4, 1, 2) if quick else (12, 2, 4)
        self.e2e_backends = ["dd-sqlite"] if quick else ["dd-sqlite", "dd-redis", "dd-postgres"]
        self.async_rounds = 2 if quick else 5  # async_stall.py: rounds of 100 tasks per store


def _ensure(env_dir: str, inputs: list[str], install: list[str]) -> None:
    """Create ``env_dir`` and pip install ``install`` into it, unless done for these inputs."""
    digest = hashlib.sha256()
    for path in inputs:
        with open(path, "rb") as f:
            digest.update(f.read())
    stamp, python = os.path.join(env_dir, ".installed"), os.path.join(env_dir, "bin", "python")
    if os.path.exists(stamp) and os.path.exists(python):
        with open(stamp) as f:
            if f.read() == digest.hexdigest():
                return
    if not os.path.exists(python):
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    print(f"Installing into {env_dir}: {' '.join(install)}", file=sys.stderr, flush=True)
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *install], check=True
    )
    with open(stamp, "w") as f:
        f.write(digest.hexdigest())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, N up to 10k")
    parser.add_argument("--no-e2e", action="store_true", help="skip the gunicorn workload")
    parser.add_argument("--without", default="", metavar="STORE,...", help="leave these stores out")
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="where to write")
    parser.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.in_venv:
        req, req_v1 = (
            os.path.join(HERE, "requirements.txt"),
            os.path.join(HERE, "requirements-v1.txt"),
        )
        pyproject = os.path.join(REPO, "pyproject.toml")
        _ensure(MAIN, [req, pyproject], ["-r", req, "-e", f"{REPO}[redis,postgres]"])
        _ensure(V1, [req_v1], ["-r", req_v1])
        python = os.path.join(MAIN, "bin", "python")
        os.execv(python, [python, os.path.abspath(__file__), "--in-venv", *sys.argv[1:]])
    sys.path.insert(0, HERE)
    import schedule

    without = [s for s in args.without.split(",") if s]
    if set(without) - set(schedule.LABELS):
        parser.error(f"--without: the stores are {', '.join(schedule.LABELS)}")
    command = " ".join(["python benchmarks/run.py", *(a for a in sys.argv[1:] if a != "--in-venv")])
    os.makedirs(args.out, exist_ok=True)
    settings = Settings(args.quick, not args.no_e2e)
    return schedule.bench(settings, args.out, without, command)


if __name__ == "__main__":
    sys.exit(main())
