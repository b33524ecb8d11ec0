"""Turn the raw timings into the Markdown report and its PASS/FAIL targets (and a JSON file).

Latencies are per call, pooled over every repetition: "median / p99" (p99 is the nearest-rank
99th percentile). Throughputs (ops/s) are the median over repetitions of calls / wall time.
Every target compares numbers of this same run.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from typing import Any

OURS = ["dd-memory", "dd-sqlite", "dd-redis", "dd-postgres"]
SHARED = ["dd-sqlite", "dd-redis", "dd-postgres"]  # the backends several processes can share


class Data:
    def __init__(self, labels: dict[str, str], unavailable: dict[str, str], r: dict[str, Any]):
        self.label, self.unavailable, self.r = labels, unavailable, r

    def runs(self, store: str, key: str) -> list[dict[str, Any]]:
        return self.r["runs"].get(store, {}).get(key, [])

    def samples(self, store: str, key: str, field: str) -> list[int]:
        return [x for run in self.runs(store, key) for x in run.get(field, [])]

    def med(self, store: str, key: str, field: str) -> float | None:
        s = self.samples(store, key, field)
        return statistics.median(s) if s else None

    def rate(self, store: str, key: str, ops: str = "ops", wall: str = "wall_ns") -> float | None:
        rates = [r[ops] / r[wall] * 1e9 for r in self.runs(store, key) if r.get(wall)]
        return statistics.median(rates) if rates else None

    def total(self, store: str, key: str, field: str) -> int:
        return sum(int(r.get(field, 0)) for r in self.runs(store, key))

    def why(self, store: str, key: str) -> str:
        """Why a cell has no number."""
        if store in self.unavailable:
            return "not available"
        errors = self.r["errors"].get(store, {}).get(key)
        return f"error: {errors[0][:120]}" if errors else "not run"

    def cell(self, store: str, key: str, field: str) -> str:
        s = sorted(self.samples(store, key, field))
        if not s:
            return self.why(store, key)
        if len(s) < 5:
            return ", ".join(fmt_ns(x) for x in s) + f" ({len(s)} call{'s' * (len(s) > 1)})"
        return f"{fmt_ns(statistics.median(s))} / {fmt_ns(s[math.ceil(0.99 * len(s)) - 1])}"


def fmt_ns(ns: float | None) -> str:
    if ns is None:
        return "-"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale or unit == "µs":
            return f"{ns / scale:.3g} {unit}"
    raise AssertionError


def fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def tables(d: Data, stores: list[str], meta: dict[str, Any]) -> list[str]:
    out = ["\n### 1-3. Small values, ~10 KB dicts, 1 MB DataFrames: time per call, median / p99"]
    columns = [(w, f) for w in ("small", "dict10k", "large") for f in ("store_ns", "get_ns")]
    rows = [[d.label[s]] + [d.cell(s, w, f) for w, f in columns] for s in stores]
    header = [
        "small store",
        "small get",
        "10 KB store",
        "10 KB get",
        "1 MB DF store",
        "1 MB DF get",
    ]
    out.append(table(["store", *header], rows))

    out.append("\n### 4. Peak memory of one call: growth of the resident set (x: of the frame)")
    sizes = sorted({mb for m in d.r["memory"].values() for mb in m}, key=float)
    rows = []
    for s in (s for s in OURS if s in stores):
        m = d.r["memory"].get(s)
        cells = (
            [
                f"{m[mb][f] / 2**20:.1f} MiB ({m[mb][f] / m[mb]['size_bytes']:.2f}x)"
                for mb in sizes
                for f in ("store_peak_bytes", "get_peak_bytes")
            ]
            if m
            else []
        )
        rows.append([d.label[s], *(cells or [d.why(s, "memory")] * 2 * len(sizes))])
    out.append(
        table(["backend", *[f"{op} {mb} MB" for mb in sizes for op in ("store", "get")]], rows)
    )

    ns = meta["settings"]["sizes"]
    for num, workload in ((5, "list"), ("5b", "delete")):
        what = "List the keys" if workload == "list" else "Delete all keys"
        out.append(f"\n### {num}. {what} of one session among N sessions x 10 keys: median / p99")
        rows = []
        for s in (s for s in stores if d.runs(s, f"{workload}@{meta['settings']['mid']}")):
            lo, hi = (
                d.med(s, f"{workload}@{ns[0]}", "op_ns"),
                d.med(s, f"{workload}@{ns[-1]}", "op_ns"),
            )
            flat = f"{hi / lo:.2f}" if lo and hi else "-"
            rows.append([d.label[s], *[d.cell(s, f"{workload}@{n}", "op_ns") for n in ns], flat])
        out.append(table(["store", *[f"N = {n:,}" for n in ns], "largest / smallest N"], rows))

    out.append("\n### 6. 4 threads on one handle, 4 processes on one store: mixed store/get")
    rows = []
    for s in stores:
        procs = d.runs(s, "procs")
        lost = (
            f"{d.total(s, 'procs', 'lost')}"
            if procs
            else ("n/a" if s == "dd-memory" else d.why(s, "procs"))
        )
        rows.append(
            [
                d.label[s],
                fmt_rate(d.rate(s, "threads")),
                fmt_rate(d.rate(s, "procs")),
                f"{d.total(s, 'threads', 'errors') + d.total(s, 'procs', 'errors')}",
                lost,
            ]
        )
    out.append(
        table(["store", "4 threads ops/s", "4 processes ops/s", "errors", "lost writes"], rows)
    )

    out.append("\n### 7. Compare-and-set: 4 processes x update_user_value(+1), then plain stores")
    rows = [
        [
            d.label[s],
            ", ".join(str(r.get("counter")) for r in d.runs(s, "increment"))
            or d.why(s, "increment"),
            fmt_rate(d.rate(s, "increment")),
            fmt_rate(d.rate(s, "increment", "plain_ops", "plain_wall_ns")),
            str(d.total(s, "increment", "errors")),
        ]
        for s in SHARED
        if s in stores
    ]
    out.append(table(["backend", "final counter", "update ops/s", "store ops/s", "errors"], rows))

    out.append("\n### 8. One `db.session(sid).update()` of 20,000 keys: time per call")
    rows = [[d.label[s], d.cell(s, "bulk_update", "op_ns")] for s in OURS if s in stores]
    out.append(table(["backend", "time"], rows))

    out.append("\n### 9. End to end: examples/data_app.py under gunicorn")
    e2e = d.r["e2e"]
    if not e2e:
        out.append("Not run (--no-e2e).")
        return out
    rows = []
    labels = {**d.label, "no store": "no store (objects in a dict)"}
    runs = [("-w 4", n, e) for n, e in e2e["w4"].items()]
    for workers, name, e in runs + [("-w 1", n, e) for n, e in e2e["overhead"].items()]:
        label = f"{workers}, {labels.get(name, name)}"
        if "failed" in e:
            rows.append([label, f"failed: {e['failed'][:160]}", "", "", ""])
            continue
        rows.append(
            [
                label,
                f"{e['per_second']:.1f}",
                fmt_ns((e["p50_s"] or 0) * 1e9),
                fmt_ns((e["p99_s"] or 0) * 1e9),
                f"{e['errors']} of {e['round_trips']}",
            ]
        )
    out.append(table(["gunicorn, store", "round trips/s", "p50", "p99", "errors"], rows))
    out.append(
        "\n`-w 4`: 8 client threads; `-w 1`: 2. Each client is a browser: 9 chart callbacks"
        " (read the 10,000-row frame) per Generate (store a new one). The load generator "
        "shares the cores with gunicorn."
    )
    return out


def write(
    meta: dict[str, Any],
    stores: list[tuple[str, str]],
    unavailable: dict[str, str],
    results: dict[str, Any],
    out_dir: str,
) -> int:
    d = Data(dict(stores), unavailable, results)
    v = meta["versions"]
    head = [
        f"## dash_database benchmarks ({meta['mode']} run, {meta['started_utc']})",
        "",
        f"Command: `{meta['command']}`. Took {meta['seconds']:.0f} s on {os.cpu_count()} CPUs; "
        f"load average {meta['loadavg_start'][0]:.2f} at the start, "
        f"{meta['loadavg_end'][0]:.2f} at the end.",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
    ]
    if unavailable:
        head += [
            "",
            "Not available: " + "; ".join(f"{d.label[s]} ({w})" for s, w in unavailable.items()),
        ]
    import targets  # it imports this module's helpers

    found = targets.evaluate(d, meta)
    lines = [f"- **{status}** {name}: {detail}" for status, name, detail in found]
    body = [*head, *tables(d, [s for s, _ in stores], meta), "\n### Targets", *lines]
    counts = {k: sum(t[0] == k for t in found) for k in ("PASS", "FAIL", "N/A")}
    body.append(f"\n{counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['N/A']} N/A.")
    text = "\n".join(body) + "\n"
    print(text, flush=True)
    base = os.path.join(out_dir, f"{meta['mode']}-{meta['started_utc'].replace(':', '')}")
    with open(base + ".md", "w") as f:
        f.write(text)
    with open(base + ".json", "w") as f:
        json.dump(
            {"meta": meta, "unavailable": unavailable, "targets": found, **results}, f, indent=1
        )
    print(f"Wrote {base}.md and {base}.json")
    return 0
