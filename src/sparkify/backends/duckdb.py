"""The embedded default: a DuckDB file on disk, no server.

One DuckDB file admits one writing process, and while it writes no other process can open
it, not even to read. So a run never writes the warehouse file itself: under the run lock (a
lock file beside it), it copies the file, runs its transaction on the copy and, once that is
committed and checkpointed, renames the copy over the warehouse file, atomically. Readers
open the warehouse file read-only and see the last committed state while a run goes on; a
run killed at any point leaves the file as it was (its copy is removed by the next run).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import msgspec

from sparkify.backends.base import (
    Backend,
    Capabilities,
    Params,
    Result,
    Sent,
    bind_style,
    quote_identifier,
)
from sparkify.errors import (
    ConfigError,
    ConnectionFailed,
    RunInProgress,
    TransientWarehouseError,
    WarehouseError,
)
from sparkify.staging import canonical_select, table_columns

INTERRUPTED = "Query interrupted"
MEMORY = ":memory:"
LOCK_POLL_SECONDS = 0.1
_ROWS_ENCODER = msgspec.json.Encoder()  # bookkeeping rows as JSON arrays (insert_rows)


class DuckDBBackend(Backend):
    name = "duckdb"
    capabilities = Capabilities(
        sql_chain=("duckdb", "common"),
        paramstyle="dollar",
        supports_schema=False,
        writes_in_transaction=True,
        row_format="rawjson",
    )

    def __init__(self, settings: Any, read_only: bool = False) -> None:
        super().__init__(settings, read_only)
        self.path = settings.get("WAREHOUSE", "PATH") or "sparkify.duckdb"
        self._con: duckdb.DuckDBPyConnection | None = None

    def describe(self) -> str:
        return f"duckdb:{self.path}"

    def connect(self, wait_seconds: float = 0.0) -> None:
        """Open the warehouse file read-only, whatever the command: writing happens in
        ``transaction``. Before a first run an empty in-memory database stands in for it (a
        reading command gets an error instead: nothing is created)."""
        folder = Path(self.path).parent
        if self.read_only and self.path != MEMORY and not Path(self.path).exists():
            raise ConfigError(
                f"{self.describe()} does not exist: load data first "
                "(sparkify etl --songs PATH --logs PATH)"
            )
        if self.path != MEMORY and not folder.is_dir():
            raise ConfigError(
                f"cannot create the DuckDB database {self.path}: the folder {folder} does not exist"
            )
        self.wait_seconds = wait_seconds
        if self.path != MEMORY and Path(self.path).exists():
            self._con = self._open(self.path, read_only=True)
        else:
            self._con = self._open(MEMORY)

    def _open(self, path: str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                con = duckdb.connect(path, read_only=read_only)
                # setting up the connection (queries over ~2 s would draw a progress bar on
                # stderr), not a statement of the run: sql() runs it at once
                con.sql("SET enable_progress_bar = false")
                self._limit_memory(con)
                return con
            except duckdb.IOException as exc:
                # only a database file written by an older version, folding its WAL, waits
                if "lock" not in str(exc).lower():
                    raise ConnectionFailed(f"cannot open {path}: {exc}") from None
                if time.monotonic() >= deadline:
                    raise RunInProgress(f"{path} is in use by another process") from None
                time.sleep(LOCK_POLL_SECONDS)
            except duckdb.Error as exc:
                raise ConnectionFailed(f"cannot open {path}: {exc}") from None

    def _limit_memory(self, con: duckdb.DuckDBPyConnection) -> None:
        """``[WAREHOUSE] MEMORY_LIMIT`` (DuckDB's own default is 80% of the RAM): beyond it,
        DuckDB spills sorts, joins and uncommitted rows to a temporary folder."""
        limit = self.settings.get("WAREHOUSE", "MEMORY_LIMIT")
        if not limit:
            return
        try:  # like the progress bar: setting up the connection, not a statement of the run
            con.sql("SET memory_limit = $limit", params={"limit": limit})
        except duckdb.Error as exc:
            con.close()
            raise ConfigError(f"[WAREHOUSE] MEMORY_LIMIT: {exc}") from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The run lock, a copy of the warehouse file to write, and its rename over the
        file at commit. On a failure the copy is dropped: the file was never touched."""
        if self.path == MEMORY:
            with super().transaction():
                yield
            return
        path = Path(self.path)
        with self._run_lock(path):
            work = path.with_name(f"{path.name}.run-{os.getpid()}")
            self._remove_copies(path)
            self.close()
            try:
                self._copy(path, work)
                self._con = self._open(str(work))
                with super().transaction():
                    yield
                self.close()  # checkpoints: the copy holds every change, no log beside it
                _durable_replace(work, path)
            finally:
                self.close()
                self._remove_copies(path)
                self.connect(self.wait_seconds)

    @contextmanager
    def _run_lock(self, path: Path) -> Iterator[None]:
        """``<file>.lock``, held (flock) by the process that writes the file."""
        fd = os.open(path.with_name(f"{path.name}.lock"), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            deadline = time.monotonic() + self.wait_seconds
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise RunInProgress(
                            f"another run is in progress: {self.path} is locked by another "
                            "process; try again later or pass --wait SECONDS"
                        ) from None
                    time.sleep(LOCK_POLL_SECONDS)
            yield
        finally:
            os.close(fd)

    def _copy(self, path: Path, work: Path) -> None:
        """The file a run writes: a copy of the warehouse (none: a new database)."""
        if not path.exists():
            return
        if path.with_name(f"{path.name}.wal").exists():
            # A write-ahead log beside the warehouse (left by an older version): fold it in
            # first, so that the copy holds every committed change.
            self._open(str(path)).close()
        shutil.copyfile(path, work)

    @staticmethod
    def _remove_copies(path: Path) -> None:
        """The copies (and their logs and spill folders, ``<copy>.tmp/``) of runs that
        ended or died; under the run lock."""
        for copy in path.parent.glob(f"{path.name}.run-*"):
            if copy.is_dir() and not copy.is_symlink():
                shutil.rmtree(copy, ignore_errors=True)
            else:
                with suppress(FileNotFoundError):
                    copy.unlink()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self.connect()
        assert self._con is not None
        return self._con

    def _run(self, sql: str, params: Params) -> duckdb.DuckDBPyConnection:
        try:
            if not params:  # user SQL may hold ':' in literals; only rewrite what is bound
                return self.con.execute(sql)
            return self.con.execute(bind_style(sql, self.capabilities.paramstyle), dict(params))
        except duckdb.TransactionException as exc:
            raise TransientWarehouseError(f"DuckDB: {exc}") from exc
        except duckdb.Error as exc:
            raise WarehouseError(f"DuckDB: {exc}") from exc
        except RuntimeError as exc:
            # Ctrl-C during a statement: DuckDB's Python client turns the KeyboardInterrupt
            # into this plain RuntimeError; give the interrupt back.
            if str(exc) == INTERRUPTED:
                raise KeyboardInterrupt from None
            raise

    def execute(self, sql: str, params: Params = None) -> None:
        self._run(sql, params)

    def query(self, sql: str, params: Params = None) -> Result:
        cursor = self._run(sql, params)
        columns = [d[0] for d in cursor.description or []]
        return Result(columns, cursor.fetchall())

    def existing_tables(self) -> set[str]:
        [sql] = self.statements.get("existing_tables")
        return {row[0] for row in self.query(sql).rows}

    @classmethod
    def load_sql(cls, table: str) -> str:
        columns = ", ".join(f'"{c}"' for c in table_columns(table))
        select = canonical_select(table, cls.capabilities.row_format)
        return f'INSERT INTO "{table}" ({columns})\n{select}'

    @classmethod
    def load_statements(cls, table: str) -> list[Sent]:
        return [Sent(cls.driver_sql(cls.load_sql(table), bound=True))]

    @classmethod
    def insert_sql(cls, table: str, columns: Sequence[str]) -> str:
        names = ", ".join(quote_identifier(c) for c in columns)
        values = ", ".join(f"row[{i}]" for i in range(1, len(columns) + 1))
        return (
            f"INSERT INTO {quote_identifier(table)} ({names})\nSELECT {values} FROM read_json("
            ":rows_file, format = 'newline_delimited', records = false, "
            "columns = {'row': 'VARCHAR[]'})"
        )

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        """All rows in one statement: written as JSON arrays, one a line, to a temporary
        file that DuckDB reads, each value as text cast to its column's type on insert.

        A single-row INSERT costs DuckDB about 2 ms (the ledger rows of 15,000 song files
        took 30 s one by one); the columns bound as lists and unnested took 0.2 CPU-seconds
        for them (DuckDB converts every Python value), the file 0.04.
        """
        if not rows:
            return
        with tempfile.NamedTemporaryFile(prefix="sparkify-rows-", suffix=".json") as file:
            file.write(_ROWS_ENCODER.encode_lines(rows))
            file.flush()
            self.execute(self.insert_sql(table, columns), {"rows_file": file.name})

    def load_canonical(self, table: str, paths: Sequence[Path]) -> int:
        return int(self.query(self.load_sql(table), {"path": [str(p) for p in paths]}).scalar())


def _durable_replace(work: Path, path: Path) -> None:
    """Rename ``work`` over ``path``, both on disk before and after: the commit point."""
    wal = work.with_name(f"{work.name}.wal")
    if wal.exists() and wal.stat().st_size:
        raise WarehouseError(f"DuckDB left a write-ahead log in {wal}; {path} is unchanged")
    with open(work, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(work, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
