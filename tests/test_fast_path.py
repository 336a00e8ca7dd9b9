"""The fast path of record conversion gives exactly what the field converters give.

``convert_record`` keeps a value without calling its field's converter when the value already
has the converter's result type and range (a str for text, an in-range int for integers, a
finite float for numbers). These tests compare it with the plain rule (call every field's
converter) on the nasty inputs of test_records.py and on generated values: same canonical
bytes for accepted records, same reason for rejected ones.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_records import GOOD_EVENT, NASTY_EVENT_LINES, event

from sparkify.records import (
    EVENT_FIELDS,
    INT64,
    SONG_FIELDS,
    Field,
    FieldError,
    convert_record,
    parse_record,
)


def reference(record: Any, fields: tuple[Field, ...]) -> dict[str, Any]:
    """The rule without the fast path: every field goes through its converter."""
    if not isinstance(record, dict):
        raise FieldError("expected a JSON object")
    row: dict[str, Any] = {}
    for spec in fields:
        value = record.get(spec.key)
        if value is None and spec.required:
            raise FieldError(f"missing required field '{spec.key}'")
        try:
            row[spec.column] = spec.convert(value)
        except FieldError as exc:
            raise FieldError(f"field '{spec.key}': {exc}") from None
    return row


def outcome(convert: Any, record: Any, fields: tuple[Field, ...]) -> tuple[str, Any]:
    """("row", canonical bytes) or ("reject", reason): what staging would see."""
    try:
        return "row", orjson.dumps(convert(record, fields))
    except FieldError as exc:
        return "reject", str(exc)


def assert_same(record: Any, fields: tuple[Field, ...]) -> None:
    if not isinstance(record, dict):
        with pytest.raises(FieldError):
            convert_record(record, fields)
        return
    assert outcome(convert_record, record, fields) == outcome(reference, record, fields)


@pytest.mark.parametrize(("line", "reason"), NASTY_EVENT_LINES)
def test_nasty_lines_get_the_same_verdict(line: bytes, reason: str) -> None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        with pytest.raises(FieldError, match="invalid"):
            parse_record(line, EVENT_FIELDS)
        return
    assert_same(record, EVENT_FIELDS)


EDGE_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1,
    999,
    1000,
    999_999,
    1_000_000,
    INT64,
    INT64 + 1,
    -INT64,
    -INT64 - 1,
    2**64 - 1,  # the largest integer orjson decodes as an int
    0.0,
    -0.0,
    1.0,
    1.5,
    1540344794796.0,
    1e300,
    1.8e308,
    float("inf"),
    float("-inf"),
    float("nan"),
    "",
    " ",
    "8",
    " 8 ",
    "+8",
    "08",
    "1_000",
    "٣",  # an Arabic-Indic digit: int() accepts it
    "²",  # a superscript: isdigit() but not int()
    "1.5",
    "nan",
    "inf",
    "abc",
    [],
    [1],
    {},
    {"a": 1},
]


@pytest.mark.parametrize("value", EDGE_VALUES, ids=repr)
@pytest.mark.parametrize("fields", [EVENT_FIELDS, SONG_FIELDS], ids=["events", "songs"])
def test_every_field_treats_edge_values_the_same(value: Any, fields: tuple[Field, ...]) -> None:
    base = {**GOOD_EVENT, "song_id": "S1", "artist_id": "A1"}
    for spec in fields:
        assert_same({**base, spec.key: value}, fields)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # orjson's int range
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.from_regex(r"\s?[+-]?[0-9_]{0,20}\s?", fullmatch=True),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from([f.key for f in EVENT_FIELDS]), json_values))
def test_generated_events_get_the_same_verdict(changes: dict[str, Any]) -> None:
    assert_same({**GOOD_EVENT, **changes}, EVENT_FIELDS)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([f.key for f in SONG_FIELDS]), json_values))
def test_generated_songs_get_the_same_verdict(changes: dict[str, Any]) -> None:
    assert_same({"song_id": "S1", "artist_id": "A1", **changes}, SONG_FIELDS)


def test_the_good_event_takes_the_fast_path_and_is_typed() -> None:
    row = convert_record(orjson.loads(event()), EVENT_FIELDS)
    assert row["ts"] == 1541106106796 and type(row["ts"]) is int
    assert row["registration"] == 1540344794796 and type(row["registration"]) is int
    assert row["user_id"] == 8
    assert type(row["length"]) is float
