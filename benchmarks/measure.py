"""Measurement: one worker process per store, and the peak memory of one call.

``run.py`` starts ``python measure.py`` once per store, with the Python of the virtual
environment the store needs (dash-database 1.0 lives in its own, as it also imports as
``dash_database``). The two speak one JSON object per line: commands on the worker's stdin,
replies on its stdout. Every timing is taken inside the worker, around each single call (see
``workloads.py``), so the protocol itself is never measured.

``python measure.py --memory CONFIG SIZES_MB`` is the other entry point: a fresh process that
measures, for each size in turn, the peak memory of storing one DataFrame and reading it back.
"""

from __future__ import annotations

import gc
import json
import os
import select
import subprocess
import sys
import time
import traceback
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from stores import Store, open_store  # noqa: E402
from workloads import LIST_KEYS, WORKLOADS, frame, populated_value, session_name  # noqa: E402

#: Seconds one command may take (filling a store of 100,000 sessions is the longest).
CALL_TIMEOUT = 900


class WorkerError(Exception):
    pass


class Worker:
    """The orchestrator's side: one store's worker process and its line protocol."""

    def __init__(self, store: str, python: str, log_path: str) -> None:
        self.store = store
        self.log = open(log_path, "w")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            [python, os.path.join(HERE, "measure.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            cwd=HERE,  # not the repository root, whose dash_database would shadow 1.0's
        )

    def call(self, **msg: Any) -> Any:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        # One reply line per command, so nothing waits in the pipe's buffer between calls.
        if not select.select([self.proc.stdout], [], [], CALL_TIMEOUT)[0]:
            self.proc.kill()
            raise WorkerError(f"the worker of {self.store} took over {CALL_TIMEOUT} s: stopped")
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerError(f"the worker of {self.store} exited (see {self.log.name})")
        reply = json.loads(line)
        if "error" in reply:
            self.log.write(reply["traceback"] + "\n")
            self.log.flush()
            raise WorkerError(reply["error"])
        return reply["result"]

    def stop(self) -> None:
        try:
            self.call(cmd="quit")
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _handle(handles: dict[str, Store], msg: dict[str, Any]) -> Any:
    cmd = msg["cmd"]
    if cmd == "open":
        st = handles[msg["handle"]] = open_store(msg["config"])
        st.store("warmup", "k", 1)
        for _ in range(10):  # opens connections and warms prepared statements
            st.get("warmup", "k")
        st.delete_all("warmup")
        return {"multiprocess": st.multiprocess}
    if cmd == "populate":
        sessions = [session_name(i) for i in range(msg["n"])]
        t0 = time.perf_counter()
        how = handles[msg["handle"]].populate(sessions, LIST_KEYS, populated_value)
        return {"seconds": time.perf_counter() - t0, "how": how}
    if cmd == "run":
        gc.collect()
        return WORKLOADS[msg["workload"]](handles[msg["handle"]], msg["rep"], msg["params"])
    if cmd == "close":
        handles.pop(msg["handle"]).close()
        return None
    raise ValueError(f"unknown command {cmd!r}")


def serve() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing a library prints may corrupt the protocol
    handles: dict[str, Store] = {}
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "quit":
            break
        try:
            reply = {"result": _handle(handles, msg)}
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    for st in handles.values():
        st.close()


# -- peak memory -----------------------------------------------------------------------------


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def peak_of(fn: Callable[..., Any], *args: Any) -> tuple[int, Any]:
    """Return (growth of the resident set at its peak during ``fn(*args)``, the result).

    Writing 5 to /proc/self/clear_refs resets the kernel's high-water mark (VmHWM) to the
    current resident set, so VmHWM afterwards is the peak of this call. It counts every
    allocation (Python, numpy, SQLite and the drivers' C libraries), unlike tracemalloc.
    """
    gc.collect()
    before = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    result = fn(*args)
    return _status("VmHWM") - before, result


def measure_memory(config: dict[str, Any], size_mb: float) -> dict[str, Any]:
    df = frame(size_mb)
    size = int(df.memory_usage(index=True, deep=True).sum())
    store = open_store(config)
    store.store("mem-warmup", "k", 1)
    store.get("mem-warmup", "k")
    store_peak, _ = peak_of(store.store, "mem", "df", df)
    expected_rows = len(df)
    del df
    get_peak, got = peak_of(store.get, "mem", "df")
    ok = got is not None and len(got) == expected_rows
    del got
    store.delete_all("mem")
    store.close()
    return {
        "size_bytes": size,
        "store_peak_bytes": store_peak,
        "get_peak_bytes": get_peak,
        "ok": ok,
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory"]:
        # run.py sets MALLOC_MMAP_THRESHOLD_ so that large blocks are always mapped afresh:
        # memory freed by one measurement cannot hide part of the next.
        cfg, sizes = json.loads(sys.argv[2]), sorted(float(x) for x in sys.argv[3].split(","))
        print(json.dumps({f"{mb:g}": measure_memory(cfg, mb) for mb in sizes}))
    else:
        serve()
