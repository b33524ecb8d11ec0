"""The single-column key encoding is reversible, prefix-free and range-exact."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dash_database import _keys

ids = st.text(alphabet=st.characters(exclude_categories=("Cs",)))


@given(session=ids, key=ids)
def test_decode_reverses_encode(session: str, key: str) -> None:
    assert (session, key) == _keys.decode(_keys.encode(session, key))


@given(session=ids, key=ids)
def test_every_key_of_a_session_lies_in_its_range(session: str, key: str) -> None:
    low, high = _keys.session_range(session)

    assert low <= _keys.encode(session, key) < high


@given(session=ids, other=ids, key=ids)
def test_no_key_of_another_session_lies_in_the_range(session: str, other: str, key: str) -> None:
    low, high = _keys.session_range(session)
    encoded = _keys.encode(other, key)

    assert (low <= encoded < high) == (session == other)


@given(session=ids, other=ids, key=ids)
def test_range_holds_in_utf8_byte_order_too(session: str, other: str, key: str) -> None:
    # SQLite compares TEXT keys as UTF-8 bytes (BINARY collation).
    low, high = (bound.encode() for bound in _keys.session_range(session))
    encoded = _keys.encode(other, key).encode()

    assert (low <= encoded < high) == (session == other)


def test_ids_that_collide_when_joined_with_underscore_get_distinct_keys() -> None:
    assert _keys.encode("1", "2_z") != _keys.encode("1_2", "z")
    assert not _keys.encode("11", "k").startswith(_keys.session_prefix("1"))
