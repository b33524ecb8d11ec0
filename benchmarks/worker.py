"""The benchmark worker: runs workloads against one store, inside that store's own process.

The orchestrator (``run.py``) starts one worker per store, with the Python of the virtual
environment the store needs (``.venv`` for everything but dash-database 1.0, ``.venv-v1`` for
1.0, which also imports as ``dash_database``). They speak a line protocol: the orchestrator
writes one JSON object per line on the worker's stdin, the worker answers with one JSON
object per line on its stdout. Every timing is taken here, around each single call, so the
protocol itself is never measured.

``python worker.py --memory CONFIG_JSON SIZES_MB`` is the other entry point: a fresh process
that measures, for each size in turn (comma-separated MB), the peak memory of storing and then
reading one DataFrame, and prints JSON.
"""

from __future__ import annotations

import contextlib
import gc
import json
import multiprocessing
import os
import pickle
import random
import sys
import threading
import time
import traceback
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stores import Store, open_store

now_ns = time.perf_counter_ns

SMALL_ITEMS = [
    ("count", 42),
    ("user_id", 1_234_567),
    ("page", 3),
    ("name", "Ada Lovelace"),
    ("theme", "dark"),
]
KEYS_PER_SESSION = 10
LIST_KEYS = [f"k{j}" for j in range(KEYS_PER_SESSION)]


def populated_value(i: int) -> int:
    return 1000 + i


def session_name(i: int) -> str:
    # Fixed width: 1.0 lists by str.startswith(user_id), so no id may be a prefix of another.
    return f"s{i:07d}"


def ten_kb_dict() -> dict[str, Any]:
    return {
        "rows": [{"id": i, "label": f"item {i:04d}", "price": i * 1.25} for i in range(300)],
        "filters": {"region": "EMEA", "year": 2024},
    }


def frame(size_mb: float) -> Any:
    import numpy as np
    import pandas as pd

    rows = int(size_mb * 1024 * 1024 / (8 * 8))
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.random((rows, 8)), columns=[f"c{i}" for i in range(8)])


def array(size_mb: float) -> Any:
    import numpy as np

    return np.random.default_rng(1).random(int(size_mb * 1024 * 1024 / 8))


# -- workloads --------------------------------------------------------------------------------


def timed(fn: Any, *args: Any) -> tuple[int, Any]:
    t0 = now_ns()
    result = fn(*args)
    return now_ns() - t0, result


def _part(p: dict[str, Any], items: list[Any]) -> list[Any]:
    """Return the share of ``items`` that round ``p["part"]`` of ``p["parts"]`` works on."""
    parts, part = p.get("parts", 1), p.get("part", 0)
    return items[part::parts]


def w_small(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    sessions = _part(p, [f"small-r{rep}-u{i:03d}" for i in range(p.get("sessions", 100))])
    st, gt, bad = [], [], 0
    for s in sessions:
        for k, v in SMALL_ITEMS:
            st.append(timed(store.store, s, k, v)[0])
    for s in sessions:
        for k, v in SMALL_ITEMS:
            ns, got = timed(store.get, s, k)
            gt.append(ns)
            bad += got != v
    return {"store_ns": st, "get_ns": gt, "wrong": bad}


def w_dict10k(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    value = ten_kb_dict()
    pairs = _part(p, [(f"d10k-r{rep}-u{i:02d}", f"v{j}") for i in range(20) for j in range(5)])
    st, gt, bad = [], [], 0
    for s, k in pairs:
        st.append(timed(store.store, s, k, value)[0])
    for s, k in pairs:
        ns, got = timed(store.get, s, k)
        gt.append(ns)
        bad += got != value
    return {
        "store_ns": st,
        "get_ns": gt,
        "wrong": bad,
        "pickled_bytes": len(pickle.dumps(value, pickle.HIGHEST_PROTOCOL)),
    }


_LARGE: dict[str, Any] = {}


def w_large(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    if not _LARGE:
        _LARGE["df"] = frame(1)
        _LARGE["ndarray"] = array(1)
    out: dict[str, Any] = {}
    for name, value in _LARGE.items():
        s = f"large-r{rep}"
        keys = [f"{name}{j}" for j in range(p.get("ops", 5))]
        st, gt, bad = [], [], 0
        for k in keys:
            st.append(timed(store.store, s, k, value)[0])
        for k in keys:
            ns, got = timed(store.get, s, k)
            gt.append(ns)
            same = got.equals(value) if name == "df" else np.array_equal(got, value)
            bad += not same
        store.delete_all(s)
        out[f"{name}_store_ns"] = st
        out[f"{name}_get_ns"] = gt
        out["wrong"] = out.get("wrong", 0) + bad
        out[f"{name}_pickled_bytes"] = len(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
    return out


def w_threads(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    n_threads, pairs = p.get("threads", 4), p.get("pairs", 100)
    barrier = threading.Barrier(n_threads + 1)
    results: list[dict[str, Any]] = [{} for _ in range(n_threads)]

    def run(t: int) -> None:
        s = f"thr-r{rep}-t{t}"
        lat: list[int] = []
        wrong = errors = 0
        barrier.wait()
        for i in range(pairs):
            value = {"thread": t, "i": i, "payload": "x" * 64}
            try:
                lat.append(timed(store.store, s, f"k{i % 10}", value)[0])
                ns, got = timed(store.get, s, f"k{i % 10}")
                lat.append(ns)
                wrong += got != value
            except Exception:
                errors += 1
        results[t] = {"lat": lat, "wrong": wrong, "errors": errors}

    threads = [threading.Thread(target=run, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    barrier.wait()
    t0 = now_ns()
    for th in threads:
        th.join()
    wall = now_ns() - t0
    ops = sum(len(r["lat"]) for r in results)
    return {
        "op_ns": [x for r in results for x in r["lat"]],
        "ops": ops,
        "wall_ns": wall,
        "wrong": sum(r["wrong"] for r in results),
        "errors": sum(r["errors"] for r in results),
    }


def _proc_child(
    config: dict[str, Any], idx: int, rep: int, pairs: int, barrier: Any, queue: Any
) -> None:
    lat: list[int] = []
    errors = wrong = 0
    first_error = ""
    try:
        store = open_store(config)
        store.get("warmup", "k")
    except Exception as exc:
        barrier.wait()
        queue.put(
            {
                "idx": idx,
                "lat": [],
                "errors": pairs * 4,
                "wrong": 0,
                "first_error": f"open: {type(exc).__name__}: {exc}",
            }
        )
        return
    own, shared = f"proc-r{rep}-p{idx}", f"proc-r{rep}-shared"
    barrier.wait()
    for i in range(pairs):
        value = (idx, i)
        for session, key in ((own, f"k{i % 20}"), (shared, f"p{idx}-k{i % 20}")):
            try:
                lat.append(timed(store.store, session, key, value)[0])
                ns, got = timed(store.get, session, key)
                lat.append(ns)
                wrong += got != value
            except Exception as exc:
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"
    store.close()
    queue.put(
        {"idx": idx, "lat": lat, "errors": errors, "wrong": wrong, "first_error": first_error}
    )


PRELOAD = {
    "dash_database": [
        "dash_database",
        "sqlitedict",
        "redis",
        "sqlalchemy",
        "psycopg",
        "dash_database.backends.redis",
        "dash_database.backends.postgres",
    ],
    "dash_database_v1": ["dash_database", "sqlitedict"],
    "sqlitedict": ["sqlitedict"],
    "diskcache": ["diskcache"],
    "redis": ["redis"],
    "psycopg": ["psycopg"],
}


def w_procs(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    n, pairs = p.get("processes", 4), p.get("pairs", 100)
    # forkserver: each child is forked from a clean server process that imported the store's
    # library once (no threads, no open connections), as gunicorn forks its workers from a
    # master; every child then opens its own handle, as an app does in each worker.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["stores", *PRELOAD.get(store.config["kind"], [])])
    barrier = ctx.Barrier(n + 1)
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_proc_child, args=(store.config, i, rep, pairs, barrier, queue))
        for i in range(n)
    ]
    for pr in procs:
        pr.start()
    barrier.wait(timeout=120)
    t0 = now_ns()
    results = []
    for _ in procs:
        try:
            results.append(queue.get(timeout=180))
        except Exception:
            break
    wall = now_ns() - t0
    hung = 0
    for pr in procs:
        pr.join(timeout=10)
        if pr.is_alive():
            hung += 1
            pr.kill()
            pr.join()
    # Lost writes: every key's final value must be the last one its writer stored.
    lost = 0
    for i in range(n):
        for session, prefix in ((f"proc-r{rep}-p{i}", ""), (f"proc-r{rep}-shared", f"p{i}-")):
            for k in range(20):
                last = max(j for j in range(pairs) if j % 20 == k)
                if store.get(session, f"{prefix}k{k}") != (i, last):
                    lost += 1
    shared_keys = set(store.list_keys(f"proc-r{rep}-shared"))
    expected = {f"p{i}-k{k}" for i in range(n) for k in range(20)}
    return {
        "op_ns": [x for r in results for x in r["lat"]],
        "ops": sum(len(r["lat"]) for r in results),
        "wall_ns": wall,
        "errors": sum(r["errors"] for r in results)
        + hung * pairs * 4
        + (n - len(results)) * pairs * 4,
        "wrong": sum(r["wrong"] for r in results),
        "lost": lost,
        "missing_from_listing": len(expected - shared_keys),
        "first_error": next((r["first_error"] for r in results if r["first_error"]), ""),
        "writes": n * pairs * 2,
    }


def w_list(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    n, ops, budget = p["n"], p["ops"], p["budget_s"] * 1e9
    rng = random.Random(rep)
    lat: list[int] = []
    wrong = 0
    for _ in range(ops):
        s = session_name(rng.randrange(n // 2))
        ns, keys = timed(store.list_keys, s)
        lat.append(ns)
        wrong += sorted(keys) != LIST_KEYS
        if sum(lat) > budget:
            break
    return {"op_ns": lat, "wrong": wrong}


def w_delete(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    n, ops, budget, start = p["n"], p["ops"], p["budget_s"] * 1e9, p["first"]
    lat: list[int] = []
    wrong = 0
    for j in range(ops):
        s = session_name(n - 1 - start - j)
        lat.append(timed(store.delete_all, s)[0])
        wrong += store.get(s, LIST_KEYS[0]) is not None
        if sum(lat) > budget:
            break
    return {"op_ns": lat, "wrong": wrong}


def typical_frame(size_mb: float) -> Any:
    """A DataFrame like an app's data: dates, a few categories as text, ids, rounded prices."""
    import numpy as np
    import pandas as pd

    rows = int(size_mb * 1024 * 1024 / 40)
    rng = np.random.default_rng(2)
    return pd.DataFrame(
        {
            "day": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 365, rows), "D"),
            "region": rng.choice(["EMEA", "APAC", "AMER", "LATAM"], rows),
            "product": rng.integers(0, 500, rows),
            "price": (rng.random(rows) * 100).round(2),
        }
    )


_PAYLOADS: dict[str, Any] = {}


def w_compression(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    """Size and time of CompressedSerializer per codec, against plain pickle (no store)."""
    from dash_database import CompressedSerializer, PickleSerializer

    if not _PAYLOADS:
        _PAYLOADS["10 KB dict"] = ten_kb_dict()
        _PAYLOADS["1 MB DataFrame, random floats"] = frame(1)
        _PAYLOADS["1 MB DataFrame, typical table"] = typical_frame(1)
    out: dict[str, Any] = {}
    for payload, value in _PAYLOADS.items():
        for codec in ("none", "zlib", "zstd", "lz4"):
            serializer: Any = (
                PickleSerializer() if codec == "none" else CompressedSerializer(codec=codec)
            )
            dumps_ns, loads_ns = [], []
            data = b""
            for _ in range(p.get("calls", 5)):
                ns, data = timed(serializer.dumps, value)
                dumps_ns.append(ns)
                loads_ns.append(timed(serializer.loads, data)[0])
            out[f"{payload}|{codec}"] = {
                "bytes": len(data),
                "dumps_ns": dumps_ns,
                "loads_ns": loads_ns,
            }
    return out


WORKLOADS = {
    "compression": w_compression,
    "small": w_small,
    "dict10k": w_dict10k,
    "large": w_large,
    "threads": w_threads,
    "procs": w_procs,
    "list": w_list,
    "delete": w_delete,
}


# -- peak memory ---------------------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hwm() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _peak_of(fn: Any, *args: Any) -> tuple[int, float, Any]:
    """Return (peak RSS growth in bytes, seconds, result) of ``fn(*args)``.

    The kernel's high-water mark of resident memory is reset to the current RSS (writing 5 to
    /proc/self/clear_refs), so the growth is exactly the peak reached during the call.
    """
    gc.collect()
    before = _rss()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    t0 = time.perf_counter()
    result = fn(*args)
    seconds = time.perf_counter() - t0
    return _hwm() - before, seconds, result


def measure_memory(config: dict[str, Any], size_mb: float) -> dict[str, Any]:
    df = frame(size_mb)
    size = int(df.memory_usage(index=True, deep=True).sum())
    store = open_store(config)
    store.store("mem-warmup", "k", 1)
    store.get("mem-warmup", "k")
    store_peak, store_s, _ = _peak_of(store.store, "mem", "df", df)
    del df
    get_peak, get_s, got = _peak_of(store.get, "mem", "df")
    ok = got is not None and len(got) > 0
    del got
    store.delete_all("mem")
    store.close()
    return {
        "size_bytes": size,
        "store_peak_bytes": store_peak,
        "get_peak_bytes": get_peak,
        "store_s": store_s,
        "get_s": get_s,
        "ok": ok,
    }


# -- the line protocol ---------------------------------------------------------------------


def serve() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing a library prints may corrupt the protocol
    handles: dict[str, Store] = {}
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            cmd = msg["cmd"]
            if cmd == "quit":
                break
            if cmd == "open":
                st = open_store(msg["config"])
                handles[msg["handle"]] = st
                st.store("warmup", "k", 1)
                for _ in range(10):  # opens connections and warms prepared statements
                    st.get("warmup", "k")
                st.delete_all("warmup")
                library = sys.modules.get(
                    "dash_database" if msg["config"]["kind"].startswith("dash_") else "", None
                )
                result: Any = {
                    "multiprocess": st.multiprocess,
                    "module": getattr(library, "__file__", None),
                }
            elif cmd == "populate":
                st = handles[msg["handle"]]
                sessions = [session_name(i) for i in range(msg["n"])]
                t0 = time.perf_counter()
                how = st.populate(sessions, LIST_KEYS, populated_value)
                result = {"seconds": time.perf_counter() - t0, "how": how}
            elif cmd == "run":
                st = handles[msg["handle"]]
                gc.collect()
                result = WORKLOADS[msg["workload"]](st, msg["rep"], msg.get("params", {}))
            elif cmd == "close":
                st = handles.pop(msg["handle"], None)
                if st is not None:
                    st.close()
                result = None
            else:
                raise ValueError(f"unknown command {cmd!r}")
            reply = {"ok": True, "result": result}
        except Exception as exc:
            reply = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        out.write(json.dumps(reply) + "\n")
        out.flush()
    for st in handles.values():
        with contextlib.suppress(Exception):
            st.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--memory":
        # The orchestrator sets MALLOC_MMAP_THRESHOLD_ so that large blocks are always mapped
        # afresh: memory freed by one measurement cannot hide part of the next.
        sizes = sorted(float(x) for x in sys.argv[3].split(","))
        cfg = json.loads(sys.argv[2])
        print(json.dumps({f"{mb:g}": measure_memory(cfg, mb) for mb in sizes}))
    else:
        serve()
