"""Parsing raw records: typed rows out, every bad line rejected with a reason, none lost."""

from __future__ import annotations

import re
import sys

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkify.records import (
    _SHORTCUTS,
    FIELDS,
    MATCH_KEY_BYTES,
    MATCH_KEYS,
    MAX_FIELD_NAME_CHARS,
    MAX_RAW_CHARS,
    MAX_UNKNOWN_FIELDS,
    OTHER_FIELDS,
    PARSERS,
    Field,
    Parsed,
    parse_events,
    parse_songs,
)
from sparkify.schema import Statements
from sparkify.staging import KIND_TABLE, MAX_JSON_LINE_BYTES, row_encoder

GOOD_EVENT = {
    "artist": "Des'ree",
    "auth": "Logged In",
    "firstName": "Kaylee",
    "gender": "F",
    "itemInSession": 1,
    "lastName": "Summers",
    "length": 246.30812,
    "level": "free",
    "location": "Phoenix-Mesa-Scottsdale, AZ",
    "method": "PUT",
    "page": "NextSong",
    "registration": 1540344794796.0,
    "sessionId": 139,
    "song": "You Gotta Be",
    "status": 200,
    "ts": 1541106106796,
    "userAgent": "Mozilla/5.0",
    "userId": "8",
}


def event(**changes: object) -> bytes:
    record = {**GOOD_EVENT, **changes}
    return orjson.dumps({k: v for k, v in record.items() if v is not ...})


def rows(parsed: Parsed) -> list[dict]:
    """A parse's staged rows (JSON lines by default), decoded."""
    return [orjson.loads(line) for line in parsed.data.splitlines()]


def test_a_good_event_is_typed_and_keeps_its_line_number() -> None:
    parsed = parse_events(b"\n" + event() + b"\n", file_id=7)
    assert parsed.lines_read == 1
    assert parsed.rejects == []
    [row] = rows(parsed)
    assert row["user_id"] == 8  # userId is a string in the raw data
    assert row["registration"] == 1540344794796  # written as a float in the raw data
    assert row["ts"] == 1541106106796
    assert row["first_name"] == "Kaylee"
    assert (row["file_id"], row["line_no"]) == (7, 2)


def test_logged_out_visitors_have_no_user_id() -> None:
    [row] = rows(parse_events(event(userId="", firstName=None), 1))
    assert row["user_id"] is None


def test_numbers_in_text_fields_are_kept_as_text() -> None:
    [row] = rows(parse_songs(b'{"song_id": "S1", "artist_id": "A1", "title": 66}', 1))
    assert row["title"] == "66"


@pytest.mark.parametrize(
    "spec", [f for fields in FIELDS.values() for f in fields if f.sql_type == "INTEGER"]
)
def test_every_integer_column_rejects_what_32_bits_cannot_hold(spec: Field) -> None:
    """PostgreSQL's binary COPY encoder would wrap a bigger value around, silently."""
    kept, low, high = _SHORTCUTS[spec.convert]
    assert kept is int and low >= -(2**31) and high <= 2**31 - 1, spec.key


def test_integers_beyond_their_column_are_rejected_not_loaded() -> None:
    """num_songs is an INTEGER column: the record is rejected, not loaded wrong."""
    song = b'{"song_id": "S1", "artist_id": "A1", "num_songs": %d}'
    assert rows(parse_songs(song % (2**31 - 1), 1))[0]["num_songs"] == 2**31 - 1
    [reject] = parse_songs(song % 2**31, 1).rejects
    assert reject.reason == "field 'num_songs': out of range [-2147483648, 2147483647]: 2147483648"


def test_a_pretty_printed_song_file_is_one_record() -> None:
    text = b'{\n  "song_id": "S1",\n  "artist_id": "A1",\n  "duration": 1.5\n}\n'
    parsed = parse_songs(text, 1)
    assert parsed.lines_read == 1
    assert rows(parsed)[0]["duration"] == 1.5


NASTY_EVENT_LINES = [
    (b'{"ts": 1541106106796, "page": "NextSong"', "invalid JSON"),
    (b"not json at all", "invalid JSON"),
    (b"[1, 2, 3]", "expected a JSON object, got array"),
    (b"42", "expected a JSON object, got int"),
    (event(ts="yesterday"), "field 'ts': expected an integer, got 'yesterday'"),
    (event(sessionId="abc"), "field 'sessionId': expected an integer, got 'abc'"),
    (event(sessionId=None), "missing required field 'sessionId'"),
    (event(ts=...), "missing required field 'ts'"),
    (event(song={"title": "x"}), "field 'song': expected text, got object"),
    (event(artist=["a", "b"]), "field 'artist': expected text, got array"),
    (event(length=True), "field 'length': expected a number, got boolean"),
    (event(itemInSession=1.5), "field 'itemInSession': expected an integer, got 1.5"),
    (event(itemInSession=-1), "field 'itemInSession': out of range"),
    (event().replace(b"1541106106796", b"1" * 30), "field 'ts': integer out of range"),
    (event(ts=10**17), "field 'ts': out of range"),
    (event(userId="abc"), "field 'userId': expected an integer, got 'abc'"),
    (event().replace(b"246.30812", b"NaN"), "invalid JSON"),
    (event().replace(b"Kaylee", b"Kay\xff\xfelee"), "invalid UTF-8 at byte"),
    (event(song="a\x00b"), "field 'song': text contains a NUL character"),
    # Digits other than ASCII 0-9, and underscores, which Python's int() and float() accept
    (event(userId="\u0663\u0669"), "field 'userId': expected an integer, got '\u0663\u0669'"),
    (event(sessionId="9_010"), "field 'sessionId': expected an integer, got '9_010'"),
    (event(ts="\uff11\uff12"), "field 'ts': expected an integer, got '\uff11\uff12'"),
    (event(status="\u00b2"), "field 'status': expected an integer, got '\u00b2'"),
    (event(registration="\u00a01"), "field 'registration': expected an integer, got '\\xa01'"),
    (event(length="1_000.5"), "field 'length': expected a number, got '1_000.5'"),
    (event(length="\u0663.\u0665"), "field 'length': expected a number, got '\u0663.\u0665'"),
    (event(length="0x10"), "field 'length': expected a number, got '0x10'"),
]


@pytest.mark.parametrize(("line", "reason"), NASTY_EVENT_LINES)
def test_a_bad_line_is_rejected_with_its_reason_and_raw_text(line: bytes, reason: str) -> None:
    data = event() + b"\n" + line + b"\n" + event(itemInSession=2)
    parsed = parse_events(data, 1)
    assert parsed.lines_read == 3
    assert parsed.rows_staged == 2  # good lines of the same file still load
    [reject] = parsed.rejects
    assert reject.line_no == 2
    assert reject.reason.startswith(reason)
    assert reject.raw == line.decode("utf-8", errors="backslashreplace")


def test_empty_and_whitespace_only_files_have_no_records() -> None:
    for data in (b"", b"   \n\t\n\n", b"\r\n"):
        parsed = parse_events(data, 1)
        assert (parsed.lines_read, parsed.rows_staged, parsed.rejects) == (0, 0, [])


def test_bom_and_crlf_line_ends_are_tolerated() -> None:
    data = b"\xef\xbb\xbf" + event() + b"\r\n" + event(itemInSession=2) + b"\r\n"
    parsed = parse_events(data, 1)
    assert (parsed.lines_read, parsed.rows_staged) == (2, 2)


def test_a_truncated_last_line_is_rejected_and_the_rest_loads() -> None:
    data = event() + b"\n" + event(itemInSession=2)[:50]
    parsed = parse_events(data, 1)
    assert parsed.rows_staged == 1
    assert parsed.rejects[0].line_no == 2


def test_a_huge_line_is_rejected_and_its_raw_text_is_capped() -> None:
    huge = event(song="x" * 10_000_000)
    for line in (huge, huge[:-1]):
        [reject] = parse_events(line, 1).rejects
        assert len(reject.raw) < MAX_RAW_CHARS + 50
    assert parse_events(huge, 1).rejects[0].reason == (
        "field 'song': text longer than 1024 bytes (10000000 bytes)"
    )


def record(kind: str, **changes: object) -> bytes:
    """A good record of ``kind`` with ``changes``, as raw bytes."""
    if kind == "events":
        return event(**changes)
    return orjson.dumps({"song_id": "S1", "artist_id": "A1", "title": "T", **changes})


TEXT_FIELDS = [(kind, f) for kind, fields in FIELDS.items() for f in fields if f.max_bytes]


def test_every_text_field_has_a_width() -> None:
    text = {f.key for fields in FIELDS.values() for f in fields if f.sql_type == "VARCHAR"}
    assert text == {f.key for _, f in TEXT_FIELDS}


@pytest.mark.parametrize(("kind", "spec"), TEXT_FIELDS, ids=lambda v: getattr(v, "key", v))
def test_text_longer_than_its_column_width_in_bytes_is_rejected(kind: str, spec: Field) -> None:
    """Widths count UTF-8 bytes, as Redshift's VARCHAR does: every backend, one verdict."""
    assert spec.max_bytes
    fits = "é" * (spec.max_bytes // 2)  # two bytes each: exactly the width
    parsed = PARSERS[kind](record(kind, **{spec.key: fits}), 1, None)
    assert parsed.rejects == [] and rows(parsed)[0][spec.column] == fits
    [reject] = PARSERS[kind](record(kind, **{spec.key: fits + "x"}), 1, None).rejects
    assert reject.reason == (
        f"field '{spec.key}': text longer than {spec.max_bytes} bytes ({spec.max_bytes + 1} bytes)"
    )


def test_a_title_whose_match_key_outgrows_its_column_is_rejected() -> None:
    """Case folding can triple a text's bytes (ΐ: 2 bytes, folded 6)."""
    title = "ΐ" * 400  # 800 bytes, 2,400 once case-folded
    [reject] = parse_songs(record("songs", title=title), 1).rejects
    assert reject.reason == (
        f"field 'title': text longer than {MATCH_KEY_BYTES} bytes once case-folded (2400 bytes)"
    )
    assert parse_songs(record("songs", title="ΐ" * 341), 1).rejects == []


@pytest.mark.parametrize("kind", FIELDS)
def test_redshift_columns_are_as_wide_as_the_parser_allows(kind: str) -> None:
    [ddl] = Statements(("redshift", "postgres", "common")).get(f"create_staging_{kind}")
    widths = {m[1]: int(m[2]) for m in re.finditer(r"(\w+)\s+VARCHAR\((\d+)\)", ddl)}
    expected = {f.column: f.max_bytes for f in FIELDS[kind] if f.max_bytes}
    expected.update({key: MATCH_KEY_BYTES for _, key in MATCH_KEYS[kind]})
    assert widths == expected


def test_duplicated_keys_keep_the_last_value() -> None:
    line = event()[:-1] + b',"level":"paid"}'
    [row] = rows(parse_events(line, 1))
    assert row["level"] == "paid"


def test_a_broken_song_file_is_one_reject() -> None:
    parsed = parse_songs(b'{\n  "song_id": "S1",\n  "artist_id": \n}', 1)
    assert parsed.lines_read == 1
    assert parsed.rejects[0].reason.startswith("invalid JSON")


def test_song_json_lines_get_a_verdict_each() -> None:
    data = b'{"song_id": "S1", "artist_id": "A"}\n{"song_id": 5, "artist_id": null}\n'
    parsed = parse_songs(data, 1)
    assert parsed.rows_staged == 1
    assert parsed.rejects[0].reason == "missing required field 'artist_id'"


lines = st.one_of(
    st.builds(event, itemInSession=st.integers(-5, 2_000_000)),
    st.binary(max_size=60).filter(lambda b: b"\n" not in b),
    st.text(max_size=60).map(lambda t: t.replace("\n", " ").encode()),
    st.builds(lambda e, cut: e[:cut], st.builds(event), st.integers(0, 300)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(lines, max_size=20), st.sampled_from([b"\n", b"\r\n"]))
def test_no_line_is_lost_or_counted_twice(batch: list[bytes], separator: bytes) -> None:
    data = separator.join(batch)
    parsed = parse_events(data, 3)
    # The model: a byte-order mark opens the file, not a record; blank lines are not records.
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    expected = {n for n, line in enumerate(lines, 1) if line.strip()}
    assert parsed.lines_read == len(expected)
    assert parsed.rows_staged + len(parsed.rejects) == parsed.lines_read
    seen = [r["line_no"] for r in rows(parsed)] + [r.line_no for r in parsed.rejects]
    assert len(seen) == len(set(seen))
    assert set(seen) == expected


def test_the_widest_staged_rows_fit_what_duckdb_reads_in_one_line() -> None:
    """Every text at its width, in characters JSON writes 6 bytes wide; the widest numbers."""
    widest = {"VARCHAR": "\x01" * MATCH_KEY_BYTES, "DOUBLE": -sys.float_info.max}
    for kind, table in KIND_TABLE.items():
        values = [
            "\x01" * f.max_bytes if f.max_bytes else widest.get(f.sql_type, -(2**63))
            for f in FIELDS[kind]
        ]
        row = [-(2**31), -(2**31), *values, *[widest["VARCHAR"]] * len(MATCH_KEYS[kind])]
        out = bytearray()
        row_encoder(table, "json")(row, out)
        assert len(out) <= MAX_JSON_LINE_BYTES
    out = bytearray()
    reject = [-(2**31)] * 3 + ["\x01" * 1000, "\x01" * (MAX_RAW_CHARS + 14)]
    row_encoder("etl_rejects", "json")(reject, out)
    assert len(out) <= MAX_JSON_LINE_BYTES


def test_fields_no_column_holds_are_counted_not_lost_silently() -> None:
    """New fields in the raw data (schema drift) are reported, per name."""
    lines = [
        event(country="PT", device="phone"),
        event(country="FR", itemInSession=2),
        event(country="DE", ts="yesterday"),  # a rejected record's fields are not counted
        event(itemInSession=3),
    ]
    parsed = parse_events(b"\n".join(lines), 1)
    assert parsed.rows_staged == 3
    assert parsed.unknown_fields == {"country": 2, "device": 1}
    song = parse_songs(record("songs", genre="jazz"), 1)
    assert song.unknown_fields == {"genre": 1}


def test_unknown_field_names_are_bounded() -> None:
    lines = [event(**{str(n) + "x" * 100: 1}) for n in range(MAX_UNKNOWN_FIELDS + 5)]
    unknown = parse_events(b"\n".join(lines), 1).unknown_fields
    assert len(unknown) == MAX_UNKNOWN_FIELDS + 1
    assert unknown[OTHER_FIELDS] == 5
    assert all(len(name) <= MAX_FIELD_NAME_CHARS for name in unknown)


@pytest.mark.parametrize(
    ("text", "value"),
    [("8", 8), (" 8 ", 8), ("+8", 8), ("-8", -8), ("08", 8), ("\t8\r\n", 8)],
)
def test_integers_written_as_ascii_text_are_accepted(text: str, value: int) -> None:
    [row] = rows(parse_events(event(userId=text), 1))
    assert row["user_id"] == value


@pytest.mark.parametrize(
    ("text", "value"),
    [("1.5", 1.5), (" 2 ", 2.0), ("-1e3", -1000.0), (".5", 0.5), ("5.", 5.0), ("+1E-2", 0.01)],
)
def test_numbers_written_as_ascii_text_are_accepted(text: str, value: float) -> None:
    [row] = rows(parse_events(event(length=text), 1))
    assert row["length"] == value
