"""The figures of a proof run, as text for people and JSON for the tests."""

from __future__ import annotations

import dataclasses
import json

from ._run import Options, StoreReport

__all__ = ["as_json", "as_text", "passed"]


def passed(report: StoreReport) -> bool:
    """Return whether ``report`` shows every guarantee kept."""
    return (
        report.lost == 0
        and report.cross_session == 0
        and report.corrupt == 0
        and report.failed_outside == 0
        and report.secrets_in_log == 0
        and not report.other_errors_logged
        and report.integrity_check in ("", "ok")
        and all(c.ok for c in report.checks)
        and all(_counter_ok(p.counter_expected, p.counter_unsure, p.counter_got)
                for p in report.phases)
        and all(p.recovered for p in report.phases)
        and report.phases[0].counter_unsure == 0
    )  # fmt: skip


def _counter_ok(expected: int, unsure: int, got: int) -> bool:
    return expected <= got <= expected + unsure


def as_json(reports: list[StoreReport]) -> str:
    return json.dumps([dataclasses.asdict(r) | {"passed": passed(r)} for r in reports], indent=1)


def as_text(reports: list[StoreReport], options: Options, when: str) -> str:
    lines = [
        f"dash_database proof, {when}: the proof app under gunicorn -w {options.workers}, "
        f"{options.clients} client processes x {options.threads} threads, "
        f"{options.sessions} browser sessions x {options.rounds} writes per phase",
        "",
        "store     sessions  requests  writes acked  lost  cross-session  5xx/errors outside "
        "faults  result",
    ]
    for r in reports:
        lines.append(
            f"{r.store:<9} {r.sessions:>8}  {r.requests:>8}  {r.acked:>12}  {r.lost:>4}  "
            f"{r.cross_session:>13}  {r.failed_outside:>25}  {'PASS' if passed(r) else 'FAIL'}"
        )
    lines += ["", "store     phase                      counter expected / got   errors during "
              "fault                    recovered in"]  # fmt: skip
    for r in reports:
        for p in r.phases:
            counter = f"{p.counter_expected}" + (
                f" (+{p.counter_unsure}?)" if p.counter_unsure else ""
            )
            errors = "-"
            if p.recovery_seconds is not None:
                kinds = ", ".join(f"{k}: {n}" for k, n in sorted(p.error_statuses.items()))
                errors = f"{p.errors_during}" + (f" ({kinds})" if kinds else "")
            recovered = "-" if p.recovery_seconds is None else f"{p.recovery_seconds:.2f} s"
            if not p.recovered:
                recovered = "NOT RECOVERED"
            lines.append(
                f"{r.store:<9} {p.name:<26} {counter + ' / ' + str(p.counter_got):<24} "
                f"{errors:<40} {recovered}"
            )
    lines += ["", "Checks"]
    for r in reports:
        if r.integrity_check:
            lines.append(f"{r.store}: PRAGMA integrity_check after the faults: {r.integrity_check}")
        lines.append(
            f"{r.store}: log: {r.backend_errors_logged} BackendError, "
            f"{len(r.other_errors_logged)} other errors"
            + "".join(f"\n    {e}" for e in r.other_errors_logged[:5])
            + f"; the secret or a session id appears {r.secrets_in_log} times"
        )
        if r.thread_errors_logged:
            lines.append(
                f"{r.store}: log: {len(r.thread_errors_logged)} tracebacks of threads that "
                "ended outside any request (on SQLite: sqlitedict's writer thread, on the "
                "full disk; the requests got the BackendError above)"
            )
        for c in r.checks:
            lines.append(
                f"{r.store}: {c.name}: {c.error[:400]}; previous data intact: "
                f"{'yes' if c.intact else 'NO'}"
            )
        for s in r.skipped:
            lines.append(f"{r.store}: not run: {s}")
    lines += [
        "",
        "(+N?) counts writes the app did not acknowledge during a fault: their increment may "
        "or may not have been made, so the counter may exceed what was acknowledged by up to N.",
    ]
    return "\n".join(lines)
