"""The export format: round trips between every pair of stores, and damaged files."""

from __future__ import annotations

import io
import json
import tracemalloc
from collections.abc import Callable

import pytest

from dash_database import InvalidArgumentError, MemoryBackend
from dash_database._export import FORMAT, VERSION, export_store, import_store
from dash_database.backends import Backend
from tests.cli_stores import ALL_KINDS, Store, contents, kind_params, make_store
from tests.support import FakeClock

__all__ = ["make_store"]  # the fixture, imported so that pytest finds it here

MB = 1024 * 1024


def fill(backend: Backend, clock: FakeClock) -> None:
    """Write sessions with awkward ids, empty and 1 MB values, with and without deadlines."""
    now = clock.now
    backend.set_many("plain", {"a": b"1", "b": b""}, None, now, version=1)
    backend.set_many(
        "dds1." + "x" * 43, {"frame": bytes(range(256)) * 4096}, now + 3600.25, now, version=2
    )
    backend.set_many(
        "é\x00:*{x}\n", {"k\x00é\n": b"\x00\xff\n", "": b"empty key"}, now + 60, now, version=3
    )
    for i in range(30):
        backend.set_many(
            f"s{i:03}",
            {f"k{j}": f"{i}/{j}".encode() for j in range(5)},
            now + i + 1,
            now,
            version=4,
        )
    backend.set_many("gone", {"a": b"expired"}, now - 1, now - 10, version=5)


def export_bytes(backend: Backend, clock: FakeClock) -> bytes:
    out = io.BytesIO()
    export_store(backend, out, clock)
    return out.getvalue()


@pytest.mark.parametrize("target_kind", kind_params(ALL_KINDS))
@pytest.mark.parametrize("source_kind", kind_params(ALL_KINDS))
def test_round_trip_between_every_pair_keeps_values_and_deadlines(
    make_store: Callable[[str], Store], clock: FakeClock, source_kind: str, target_kind: str
) -> None:
    source, target = make_store(source_kind), make_store(target_kind)
    fill(source.backend, clock)

    summary = import_store(target.backend, io.BytesIO(export_bytes(source.backend, clock)), clock)

    expected = contents(source.backend, clock.now)
    assert expected == contents(target.backend, clock.now)
    assert 33 == len(expected) == summary.sessions
    assert (None, {"a": b"1", "b": b""}) == expected["plain"]
    assert clock.now + 3600.25 == expected["dds1." + "x" * 43][0]


@pytest.mark.slow
def test_chain_sqlite_redis_postgres_sqlite_is_identical(
    make_store: Callable[[str], Store], clock: FakeClock
) -> None:
    first = make_store("sqlite")
    fill(first.backend, clock)
    current = first
    for kind in ("redis", "postgres", "sqlite"):
        following = make_store(kind)
        import_store(following.backend, io.BytesIO(export_bytes(current.backend, clock)), clock)
        current = following

    assert contents(first.backend, clock.now) == contents(current.backend, clock.now)


def test_the_file_names_format_and_version_and_ends_with_totals(clock: FakeClock) -> None:
    backend = MemoryBackend()
    backend.set_many("s", {"k": b"value"}, None, clock.now, version=1)

    lines = export_bytes(backend, clock).split(b"\n")

    assert {"format": FORMAT, "version": VERSION, "created": clock.now} == json.loads(lines[0])
    assert {"session": "s", "deadline": None} == json.loads(lines[1])
    assert {"key": "k", "bytes": 5} == json.loads(lines[2])
    assert b"value" == lines[3]
    assert {"end": True, "sessions": 1, "keys": 1, "bytes": 5} == json.loads(lines[4])


def test_a_file_cut_short_is_refused_after_importing_what_came_before(clock: FakeClock) -> None:
    source, target = MemoryBackend(), MemoryBackend()
    source.set_many("a", {"k": b"1"}, None, clock.now, version=1)
    source.set_many("b", {"k": b"x" * 1000}, None, clock.now, version=1)
    data = export_bytes(source, clock)

    with pytest.raises(InvalidArgumentError, match="shorter than the 1,000 bytes"):
        import_store(target, io.BytesIO(data[: data.index(b"x" * 10) + 10]), clock)
    assert {"a": (None, {"k": b"1"})} == contents(target, clock.now)


def test_a_file_without_its_end_line_is_refused(clock: FakeClock) -> None:
    source = MemoryBackend()
    source.set_many("a", {"k": b"1"}, None, clock.now, version=1)
    data = export_bytes(source, clock)

    with pytest.raises(InvalidArgumentError, match="cut short"):
        import_store(MemoryBackend(), io.BytesIO(data[: data.rindex(b'{"end"')]), clock)


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"", "cut short"),
        (b"PK\x03\x04 a zip file\n", "not JSON"),
        (b'{"format": "something else"}\n', "does not name the format"),
        (b'{"format": "dash-database-export", "version": 99}\n', "format version 99"),
    ],
)
def test_what_is_not_an_export_is_refused_with_a_sentence(
    clock: FakeClock, data: bytes, problem: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=problem):
        import_store(MemoryBackend(), io.BytesIO(data), clock, name="'x.dump'")


def test_existing_sessions_are_skipped_unless_replace_is_asked(clock: FakeClock) -> None:
    source, target = MemoryBackend(), MemoryBackend()
    source.set_many("shared", {"k": b"new"}, None, clock.now, version=1)
    source.set_many("fresh", {"k": b"1"}, None, clock.now, version=1)
    target.set_many("shared", {"k": b"old", "other": b"kept"}, None, clock.now, version=1)
    data = export_bytes(source, clock)

    skipped = import_store(target, io.BytesIO(data), clock)
    assert (1, 1) == (skipped.sessions, skipped.skipped)
    assert {"k": b"old", "other": b"kept"} == contents(target, clock.now)["shared"][1]

    replaced = import_store(target, io.BytesIO(data), clock, existing="replace")
    assert (2, 0) == (replaced.sessions, replaced.skipped)
    assert {"k": b"new"} == contents(target, clock.now)["shared"][1]


def test_sessions_that_expired_in_transit_are_left_out(clock: FakeClock) -> None:
    source, target = MemoryBackend(), MemoryBackend()
    source.set_many("soon", {"k": b"1"}, clock.now + 5, clock.now, version=1)
    source.set_many("later", {"k": b"1"}, clock.now + 500, clock.now, version=1)
    data = export_bytes(source, clock)
    clock.advance(10)

    summary = import_store(target, io.BytesIO(data), clock)

    assert (1, 1) == (summary.sessions, summary.expired)
    assert ["later"] == list(contents(target, clock.now))


def test_a_large_session_is_written_in_bounded_parts(clock: FakeClock) -> None:
    source, target = MemoryBackend(), MemoryBackend()
    big = {f"frame{i}": bytes([i]) * MB for i in range(20)}
    source.set_many("big", big, clock.now + 60, clock.now, version=1)
    data = export_bytes(source, clock)
    del big, source

    tracemalloc.start()
    try:
        import_store(target, io.BytesIO(data), clock)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert 20 == len(contents(target, clock.now)["big"][1])
    # The 20 MB kept by the target, plus at most one bounded write in flight.
    assert peak < 20 * MB + 10 * MB


@pytest.mark.parametrize("kind", kind_params(["sqlite", "redis", "postgres"]))
def test_export_memory_stays_flat(
    make_store: Callable[[str], Store], clock: FakeClock, kind: str
) -> None:
    store = make_store(kind)
    for i in range(40):
        store.backend.set_many(f"s{i}", {"frame": bytes([i]) * MB}, None, clock.now, version=1)

    class Sink(io.RawIOBase):
        written = 0

        def writable(self) -> bool:
            return True

        def write(self, data: bytes) -> int:  # type: ignore[override]
            self.written += len(data)
            return len(data)

    sink = Sink()
    tracemalloc.start()
    try:
        export_store(store.backend, sink, clock)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert sink.written > 40 * MB
    # At most 2 x 4 sessions of 1 MB are held at once, whatever the size of the store.
    assert peak < 12 * MB
