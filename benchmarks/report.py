"""Turn the raw timings into the markdown report, the PASS/FAIL targets, JSON and a PNG chart.

Latencies are per call, pooled over every repetition of the run: "median / p99" (p99 is the
nearest-rank 99th percentile; with fewer than 100 calls it is the slowest or near it).
Throughputs (ops/s) are the median over repetitions of (calls / wall time).
"""

from __future__ import annotations

import json
import math
import os
import statistics
from typing import Any

PEERS = ["v1", "sqlitedict", "diskcache", "sqlite3", "redis-py", "psycopg"]
OURS = ["dd-memory", "dd-sqlite", "dd-redis", "dd-postgres"]
PERSISTENT_OURS = ["dd-sqlite", "dd-redis", "dd-postgres"]


def q(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[max(0, math.ceil(p * len(s)) - 1)]


class Data:
    def __init__(
        self,
        stores: list[tuple[str, str, str]],
        unavailable: dict[str, str],
        results: dict[str, Any],
    ) -> None:
        self.stores = stores
        self.label = {s: label for s, label, _ in stores}
        self.unavailable = unavailable
        self.r = results

    def runs(self, store: str, key: str) -> list[dict[str, Any]]:
        return self.r["runs"].get(store, {}).get(key, [])

    def samples(self, store: str, key: str, field: str) -> list[int]:
        return [x for run in self.runs(store, key) for x in run.get(field, [])]

    def lat(self, store: str, key: str, field: str) -> dict[str, Any] | None:
        s = self.samples(store, key, field)
        if not s:
            return None
        return {"median_ns": statistics.median(s), "p99_ns": q(s, 0.99), "n": len(s)}

    def med(self, store: str, key: str, field: str) -> float | None:
        s = self.samples(store, key, field)
        return statistics.median(s) if s else None

    def rate(self, store: str, key: str) -> float | None:
        rates = [r["ops"] / (r["wall_ns"] / 1e9) for r in self.runs(store, key) if r["wall_ns"]]
        return statistics.median(rates) if rates else None

    def total(self, store: str, key: str, field: str) -> int:
        return sum(int(r.get(field, 0)) for r in self.runs(store, key))

    def why_missing(self, store: str, key: str) -> str:
        if store in self.unavailable:
            return "not available"
        skipped = self.r["skipped"].get(store, {}).get(key)
        if skipped:
            return skipped
        errors = self.r["errors"].get(store, {}).get(key)
        if errors:
            return f"error: {errors[0][:160]}"
        return "not run"


def fmt_ns(ns: float | None) -> str:
    if ns is None:
        return "-"
    if ns < 1e3:
        return f"{ns / 1e3:.2f} µs"
    if ns < 1e6:
        return f"{ns / 1e3:.3g} µs" if ns < 1e5 else f"{ns / 1e3:.0f} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.3g} ms" if ns < 1e8 else f"{ns / 1e6:.0f} ms"
    return f"{ns / 1e9:.3g} s"


def fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def build(meta: dict[str, Any], d: Data) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    out: list[str] = []
    summary: dict[str, Any] = {}
    stores = [s for s, _, _ in d.stores]

    def cell(store: str, key: str, field: str) -> str:
        lat = d.lat(store, key, field)
        summary.setdefault(store, {})[f"{key}.{field}"] = lat
        if lat is None:
            return d.why_missing(store, key)
        if lat["n"] < 5:
            calls = ", ".join(fmt_ns(x) for x in sorted(d.samples(store, key, field)))
            return f"{calls} ({lat['n']} call{'s' if lat['n'] > 1 else ''})"
        return f"{fmt_ns(lat['median_ns'])} / {fmt_ns(lat['p99_ns'])}"

    # 1, 2
    out.append(
        "\n### 1-2. Small values (100 sessions x 5 keys) and ~10 KB dicts: "
        "time per call, median / p99"
    )
    rows = []
    for s in stores:
        rows.append(
            [
                d.label[s],
                cell(s, "small", "store_ns"),
                cell(s, "small", "get_ns"),
                cell(s, "dict10k", "store_ns"),
                cell(s, "dict10k", "get_ns"),
            ]
        )
    out.append(
        table(["store", "small store", "small get", "10 KB dict store", "10 KB dict get"], rows)
    )
    size10k = next((r["pickled_bytes"] for s in stores for r in d.runs(s, "dict10k")), None)
    out.append(f"\n10 KB dict: {size10k} bytes pickled.")

    # 3
    out.append(
        "\n### 3. ~1 MB values: time per call, median / p99; peak memory of one store or get call"
    )
    mem_sizes = sorted({int(k) for m in d.r["memory"].values() for k in m})
    mem_hdr = []
    for mb in mem_sizes:
        mem_hdr += [f"peak RSS, store {mb} MB DF", f"peak RSS, get {mb} MB DF"]
    rows = []
    for s in stores:
        row = [
            d.label[s],
            cell(s, "large", "df_store_ns"),
            cell(s, "large", "df_get_ns"),
            cell(s, "large", "ndarray_store_ns"),
            cell(s, "large", "ndarray_get_ns"),
        ]
        for mb in mem_sizes:
            m = d.r["memory"].get(s, {}).get(str(mb))
            if m is None:
                row += [d.why_missing(s, f"memory{mb}")] * 2
            else:
                for field in ("store_peak_bytes", "get_peak_bytes"):
                    row.append(f"{m[field] / 2**20:.1f} MiB ({m[field] / m['size_bytes']:.2f}x)")
        rows.append(row)
    out.append(
        table(
            [
                "store",
                "1 MB DataFrame store",
                "1 MB DataFrame get",
                "1 MB ndarray store",
                "1 MB ndarray get",
                *mem_hdr,
            ],
            rows,
        )
    )
    any_mem = next(iter(d.r["memory"].values()), {})
    sizes_txt = ", ".join(
        f"{mb} MB DataFrame = {v['size_bytes'] / 2**20:.1f} MiB in memory"
        for mb, v in sorted(any_mem.items(), key=lambda kv: float(kv[0]))
    )
    out.append(
        "\nPeak memory is the growth of the process's resident set (RSS) during one call, "
        "measured in a fresh process per store (MALLOC_MMAP_THRESHOLD_=131072, so large blocks "
        "are always mapped afresh): the kernel's high-water mark (VmHWM) is reset to the "
        "current RSS by writing 5 to /proc/self/clear_refs, the call runs, and VmHWM minus the "
        "RSS before the call is reported; (x) is that growth divided by the DataFrame's size. "
        "It counts every allocation (Python, numpy, the SQLite and driver C libraries), not "
        f"only Python objects. {sizes_txt}. The plain dict stores a reference, so it needs "
        "no memory."
    )

    # 3: compression
    comp = d.runs("dd-memory", "compression")
    if comp:
        out.append(
            "\n### 3b. Compression (`DashDatabase(compression=...)`): stored size and time per "
            "value, median"
        )
        rows = []
        plain: dict[str, int] = {}
        for name in comp[0]:
            payload, codec = name.split("|")
            size = comp[0][name]["bytes"]
            plain.setdefault(payload, size)
            dumps = statistics.median(x for run in comp for x in run[name]["dumps_ns"])
            loads = statistics.median(x for run in comp for x in run[name]["loads_ns"])
            rows.append(
                [
                    payload,
                    codec,
                    f"{size:,} bytes ({size / plain[payload]:.0%})",
                    fmt_ns(dumps),
                    fmt_ns(loads),
                ]
            )
        out.append(
            table(
                ["value", "compression", "stored size (of pickle)", "serialize", "read back"], rows
            )
        )
        out.append(
            "\nThe serializer alone, in one process (no store): `none` is plain pickle; the "
            "codecs run at their default levels (zlib 6, zstd 3, lz4 0) on serialized values of "
            "1 KiB or more, and keep a value as it is when compression does not make it smaller "
            "(one byte of header either way). A smaller value also costs less to send and "
            "store: compare with the store times above."
        )

    # 4, 5
    sizes = sorted(
        {int(k.split("@")[1]) for s in stores for k in d.r["runs"].get(s, {}) if "@" in k}
        | {int(k.split("@")[1]) for s in stores for k in d.r["skipped"].get(s, {})}
    )
    for num, workload, title in (
        (4, "list", "list the keys of one session"),
        (5, "delete", "delete all keys of one session"),
    ):
        out.append(
            f"\n### {num}. {title.capitalize()} in a store of N sessions x 10 keys: "
            "time per call, median / p99"
        )
        rows = []
        for s in stores:
            row = [d.label[s]] + [cell(s, f"{workload}@{n}", "op_ns") for n in sizes]
            lo, hi = (
                d.med(s, f"{workload}@{sizes[0]}", "op_ns"),
                d.med(s, f"{workload}@{sizes[-1]}", "op_ns"),
            )
            row.append(f"{hi / lo:.2f}" if lo and hi else "-")
            rows.append(row)
        out.append(
            table(
                ["store", *[f"N = {n:,}" for n in sizes], f"N={sizes[-1]:,} / N={sizes[0]:,}"], rows
            )
        )
    how = {s: {n: v["how"] for n, v in p.items()} for s, p in d.r["populate"].items()}
    pop_secs = {
        s: {n: round(v["seconds"], 2) for n, v in p.items()} for s, p in d.r["populate"].items()
    }
    summary["_populate"] = {"how": how, "seconds": pop_secs}

    # 6, 7
    out.append(
        "\n### 6-7. Concurrency: 4 threads (own sessions) and 4 processes "
        "(same store), mixed store/get"
    )
    rows = []
    for s in stores:
        t_rate = d.rate(s, "threads")
        thr = d.lat(s, "threads", "op_ns")
        summary.setdefault(s, {})["threads"] = {
            "ops_per_s": t_rate,
            "lat": thr,
            "wrong": d.total(s, "threads", "wrong"),
            "errors": d.total(s, "threads", "errors"),
        }
        row = [d.label[s]]
        if thr is None:
            row += [d.why_missing(s, "threads"), "", ""]
        else:
            row += [
                fmt_rate(t_rate),
                f"{fmt_ns(thr['median_ns'])} / {fmt_ns(thr['p99_ns'])}",
                f"{d.total(s, 'threads', 'errors')} / {d.total(s, 'threads', 'wrong')}",
            ]
        prc = d.lat(s, "procs", "op_ns")
        runs = d.runs(s, "procs")
        if s in ("dict", "dd-memory"):
            row += ["n/a (single process)", "", "", ""]
        elif not runs:
            row += [d.why_missing(s, "procs"), "", "", ""]
        else:
            errors = d.total(s, "procs", "errors")
            lost = d.total(s, "procs", "lost") + d.total(s, "procs", "missing_from_listing")
            wrong = d.total(s, "procs", "wrong")
            writes = d.total(s, "procs", "writes")
            summary[s]["procs"] = {
                "ops_per_s": d.rate(s, "procs"),
                "lat": prc,
                "errors": errors,
                "lost": lost,
                "wrong": wrong,
                "writes": writes,
                "first_error": next((r["first_error"] for r in runs if r["first_error"]), ""),
            }
            row += [
                fmt_rate(d.rate(s, "procs")),
                f"{fmt_ns(prc['median_ns'])} / {fmt_ns(prc['p99_ns'])}" if prc else "-",
                f"{errors} / {wrong}",
                f"{lost} of {writes}",
            ]
        rows.append(row)
    out.append(
        table(
            [
                "store",
                "4 threads ops/s",
                "thread call median / p99",
                "thread errors / wrong reads",
                "4 processes ops/s",
                "process call median / p99",
                "process errors / wrong reads",
                "lost writes",
            ],
            rows,
        )
    )
    first_errors = {
        s: summary[s]["procs"]["first_error"]
        for s in stores
        if summary.get(s, {}).get("procs", {}).get("first_error")
    }
    for s, e in first_errors.items():
        out.append(f"\n{d.label[s]}, first process error: `{e[:200]}`")

    # 8
    out.append("\n### 8. End to end: examples/data_app.py under gunicorn -w 4")
    if d.r.get("e2e_note"):
        out.append(d.r["e2e_note"])
    else:
        rows = []
        for s in ("dd-sqlite", "dd-redis", "dd-postgres"):
            e = d.r["e2e"].get(s)
            if e is None and s not in meta["settings"]["e2e_backends"]:
                rows.append([d.label[s], "not run (--quick drives only the default)", "", "", ""])
            elif e is None:
                rows.append([d.label[s], d.why_missing(s, "e2e"), "", "", ""])
            else:
                rows.append(
                    [
                        d.label[s],
                        f"{e['per_second']:.1f}",
                        fmt_ns(e["p50_s"] * 1e9 if e["p50_s"] else None),
                        fmt_ns(e["p99_s"] * 1e9 if e["p99_s"] else None),
                        f"{e['errors']} of {e['round_trips']}",
                    ]
                )
        rows.append(
            ["dash_database memory", "n/a (each gunicorn worker has its own memory)", "", "", ""]
        )
        out.append(table(["backend", "round trips/s", "p50", "p99", "errors"], rows))
        clients = next((e["clients"] for e in d.r["e2e"].values()), "?")
        out.append(
            f"\n{clients} client threads in the benchmark process (requests), each a "
            "browser with its own cookie; 9 chart callbacks (read a 10,000-row DataFrame "
            "from the session) per Generate callback (write a new one). All backends' "
            "apps run at once and take the load in turns: after a warm-up, "
            f"{meta['settings']['e2e_rounds']} round(s) in shuffled order, "
            f"{meta['settings']['e2e_seconds']:.0f} s per backend in all. The load "
            "generator shares the 2 cores with gunicorn."
        )

    targets = evaluate(d)
    out.append("\n### Targets (ratios of medians from this run)")
    for t in targets:
        out.append(f"- **{t['status']}** {t['target']}: {t['detail']}")
    return "\n".join(out), targets, summary


def evaluate(d: Data) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []

    def add(status: str, target: str, detail: str) -> None:
        targets.append({"status": status, "target": target, "detail": detail})

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a and b else None

    sizes = sorted(
        {int(k.split("@")[1]) for runs in d.r["runs"].values() for k in runs if "@" in k}
    )
    lo, hi = (sizes[0], sizes[-1]) if sizes else (None, None)
    mid = 10_000 if 10_000 in sizes else hi
    for workload, name in (("list", "List keys"), ("delete", "Delete-all")):
        for s in OURS:
            if s in d.unavailable:
                add("N/A", f"{name}, {d.label[s]}: flat in N", d.unavailable[s])
                continue
            a, b = d.med(s, f"{workload}@{lo}", "op_ns"), d.med(s, f"{workload}@{hi}", "op_ns")
            r = ratio(b, a)
            add(
                "PASS" if r is not None and r <= 2 else "FAIL",
                f"{name}, {d.label[s]}: N={hi:,} within 2x of N={lo:,}",
                f"{fmt_ns(b)} vs {fmt_ns(a)} = {r:.2f}x" if r else "no data",
            )
        v1 = d.med("v1", f"{workload}@{mid}", "op_ns")
        for s in OURS:
            if s in d.unavailable:
                continue
            ours = d.med(s, f"{workload}@{mid}", "op_ns")
            r = ratio(v1, ours)
            add(
                "PASS" if r is not None and r >= 200 else "FAIL",
                f"{name}, {d.label[s]}: >= 200x faster than 1.0 at N={mid:,}",
                f"1.0 {fmt_ns(v1)} vs {fmt_ns(ours)} = {r:,.0f}x" if r else "no data",
            )

    for field, need in (("get_ns", 10), ("store_ns", 2)):
        v1, ours = d.med("v1", "small", field), d.med("dd-sqlite", "small", field)
        r = ratio(v1, ours)
        add(
            "PASS" if r is not None and r >= need else "FAIL",
            f"Default (sqlite) backend, small values: {field[:-3]} >= {need}x faster than 1.0",
            f"1.0 {fmt_ns(v1)} vs {fmt_ns(ours)} = {r:.2f}x" if r else "no data",
        )

    for ours, raw, limit in (("dd-redis", "redis-py", 1.3), ("dd-postgres", "psycopg", 1.5)):
        if ours in d.unavailable or raw in d.unavailable:
            add(
                "N/A",
                f"{d.label[ours]} within {limit}x of {d.label[raw]}",
                d.unavailable.get(ours) or d.unavailable.get(raw, ""),
            )
            continue
        for key, field, what in (
            ("small", "store_ns", "small store"),
            ("small", "get_ns", "small get"),
            ("dict10k", "store_ns", "10 KB store"),
            ("dict10k", "get_ns", "10 KB get"),
            ("large", "df_store_ns", "1 MB DataFrame store"),
            ("large", "df_get_ns", "1 MB DataFrame get"),
            (f"list@{mid}", "op_ns", f"list at N={mid:,}"),
            (f"delete@{mid}", "op_ns", f"delete-all at N={mid:,}"),
        ):
            a, b = d.med(ours, key, field), d.med(raw, key, field)
            r = ratio(a, b)
            add(
                "PASS" if r is not None and r <= limit else "FAIL",
                f"{d.label[ours]} within {limit}x of {d.label[raw]}: {what}",
                f"{fmt_ns(a)} vs {fmt_ns(b)} = {r:.2f}x" if r else "no data",
            )

    def df_total(s: str) -> float | None:
        a, b = d.med(s, "large", "df_store_ns"), d.med(s, "large", "df_get_ns")
        return a + b if a and b else None

    peers = {p: df_total(p) for p in PEERS if df_total(p)}
    best = min(peers, key=lambda p: peers[p]) if peers else None
    ours = df_total("dd-sqlite")
    for p in ("v1", "diskcache"):
        r = ratio(ours, peers.get(p))
        add(
            "PASS" if r is not None and r <= 1 else "FAIL",
            f"Large values, default (sqlite) backend: 1 MB DataFrame store+get at least as fast "
            f"as {d.label[p]}",
            f"{fmt_ns(ours)} vs {fmt_ns(peers.get(p))} = {r:.2f}x" if r else "no data",
        )
    r = ratio(ours, peers[best]) if best else None
    add(
        "PASS" if r is not None and r <= 1.5 else "FAIL",
        "Large values, default (sqlite) backend: 1 MB DataFrame store+get within 1.5x of the "
        "fastest peer (peers: every store but this project's and the plain dict, which keeps a "
        "reference and serializes nothing)",
        f"{fmt_ns(ours)} vs {d.label[best]} {fmt_ns(peers[best])} = {r:.2f}x"
        if r and best
        else "no data",
    )
    for s in ("dd-redis", "dd-postgres"):
        other = df_total(s)
        if s in d.unavailable or not other or not best:
            continue
        parts = [f"{d.label[p]} {other / peers[p]:.2f}x" for p in ("v1", "diskcache") if p in peers]
        parts.append(f"fastest peer ({d.label[best]}) {other / peers[best]:.2f}x")
        add(
            "info",
            f"Large values, {d.label[s]} (the target is set for the default backend)",
            f"1 MB DataFrame store+get {fmt_ns(other)}; ratio to " + ", ".join(parts),
        )
    big = max((int(k) for m in d.r["memory"].values() for k in m), default=None)
    for s in OURS:
        name = f"Peak memory, {d.label[s]}: storing a {big} MB DataFrame <= 2.5x its size"
        if s in d.unavailable:
            add("N/A", name, d.unavailable[s])
            continue
        m = d.r["memory"].get(s, {}).get(str(big))
        if m is None:
            add("FAIL", name, d.why_missing(s, f"memory{big}"))
            continue
        r = m["store_peak_bytes"] / m["size_bytes"]
        add(
            "PASS" if r <= 2.5 else "FAIL",
            name,
            f"{m['store_peak_bytes'] / 2**20:.1f} MiB for {m['size_bytes'] / 2**20:.1f} MiB = "
            f"{r:.2f}x (RSS high-water mark)",
        )
    for s in PERSISTENT_OURS:
        name = f"4 processes, {d.label[s]}: zero errors and zero lost writes"
        if s in d.unavailable:
            add("N/A", name, d.unavailable[s])
            continue
        runs = d.runs(s, "procs")
        errors = d.total(s, "procs", "errors") + len(d.r["errors"].get(s, {}).get("procs", []))
        lost = d.total(s, "procs", "lost") + d.total(s, "procs", "missing_from_listing")
        wrong = d.total(s, "procs", "wrong")
        ok = runs and errors == 0 and lost == 0 and wrong == 0
        add(
            "PASS" if ok else "FAIL",
            name,
            f"{len(runs)} runs, {errors} errors, {lost} lost writes, {wrong} wrong reads",
        )
    for s in d.r["runs"]:
        wrong = sum(d.total(s, key, "wrong") for key in d.r["runs"][s])
        if wrong:
            add("WARN", f"{d.label[s]} returned wrong values", f"{wrong} wrong reads in total")
    return targets


def chart(d: Data, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stores = [s for s, _, _ in d.stores if s not in d.unavailable]
    labels = [d.label[s] for s in stores]
    fig, axes = plt.subplots(2, 3, figsize=(20, 11))
    panels = [
        (
            "Small values: median per call",
            [("small", "store_ns", "store"), ("small", "get_ns", "get")],
        ),
        (
            "~10 KB dict: median per call",
            [("dict10k", "store_ns", "store"), ("dict10k", "get_ns", "get")],
        ),
        (
            "1 MB DataFrame: median per call",
            [("large", "df_store_ns", "store"), ("large", "df_get_ns", "get")],
        ),
    ]
    for ax, (title, series) in zip(axes[0], panels):
        width = 0.8 / len(series)
        for i, (key, field, name) in enumerate(series):
            vals = [(d.med(s, key, field) or float("nan")) / 1e3 for s in stores]
            ax.barh([y + i * width for y in range(len(stores))], vals, height=width, label=name)
        ax.set_yticks([y + width / 2 for y in range(len(stores))], labels)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("µs (log scale)")
        ax.set_title(title)
        ax.legend()
    sizes = sorted(
        {int(k.split("@")[1]) for runs in d.r["runs"].values() for k in runs if "@" in k}
    )
    colors = plt.get_cmap("tab20").colors
    for ax, workload in zip(axes[1][:2], ("list", "delete")):
        for i, s in enumerate(stores):
            pts = [(n, d.med(s, f"{workload}@{n}", "op_ns")) for n in sizes]
            pts = [(n, v / 1e3) for n, v in pts if v]
            if pts:
                ours = s.startswith("dd-")
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    marker="o",
                    color=colors[(2 * i) % 20 if i < 10 else 1],
                    label=d.label[s],
                    linewidth=2.5 if ours else 1.2,
                    linestyle="-" if ours else "--",
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sessions in the store (x 10 keys)")
        ax.set_ylabel("µs per call, median (log scale)")
        ax.set_title(f"{'List keys' if workload == 'list' else 'Delete all'} of one session")
        ax.legend(fontsize=7, loc="center right", bbox_to_anchor=(1.0, 0.6), framealpha=0.6)
    ax = axes[1][2]
    width = 0.4
    for i, key in enumerate(("threads", "procs")):
        vals = [d.rate(s, key) or 0 for s in stores]
        ax.barh(
            [y + i * width for y in range(len(stores))],
            vals,
            height=width,
            label="4 threads" if key == "threads" else "4 processes",
        )
    ax.set_yticks([y + width / 2 for y in range(len(stores))], labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("aggregate ops/s (log scale)")
    ax.set_title("Concurrency: mixed store/get")
    ax.legend()
    fig.suptitle("dash_database benchmarks (lower is better except ops/s)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(
    meta: dict[str, Any],
    stores: list[tuple[str, str, str]],
    unavailable: dict[str, str],
    results: dict[str, Any],
    out_dir: str,
) -> int:
    d = Data(stores, unavailable, results)
    body, targets, summary = build(meta, d)
    head = [
        f"## dash_database benchmarks ({meta['mode']} run, {meta['started_utc']})",
        "",
        f"Command: `{meta.get('command', 'python benchmarks/run.py')}`",
        "",
        "Versions: this project at commit "
        + meta["versions"].get("repository", "?")
        + "; "
        + ", ".join(
            f"{name} {meta['versions'].get(key, '?')}"
            for name, key in (
                ("dash-database", "dash-database (v1 venv)"),
                ("sqlitedict", "sqlitedict"),
                ("diskcache", "diskcache"),
                ("redis-py", "redis"),
                ("psycopg", "psycopg"),
                ("SQLAlchemy", "sqlalchemy"),
                ("pandas", "pandas"),
                ("gunicorn", "gunicorn"),
            )
        )
        + "; "
        + meta["versions"].get("redis-server", "?").split(" sha=")[0]
        + "; "
        + meta["versions"].get("postgres", "?")
        + ".",
        "",
        f"Took {meta['seconds']:.0f} s on {meta['machine']['cpus']} CPUs "
        f"({meta['machine']['platform']}, Python {meta['machine']['python']}). Machine load: "
        f"load average {meta['loadavg_start'][0]:.2f} at the start, "
        f"{meta['loadavg_end'][0]:.2f} at the end; CPU busy {meta['cpu_busy_before']:.0%} "
        "in the 2 s before the run (other users), "
        + (
            f"{meta['cpu_busy_mean']:.0%} on average during it (this run included)."
            if meta["cpu_busy_mean"] is not None
            else "not sampled during it."
        ),
        "",
        "Workloads timed on one thread (1-5) run with the store's worker process and the Redis "
        "and PostgreSQL servers on one CPU, so that every store pays the same for a round trip; "
        "the threads, processes, memory and end-to-end workloads run on every CPU.",
        "",
    ]
    if unavailable:
        head.append(
            "Not available in this run: "
            + "; ".join(f"{d.label[s]} ({why})" for s, why in unavailable.items())
            + "."
        )
        head.append("")
    report_md = "\n".join(head) + body + "\n"
    print(report_md)
    stamp = meta["started_utc"].replace(":", "").replace("-", "")
    os.makedirs(out_dir, exist_ok=True)
    data = {
        "meta": meta,
        "stores": [{"id": s, "label": label, "what": what} for s, label, what in stores],
        "unavailable": unavailable,
        "summary": summary,
        "targets": targets,
        "memory": results["memory"],
        "e2e": results["e2e"],
        "e2e_note": results.get("e2e_note"),
        "skipped": results["skipped"],
        "errors": results["errors"],
        "populate": results["populate"],
        # The median of each call (a worker's turn) of the timed single-thread workloads, in
        # run order: shows whether one store's turns drift apart from another's.
        "turn_medians_ns": {
            store: {
                f"{workload}.{field}": [
                    statistics.median(run[field]) for run in runs if run.get(field)
                ]
                for workload, runs in by_workload.items()
                if workload in ("small", "dict10k")
                for field in ("store_ns", "get_ns")
            }
            for store, by_workload in results["runs"].items()
        },
    }
    base = os.path.join(out_dir, f"{meta['mode']}-{stamp}")
    with open(base + ".json", "w") as f:
        json.dump(data, f, indent=1, default=str)
    with open(base + ".md", "w") as f:
        f.write(report_md)
    try:
        chart(d, base + ".png")
        png = base + ".png"
    except Exception as exc:
        png = f"(chart failed: {type(exc).__name__}: {exc})"
    for name, src in (
        ("latest.json", base + ".json"),
        ("latest.md", base + ".md"),
        ("latest.png", base + ".png"),
    ):
        if os.path.exists(src):
            dst = os.path.join(out_dir, name)
            if os.path.lexists(dst):
                os.remove(dst)
            os.symlink(os.path.basename(src), dst)
    print(f"Wrote {base}.json, {base}.md and {png}", flush=True)
    counts = {k: sum(t["status"] == k for t in targets) for k in ("PASS", "FAIL", "N/A")}
    print(
        f"Target checks: {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['N/A']} N/A "
        f"(and {len(targets) - sum(counts.values())} info/warning lines)."
    )
    return 0
