"""Staged rows: the one intermediate form between parsing and bulk loading.

A parse task hands each accepted record over as a list of values in ``CANONICAL`` column
order and writes it in the row format the warehouse's bulk loader reads:

- ``json``: JSON lines keyed by column; Redshift uploads the lines for its COPY.
- ``rawjson``: the same JSON lines keyed by the raw record's keys (``userId``), which the
  fast path writes without building a row of its own (``records.RawKeyedRows``).
  ``canonical_select`` is the DuckDB query that reads them typed, with the derived columns
  added; DuckDB inserts from it.
- ``pgcopy``: tuples of PostgreSQL's binary COPY format, derived columns included, so the
  server parses no text at all. A file of them is a COPY body without its header and trailer.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sparkify.records import (
    FIELDS,
    MATCH_KEY_BYTES,
    MATCH_KEYS,
    MAX_RAW_CHARS,
    RawKeyedRows,
    RowEncoder,
    json_rows,
    staged_columns,
)

REJECT_COLUMNS = {
    "run_id": "INTEGER",
    "file_id": "INTEGER",
    "line_no": "INTEGER",
    "reason": "VARCHAR",
    "raw": "VARCHAR",
}
_EXTRA_TYPES = {"file_id": "INTEGER", "line_no": "INTEGER"}


def _staging_columns(kind: str) -> dict[str, str]:
    types = {**_EXTRA_TYPES, **{spec.column: spec.sql_type for spec in FIELDS[kind]}}
    types.update({key: "VARCHAR" for _, key in MATCH_KEYS[kind]})
    return {column: types[column] for column in staged_columns(kind)}


_PG_EPOCH_MS = 946_684_800_000  # 2000-01-01, where PostgreSQL counts timestamps from


def _pg_timestamp(epoch_ms: int) -> int:
    """A timestamp as PostgreSQL's binary form holds it: microseconds since 2000-01-01."""
    return (epoch_ms - _PG_EPOCH_MS) * 1000


@dataclass(frozen=True)
class Derived:
    """A column computed from another column of the same row."""

    sql_type: str
    duckdb: str  # as a DuckDB expression over the read columns
    source: str  # the read column it is computed from
    pgcopy: Callable[[Any], Any]  # the same in Python, as the pgcopy format writes it


# table -> (columns as read from a staged row, derived columns)
CANONICAL: dict[str, tuple[dict[str, str], dict[str, Derived]]] = {
    "staging_events": (
        _staging_columns("events"),
        {"start_time": Derived("TIMESTAMP", "epoch_ms(ts)", "ts", _pg_timestamp)},
    ),
    "staging_songs": (_staging_columns("songs"), {}),
    "etl_rejects": (REJECT_COLUMNS, {}),
}
KIND_TABLE = {"events": "staging_events", "songs": "staging_songs"}
TABLE_KIND = {table: kind for kind, table in KIND_TABLE.items()}

ROW_FORMATS = ("json", "rawjson", "pgcopy")


def table_columns(table: str) -> list[str]:
    read, derived = CANONICAL[table]
    return [*read, *derived]


# The widest a JSON-lines row can be: every text at its width (counted in characters for the
# raw text and the reason of a reject), each character written in at most 6 bytes (\u001f),
# and 64 bytes per column for its name, its number or null and the punctuation.
_TEXT_WIDTHS = {
    **{
        table: [f.max_bytes or 0 for f in FIELDS[kind]] + [MATCH_KEY_BYTES] * len(MATCH_KEYS[kind])
        for kind, table in KIND_TABLE.items()
    },
    "etl_rejects": [MAX_RAW_CHARS + len("...[truncated]"), 1000],
}
MAX_JSON_LINE_BYTES = max(
    6 * sum(widths) + 64 * len(table_columns(table)) for table, widths in _TEXT_WIDTHS.items()
)


def canonical_select(table: str, row_format: str = "rawjson", path_parameter: str = "$path") -> str:
    """``SELECT`` over files of JSON-lines staged rows for ``table`` in ``row_format``
    (``json`` or ``rawjson``; DuckDB SQL)."""
    read, derived = CANONICAL[table]
    keys = {name: name for name in read}
    if row_format == "rawjson" and table in TABLE_KIND:
        keys = _raw_keyed(TABLE_KIND[table]).json_keys()
    struct_type = ", ".join(f"'{keys[name]}': '{sql_type}'" for name, sql_type in read.items())
    selected = [
        *(f'"{keys[name]}" AS "{name}"' for name in read),
        *(f'{d.duckdb} AS "{name}"' for name, d in derived.items()),
    ]
    # DuckDB refuses a line longer than maximum_object_size (16 MB by default): never ours.
    return (
        f"SELECT {', '.join(selected)} FROM read_json({path_parameter}, "
        f"format = 'newline_delimited', columns = {{{struct_type}}}, "
        f"maximum_object_size = {max(MAX_JSON_LINE_BYTES, 16 * 1024 * 1024)})"
    )


@cache
def _raw_keyed(kind: str) -> RawKeyedRows:
    return RawKeyedRows(kind)


@cache
def row_encoder(table: str, row_format: str) -> RowEncoder:
    """How a row of ``table`` (its values in ``CANONICAL`` read order) is appended to a
    buffer; see ``RowEncoder``."""
    read, derived = CANONICAL[table]
    if row_format == "rawjson" and table in TABLE_KIND:
        return _raw_keyed(TABLE_KIND[table])
    if row_format in ("json", "rawjson"):
        return json_rows(table, list(read))
    if row_format == "pgcopy":
        return _pgcopy_rows(read, derived)
    raise ValueError(f"unknown row format {row_format!r}; expected one of {ROW_FORMATS}")


# PostgreSQL's binary COPY format (documented with the COPY command): a header, then one tuple
# per row: an int16 field count and, per field, an int32 length (-1 for NULL) and the value's
# bytes, all big-endian. A body ends with a field count of -1.
PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
PGCOPY_TRAILER = struct.pack("!h", -1)
_INT2, _INT4 = struct.Struct("!h"), struct.Struct("!i")
_NULL = _INT4.pack(-1)
_LENGTHS = tuple(_INT4.pack(n) for n in range(4096))  # the length words of most texts, made once
# How each type is written: a text as its UTF-8 bytes; the others as (length, value) by one
# precompiled Struct. A timestamp goes as the int8 of its microseconds since 2000: the very bytes
# of PostgreSQL's binary timestamp, and no datetime object to make per row.
_PG_TYPES = {
    "VARCHAR": "text",
    "INTEGER": "int4",
    "BIGINT": "int8",
    "DOUBLE": "float8",
    "TIMESTAMP": "int8",
}
_FIXED = {
    name: struct.Struct(f"!i{code}")
    for name, code in (("int4", "i"), ("int8", "q"), ("float8", "d"))
}


def _pgcopy_rows(read: dict[str, str], derived: dict[str, Derived]) -> RowEncoder:
    """Rows as binary COPY tuples, by a function generated for the table's columns: one
    statement per column and one join per row, no loop or dispatch per value (this runs for
    every row of a PostgreSQL load). For ``(id INTEGER, name VARCHAR)`` it reads::

        def encode(values, out):
            v0, v1, = values
            v0 = NULL if v0 is None else PACK_int4(4, v0)
            if v1 is None:
                n1, v1 = NULL, EMPTY
            else:
                v1 = v1.encode()
                n1 = LENGTHS[n] if (n := len(v1)) < 4096 else LENGTH(n)
            out += JOIN((COUNT, v0, n1, v1))

    ``tests/test_postgres.py`` holds its bytes to psycopg's own ``Copy.write_row``.
    """
    types = [_PG_TYPES[t] for t in [*read.values(), *(d.sql_type for d in derived.values())]]
    names = [f"v{i}" for i in range(len(types))]
    scope: dict[str, Any] = {
        "COUNT": _INT2.pack(len(types)),
        "NULL": _NULL,
        "EMPTY": b"",
        "LENGTHS": _LENGTHS,
        "LENGTH": _INT4.pack,
        "JOIN": b"".join,
        **{f"PACK_{name}": packer.pack for name, packer in _FIXED.items()},
    }
    body = [f"{', '.join(names[: len(read)])}, = values"]
    for k, d in enumerate(derived.values()):  # the derived columns follow the read ones
        source = names[list(read).index(d.source)]
        scope[f"derive{k}"] = d.pgcopy
        body.append(f"{names[len(read) + k]} = None if {source} is None else derive{k}({source})")
    pieces = ["COUNT"]
    for i, (v, pg_type) in enumerate(zip(names, types, strict=True)):
        if pg_type == "text":
            body += [
                f"if {v} is None:",
                f"    n{i}, {v} = NULL, EMPTY",
                "else:",
                f"    {v} = {v}.encode()",
                f"    n{i} = LENGTHS[n] if (n := len({v})) < 4096 else LENGTH(n)",
            ]
            pieces += [f"n{i}", v]
        else:
            size = _FIXED[pg_type].size - 4
            body.append(f"{v} = NULL if {v} is None else PACK_{pg_type}({size}, {v})")
            pieces.append(v)
    body.append(f"out += JOIN(({', '.join(pieces)}))")
    source = "def encode(values, out):\n" + "".join(f"    {line}\n" for line in body)
    exec(compile(source, f"<pgcopy rows of {', '.join(read)}>", "exec"), scope)
    encode: RowEncoder = scope["encode"]
    return encode
