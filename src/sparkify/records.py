"""The raw record formats and their validation: raw bytes in, typed rows or rejects out.

One table per record kind declares each field's JSON key, staging column, type and whether it
is required. Every backend that parses in Python uses these rules, so a line is accepted or
rejected the same way everywhere. Parsing is a pure function of a file's bytes, so it can run
in worker processes.

Two paths give one verdict. The fast path (``FastPath``) lets msgspec decode the usual shape of
a record in C and calls a converter only for a value not already of its result type; whatever
it does not accept whole goes to the plain path (orjson, then every field's converter), which
decides and words the reason. tests/test_fast_path.py holds the two to the same result.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
import orjson
from msgspec.structs import astuple

MAX_RAW_CHARS = 2000  # raw text kept per rejected record
# Text widths count UTF-8 bytes, as Redshift's VARCHAR does (sql/redshift.sql declares the same
# widths): a text longer than its field's ``max_bytes`` is rejected on every backend alike.
MATCH_KEY_BYTES = 2048  # a match key (case-folded title or artist name)
FOLDED_BYTES_PER_CHAR = 6  # the most one character can take once case-folded (U+0390, 3 characters)
MAX_ITEM_IN_SESSION = 999_999  # songplay_id = session_id * 1_000_000 + item_in_session
MAX_SESSION_ID = 9_000_000_000_000  # keeps songplay_id inside BIGINT
MAX_EPOCH_MS = 32_503_680_000_000  # year 3000: beyond it a timestamp cannot be real
INT64 = 2**63 - 1
INT32 = 2**31 - 1


class FieldError(ValueError):
    """A field value that cannot be converted to its column type."""


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(f"expected text, got {_json_type(value)}")
    return orjson.dumps(value).decode()  # numbers are kept as their JSON text: "title": 66


# Numbers written as text: ASCII digits only, with ASCII blanks around. Python's int() and
# float() also take other scripts' digits ("٣٩"), underscores ("9_010") and Unicode spaces.
_ASCII_INTEGER = re.compile(r"[ \t\r\n]*[+-]?[0-9]+[ \t\r\n]*", re.ASCII)
_ASCII_NUMBER = re.compile(
    r"[ \t\r\n]*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t\r\n]*", re.ASCII
)


def _integer(value: Any) -> int | None:
    if value is None:
        return None
    # Text and floats first: the raw data writes user ids as text and registrations as floats.
    if isinstance(value, str):
        if not _ASCII_INTEGER.fullmatch(value):
            raise FieldError(f"expected an integer, got {_short(value)}")
        result = int(value)
    elif isinstance(value, float):
        if not value.is_integer():
            raise FieldError(f"expected an integer, got {value!r}")
        result = int(value)
    elif isinstance(value, bool):
        raise FieldError("expected an integer, got boolean")
    elif isinstance(value, int):
        result = value
    else:
        raise FieldError(f"expected an integer, got {_json_type(value)}")
    if abs(result) > INT64:
        raise FieldError("integer out of range")
    return result


def _user_id(value: Any) -> int | None:
    if value == "":
        return None  # logged-out and guest visitors
    return _integer(value)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise FieldError("expected a number, got boolean")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        if not _ASCII_NUMBER.fullmatch(value):
            raise FieldError(f"expected a number, got {_short(value)}")
        result = float(value)
    else:
        raise FieldError(f"expected a number, got {_json_type(value)}")
    if not math.isfinite(result):
        raise FieldError("expected a finite number")
    return result


def _ranged(low: int, high: int) -> Callable[[Any], int | None]:
    def convert(value: Any) -> int | None:
        result = _integer(value)
        if result is not None and not low <= result <= high:
            raise FieldError(f"out of range [{low}, {high}]: {result}")
        return result

    _SHORTCUTS[convert] = (int, low, high)
    return convert


# A value of exactly this type within [low, high] is returned unchanged by the converter, so
# convert_record may keep it without calling the converter (the common case). Anything else
# goes through the converter, which decides and words the error.
_SHORTCUTS: dict[Callable[[Any], Any], tuple[type, float | None, float | None]] = {
    _text: (str, None, None),
    _integer: (int, -INT64, INT64),
    _number: (float, -sys.float_info.max, sys.float_info.max),  # finite floats only
}


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", bool: "boolean"}.get(type(value), type(value).__name__)


def _short(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


@dataclass(frozen=True)
class Field:
    key: str  # JSON key in the raw record
    column: str  # staging column
    convert: Callable[[Any], Any]
    sql_type: str  # DuckDB type used to read the canonical rows
    required: bool = False
    max_bytes: int | None = None  # a text's width, in UTF-8 bytes


EVENT_FIELDS: tuple[Field, ...] = (
    Field("artist", "artist", _text, "VARCHAR", max_bytes=1024),
    Field("auth", "auth", _text, "VARCHAR", max_bytes=256),
    Field("firstName", "first_name", _text, "VARCHAR", max_bytes=256),
    Field("gender", "gender", _text, "VARCHAR", max_bytes=256),
    Field("itemInSession", "item_in_session", _ranged(0, MAX_ITEM_IN_SESSION), "INTEGER", True),
    Field("lastName", "last_name", _text, "VARCHAR", max_bytes=256),
    Field("length", "length", _number, "DOUBLE"),
    Field("level", "level", _text, "VARCHAR", max_bytes=256),
    Field("location", "location", _text, "VARCHAR", max_bytes=1024),
    Field("method", "method", _text, "VARCHAR", max_bytes=256),
    Field("page", "page", _text, "VARCHAR", True, max_bytes=256),
    Field("registration", "registration", _integer, "BIGINT"),
    Field("sessionId", "session_id", _ranged(0, MAX_SESSION_ID), "BIGINT", True),
    Field("song", "song", _text, "VARCHAR", max_bytes=1024),
    Field("status", "status", _ranged(0, 999), "INTEGER"),
    Field("ts", "ts", _ranged(0, MAX_EPOCH_MS), "BIGINT", True),
    Field("userAgent", "user_agent", _text, "VARCHAR", max_bytes=1024),
    Field("userId", "user_id", _user_id, "BIGINT"),
)

SONG_FIELDS: tuple[Field, ...] = (
    Field("num_songs", "num_songs", _ranged(-INT32 - 1, INT32), "INTEGER"),
    Field("artist_id", "artist_id", _text, "VARCHAR", True, max_bytes=256),
    Field("artist_latitude", "artist_latitude", _number, "DOUBLE"),
    Field("artist_longitude", "artist_longitude", _number, "DOUBLE"),
    Field("artist_location", "artist_location", _text, "VARCHAR", max_bytes=1024),
    Field("artist_name", "artist_name", _text, "VARCHAR", max_bytes=1024),
    Field("song_id", "song_id", _text, "VARCHAR", True, max_bytes=256),
    Field("title", "title", _text, "VARCHAR", max_bytes=1024),
    Field("duration", "duration", _number, "DOUBLE"),
    Field("year", "year", _ranged(0, 9999), "INTEGER"),
)

FIELDS = {"events": EVENT_FIELDS, "songs": SONG_FIELDS}
KNOWN_KEYS = {kind: frozenset(f.key for f in fields) for kind, fields in FIELDS.items()}
# Converters of fields the raw data usually writes in another JSON type than the column's:
# the fast path decodes any number or text for them and converts it in Python. Both give
# integers (``FastPath._filler`` relies on it).
CONVERTED = frozenset({_user_id, _integer})


@dataclass(frozen=True)
class Reject:
    line_no: int
    reason: str
    raw: str


@dataclass
class Parsed:
    """The result of parsing one file: its staged rows, encoded one after another for the
    warehouse's bulk loader (each row carries its ``file_id`` and ``line_no``), plus rejects."""

    lines_read: int = 0
    rows_staged: int = 0
    data: bytearray = field(default_factory=bytearray)
    rejects: list[Reject] = field(default_factory=list)
    # keys of staged records that no field has, counted per name (see ``count_unknown``; a
    # dict, not a Counter, whose constructor costs more than parsing a song file)
    unknown_fields: dict[str, int] = field(default_factory=dict)


MAX_UNKNOWN_FIELDS = 50  # names counted one by one; the others are counted together
MAX_FIELD_NAME_CHARS = 64
OTHER_FIELDS = "(other names)"


def count_unknown(counter: dict[str, int], counts: Iterable[tuple[str, int]]) -> None:
    """Add (name, count) of unknown fields to ``counter``, bounded whatever the data: names
    are cut to MAX_FIELD_NAME_CHARS, and once MAX_UNKNOWN_FIELDS names are counted, new
    ones are counted together under OTHER_FIELDS."""
    for name, count in counts:
        name = name[:MAX_FIELD_NAME_CHARS]
        if name not in counter and len(counter) >= MAX_UNKNOWN_FIELDS:
            name = OTHER_FIELDS
        counter[name] = counter.get(name, 0) + count


def _raw_text(line: bytes) -> str:
    """A rejected line as text, as every backend can store it: invalid UTF-8 and NUL
    (which PostgreSQL text cannot hold) written as backslash escapes."""
    text = line.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")
    return text if len(text) <= MAX_RAW_CHARS else text[:MAX_RAW_CHARS] + "...[truncated]"


def convert_record(record: Any, fields: tuple[Field, ...]) -> dict[str, Any]:
    """Typed staging row for one decoded JSON value; raises FieldError with the reason."""
    if not isinstance(record, dict):
        raise FieldError(f"expected a JSON object, got {_json_type(record)}")
    cached = _PLANS.get(id(fields))
    plan = cached[1] if cached and cached[0] is fields else _plan(fields)
    row: dict[str, Any] = {}
    get = record.get
    for key, column, convert, required, fast, low, high, max_bytes in plan:
        value = get(key)
        if value is None:
            if required:
                raise FieldError(f"missing required field '{key}'")
            row[column] = None  # every converter maps a missing value or null to None
            continue
        if type(value) is fast and (low is None or low <= value <= high):
            row[column] = value
        else:
            try:
                row[column] = value = convert(value)
            except FieldError as exc:
                raise FieldError(f"field '{key}': {exc}") from None
        if max_bytes:
            within_width(value, max_bytes, key)
    return row


def within_width(text: str | None, max_bytes: int, key: str, what: str = "") -> str | None:
    """``text``, unless its UTF-8 form is longer than ``max_bytes``."""
    if text is not None and len(text) * 4 > max_bytes:  # a character takes at most 4 bytes
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise FieldError(
                f"field '{key}': text longer than {max_bytes} bytes{what} ({size} bytes)"
            )
    return text


_Plan = tuple[tuple[str, str, Callable[[Any], Any], bool, Any, Any, Any, int | None], ...]
_PLANS: dict[int, tuple[tuple[Field, ...], _Plan]] = {}


def _plan(fields: tuple[Field, ...]) -> _Plan:
    """The fields as flat tuples with their shortcut and width, built once per fields
    table."""
    plan = tuple(
        (
            f.key,
            f.column,
            f.convert,
            f.required,
            *_SHORTCUTS.get(f.convert, (None, None, None)),
            f.max_bytes,
        )
        for f in fields
    )
    _PLANS[id(fields)] = (fields, plan)
    return plan


def decode_record(line: bytes) -> Any:
    """One raw record as JSON values; raises FieldError when it is not UTF-8 JSON."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FieldError(f"invalid UTF-8 at byte {exc.start}") from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise FieldError(f"invalid JSON: {exc}") from None


def parse_record(line: bytes, fields: tuple[Field, ...], record: Any = None) -> dict[str, Any]:
    """Decode (unless ``record`` is given: ``line`` decoded) and convert one raw record;
    raises FieldError naming what is wrong."""
    row = convert_record(decode_record(line) if record is None else record, fields)
    if b"\\u0000" in line:  # rare: only then look for the field that holds it
        reject_nul_characters(row, fields)
    return row


def reject_nul_characters(row: dict[str, Any], fields: tuple[Field, ...]) -> None:
    """NUL cannot be stored in PostgreSQL text; refuse it on every backend alike."""
    for spec in fields:
        value = row[spec.column]
        if isinstance(value, str) and "\x00" in value:
            raise FieldError(f"field '{spec.key}': text contains a NUL character")


def match_key(text: str | None) -> str | None:
    """How song titles and artist names are compared: trimmed and case-folded."""
    return None if text is None else text.strip().casefold()


def checked_match_key(text: str | None, key: str) -> str | None:
    """The match key of field ``key``'s text, unless it is wider than its column."""
    return within_width(match_key(text), MATCH_KEY_BYTES, key, " once case-folded")


# Staged beside the text they normalize, so every backend matches plays to songs by plain
# equality, whatever its collation or TRIM semantics: (source column, key column).
MATCH_KEYS = {
    "events": (("song", "song_key"), ("artist", "artist_key")),
    "songs": (("title", "title_key"), ("artist_name", "artist_key")),
}


# (column, JSON key) of the texts that have a match key
_KEY_SOURCES = {
    kind: tuple((f.column, f.key) for source, _ in keys for f in FIELDS[kind] if f.column == source)
    for kind, keys in MATCH_KEYS.items()
}
STAGED_EXTRA = ("file_id", "line_no")


def staged_columns(kind: str) -> list[str]:
    """The columns of a staged row, in the order of its values: where the record came from,
    its fields, then their match keys."""
    columns = [*STAGED_EXTRA, *(f.column for f in FIELDS[kind])]
    return columns + [key for _, key in MATCH_KEYS[kind]]


def staged_values(kind: str, row: dict[str, Any], file_id: int, line_no: int) -> list[Any]:
    """A converted record as a staged row (see ``staged_columns``); raises FieldError when a
    match key is wider than its column."""
    values = [file_id, line_no, *(row[f.column] for f in FIELDS[kind])]
    return values + [checked_match_key(row[column], key) for column, key in _KEY_SOURCES[kind]]


# Appends one row (a staged row's values, see ``staged_columns``, or a reject's) to a buffer
# in a row format. It may extend the list it is given: the list is the row's own.
RowEncoder = Callable[[list[Any], bytearray], None]


def json_rows(name: str, columns: list[str]) -> RowEncoder:
    """Rows as JSON lines keyed by column (what DuckDB and Redshift load)."""
    struct = msgspec.defstruct(f"Row_{name}", [(c, Any) for c in columns])
    encode_into = msgspec.json.Encoder().encode_into

    def encode(values: list[Any], out: bytearray) -> None:
        encode_into(struct(*values), out, -1)
        out += b"\n"

    return encode


class FastPath:
    """Decode and convert a record in one msgspec call, for the shapes records usually have.

    Text fields are decoded as ``str`` only, and only up to the length that surely fits
    their width (``_sure_fit``: a longer text is measured by the plain path). Integer and
    number fields are checked by msgspec itself, in C: an int within the field's range, a
    finite float (an int becomes the float ``float()`` makes of it). The fields the raw data
    writes in other JSON types (``userId`` as text, ``registration`` as a float:
    ``CONVERTED``) are decoded as int, float or str, and a value not already of its
    converter's result type and range goes through the converter. A missing required field,
    a key it does not know, a value of another JSON type, a long text, a NUL escape,
    anything msgspec refuses to decode or a converter's refusal makes it decline the line
    (None): the plain path then decides.

    A record is decoded into a struct of the whole staged row (``record_type``: where it
    came from, its fields, their match keys), filled in place; ``RawKeyedRows`` encodes
    that very struct. ``block`` decodes many lines in one call.
    """

    def __init__(self, kind: str) -> None:
        fields = FIELDS[kind]
        # Where the record came from and its match keys are filled in after decoding: typed
        # UnsetType, a key of theirs in the input fails the decode (the plain path counts it
        # as an unknown field).
        spec: list[tuple[str, Any, Any]] = [
            (column, msgspec.UnsetType, msgspec.UNSET) for column in STAGED_EXTRA
        ]
        # the converted fields: (column, converter)
        checks: list[tuple[str, Callable[[Any], Any]]] = []
        for f in fields:
            kept, low, high = _SHORTCUTS.get(f.convert, (None, None, None))
            decoded: Any
            if f.convert in CONVERTED:
                decoded = int | float | str
                checks.append((f.column, f.convert))
            elif kept is str:  # short enough to fit its width (and its match key's) unmeasured
                decoded = Annotated[str, msgspec.Meta(max_length=self._sure_fit(f, kind))]
            else:  # an int or a finite float in [low, high], as the converter keeps it
                decoded = Annotated[kept, msgspec.Meta(ge=low, le=high)]
            if f.required:
                spec.append((f.column, decoded, msgspec.NODEFAULT))
            else:
                spec.append((f.column, decoded | None, None))
        spec += [(key, msgspec.UnsetType, msgspec.UNSET) for _, key in MATCH_KEYS[kind]]
        # Unknown keys are declined, not skipped: msgspec skips a value without checking it
        # the way orjson does (invalid UTF-8, 1e400, nesting too deep to parse).
        self.record_type = msgspec.defstruct(
            f"Staged_{kind}",
            spec,
            kw_only=True,
            rename={f.column: f.key for f in fields},
            forbid_unknown_fields=True,
            gc=False,  # scalars only: a block of records need not wake the garbage collector
        )
        self.decode = msgspec.json.Decoder(self.record_type).decode
        self.decode_block = msgspec.json.Decoder(list[self.record_type]).decode  # type: ignore[name-defined]
        self.checks = tuple(checks)
        self.key_sources = MATCH_KEYS[kind]  # (text, its match key)
        self.fill = self._filler()

    @staticmethod
    def _sure_fit(spec: Field, kind: str) -> int:
        """The most characters of ``spec``'s text that fit its width whatever they are
        (4 bytes at most each), and its match key's (6 bytes at most each once folded)."""
        assert spec.max_bytes
        chars = spec.max_bytes // 4
        if any(spec.column == source for source, _ in MATCH_KEYS[kind]):
            chars = min(chars, MATCH_KEY_BYTES // FOLDED_BYTES_PER_CHAR)
        return chars

    def _filler(self) -> Callable[[list[Any], Sequence[int], int], None]:
        """``fill(records, line_nos, file_id)``: completes decoded records in place (where each
        came from, the converted fields, the match keys; a converter's refusal raises
        FieldError), by a function generated for the kind: one statement per field, no
        loop or lookup per value (this runs for every staged line). For events it reads::

            def fill(records, line_nos, file_id):
                for record, line_no in zip(records, line_nos):
                    record.file_id = file_id
                    record.line_no = line_no
                    v = record.registration
                    if type(v) is float:
                        record.registration = (
                            int(v) if v.is_integer() and -EXACT <= v <= EXACT else CONVERT0(v)
                        )
                    elif type(v) is str:
                        ...
                    ...
                    record.song_key = MATCH_KEY(record.song)
                    ...
        """
        # EXACT: floats up to it are exact integers; 18 ASCII digits are within INT64
        scope: dict[str, Any] = {"EXACT": 2.0**53, "INT64": INT64}
        body = ["for record, line_no in zip(records, line_nos):"]
        body += ["    record.file_id = file_id", "    record.line_no = line_no"]
        # The converted fields hold integers (CONVERTED): an int within INT64 is kept, and
        # an integral float or a short text of ASCII digits (the raw data's shapes) is the
        # int the converter would return; anything else goes through the converter.
        for i, (name, convert) in enumerate(self.checks):
            scope[f"CONVERT{i}"] = convert
            body += [
                f"    v = record.{name}",
                "    if type(v) is float:",
                f"        record.{name} = (",
                f"            int(v) if v.is_integer() and -EXACT <= v <= EXACT else CONVERT{i}(v)",
                "        )",
                "    elif type(v) is str:",
                f"        record.{name} = (",
                "            int(v) if len(v) < 19 and v.isascii() and v.isdigit()",
                f"            else CONVERT{i}(v)",
                "        )",
                "    elif v is not None and not -INT64 <= v <= INT64:",
                f"        record.{name} = CONVERT{i}(v)",
            ]
        scope["MATCH_KEY"] = match_key
        body += [
            f"    record.{key} = MATCH_KEY(record.{source})" for source, key in self.key_sources
        ]
        source = "def fill(records, line_nos, file_id):\n" + "".join(f"    {b}\n" for b in body)
        exec(compile(source, f"<fill staged rows of {self.record_type.__name__}>", "exec"), scope)
        fill: Callable[[list[Any], Sequence[int], int], None] = scope["fill"]
        return fill

    def record(self, line: bytes, file_id: int, line_no: int) -> Any:
        """The staged row of one line as a ``record_type`` struct, or None: declined."""
        if b"\\u0000" in line:
            return None
        try:
            record = self.decode(line)
            self.fill([record], (line_no,), file_id)
        except (msgspec.MsgspecError, FieldError, UnicodeError, RecursionError):
            return None
        return record

    def staged_values(self, line: bytes, file_id: int, line_no: int) -> list[Any] | None:
        """The staged row of one line as a list (see ``staged_columns``), or None."""
        record = self.record(line, file_id, line_no)
        return None if record is None else list(astuple(record))

    def block(self, joined: bytes, line_nos: Sequence[int], file_id: int) -> list[Any] | None:
        """The staged rows of the lines numbered ``line_nos``, joined by a newline and a
        comma into one JSON array (``joined``), decoded in one call; or None when any line
        must be judged on its own.

        As a string cannot hold a raw newline and no field holds an array or object, no
        element can span two lines; so when there are as many elements as lines, each line
        is exactly one element (blank lines make the array invalid), and is accepted or
        declined as it would be alone.
        """
        if b"\\u0000" in joined:
            return None
        try:
            records = self.decode_block(joined)
            if len(records) != len(line_nos):
                return None
            self.fill(records, line_nos, file_id)
        except (msgspec.MsgspecError, FieldError, UnicodeError, RecursionError):
            return None
        return records


class RawKeyedRows:
    """Staged rows as JSON lines keyed by the raw record's keys (``userId``, not
    ``user_id``; DuckDB's staging rows, read by ``staging.canonical_select``): the fast
    path's structs are encoded as they were decoded, a block of them in one call, and a row
    of the plain path through the same struct, so both give the same bytes."""

    def __init__(self, kind: str) -> None:
        self.record_type = FAST_PATHS[kind].record_type
        self.columns = staged_columns(kind)
        encoder = msgspec.json.Encoder()
        self._encode_into = encoder.encode_into
        self._encode_lines = encoder.encode_lines

    def __call__(self, values: list[Any], out: bytearray) -> None:
        self._encode_into(self.record_type(**dict(zip(self.columns, values, strict=True))), out, -1)
        out += b"\n"

    def records(self, records: list[Any], out: bytearray) -> None:
        out += self._encode_lines(records)

    def json_keys(self) -> dict[str, str]:
        """Each staged column's key in the JSON lines."""
        return {f.name: f.encode_name for f in msgspec.structs.fields(self.record_type)}


def stage_line(
    kind: str, line: bytes, file_id: int, line_no: int, unknown: dict[str, int]
) -> list[Any] | Reject:
    """One raw record's verdict: its staged row, or why it is rejected. The keys of a
    staged record that no field has are counted in ``unknown``."""
    staged = FAST_PATHS[kind].staged_values(line, file_id, line_no)
    if staged is not None:  # the fast path declines unknown keys
        return staged
    return plain_stage_line(kind, line, file_id, line_no, unknown)


def plain_stage_line(
    kind: str, line: bytes, file_id: int, line_no: int, unknown: dict[str, int]
) -> list[Any] | Reject:
    """The same verdict without the fast path: orjson, then every field's converter."""
    try:
        record = decode_record(line)
        row = parse_record(line, FIELDS[kind], record)
        staged = staged_values(kind, row, file_id, line_no)
    except FieldError as exc:
        return Reject(line_no, str(exc), _raw_text(line))
    if not KNOWN_KEYS[kind].issuperset(record):
        count_unknown(unknown, ((key, 1) for key in record if key not in KNOWN_KEYS[kind]))
    return staged


BLOCK_LINES = 1000  # lines decoded in one call when a file's lines are not all good


def _stage_lines(
    kind: str, lines: Iterable[tuple[int, bytes]], file_id: int, encode: RowEncoder
) -> Parsed:
    """The verdict of every line that is not blank, rows encoded into ``Parsed.data``. Rows
    keyed by the raw keys are decoded a block of lines at a time (``FastPath.block``)."""
    result = Parsed()
    out = result.data
    reject = result.rejects.append
    kept = [(line_no, line) for line_no, raw in lines if (line := raw.strip())]
    keyed = encode if isinstance(encode, RawKeyedRows) else None
    size = BLOCK_LINES if keyed else max(len(kept), 1)
    rows_staged = 0
    for start in range(0, len(kept), size):
        block = kept[start : start + size]
        if keyed:
            joined = b"[" + b"\n,".join([line for _, line in block]) + b"]"
            records = FAST_PATHS[kind].block(joined, [n for n, _ in block], file_id)
            if records is not None:
                keyed.records(records, out)
                rows_staged += len(records)
                continue
        for line_no, line in block:
            verdict = stage_line(kind, line, file_id, line_no, result.unknown_fields)
            if isinstance(verdict, Reject):
                reject(verdict)
            else:
                encode(verdict, out)
                rows_staged += 1
    result.lines_read, result.rows_staged = len(kept), rows_staged
    return result


def parse_events(
    data: bytes, file_id: int, encode: RowEncoder | None = None, first_line: int = 1
) -> Parsed:
    """Parse a JSON-lines event file (or a part of one that starts at line ``first_line``
    and ends at a line's end). Blank lines are not records and are not counted. Rows are
    encoded by ``encode`` (by default as JSON lines). Rows keyed by the raw keys are decoded
    in one call for the whole data when every line is good, else by blocks of lines."""
    if data.startswith(b"\xef\xbb\xbf") and first_line == 1:
        data = data[3:]
    encode = encode or JSON_ROWS["events"]
    if isinstance(encode, RawKeyedRows) and (body := data.rstrip(b"\r\n")):
        count = body.count(b"\n") + 1
        line_nos = range(first_line, first_line + count)
        joined = b"[" + body.replace(b"\n", b"\n,") + b"]"
        records = FAST_PATHS["events"].block(joined, line_nos, file_id)
        if records is not None:
            result = Parsed(lines_read=count, rows_staged=count)
            encode.records(records, result.data)
            return result
    lines = enumerate(data.split(b"\n"), start=first_line)
    return _stage_lines("events", lines, file_id, encode)


def parse_songs(data: bytes, file_id: int, encode: RowEncoder | None = None) -> Parsed:
    """Parse a song file: one JSON object, possibly pretty-printed over several lines.

    A file of several objects on separate lines is accepted too (one record per line).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    encode = encode or JSON_ROWS["songs"]
    body = data.strip()
    if not body:
        return Parsed()
    if isinstance(encode, RawKeyedRows):  # the struct is the staged row
        record = FAST_PATHS["songs"].record(body, file_id, 1)
        if record is not None:
            result = Parsed(lines_read=1, rows_staged=1)
            encode.records([record], result.data)
            return result
    elif (staged := FAST_PATHS["songs"].staged_values(body, file_id, 1)) is not None:
        result = Parsed(lines_read=1, rows_staged=1)
        encode(staged, result.data)
        return result
    chunks = [(1, body)]
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        lines = [(n, line.strip()) for n, line in enumerate(data.split(b"\n"), 1)]
        lines = [(n, line) for n, line in lines if line]
        if len(lines) > 1 and all(line[:1] == b"{" and line[-1:] == b"}" for _, line in lines):
            chunks = lines  # JSON lines get a verdict each; anything else is one document
    return _stage_lines("songs", chunks, file_id, encode)


FAST_PATHS = {kind: FastPath(kind) for kind in FIELDS}
JSON_ROWS = {kind: json_rows(kind, staged_columns(kind)) for kind in FIELDS}
PARSERS: dict[str, Callable[[bytes, int, RowEncoder | None], Parsed]] = {
    "events": parse_events,
    "songs": parse_songs,
}
