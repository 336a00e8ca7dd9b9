"""The fast paths of record conversion give exactly what the field converters give.

``FastPath`` (msgspec) decodes a whole line in C and declines what it does not accept whole;
where it accepts, its staged row must be byte for byte what the plain path (orjson, then every
field's converter) stages. Inside the plain path, ``convert_record`` keeps a value without
calling its field's converter when the value already has the converter's result type and
range (a str for text, an in-range int for integers, a finite float for numbers). These tests
compare both with the plain rule on the nasty inputs of test_records.py and on generated
values: same canonical bytes for accepted records, same reason for rejected ones.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from typing import Any

import duckdb
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_records import GOOD_EVENT, NASTY_EVENT_LINES, event

from sparkify.backends.duckdb import DuckDBBackend
from sparkify.records import (
    EVENT_FIELDS,
    FAST_PATHS,
    INT64,
    SONG_FIELDS,
    Field,
    FieldError,
    Reject,
    convert_record,
    parse_events,
    parse_record,
    parse_songs,
    plain_stage_line,
    stage_line,
)
from sparkify.staging import KIND_TABLE, ROW_FORMATS, canonical_select, row_encoder

DUCKDB_FORMAT = DuckDBBackend.capabilities.row_format


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
        text = row[spec.column]
        if spec.max_bytes and text is not None:
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > spec.max_bytes:
                raise FieldError(
                    f"field '{spec.key}': text longer than {spec.max_bytes} bytes ({size} bytes)"
                )
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


# Around the widths (256 and 1,024 bytes), in characters of 1, 2 and 6 bytes once case-folded,
# and around the length up to which the fast path takes a text without counting its bytes.
LONG_TEXTS = [
    "x" * 64,
    "x" * 65,
    "x" * 256,
    "x" * 257,
    "é" * 128,
    "é" * 129,
    "é" * 512,
    "é" * 513,
    "x" * 1024,
    "x" * 1025,
    "ΐ" * 256,
    "ΐ" * 341,
    "ΐ" * 342,
    " " * 300 + "x",
]
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
    "9_010",
    "1_000.5",
    "٣",  # an Arabic-Indic digit: int() accepts it
    "٣٩",
    "٣.٥",
    "１２",  # fullwidth digits
    "\u00a08",  # a no-break space: str.strip() removes it
    "0x10",
    ".5",
    "5.",
    "-1e3",
    "²",  # a superscript: isdigit() but not int()
    "1.5",
    "nan",
    "inf",
    "abc",
    *LONG_TEXTS,
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
    | st.sampled_from(LONG_TEXTS)
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


# -- the msgspec fast path, line by line --------------------------------------------------


def encoded(kind: str, verdict: list[Any] | Reject | None) -> Any:
    """A staged row as the bytes of every row format (types included: 1 != 1.0 there)."""
    if not isinstance(verdict, list):
        return verdict
    table = KIND_TABLE[kind]
    formats = []
    for fmt in ROW_FORMATS:
        out = bytearray()
        row_encoder(table, fmt)(list(verdict), out)
        formats.append(bytes(out))
    return formats


def assert_same_line(kind: str, line: bytes) -> None:
    """Where the fast path stages a line, the plain path stages the same bytes; both count
    the same unknown fields."""
    fast = encoded(kind, FAST_PATHS[kind].staged_values(line, 7, 3))
    unknown: Counter[str] = Counter()
    plain = encoded(kind, plain_stage_line(kind, line, 7, 3, unknown))
    if fast is not None:
        assert fast == plain, (line, plain)
        assert unknown == {}, line
    either: Counter[str] = Counter()
    assert encoded(kind, stage_line(kind, line, 7, 3, either)) == plain
    assert either == unknown


@pytest.mark.parametrize(("line", "reason"), NASTY_EVENT_LINES)
def test_nasty_lines_are_staged_or_rejected_alike_by_both_paths(line: bytes, reason: str) -> None:
    assert_same_line("events", line)
    assert isinstance(plain_stage_line("events", line, 7, 3, Counter()), Reject)


RAW_TOKENS = [
    b"null",
    b"true",
    b"0",
    b"-0",
    b"1.0",
    b"1e3",
    b"1E+2",
    b"-1.5e-3",
    b"5e-324",
    b"1e400",
    b"9223372036854775807",
    b"9223372036854775808",
    b"18446744073709551615",
    b"18446744073709551616",
    b"123456789012345678901234567890",
    b"-9223372036854775809",
    b'""',
    b'" 12 "',
    b'"1e3"',
    b'"12.0"',
    b'"\\u00e9t\\u00e9"',
    b'"\\ud83c\\udfb5"',
    b'"\\ud800"',
    b'"' + b"\\u00e9" * 128 + b'"',  # escaped: six bytes each in the line, two decoded
    b'"' + b"\\u00e9" * 513 + b'"',
    b'"' + b"x" * 1025 + b'"',
    b'"a\\u0000b"',
    b'"tab\\there"',
    b'"\xc3\xa9"',
    b'"\xff"',
    b"[]",
    b"{}",
    b"[" * 1500 + b"]" * 1500,  # deeper than orjson parses
]


@settings(max_examples=800, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([f.key for f in EVENT_FIELDS] + ["extra", "\xff", "userid"]),
            st.sampled_from(RAW_TOKENS),
        ),
        max_size=4,
    ),
    st.booleans(),
)
def test_raw_json_tokens_get_the_same_verdict_on_both_paths(
    changes: list[tuple[str, bytes]], prepend: bool
) -> None:
    """Tokens written as raw JSON text: integers beyond 64 bits, exponents, escapes, lone
    surrogates, invalid UTF-8, deep nesting; a key given twice (the last one wins on both
    paths), keys no field has (whose values orjson still checks), a key of invalid UTF-8."""
    extra = b"".join(b'"' + key.encode("latin-1") + b'": ' + token + b"," for key, token in changes)
    base = event()
    line = b"{" + extra + base[1:] if prepend else base[:-1] + b"," + extra[:-1] + b"}"
    assert_same_line("events", line if extra else base)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from([f.key for f in EVENT_FIELDS]), json_values))
def test_generated_event_lines_get_the_same_verdict_on_both_paths(changes: dict) -> None:
    assert_same_line("events", orjson.dumps({**GOOD_EVENT, **changes}))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([f.key for f in SONG_FIELDS]), json_values))
def test_generated_song_lines_get_the_same_verdict_on_both_paths(changes: dict) -> None:
    assert_same_line("songs", orjson.dumps({"song_id": "S1", "artist_id": "A1", **changes}))


def test_the_usual_shapes_take_the_fast_path() -> None:
    """userId as text (empty for visitors), registration as a float: the raw data's shapes."""
    for line in (event(), event(userId=""), event(userId=8, registration=None, song=None)):
        assert FAST_PATHS["events"].staged_values(line, 1, 1) is not None
    song = b'{\n  "song_id": "S1", "artist_id": "A1", "year": 0, "duration": 218.9\n}'
    assert FAST_PATHS["songs"].staged_values(song, 1, 1) is not None


def test_a_file_mixing_both_paths_keeps_line_order_and_numbers() -> None:
    lines = [event(), event(userId=" 8 "), b"broken", event(song=3)]
    parsed = parse_events(b"\n".join(lines), 5)
    assert [orjson.loads(r)["line_no"] for r in parsed.data.splitlines()] == [1, 2, 4]
    assert [r.line_no for r in parsed.rejects] == [3]


# -- DuckDB's staging rows: blocks of lines decoded in one call ------------------------------

# Lines that try to make one decode of a block (the lines joined into one JSON array) read
# something else than the lines one by one: two records on one line, a record split over two
# lines, brackets that close the array early, the staged row's own extra keys in the input.
TRICKY_LINES = [
    event()[:-1] + b"}," + event(),  # two records on one line
    event(itemInSession=1)[:-1] + b', "x": [{}',  # a record opened here...
    b'{}], "page": "NextSong"}',  # ...and closed on the next line
    b"]",
    b"[",
    b"," + event(),
    event() + b",",
    event(file_id=3),
    event(line_no=None),
    event(song_key="k"),
    event(artist_key=None),
    event(userId="\u0000"),
    b'{"artist": "a\nb"}',
    b"\x0b" + event(itemInSession=2) + b"\x0c",
    b"\t" + event(itemInSession=3) + b"\r",
    event(userId=" 8 "),  # converted by the plain path only
    event(userId="x"),  # a converter's refusal inside an otherwise good block
    event(registration=1.5),
    event(song=" Héllo  WÖRLD "),
]


def plain_file(data: bytes, file_id: int) -> tuple[bytes, list[Reject], int]:
    """What the plain path stages of a file, line by line, in DuckDB's row format."""
    encode = row_encoder("staging_events", DUCKDB_FORMAT)
    out, rejects, lines = bytearray(), [], 0
    for line_no, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), 1):
        line = raw.strip()
        if line:
            lines += 1
            verdict = plain_stage_line("events", line, file_id, line_no, Counter())
            if isinstance(verdict, Reject):
                rejects.append(verdict)
            else:
                encode(verdict, out)
    return bytes(out), rejects, lines


def assert_same_file(lines: list[bytes]) -> None:
    data = b"\n".join(lines)
    parsed = parse_events(data, 9, row_encoder("staging_events", DUCKDB_FORMAT))
    rows, rejects, read = plain_file(data, 9)
    assert bytes(parsed.data) == rows
    assert parsed.rejects == rejects
    assert parsed.lines_read == read and parsed.rows_staged == read - len(rejects)


@pytest.mark.parametrize("tricky", range(len(TRICKY_LINES)))
def test_a_block_with_a_tricky_line_stages_what_the_lines_stage_one_by_one(tricky: int) -> None:
    good = [event(itemInSession=n) for n in range(5)]
    assert_same_file([*good[:2], TRICKY_LINES[tricky], *good[2:]])
    assert_same_file([TRICKY_LINES[tricky]])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [event(itemInSession=n) for n in range(3)]
            + TRICKY_LINES
            + [line for line, _ in NASTY_EVENT_LINES]
            + [b"", b"   "]
        ),
        max_size=12,
    )
)
def test_files_of_any_lines_stage_what_the_lines_stage_one_by_one(lines: list[bytes]) -> None:
    assert_same_file(lines)


def test_a_text_split_over_two_lines_is_not_read_as_one_record() -> None:
    """Joined by a bare comma, these three lines would decode as three records (the first
    two as one event whose song is "a,b"); the newline between them forbids it."""
    assert_same_file([event()[:-1] + b', "song": "a', b'b"}', TRICKY_LINES[0]])


def test_long_files_are_decoded_in_blocks_and_keep_their_line_numbers() -> None:
    lines = [event(itemInSession=n % 1000, sessionId=n // 1000) for n in range(2500)]
    lines[1700] = b"{broken"
    assert_same_file(lines)


def test_duckdb_reads_its_staging_rows_as_the_column_keyed_rows() -> None:
    """The raw-keyed JSON lines DuckDB stages read back as the rows the plain path makes."""
    lines = [event(), event(userId=""), event(registration=None, song=None), TRICKY_LINES[-1]]
    data = b"\n".join(lines)
    parsed = parse_events(data, 4, row_encoder("staging_events", DUCKDB_FORMAT))
    expected = [
        plain_stage_line("events", line, 4, n, Counter()) for n, line in enumerate(lines, 1)
    ]
    con = duckdb.connect()
    with tempfile.NamedTemporaryFile(suffix=".json") as part:
        part.write(parsed.data)
        part.flush()
        read = con.execute(canonical_select("staging_events", DUCKDB_FORMAT), {"path": [part.name]})
        got = read.fetchall()
    assert [list(row[:-1]) for row in got] == expected  # the last column is derived


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from([f.key for f in SONG_FIELDS] + ["file_id"]), json_values),
    st.booleans(),
)
def test_song_files_stage_in_duckdb_format_what_the_plain_path_stages(
    changes: dict, pretty: bool
) -> None:
    """A song file, on one line or pretty-printed: DuckDB's rows are the plain path's."""
    record = {"song_id": "S1", "artist_id": "A1", "title": " Héllo ", **changes}
    body = orjson.dumps(record, option=orjson.OPT_INDENT_2 if pretty else 0)
    parsed = parse_songs(body, 5, row_encoder("staging_songs", DUCKDB_FORMAT))
    verdict = plain_stage_line("songs", body, 5, 1, Counter())
    if isinstance(verdict, Reject):
        assert parsed.rejects == [verdict] and not parsed.data
    else:
        expected = bytearray()
        row_encoder("staging_songs", DUCKDB_FORMAT)(verdict, expected)
        assert parsed.data == expected and not parsed.rejects
