"""PostgreSQL through psycopg 3: tables in a configurable schema, bulk loads by COPY.

The parse workers write staged rows in PostgreSQL's binary COPY format, streamed in chunks
into ``COPY ... FROM STDIN``; every transform is set-based SQL run by the server. The steps a
Redshift backend changes are separate methods: connection parameters, opening a
connection, schema handling, error mapping, the run lock and the COPY stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sparkify.backends.base import (
    Backend,
    Capabilities,
    Params,
    Result,
    Sent,
    bind_style,
    has_parameters,
    quote_identifier,
)
from sparkify.config import Settings
from sparkify.errors import (
    ConfigError,
    ConnectionFailed,
    RunInProgress,
    SparkifyError,
    TransientWarehouseError,
    WarehouseError,
)
from sparkify.staging import PGCOPY_HEADER, PGCOPY_TRAILER, table_columns
from sparkify.tables import REBUILT

SWAP_SAVEPOINT = "sparkify_swap"  # where a failed swap goes back to (see swap_sql)
SWAP_LOCK_WAIT = "50ms"  # how long the swap waits for a table's lock before trying again

log = logging.getLogger(__name__)

# SQLSTATEs after which the same work may succeed if tried again.
TRANSIENT_CLASSES = frozenset({"08"})  # connection exceptions
TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now
        "53300",  # too_many_connections
    }
)


# Redshift reports a serialization conflict as its error 1023 under the catch-all SQLSTATE
# XX000 ("ERROR: 1023 DETAIL: Serializable isolation violation on table ..."); only the
# message tells it from the other internal errors, which are not worth retrying.
INTERNAL_ERROR = "XX000"
SERIALIZATION_CONFLICT = re.compile(
    r"^\s*1023\b|serializable isolation violation", re.IGNORECASE | re.MULTILINE
)


def is_transient(sqlstate: str | None, message: str = "") -> bool:
    """``message``: the server's primary message and detail, one per line."""
    if sqlstate == INTERNAL_ERROR:
        return bool(SERIALIZATION_CONFLICT.search(message))
    return sqlstate is not None and (
        sqlstate in TRANSIENT_SQLSTATES or sqlstate[:2] in TRANSIENT_CLASSES
    )


def map_driver_error(exc: psycopg.Error, product: str = "PostgreSQL") -> WarehouseError:
    """The one place a driver error becomes a sparkify error, decided by SQLSTATE (and, for
    Redshift's internal errors, by the message).

    An ``OperationalError`` without a SQLSTATE means the connection broke before the
    server answered, which is transient too.
    """
    diag = exc.diag
    sqlstate = exc.sqlstate or diag.sqlstate
    said = "\n".join(m for m in (diag.message_primary, diag.message_detail) if m)
    transient = is_transient(sqlstate, said) or (
        sqlstate is None and isinstance(exc, psycopg.OperationalError)
    )
    message = diag.message_primary or " ".join(str(exc).split()) or type(exc).__name__
    text = f"{product} error {sqlstate or '(no SQLSTATE)'}: {message}"
    if diag.message_detail:
        text += f" ({diag.message_detail})"
    if diag.context:
        text += f" [{diag.context.strip().splitlines()[-1]}]"
    if transient:
        return TransientWarehouseError(text + " (transient: trying again may succeed)", sqlstate)
    return WarehouseError(text, sqlstate)


@dataclass(frozen=True)
class Target:
    """Where a connection goes, for messages: everything but the password."""

    host: str
    port: str
    database: str
    user: str

    def __str__(self) -> str:
        return f"host {self.host}, port {self.port}, database {self.database}, user {self.user}"


class PostgresBackend(Backend):
    name = "postgres"
    capabilities = Capabilities(
        sql_chain=("postgres", "common"),
        paramstyle="pyformat",
        supports_schema=True,
        row_format="pgcopy",
        parallel_build=True,
    )
    product: ClassVar[str] = "PostgreSQL"
    url_scheme: ClassVar[str] = "postgresql"
    default_port: ClassVar[int] = 5432
    connect_attempts: ClassVar[int] = 3  # tries for a server that cannot be reached
    connect_backoff: ClassVar[float] = 0.25  # seconds before the 2nd try, doubled after
    connect_timeout: ClassVar[int] = 10  # seconds per try
    lock_timeout_sqlstate: ClassVar[str] = "55P03"  # lock_not_available: lock_timeout passed
    # A read-only session: every transaction of it is read-only, even after a COMMIT.
    read_only_statements: ClassVar[tuple[str, ...]] = (
        "SELECT set_config('default_transaction_read_only', 'on', false)",
    )
    copy_chunk_bytes: ClassVar[int] = 1 << 20
    # Executions of one statement after which psycopg prepares it on the server (its
    # default); None: never (psycopg then never sends DEALLOCATE either).
    prepare_threshold: ClassVar[int | None] = 5
    # A rebuild's connections: the one that stages the rows and builds the first group of
    # tables (songplays), and one for the other groups. Two cores: 2.
    build_connections = 2
    schema_exists_sql: ClassVar[str] = "SELECT COUNT(*) FROM pg_namespace WHERE nspname = :schema"
    search_path_sql: ClassVar[str] = "SELECT set_config('search_path', :path, false)"
    jit_sql: ClassVar[str] = "SELECT set_config('jit', 'off', false)"
    work_mem_sql: ClassVar[str] = "SELECT set_config('work_mem', :value, false)"

    def __init__(self, settings: Settings, read_only: bool = False) -> None:
        super().__init__(settings, read_only)
        self.schema = settings.get("WAREHOUSE", "SCHEMA") or "public"
        self.rows_copied = 0  # by the last bulk load
        self._con: psycopg.Connection[Any] | None = None

    # -- connection ---------------------------------------------------------------------
    def connection_params(self) -> dict[str, Any]:
        """libpq parameters from --dsn / [WAREHOUSE] DSN, else from [CLUSTER].

        A password missing here may still come from PGPASSWORD or ~/.pgpass (libpq).
        """
        dsn = self.settings.get("WAREHOUSE", "DSN")
        if dsn:
            try:
                params: dict[str, Any] = conninfo_to_dict(dsn)
            except psycopg.ProgrammingError:  # libpq's reason may quote part of a password
                raise ConfigError(
                    "invalid DSN: expected postgresql://user@host:port/db or key=value pairs"
                ) from None
        else:
            why = f"the {self.product} server; or pass --dsn"
            params = {
                "host": self.settings.require("CLUSTER", "HOST", why),
                "port": self.settings.get("CLUSTER", "DB_PORT") or str(self.default_port),
                "dbname": self.settings.get("CLUSTER", "DB_NAME"),
                "user": self.settings.get("CLUSTER", "DB_USER"),
            }
        password = self.settings.get("CLUSTER", "DB_PASSWORD")
        if password and not params.get("password"):
            params["password"] = password
        params.setdefault("connect_timeout", str(self.connect_timeout))
        params.setdefault("application_name", "sparkify")
        params["client_encoding"] = "UTF8"
        return {k: v for k, v in params.items() if v not in (None, "")}

    def target(self, params: dict[str, Any]) -> Target:
        """The effective host, port, database and user, with libpq's defaults filled in."""
        defaults = {
            opt.keyword.decode(): opt.val.decode() for opt in pq.Conninfo.get_defaults() if opt.val
        }
        user = params.get("user") or defaults.get("user", "")
        return Target(
            host=params.get("host") or defaults.get("host", "localhost"),
            port=str(params.get("port") or defaults.get("port", self.default_port)),
            database=params.get("dbname") or defaults.get("dbname", user),
            user=user,
        )

    def describe(self) -> str:
        try:
            where = self.target(self.connection_params())
        except SparkifyError:
            return f"{self.name} (schema {self.schema})"
        return (
            f"{self.url_scheme}://{where.user}@{where.host}:{where.port}/{where.database}"
            f" (schema {self.schema})"
        )

    def open_connection(self, params: dict[str, Any]) -> psycopg.Connection[Any]:
        """One connection attempt, in autocommit mode: transactions are explicit."""
        return psycopg.connect(**params, autocommit=True, prepare_threshold=self.prepare_threshold)

    def connect(self, wait_seconds: float = 0.0) -> None:
        self.wait_seconds = wait_seconds
        params = self.connection_params()
        for attempt in range(1, self.connect_attempts + 1):
            try:
                self._con = self.open_connection(params)
                break
            except psycopg.Error as exc:
                if attempt == self.connect_attempts or not self.worth_retrying(exc, params):
                    raise self.connect_failure(exc, params) from None
                time.sleep(self.connect_backoff * 2 ** (attempt - 1))
        try:
            self.use_schema()
            self.configure_session()
            for sql in self.read_only_statements if self.read_only else ():
                self.execute(sql)
        except BaseException:
            self.close()
            raise

    def worth_retrying(self, exc: psycopg.Error, params: dict[str, Any]) -> bool:
        """libpq reports no SQLSTATE for a failed connection, so ask the server's state:
        retry when it did not answer or is starting up / shutting down, not when it
        answered and refused (credentials, unknown database or role)."""
        pgconn = exc.pgconn
        if pgconn is not None and (pgconn.needs_password or pgconn.used_password):
            return False
        probe = make_conninfo(**{**params, "connect_timeout": "2"})
        return pq.PGconn.ping(probe.encode()) in (pq.Ping.NO_RESPONSE, pq.Ping.REJECT)

    def connect_failure(self, exc: psycopg.Error, params: dict[str, Any]) -> SparkifyError:
        where = self.target(params)
        if exc.pgconn is not None and exc.pgconn.needs_password:
            return ConfigError(
                f"{self.product} ({where}) asks for a password and none is set: set "
                "SPARKIFY_CLUSTER_DB_PASSWORD or PGPASSWORD, or add it to ~/.pgpass"
            )
        lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
        reason = "; ".join([lines[0].split(" failed: ")[-1], *lines[1:]] if lines else [])
        return ConnectionFailed(
            _scrub(f"cannot connect to {self.product} ({where}): {reason}", params)
        )

    def use_schema(self) -> None:
        """Create the configured schema if missing (unless read-only) and make it the only
        one searched.

        Existence is checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege
        even when the schema is there, and a second run may create it at the same moment.
        """
        if not self.read_only and not self.schema_exists():
            try:
                self.execute(self.create_schema_sql(self.schema))
            except WarehouseError:
                if not self.schema_exists():
                    raise
        self.execute(self.search_path_sql, {"path": quote_identifier(self.schema)})

    @classmethod
    def create_schema_sql(cls, schema: str) -> str:
        return f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}"

    def configure_session(self) -> None:
        """Settings for this session only. The transforms sort and hash up to a run's staged
        rows: with the default 4MB of work_mem those sorts spill to disk ([WAREHOUSE]
        WORK_MEM, 256MB by default). JIT compiles each big statement for longer than it
        saves on them."""
        self.execute(self.jit_sql)
        work_mem = self.settings.get("WAREHOUSE", "WORK_MEM")
        if work_mem:
            try:
                self.execute(self.work_mem_sql, {"value": work_mem})
            except WarehouseError as exc:
                raise ConfigError(f"[WAREHOUSE] WORK_MEM: {exc}") from None

    def schema_exists(self) -> bool:
        found = self.query(self.schema_exists_sql, {"schema": self.schema})
        return bool(found.scalar())

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    @property
    def con(self) -> psycopg.Connection[Any]:
        if self._con is None:
            self.connect(self.wait_seconds)
        assert self._con is not None
        return self._con

    # -- rebuilding whole tables on several connections (sparkify.rebuild) -----------------
    def cancel(self) -> None:
        con = self._con
        if con is not None and not con.closed:
            with contextlib.suppress(psycopg.Error):
                con.cancel_safe(timeout=5)

    def build_prefix(self) -> str:
        """A hash of the schema's name: one prefix per schema whatever its name, and a build
        schema's name stays within PostgreSQL's 63 bytes."""
        digest = hashlib.blake2b(self.schema.encode(), digest_size=6).hexdigest()
        return f"sparkify_build_{digest}_"

    def build_connection(self, build_schema: str) -> Backend:
        other = type(self)(self.settings)
        other.schema = build_schema
        other.connect(self.wait_seconds)
        return other

    @classmethod
    def opening_statements(cls, schema: str, create: bool) -> list[Sent]:
        """What ``connect`` sends (``use_schema``, ``configure_session``) for a schema that
        exists or, with ``create``, is created (with the default [WAREHOUSE] WORK_MEM)."""
        sqls = [cls.schema_exists_sql, *([cls.create_schema_sql(schema)] if create else [])]
        sqls += [cls.search_path_sql, cls.jit_sql, cls.work_mem_sql]
        return [Sent(cls.driver_sql(sql, has_parameters(sql))) for sql in sqls]

    @classmethod
    def build_tables_sql(cls) -> list[str]:
        """The tables, and no autovacuum on them while they are built: it would start on the
        large ones as they fill, and the swap's ``ALTER TABLE ... SET SCHEMA`` would then
        wait a whole ``deadlock_timeout`` (1 s by default) for each before PostgreSQL
        cancels it (measured: 4 to 5 s of a 1M-event swap). The swap resets it."""
        off = "autovacuum_enabled = false, toast.autovacuum_enabled = false"
        return [
            *super().build_tables_sql(),
            *(f"ALTER TABLE {quote_identifier(table)} SET ({off})" for table in REBUILT),
        ]

    @classmethod
    def dead_builds_sql(cls) -> str:
        return (
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, :prefix) ORDER BY nspname"
        )

    @classmethod
    def drop_build_sql(cls, build_schema: str) -> str:
        return f"DROP SCHEMA IF EXISTS {quote_identifier(build_schema)} CASCADE"

    @classmethod
    def swap_sql(cls, schema: str, build_schema: str, tables: Sequence[str]) -> list[str]:
        """After a savepoint (so that a failure can undo the swap alone: ``unswap``): every
        table locked at once, each lock waited for ``SWAP_LOCK_WAIT`` at most, then the old
        tables dropped and the new ones moved in (their indexes move with them), autovacuum
        on again; the build schema is empty then, and DROP SCHEMA without CASCADE says so."""
        main, build = quote_identifier(schema), quote_identifier(build_schema)
        names = [quote_identifier(table) for table in tables]
        sqls = [
            f"SAVEPOINT {SWAP_SAVEPOINT}",
            f"SELECT set_config('lock_timeout', '{SWAP_LOCK_WAIT}', true)",
            f"LOCK TABLE {', '.join(f'{main}.{name}' for name in names)} IN ACCESS EXCLUSIVE MODE",
            "SELECT set_config('lock_timeout', '0', true)",
        ]
        reset = "RESET (autovacuum_enabled, toast.autovacuum_enabled)"  # see build_tables_sql
        for name in names:
            sqls += [
                f"DROP TABLE {main}.{name}",
                f"ALTER TABLE {build}.{name} SET SCHEMA {main}",
                f"ALTER TABLE {main}.{name} {reset}",
            ]
        return [*sqls, f"DROP SCHEMA {build}"]

    def swap(self, build_schema: str) -> None:
        """A query that reads the old tables holds its locks until it ends; one that starts
        meanwhile takes them one after the other. Waiting for all of them at once could
        deadlock with such a query (each holding what the other waits for): so the swap
        waits a moment for each lock and, when one is still taken, lets go of them all and
        tries again a little later."""
        pause = 0.05
        while True:
            try:
                for sql in self.swap_sql(self.schema, build_schema, REBUILT):
                    self.execute(sql)
                return
            except WarehouseError as exc:
                if exc.sqlstate != self.lock_timeout_sqlstate:
                    raise
            self.unswap()
            log.info("the swap waits for queries reading %s to end", self.describe())
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def unswap(self) -> None:
        self.execute(f"ROLLBACK TO SAVEPOINT {SWAP_SAVEPOINT}")

    # -- statements ---------------------------------------------------------------------
    def map_error(self, exc: psycopg.Error) -> WarehouseError:
        return map_driver_error(exc, self.product)

    def _cursor(self, sql: str, params: Params) -> psycopg.Cursor[Any]:
        cursor = self.con.cursor()
        try:
            if params:
                cursor.execute(bind_style(sql, self.capabilities.paramstyle), dict(params))
            else:
                cursor.execute(sql)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise self.map_error(exc) from exc
        return cursor

    def execute(self, sql: str, params: Params = None) -> None:
        self._cursor(sql, params).close()

    def query(self, sql: str, params: Params = None) -> Result:
        with self._cursor(sql, params) as cursor:
            if cursor.description is None:
                return Result([], [])
            try:
                rows = cursor.fetchall()
            except psycopg.Error as exc:
                raise self.map_error(exc) from exc
            return Result([d.name for d in cursor.description], rows)

    @classmethod
    def insert_sql(cls, table: str, columns: Sequence[str]) -> str:
        names = ", ".join(quote_identifier(c) for c in columns)
        return f"COPY {quote_identifier(table)} ({names}) FROM STDIN"

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        """Bookkeeping rows (thousands for a catalogue of song files) by one COPY."""
        if not rows:
            return
        try:
            with self.con.cursor() as cursor, cursor.copy(self.insert_sql(table, columns)) as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as exc:
            raise self.map_error(exc) from exc

    def existing_tables(self) -> set[str]:
        [sql] = self.statements.get("existing_tables")
        return {row[0] for row in self.query(sql, {"schema": self.schema}).rows}

    def enforced_keys(self) -> frozenset[tuple[str, tuple[str, ...]]]:
        """Every valid primary key of the schema's tables: PostgreSQL refuses a duplicate or
        a NULL in one on every write."""
        [sql] = self.statements.get("enforced_keys")
        keys: dict[str, list[str]] = {}
        for table, column in self.query(sql).rows:
            keys.setdefault(table, []).append(column)
        return frozenset((table, tuple(sorted(columns))) for table, columns in keys.items())

    def rollback(self) -> None:
        """A broken connection has lost its transaction already: nothing to roll back."""
        if self._con is None or self._con.closed or self._con.broken:
            return
        self.execute("ROLLBACK")

    # -- one run at a time ---------------------------------------------------------------
    def lock_run(self) -> None:
        """LOCK etl_runs, given up after ``lock_wait``'s timeout. A LOCK starts no snapshot
        (an advisory lock taken by a SELECT would: at REPEATABLE READ the run would then see
        the warehouse as it was before the run it waited for committed)."""
        try:
            super().lock_run()
        except WarehouseError as exc:
            if exc.sqlstate == self.lock_timeout_sqlstate:
                raise RunInProgress(
                    f"another run is in progress on {self.describe()}; "
                    "try again later or pass --wait SECONDS"
                ) from None
            raise

    # -- loading ------------------------------------------------------------------------
    @classmethod
    def copy_sql(cls, table: str) -> str:
        columns = ", ".join(quote_identifier(c) for c in table_columns(table))
        return f"COPY {quote_identifier(table)} ({columns}) FROM STDIN WITH (FORMAT binary)"

    @classmethod
    def load_statements(cls, table: str) -> list[Sent]:
        """The rows in binary COPY format, encoded by the parse workers."""
        return [Sent(cls.copy_sql(table))]

    def load_canonical(self, table: str, paths: Sequence[Path]) -> int:
        with self.bulk_load(table) as add:
            for path in paths:
                add(path)
        return self.rows_copied

    @contextlib.contextmanager
    def bulk_load(self, table: str) -> Iterator[Callable[[Path], None]]:
        """One binary COPY open for as long as files come: each is streamed as soon as it
        is handed over, so the server takes in rows while the next ones are parsed."""
        try:
            with self.con.cursor() as cursor:
                with cursor.copy(self.copy_sql(table)) as copy:
                    copy.write(PGCOPY_HEADER)

                    def add(path: Path) -> None:
                        for chunk in file_chunks(path, self.copy_chunk_bytes):
                            copy.write(chunk)

                    yield add
                    copy.write(PGCOPY_TRAILER)
                self.rows_copied = cursor.rowcount
        except psycopg.Error as exc:
            raise self.map_error(exc) from exc


def file_chunks(path: Path, chunk_bytes: int) -> Iterator[bytes]:
    with path.open("rb") as rows:
        while chunk := rows.read(chunk_bytes):
            yield chunk


def _scrub(text: str, params: dict[str, Any]) -> str:
    """Belt and braces: a password never reaches a message, even if a driver echoed it."""
    password = params.get("password")
    return text.replace(password, "***") if password else text
