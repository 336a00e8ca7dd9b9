"""Every table, declared once; the dialects' differences, declared as data.

A column names its type once. Text without a fixed width says what it holds (``CODE``: short
codes and ids, ``TEXT``: free text, ``KEY``: a case-folded match key); a dialect that needs
explicit widths gives each class one (``Dialect.widths``). The Redshift distribution and sort
keys are part of a table's declaration and rendered only where a dialect has them. Shared
code (``create_statements``) renders the DDL; ``schema.Statements`` serves it under the
names ``create_<table>`` (and ``create_affected`` for the affected-key tables), so a dialect
file may still override one by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

CODE, TEXT, KEY = "VARCHAR:code", "VARCHAR:text", "VARCHAR:key"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a SQL type, or CODE / TEXT / KEY
    not_null: bool = False
    primary_key: bool = False
    unique: bool = False
    byte_order: bool = False  # ties are broken by this text: it must sort byte by byte


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()  # a key of several columns
    temporary: bool = False  # one run's working table
    # Redshift's physical design: how rows are spread over the slices and sorted on disk.
    diststyle: str = ""  # ALL, EVEN or KEY
    distkey: str = ""
    sortkey: tuple[str, ...] = ()
    compound_sortkey: bool = False
    # The columns a run's reads limit to a range of bound values, so that only the blocks
    # holding the range are read: Redshift keeps a zone map (each block's smallest and
    # largest value) of every column; PostgreSQL gets a BRIN index of these.
    zone_maps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dialect:
    """How a dialect renders the declarations, where it differs from the shared one."""

    widths: Mapping[str, int] = field(default_factory=dict)  # CODE/TEXT/KEY -> bytes
    byte_order_collation: str = ""  # for columns whose sort order must be by bytes
    not_null_primary_key: bool = False  # write NOT NULL beside PRIMARY KEY
    reserved: frozenset[str] = frozenset()  # column names to quote
    physical_design: bool = False  # DISTSTYLE / DISTKEY / SORTKEY
    # keys are not declared (no index) but checked by the run before it commits (check_keys)
    checked_keys: bool = False
    zone_map_index: str = ""  # the index that stands in for zone maps, where one is needed


# Looked up along a backend's dialect chain (``Capabilities.sql_chain``), like the .sql files.
DIALECTS = {
    "common": Dialect(),
    # DuckDB compares text byte by byte and needs no widths. It keeps a key's index (an ART)
    # in memory, rebuilt at COMMIT: 0.4 s of a 1M-event load's COMMIT, and beyond its
    # memory limit a load fails. A run checks the keys itself instead (check_keys).
    "duckdb": Dialect(not_null_primary_key=True, checked_keys=True),
    # The database collation (en_US...) ignores punctuation and case at first.
    # A BRIN index keeps the smallest and largest value of each range of 16 pages (128 KB).
    "postgres": Dialect(
        byte_order_collation='COLLATE "C"',
        zone_map_index="USING brin ({columns}) WITH (pages_per_range = 16)",
    ),
    # A bare VARCHAR is 256 bytes and widths count bytes; match keys get twice their
    # source's width, as case folding can lengthen text (ß -> ss). Keys are informational
    # only; text already compares byte by byte.
    "redshift": Dialect(
        widths={"code": 256, "text": 1024, "key": 2048},
        not_null_primary_key=True,
        reserved=frozenset({"raw"}),
        physical_design=True,
    ),
}


def _c(name: str, sql_type: str, **flags: bool) -> Column:
    return Column(name, sql_type, **flags)


def _nn(name: str, sql_type: str, **flags: bool) -> Column:
    return Column(name, sql_type, not_null=True, **flags)


def _pk(name: str, sql_type: str) -> Column:
    return Column(name, sql_type, primary_key=True)


def _key_text(name: str) -> Column:
    """Free text as a primary key, sorted byte by byte on every backend."""
    return Column(name, TEXT, primary_key=True, byte_order=True)


# A rejected record: where in its file, why, and its raw text.
_REJECT = (_nn("line_no", "INTEGER"), _nn("reason", "VARCHAR(1000)"), _c("raw", "VARCHAR(65535)"))

DECLARED = (
    Table(
        "etl_runs",
        (
            _pk("run_id", "INTEGER"),
            _nn("started_at", "TIMESTAMP"),
            _c("finished_at", "TIMESTAMP"),
            _nn("status", "VARCHAR(16)"),
            *(_c(f"files_{what}", "INTEGER") for what in ("new", "changed", "skipped")),
            *(_c(what, "BIGINT") for what in ("lines_read", "rows_staged", "rows_rejected")),
            *(
                _c(f"{t}_rows", "BIGINT")
                for t in ("songplays", "users", "songs", "artists", "time")
            ),
            _c("message", "VARCHAR(1000)"),
            _c("unknown_fields", "VARCHAR(1000)"),  # JSON text: {kind: {field: count}}
        ),
        diststyle="ALL",
        sortkey=("run_id",),
    ),
    Table(
        "etl_files",
        (
            _pk("file_id", "INTEGER"),
            _nn("url", "VARCHAR(1024)", unique=True, byte_order=True),
            _nn("kind", "VARCHAR(8)"),
            _nn("size", "BIGINT"),
            _nn("version", "VARCHAR(128)"),
            _nn("fingerprint", "VARCHAR(128)"),
            _nn("first_run_id", "INTEGER"),
            _nn("last_run_id", "INTEGER"),
            *(_nn(what, "BIGINT") for what in ("lines_read", "rows_staged", "rows_rejected")),
        ),
        diststyle="ALL",
        sortkey=("file_id",),
    ),
    *(
        Table(
            name,
            (_nn("run_id", "INTEGER"), where, *_REJECT),
            diststyle="EVEN",
            sortkey=("run_id",),
        )
        for name, where in (
            ("etl_rejects", _nn("file_id", "INTEGER")),
            # Failed runs' rejects, kept after the rollback: their files are not in the
            # ledger, so each row names its file.
            ("etl_failed_rejects", _nn("url", "VARCHAR(1024)")),
        )
    ),
    Table(
        "staging_events",
        (
            _nn("file_id", "INTEGER"),
            _nn("line_no", "INTEGER"),
            _c("artist", TEXT),
            _c("auth", CODE),
            _c("first_name", CODE),
            _c("gender", CODE),
            _nn("item_in_session", "INTEGER"),
            _c("last_name", CODE),
            _c("length", "DOUBLE PRECISION"),
            _c("level", CODE),
            _c("location", TEXT),
            _c("method", CODE),
            _nn("page", CODE),
            _c("registration", "BIGINT"),
            _nn("session_id", "BIGINT"),
            _c("song", TEXT),
            _c("status", "INTEGER"),
            _nn("ts", "BIGINT"),
            _c("user_agent", TEXT),
            _c("user_id", "BIGINT"),
            _c("song_key", KEY),
            _c("artist_key", KEY),
            _nn("start_time", "TIMESTAMP"),
        ),
        diststyle="KEY",
        distkey="session_id",
        # Every copy of an event shares its session, and sessions, files and start times all
        # follow time: sorted by session, each run's rows lie in few blocks of each.
        sortkey=("session_id",),
        zone_maps=("file_id", "session_id", "start_time"),
    ),
    Table(
        "staging_songs",
        (
            _nn("file_id", "INTEGER"),
            _nn("line_no", "INTEGER"),
            _c("num_songs", "INTEGER"),
            _nn("artist_id", CODE),
            _c("artist_latitude", "DOUBLE PRECISION"),
            _c("artist_longitude", "DOUBLE PRECISION"),
            _c("artist_location", TEXT),
            _c("artist_name", TEXT),
            _nn("song_id", CODE, byte_order=True),
            _c("title", TEXT),
            _c("duration", "DOUBLE PRECISION"),
            _c("year", "INTEGER"),
            _c("title_key", KEY),
            _c("artist_key", KEY),
        ),
        diststyle="ALL",
        sortkey=("file_id",),
    ),
    Table(
        "songplays",
        (
            _pk("songplay_id", "BIGINT"),
            _nn("start_time", "TIMESTAMP"),
            _c("user_id", "BIGINT"),
            _c("level", CODE),
            _c("song_id", CODE),
            _c("artist_id", CODE),
            _nn("session_id", "BIGINT"),
            _nn("item_in_session", "INTEGER"),
            _c("location", TEXT),
            _c("user_agent", TEXT),
        ),
        diststyle="KEY",
        distkey="user_id",
        sortkey=("start_time",),
        zone_maps=("start_time",),
    ),
    Table(
        "users",
        (
            _pk("user_id", "BIGINT"),
            _c("first_name", CODE),
            _c("last_name", CODE),
            _c("gender", CODE),
            _c("level", CODE),
        ),
        diststyle="KEY",
        distkey="user_id",
        sortkey=("level",),
    ),
    Table(
        "user_levels",
        (
            _nn("user_id", "BIGINT"),
            _nn("level", CODE),
            _nn("valid_from", "TIMESTAMP"),
            _c("valid_to", "TIMESTAMP"),
        ),
        primary_key=("user_id", "valid_from"),
        diststyle="KEY",
        distkey="user_id",
        sortkey=("user_id", "valid_from"),
        compound_sortkey=True,
    ),
    Table(
        "songs",
        (
            _pk("song_id", CODE),
            _c("title", TEXT),
            _nn("artist_id", CODE),
            _c("year", "INTEGER"),
            _c("duration", "DOUBLE PRECISION"),
        ),
        diststyle="ALL",
        sortkey=("artist_id",),
    ),
    Table(
        "artists",
        (
            _pk("artist_id", CODE),
            _c("name", TEXT),
            _c("location", TEXT),
            _c("latitude", "DOUBLE PRECISION"),
            _c("longitude", "DOUBLE PRECISION"),
        ),
        diststyle="ALL",
        sortkey=("artist_id",),
    ),
    # Every event, and what it says about sessions, subscriptions, feedback, devices and
    # places (docs/model.md). Built, like songplays, per affected session_id: spread over
    # the slices as staging_events is, so the rebuild moves no rows between nodes.
    Table(
        "user_events",
        (
            _pk("event_id", "BIGINT"),
            _nn("start_time", "TIMESTAMP"),
            _c("user_id", "BIGINT"),
            _nn("session_id", "BIGINT"),
            _nn("item_in_session", "INTEGER"),
            _nn("page", CODE),
            _c("level", CODE),
            _c("auth", CODE),
            _c("method", CODE),
            _c("status", "INTEGER"),
            _c("location", TEXT),
            _c("user_agent", TEXT),
        ),
        diststyle="KEY",
        distkey="session_id",
        sortkey=("start_time",),
        zone_maps=("session_id",),
    ),
    Table(
        "sessions",
        (
            _pk("session_id", "BIGINT"),
            _c("user_id", "BIGINT"),
            _nn("start_time", "TIMESTAMP"),
            _nn("end_time", "TIMESTAMP"),
            _nn("events", "INTEGER"),
            _nn("plays", "INTEGER"),
            _c("level", CODE),
            _c("location", TEXT),
            _c("user_agent", TEXT),
        ),
        diststyle="KEY",
        distkey="session_id",
        sortkey=("start_time",),
    ),
    Table(
        "subscription_changes",
        (
            _pk("event_id", "BIGINT"),
            _nn("change_time", "TIMESTAMP"),
            _c("user_id", "BIGINT"),
            _nn("session_id", "BIGINT"),
            _nn("kind", CODE),
            _c("from_level", CODE),
            _c("to_level", CODE),
        ),
        diststyle="ALL",
        sortkey=("change_time",),
    ),
    Table(
        "song_feedback",
        (
            _pk("event_id", "BIGINT"),
            _nn("feedback_time", "TIMESTAMP"),
            _c("user_id", "BIGINT"),
            _nn("session_id", "BIGINT"),
            _nn("rating", "SMALLINT"),
            _c("songplay_id", "BIGINT"),
            _c("song_id", CODE),
            _c("artist_id", CODE),
        ),
        diststyle="KEY",
        distkey="session_id",
        sortkey=("feedback_time",),
    ),
    Table(
        "user_agents",
        (
            _key_text("user_agent"),
            _c("browser", CODE),
            _c("os", CODE),
            _c("device", CODE),
            # How many user events have the text: a text goes when its count reaches 0, so a
            # run reads only its own sessions' events, not all of user_events.
            _c("events", "BIGINT"),
        ),
        diststyle="ALL",
        sortkey=("user_agent",),
    ),
    Table(
        "locations",
        (
            _key_text("location"),
            _c("metro_area", TEXT),
            _c("city", TEXT),
            # Parts of free text: as wide as the text they come from.
            _c("state", TEXT),
            _c("states", TEXT),
            _c("events", "BIGINT"),  # as user_agents.events
        ),
        diststyle="ALL",
        sortkey=("location",),
    ),
    Table(
        "time",
        (
            _pk("start_time", "TIMESTAMP"),
            *(_nn(part, "INTEGER") for part in ("hour", "day", "week", "month", "year", "weekday")),
        ),
        diststyle="KEY",
        distkey="start_time",
        sortkey=("start_time",),
    ),
)
# One run's working tables: the files it (re)loads, and the keys they affect (created
# together, as the statement create_affected).
RUN_FILES = Table(
    "run_files", (_nn("file_id", "INTEGER"), _nn("kind", "VARCHAR(8)")), temporary=True
)
# A run's new change tokens for known files of unchanged content (create_file_versions).
FILE_VERSIONS = Table(
    "file_versions",
    (_nn("url", "VARCHAR(1024)"), _nn("version", "VARCHAR(128)")),
    temporary=True,
)
AFFECTED = (
    Table("affected_plays", (_nn("songplay_id", "BIGINT"),), temporary=True),
    # Each affected user, and the time of their earliest event the run adds or removes.
    Table(
        "affected_users",
        (_nn("user_id", "BIGINT"), _nn("start_time", "TIMESTAMP")),
        temporary=True,
    ),
    Table("affected_songs", (_nn("song_id", CODE),), temporary=True),
    Table("affected_artists", (_nn("artist_id", CODE),), temporary=True),
    Table("affected_titles", (_c("title_key", KEY), _c("artist_key", KEY)), temporary=True),
    Table("affected_sessions", (_nn("session_id", "BIGINT"),), temporary=True),
    # The start times the affected plays had before the run and have after it.
    Table("affected_times", (_nn("start_time", "TIMESTAMP"),), temporary=True),
    # The user agents and locations of the affected sessions' events, with the change in
    # their counts: minus the events the run replaces, plus those it writes.
    Table("affected_agents", (_nn("user_agent", TEXT), _nn("events", "BIGINT")), temporary=True),
    Table("affected_locations", (_nn("location", TEXT), _nn("events", "BIGINT")), temporary=True),
)
TABLES = tuple(table.name for table in DECLARED)
# The runs' history: a --full-refresh keeps it; every other table holds what runs loaded
# and is rebuilt whole by a run that rebuilds (sparkify.rebuild).
RUN_HISTORY = ("etl_runs", "etl_failed_rejects")
REBUILT = tuple(name for name in TABLES if name not in RUN_HISTORY)


def dialect_of(chain: tuple[str, ...]) -> Dialect:
    return next(DIALECTS[name] for name in chain if name in DIALECTS)


def _column(column: Column, dialect: Dialect, in_key: bool = False) -> str:
    """A column's definition; ``in_key``: part of its table's key of several columns."""
    name = f'"{column.name}"' if column.name in dialect.reserved else column.name
    sql_type, _, width_class = column.type.partition(":")
    if width_class and dialect.widths:
        sql_type = f"{sql_type}({dialect.widths[width_class]})"
    parts = [sql_type]
    if column.byte_order and dialect.byte_order_collation:
        parts.append(dialect.byte_order_collation)
    key_part = column.primary_key or (in_key and dialect.checked_keys)
    if column.not_null or (key_part and dialect.not_null_primary_key):
        parts.append("NOT NULL")
    if column.primary_key and not dialect.checked_keys:
        parts.append("PRIMARY KEY")
    if column.unique and not dialect.checked_keys:
        parts.append("UNIQUE")
    return f"{name} {' '.join(parts)}"


def create_statement(table: Table, dialect: Dialect) -> str:
    """``CREATE TABLE`` for ``table`` in ``dialect``."""
    columns = [_column(c, dialect, c.name in table.primary_key) for c in table.columns]
    if table.primary_key and not dialect.checked_keys:
        columns.append(f"PRIMARY KEY ({', '.join(table.primary_key)})")
    if table.temporary:
        return f"CREATE TEMPORARY TABLE {table.name} ({', '.join(columns)})"
    body = ",\n    ".join(columns)
    sql = f"CREATE TABLE IF NOT EXISTS {table.name} (\n    {body}\n)"
    if dialect.physical_design:
        sql += f"\nDISTSTYLE {table.diststyle}"
        if table.distkey:
            sql += f"\nDISTKEY({table.distkey})"
        compound = "COMPOUND " if table.compound_sortkey else ""
        sql += f"\n{compound}SORTKEY({', '.join(table.sortkey)})"
    return sql


def zone_map_statement(table: Table, dialect: Dialect) -> str:
    """The index that stands in for ``table``'s zone maps in ``dialect`` (none: "")."""
    if not (table.zone_maps and dialect.zone_map_index):
        return ""
    using = dialect.zone_map_index.format(columns=", ".join(table.zone_maps))
    return f"CREATE INDEX IF NOT EXISTS {table.name}_zone_maps ON {table.name} {using}"


def design_statements(chain: tuple[str, ...]) -> dict[str, str]:
    """What gives an existing table the declared physical design, where the dialect has one
    (PostgreSQL's zone-map indexes, Redshift's sort keys), keyed by how the catalog query
    ``physical_design`` shows the table once it has it: "<table> <item>, <item>..."."""
    dialect = dialect_of(chain)
    design = {}
    for table in DECLARED:
        if zone_maps := zone_map_statement(table, dialect):
            design[f"{table.name} {table.name}_zone_maps"] = zone_maps
        if dialect.physical_design:
            columns = ", ".join(table.sortkey)
            compound = "COMPOUND " if table.compound_sortkey else ""
            design[f"{table.name} {columns}"] = (
                f"ALTER TABLE {table.name} ALTER {compound}SORTKEY ({columns})"
            )
    return design


def create_statements(chain: tuple[str, ...]) -> dict[str, str]:
    """The DDL as named statements for a dialect chain: ``create_<table>`` for each table
    and ``create_affected``, its statements each ending with a semicolon; and
    ``check_keys`` (see ``Dialect.checked_keys``)."""
    dialect = dialect_of(chain)
    named = {
        f"create_{t.name}": "\n".join(
            sql + ";"
            for sql in (create_statement(t, dialect), zone_map_statement(t, dialect))
            if sql
        )
        for t in (*DECLARED, RUN_FILES, FILE_VERSIONS)
    }
    named["create_affected"] = "\n".join(create_statement(t, dialect) + ";" for t in AFFECTED)
    # Keys no index enforces are checked before COMMIT; elsewhere their indexes do it.
    named["check_keys"] = "\n".join(check_key_statements()) if dialect.checked_keys else ""
    return named


def table_keys(table: Table) -> list[tuple[str, ...]]:
    """The keys ``table`` declares: its primary key and its unique columns."""
    keys: list[tuple[str, ...]] = [(c.name,) for c in table.columns if c.primary_key or c.unique]
    return [*keys, table.primary_key] if table.primary_key else keys


def check_key_statements() -> list[str]:
    """Per declared key, a DuckDB statement that fails (``error``) when two rows share it."""
    statements = []
    for table in DECLARED:
        for key in table_keys(table):
            columns = ", ".join(key)
            message = f"duplicate keys in {table.name} ({columns}); the run was rolled back"
            statements.append(
                f"SELECT error('{message}') WHERE EXISTS (SELECT 1 FROM {table.name} "
                f"GROUP BY {columns} HAVING COUNT(*) > 1);"
            )
    return statements
