"""The performance targets: each compares numbers of one run and says PASS, FAIL or N/A.

N/A means a store the target needs was not available in this run (left out, or its server did
not start); missing numbers for any other reason (an error) are a FAIL.
"""

from __future__ import annotations

from typing import Any, Callable

import async_stall
from report import OURS, SHARED, Data, fmt_ns, fmt_rate

Target = tuple[str, str, str]  # status, what is promised, the numbers


def evaluate(d: Data, meta: dict[str, Any]) -> list[Target]:
    found: list[Target] = []
    sqlite, v1, mid = "dd-sqlite", "v1", meta["settings"]["mid"]
    sizes, increments = meta["settings"]["sizes"], meta["settings"]["increments"]

    def check(name: str, stores: list[str], ok: bool, detail: str) -> None:
        missing = [d.label[s] for s in dict.fromkeys(stores) if s in d.unavailable]
        if missing:
            found.append(("N/A", name, f"not available: {', '.join(missing)}"))
        else:
            found.append(("PASS" if ok else "FAIL", name, detail))

    def ratio(
        name: str,
        a: tuple[str, float | None],
        b: tuple[str, float | None],
        ok: Callable[[float], bool],
        fmt: Callable[[Any], str] = fmt_ns,
    ) -> None:
        """Check ``ok(a / b)`` for the numbers of stores ``a[0]`` and ``b[0]``."""
        (sa, x), (sb, y) = a, b
        if x and y:
            check(name, [sa, sb], ok(x / y), f"{fmt(x)} vs {fmt(y)} = {x / y:.2f}x")
        else:
            check(name, [sa, sb], False, "no data: " + d.why(sa if not x else sb, name))

    def df(s: str) -> tuple[str, float | None]:
        a, b = d.med(s, "large", "store_ns"), d.med(s, "large", "get_ns")
        return s, (a + b if a and b else None)

    for field, need in (("get", 10), ("store", 3)):
        ours, old = (d.med(s, "small", f"{field}_ns") for s in (sqlite, v1))
        ratio(
            f"SQLite small {field}: >= {need}x faster than 1.0",
            (v1, old),
            (sqlite, ours),
            lambda r, need=need: r >= need,
        )
    ratio("SQLite 1 MB DataFrame store+get: <= 0.6x of 1.0", df(sqlite), df(v1), lambda r: r <= 0.6)

    for workload in ("list", "delete"):
        for s in OURS:
            hi, lo = (d.med(s, f"{workload}@{n}", "op_ns") for n in (sizes[-1], sizes[0]))
            ratio(
                f"{d.label[s]} {workload}: N={sizes[-1]:,} within 2x of N={sizes[0]:,}",
                (s, hi),
                (s, lo),
                lambda r: r <= 2,
            )
            ratio(
                f"{d.label[s]} {workload}: >= 200x faster than 1.0 at N={mid:,}",
                (v1, d.med(v1, f"{workload}@{mid}", "op_ns")),
                (s, d.med(s, f"{workload}@{mid}", "op_ns")),
                lambda r: r >= 200,
            )

    big = max((mb for m in d.r["memory"].values() for mb in m), key=float, default="?")
    for s in OURS:
        m = d.r["memory"].get(s, {}).get(big)
        peak = (s, m["store_peak_bytes"] if m and m["ok"] else None)
        ratio(
            f"{d.label[s]}: storing a {big} MB DataFrame peaks at <= 1.5x its size",
            peak,
            (s, m and m["size_bytes"]),
            lambda r: r <= 1.5,
            lambda b: f"{b / 2**20:.1f} MiB",
        )

    measured = [(w, f) for w in ("small", "dict10k", "large") for f in ("store_ns", "get_ns")]
    measured += [(f"list@{mid}", "op_ns"), (f"delete@{mid}", "op_ns")]
    for ours, raw, limit in (("dd-redis", "redis-py", 1.3), ("dd-postgres", "psycopg", 1.5)):
        for key, field in measured:
            ratio(
                f"{d.label[ours]}: <= {limit}x {d.label[raw]}, {key} {field[:-3]}",
                (ours, d.med(ours, key, field)),
                (raw, d.med(raw, key, field)),
                lambda r, limit=limit: r <= limit,
            )

    for s in OURS:
        ratio(
            f"{d.label[s]}: a memoize hit within 1.5x of a small get_user_value",
            (s, d.med(s, "memoize", "hit_ns")),
            (s, d.med(s, "memoize", "get_ns")),
            lambda r: r <= 1.5,
        )

    for s in SHARED:
        runs, bad = (
            d.runs(s, "procs"),
            [d.total(s, "procs", f) for f in ("errors", "lost", "wrong")],
        )
        check(
            f"{d.label[s]}, 4 processes: no errors, lost writes or wrong reads",
            [s],
            bool(runs) and not any(bad),
            f"{len(runs)} runs; errors, lost, wrong: {bad}",
        )
        counters = [r.get("counter") for r in d.runs(s, "increment")]
        ok = bool(counters) and set(counters) == {4 * increments}
        check(
            f"{d.label[s]}, 4 processes x {increments} update_user_value(+1) end at "
            f"{4 * increments:,}",
            [s],
            ok and not d.total(s, "increment", "errors"),
            f"final values {counters}" if counters else d.why(s, "increment"),
        )

    for key in ("threads", "procs"):
        ratio(
            f"SQLite, 4 {key[:-1]}s: >= 1.2x diskcache's ops/s",
            (sqlite, d.rate(sqlite, key)),
            ("diskcache", d.rate("diskcache", key)),
            lambda r: r >= 1.2,
            fmt_rate,
        )

    t = d.med(sqlite, "bulk_update", "op_ns")
    check(
        "SQLite Session.update of 20,000 keys: under 1 s",
        [sqlite],
        t is not None and t < 1e9,
        fmt_ns(t) if t else d.why(sqlite, "bulk_update"),
    )

    pair = d.r["e2e"].get("overhead", {})
    a, b = pair.get("dd-sqlite", {}), pair.get("no store", {})
    name = "data_app on SQLite: the library adds <= 10% to a callback round trip"
    if a.get("per_second") and b.get("per_second") and not a["errors"] + b["errors"]:
        ms, ms_bare = 1e3 / a["per_second"], 1e3 / b["per_second"]
        check(
            name,
            [sqlite],
            ms <= 1.1 * ms_bare,
            f"{ms:.2f} ms vs {ms_bare:.2f} ms without a store: {ms / ms_bare - 1:+.1%}",
        )
    elif pair:
        why = [e.get("failed") or e.get("first_error") for e in (a, b)]
        check(name, [sqlite], False, "; ".join(w for w in why if w) or "no round trips")

    side = d.r.get("serverside")
    if side:
        import serverside

        failed = ("FAIL", serverside.NAME, side.get("failed", ""))
        found.append(failed if "failed" in side else serverside.verdict(side))

    found += async_stall.targets(d.r.get("async", {}), d.label)

    for s in d.r["runs"]:
        wrong = sum(d.total(s, key, "wrong") for key in d.r["runs"][s])
        if wrong:
            check(f"{d.label[s]} returned only what was stored", [s], False, f"{wrong} wrong reads")
    return found
