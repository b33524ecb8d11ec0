"""The workloads: each runs inside one store's worker process and times every single call.

A workload takes a store handle, the repetition number and its parameters, and returns plain
JSON: lists of nanoseconds per call (``*_ns``), wall times, and counts of wrong reads, errors
and lost writes, which the report checks. Values are built here, the same for every store.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from typing import Any, Callable

from stores import DashDatabaseStore, Store, open_store

now_ns = time.perf_counter_ns

SMALL_ITEMS = [
    ("count", 42),
    ("user_id", 1_234_567),
    ("page", 3),
    ("name", "Ada"),
    ("theme", "dark"),
]
LIST_KEYS = [f"k{j}" for j in range(10)]


def populated_value(i: int) -> int:
    return 1000 + i


def session_name(i: int) -> str:
    # Fixed width: 1.0 lists by str.startswith(user_id), so no id may be a prefix of another.
    return f"s{i:07d}"


def ten_kb_dict() -> dict[str, Any]:
    rows = [{"id": i, "label": f"item {i:04d}", "price": i * 1.25} for i in range(300)]
    return {"rows": rows, "filters": {"region": "EMEA", "year": 2024}}


def frame(size_mb: float) -> Any:
    """A DataFrame of random floats, 8 columns, ``size_mb`` MB of data."""
    import numpy as np
    import pandas as pd

    rows = int(size_mb * 1024 * 1024 / 64)
    data = np.random.default_rng(0).random((rows, 8))
    return pd.DataFrame(data, columns=[f"c{i}" for i in range(8)])


def timed(fn: Callable[..., Any], *args: Any) -> tuple[int, Any]:
    t0 = now_ns()
    result = fn(*args)
    return now_ns() - t0, result


def store_then_get(store: Store, pairs: list[tuple[str, str]], value: Any) -> dict[str, Any]:
    """Store ``value`` under every (session, key), then read each back and compare."""
    same: Callable[[Any], bool] = getattr(value, "equals", lambda got: got == value)
    store_ns = [timed(store.store, s, k, value)[0] for s, k in pairs]
    get_ns, wrong = [], 0
    for s, k in pairs:
        ns, got = timed(store.get, s, k)
        get_ns.append(ns)
        wrong += not same(got)
    return {"store_ns": store_ns, "get_ns": get_ns, "wrong": wrong}


def w_small(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    sessions = [f"small-r{rep}-u{i}" for i in range(p["sessions"])]
    st = [timed(store.store, s, k, v)[0] for s in sessions for k, v in SMALL_ITEMS]
    gt, wrong = [], 0
    for s in sessions:
        for k, v in SMALL_ITEMS:
            ns, got = timed(store.get, s, k)
            gt.append(ns)
            wrong += got != v
    return {"store_ns": st, "get_ns": gt, "wrong": wrong}


def w_dict10k(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    pairs = [(f"d10k-r{rep}-u{i}", f"v{j}") for i in range(p["sessions"]) for j in range(5)]
    return store_then_get(store, pairs, ten_kb_dict())


_FRAME: list[Any] = []


def w_large(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    if not _FRAME:
        _FRAME.append(frame(1))
    out = store_then_get(store, [(f"large-r{rep}", f"df{j}") for j in range(5)], _FRAME[0])
    store.delete_all(f"large-r{rep}")
    return out


def w_threads(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    """4 threads on one handle, each 100 store/get pairs in its own session."""
    n, pairs = 4, p.get("pairs", 100)
    barrier = threading.Barrier(n + 1)
    results: list[dict[str, Any]] = [{"op_ns": [], "wrong": 0, "errors": 0} for _ in range(n)]

    def run(t: int) -> None:
        mine = results[t]
        barrier.wait()
        for i in range(pairs):
            value = {"thread": t, "i": i, "payload": "x" * 64}
            try:
                mine["op_ns"].append(timed(store.store, f"thr-r{rep}-t{t}", f"k{i % 10}", value)[0])
                ns, got = timed(store.get, f"thr-r{rep}-t{t}", f"k{i % 10}")
                mine["op_ns"].append(ns)
                mine["wrong"] += got != value
            except Exception:
                mine["errors"] += 1

    threads = [threading.Thread(target=run, args=(t,)) for t in range(n)]
    for th in threads:
        th.start()
    barrier.wait()
    t0 = now_ns()
    for th in threads:
        th.join()
    wall = now_ns() - t0
    return {
        "op_ns": [x for r in results for x in r["op_ns"]],
        "ops": sum(len(r["op_ns"]) for r in results),
        "wall_ns": wall,
        "wrong": sum(r["wrong"] for r in results),
        "errors": sum(r["errors"] for r in results),
    }


# -- several processes on one store (the gunicorn case) --------------------------------------


def _mixed_child(store: Store, idx: int, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    """Store/get pairs in this process's own session and in one shared by all processes."""
    out: dict[str, Any] = {"ops": 0, "wrong": 0}
    own, shared = f"proc-r{rep}-p{idx}", f"proc-r{rep}-shared"
    for i in range(p["pairs"]):
        for session, key in ((own, f"k{i % 20}"), (shared, f"p{idx}-k{i % 20}")):
            store.store(session, key, (idx, i))
            out["wrong"] += store.get(session, key) != (idx, i)
            out["ops"] += 2
    return out


def _increment_child(store: Store, idx: int, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    db = store.db  # type: ignore[attr-defined]
    for _ in range(p["increments"]):
        if p["plain"]:
            db.store_user_value(f"cas-r{rep}", f"plain{idx}", idx)
        else:
            db.update_user_value(f"cas-r{rep}", "counter", lambda n: n + 1, default=0)
    return {"ops": p["increments"]}


CHILDREN = {"mixed": _mixed_child, "increment": _increment_child}
PRELOAD = {
    "dash_database": ["dash_database", "sqlitedict", "redis", "sqlalchemy", "psycopg"],
    "dash_database_v1": ["dash_database", "sqlitedict"],
    "diskcache": ["diskcache"],
    "redis": ["redis"],
    "psycopg": ["sqlalchemy", "psycopg"],
}


def _child(config: dict[str, Any], job: str, idx: int, rep: int, p: Any, sync: Any) -> None:
    barrier, queue = sync
    try:
        store = open_store(config)
        store.get("warmup", "k")  # connect before the clock starts
    except Exception as exc:
        queue.put({"error": f"open: {type(exc).__name__}: {exc}"})
        barrier.wait()
        return
    barrier.wait()
    try:
        queue.put(CHILDREN[job](store, idx, rep, p))
    except Exception as exc:
        queue.put({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        store.close()


def in_processes(store: Store, job: str, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    """Run ``job`` in 4 processes at once, each with its own handle on ``store``'s data.

    They fork from a ``forkserver`` that imported the libraries once, as gunicorn forks its
    workers from a master; the clock runs from a common barrier until the last one is done.
    """
    n = 4
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["stores", "workloads", *PRELOAD.get(store.config["kind"], [])])
    barrier, queue = ctx.Barrier(n + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_child, args=(store.config, job, i, rep, p, (barrier, queue)))
        for i in range(n)
    ]
    for proc in procs:
        proc.start()
    results, errors = [], []
    try:
        barrier.wait(timeout=120)
        t0 = now_ns()
        results = [queue.get(timeout=300) for _ in procs]
        wall = now_ns() - t0
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        wall = 0
    for proc in procs:
        proc.join(timeout=30)
        if proc.is_alive():
            errors.append("a process hung and was killed")
            proc.kill()
            proc.join()
    errors += [r["error"] for r in results if "error" in r]
    return {
        "ops": sum(r.get("ops", 0) for r in results),
        "wall_ns": wall,
        "wrong": sum(r.get("wrong", 0) for r in results),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
    }


def w_procs(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    out = in_processes(store, "mixed", rep, p)
    # Lost writes: every key must hold the last value its writer stored.
    last = {k: max(i for i in range(p["pairs"]) if i % 20 == k) for k in range(20)}
    out["lost"] = sum(
        store.get(session, f"{prefix}k{k}") != (idx, last[k])
        for idx in range(4)
        for session, prefix in ((f"proc-r{rep}-p{idx}", ""), (f"proc-r{rep}-shared", f"p{idx}-"))
        for k in range(20)
    )
    out["lost"] += 80 - len(set(store.list_keys(f"proc-r{rep}-shared")))
    return out


def w_increment(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    """4 processes x ``increments`` compare-and-set increments of one key, then the same
    number of plain stores (each process its own key) for comparison."""
    if not hasattr(store.db, "update_user_value"):  # type: ignore[attr-defined]
        raise RuntimeError("DashDatabase has no update_user_value() in this version.")
    cas = in_processes(store, "increment", rep, {**p, "plain": False})
    plain = in_processes(store, "increment", rep, {**p, "plain": True})
    cas["counter"] = store.get(f"cas-r{rep}", "counter")
    cas["plain_ops"], cas["plain_wall_ns"] = plain["ops"], plain["wall_ns"]
    cas["errors"] += plain["errors"]
    cas["first_error"] = cas["first_error"] or plain["first_error"]
    return cas


def w_bulk_update(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    """One ``db.session(sid).update()`` of ``keys`` small values, then a check of the keys."""
    session, keys = f"bulk-r{rep}", p["keys"]
    items = {f"key{i:05d}": i for i in range(keys)}
    assert isinstance(store, DashDatabaseStore)
    ns, _ = timed(store.db.session(session).update, items)
    found = len(store.list_keys(session))
    wrong = (found != keys) + (store.get(session, f"key{keys - 1:05d}") != keys - 1)
    store.delete_all(session)
    return {"op_ns": [ns], "wrong": int(wrong)}


def w_list(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    rng = random.Random(rep)
    lat, wrong = [], 0
    for _ in range(p["ops"]):
        ns, keys = timed(store.list_keys, session_name(rng.randrange(p["n"] // 2)))
        lat.append(ns)
        wrong += sorted(keys) != LIST_KEYS
    return {"op_ns": lat, "wrong": wrong}


def w_delete(store: Store, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    lat, wrong = [], 0
    for j in range(p["ops"]):  # each call a different session, from the end of the store
        s = session_name(p["n"] - 1 - rep * p["ops"] - j)
        lat.append(timed(store.delete_all, s)[0])
        wrong += store.get(s, LIST_KEYS[0]) is not None
    return {"op_ns": lat, "wrong": wrong}


def w_memoize(store: Store, n: int, params: dict[str, Any]) -> dict[str, Any]:
    # Imported here: the worker of dash-database 1.0 imports this module too, and
    # memoize_hit needs this project's dash_database.
    from memoize_hit import w_memoize as run

    return run(store, n, params)


WORKLOADS: dict[str, Callable[[Store, int, dict[str, Any]], dict[str, Any]]] = {
    "small": w_small,
    "dict10k": w_dict10k,
    "large": w_large,
    "threads": w_threads,
    "procs": w_procs,
    "increment": w_increment,
    "bulk_update": w_bulk_update,
    "list": w_list,
    "delete": w_delete,
    "memoize": w_memoize,
}
