"""Canonical rows: the one intermediate format between parsing and bulk loading.

Parsers write JSON lines keyed by column name; ``canonical_select`` is the DuckDB query that
reads such a file typed, in table column order, with derived columns added. The DuckDB
backend inserts from it directly; server backends let DuckDB turn it into CSV for COPY.
"""

from __future__ import annotations

from sparkify.records import FIELDS, MATCH_KEYS

REJECT_COLUMNS = {
    "run_id": "INTEGER",
    "file_id": "INTEGER",
    "line_no": "INTEGER",
    "reason": "VARCHAR",
    "raw": "VARCHAR",
}


def _staging_columns(kind: str) -> dict[str, str]:
    columns = {"file_id": "INTEGER", "line_no": "INTEGER"}
    columns.update({spec.column: spec.sql_type for spec in FIELDS[kind]})
    columns.update({key: "VARCHAR" for _, key in MATCH_KEYS[kind]})
    return columns


# table -> (columns as read from the canonical file, derived columns as DuckDB expressions)
CANONICAL: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "staging_events": (_staging_columns("events"), {"start_time": "epoch_ms(ts)"}),
    "staging_songs": (_staging_columns("songs"), {}),
    "etl_rejects": (REJECT_COLUMNS, {}),
}
KIND_TABLE = {"events": "staging_events", "songs": "staging_songs"}


def table_columns(table: str) -> list[str]:
    read, derived = CANONICAL[table]
    return [*read, *derived]


def canonical_select(table: str, path_parameter: str = "$path") -> str:
    """``SELECT`` over a canonical JSON-lines file for ``table`` (DuckDB SQL)."""
    read, derived = CANONICAL[table]
    struct = ", ".join(f"'{name}': '{sql_type}'" for name, sql_type in read.items())
    selected = [*(f'"{name}"' for name in read), *(f'{e} AS "{n}"' for n, e in derived.items())]
    return (
        f"SELECT {', '.join(selected)} FROM read_json({path_parameter}, "
        f"format = 'newline_delimited', columns = {{{struct}}})"
    )
